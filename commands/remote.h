// `recmodel remote add|list|remove`: the named storage remotes of the config file; `keygen` and
// `rotate-key` for encrypted remotes.
#pragma once

#include <optional>
#include <string>

#include "commands/command.h"

namespace recmodel {

struct RemoteAddOptions {
  std::string name;
  std::string url;             // s3://bucket/prefix or file:///path
  std::string endpoint;
  std::string region;
  std::string profile;
  std::string ca_bundle;
  bool path_style = false;
  bool is_public = false;
  bool is_private = false;
  bool create_bucket = false;  // create the bucket (or directory) now
  bool force = false;          // replace a remote of the same name
  bool encrypt = false;        // seal every object client-side
  std::string key_file;        // --key-file (its path is stored, never the key)
};

struct RemoteRotateOptions {
  std::string name;
  std::string key_file;      // the current key (default: the environment's, else the config's)
  std::string new_key_file;
};

struct RemoteRemoveOptions {
  std::string name;
};

// --config of `recmodel remote`, shared by its subcommands.
struct RemoteConfigOption {
  std::string config;
};

// Adds `remote` and its subcommands add, list and remove to `command`; returns the action.
CommandAction register_remote(CLI::App& command, const Console& console);

void run_remote_add(const RemoteAddOptions& options, const std::string& config, const Console& console);
void run_remote_list(const std::string& config, const Console& console);
void run_remote_remove(const RemoteRemoveOptions& options, const std::string& config, const Console& console);
void run_remote_keygen(const std::string& file, const Console& console);
void run_remote_rotate_key(const RemoteRotateOptions& options, const std::string& config, const Console& console);

}  // namespace recmodel
