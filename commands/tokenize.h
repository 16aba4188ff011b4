// `recmodel tokenize`: texts → the ids and tokens the model sees, as JSONL.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel tokenize` to `command` and returns its action.
CommandAction register_tokenize(CLI::App& command, const Console& console);

}  // namespace recmodel
