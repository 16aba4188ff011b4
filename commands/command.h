// The shape of a subcommand: commands/<name>.cpp defines `register_<name>`, which adds
// its options to the CLI11 subcommand and returns the action main runs after parsing.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace recmodel {

using CommandAction = std::function<void()>;
using RegisterCommand = CommandAction (*)(CLI::App& command, const Console& console);

}  // namespace recmodel
