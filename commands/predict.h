// `recmodel predict`: labels and probabilities (or values) for texts from a file or stdin,
// streamed as JSONL in input order.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel predict` to `command` and returns its action.
CommandAction register_predict(CLI::App& command, const Console& console);

}  // namespace recmodel
