// `recmodel train`: fine-tunes a BERT checkpoint on a prepared dataset and writes the best model.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel train` to `command` and returns its action.
CommandAction register_train(CLI::App& command, const Console& console);

}  // namespace recmodel
