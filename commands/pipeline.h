// `recmodel pipeline run|status FILE.toml`: the retraining loop from one file (pipeline/).
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds `recmodel pipeline` and its subcommands to `command` and returns its action.
CommandAction register_pipeline(CLI::App& command, const Console& console);

}  // namespace recmodel
