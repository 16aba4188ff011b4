// `recmodel report`: one self-contained HTML page about a model — training curves, evaluation
// with the confusion matrix, calibration, drift, and its registry lineage and alias history.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel report` to `command` and returns its action.
CommandAction register_report(CLI::App& command, const Console& console);

}  // namespace recmodel
