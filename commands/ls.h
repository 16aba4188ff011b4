// `recmodel ls`: the model versions on a remote, or the files of one version.
#pragma once

#include <string>

#include "commands/command.h"

namespace recmodel {

struct LsOptions {
  std::string remote;
  std::string what;  // "" = every version; NAME = its versions; NAME/VERSION = its files
  int jobs = 8;
  std::string config;  // --config
  std::string key_file;  // --key-file: the key of an encrypted remote
};

// Adds the options of `recmodel ls` to `command` and returns its action.
CommandAction register_ls(CLI::App& command, const Console& console);

// Lists what `options` asks for and prints it.
void run_ls(const LsOptions& options, const Console& console);

}  // namespace recmodel
