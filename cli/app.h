// The command-line front end: the one table of subcommands, global options, and the
// single place where errors become `recmodel: error: ...` and exit codes.
#pragma once

#include <string>
#include <vector>

#include "commands/command.h"

namespace recmodel {

struct CommandEntry {
  const char* name;
  const char* summary;
  RegisterCommand register_command;
};

// Returns every subcommand, in the order `recmodel help` lists them.
const std::vector<CommandEntry>& command_table();

// Runs recmodel with the given arguments and returns the process exit code. Never throws.
int run_cli(int argc, char** argv);

}  // namespace recmodel
