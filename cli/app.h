// The command-line front end: the one table of subcommands, global options, and the
// single place where errors become `recmodel: error: ...` and exit codes.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands/command.h"

namespace recmodel {

struct CommandEntry {
  const char* name;
  const char* summary;
  RegisterCommand register_command;  // nullptr: a model command, registered by the ModelRuntime
};

// Returns every subcommand, in the order `recmodel help` lists them.
const std::vector<CommandEntry>& command_table();

// What only the libtorch build (recmodel-torch, cli/torch_main.cpp) has: the model commands'
// registration, the --version facts about libtorch and BLAS, and libtorch's thread count.
struct ModelRuntime {
  std::vector<std::pair<std::string, RegisterCommand>> commands;
  std::function<nlohmann::json()> version_info;
  std::function<void(int)> use_threads;
};

// Runs recmodel with the given arguments and returns the process exit code. Never throws.
// Without `model_runtime` (the `recmodel` binary), a model command or --version replaces the
// process with recmodel-torch from the same directory, same arguments.
int run_cli(int argc, char** argv, const ModelRuntime* model_runtime = nullptr);

}  // namespace recmodel
