// `recmodel evaluate`: metrics of a model on a prepared split, or of a predictions file against
// a labels file, identical to scikit-learn's; quality gates (--fail-under, --max) for CI.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel evaluate` to `command` and returns its action.
CommandAction register_evaluate(CLI::App& command, const Console& console);

}  // namespace recmodel
