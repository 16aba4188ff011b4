// `recmodel serve`: online inference over HTTP for one or more models or registry aliases, with
// dynamic batching, hot swaps when an alias moves, Prometheus metrics and a graceful drain.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel serve` to `command` and returns its action.
CommandAction register_serve(CLI::App& command, const Console& console);

}  // namespace recmodel
