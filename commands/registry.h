// `recmodel registry`: register model directories as numbered versions, move aliases such as
// production and staging (with a history of every move), compare, trace lineage and verify.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds `registry` and its subcommands (register, list, show, promote, unalias, tag, compare,
// lineage, history, rollback, verify, archive, delete) to `command` and returns the action.
CommandAction register_registry(CLI::App& command, const Console& console);

}  // namespace recmodel
