// `recmodel init`: a randomly initialised BERT classifier in the Hugging Face model layout, for
// training from scratch when no pretrained checkpoint is at hand.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel init` to `command` and returns its action.
CommandAction register_init(CLI::App& command, const Console& console);

}  // namespace recmodel
