// `recmodel quantize`: an int8 copy of a model directory that recmodel's evaluate and predict
// run with int8 arithmetic, with a before/after report on a dataset split and a quality gate.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel quantize` to `command` and returns its action.
CommandAction register_quantize(CLI::App& command, const Console& console);

}  // namespace recmodel
