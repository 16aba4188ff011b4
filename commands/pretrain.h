// `recmodel pretrain`: masked-LM pretraining of BERT on the catalog's own unlabelled text.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel pretrain` to `command` and returns its action.
CommandAction register_pretrain(CLI::App& command, const Console& console);

}  // namespace recmodel
