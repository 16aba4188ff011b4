// `recmodel push`: a model directory (or registry version) to a remote, content-addressed;
// only the objects the remote lacks move. Also the transfer options push, pull and sync share.
#pragma once

#include <string>

#include "commands/command.h"
#include "storage/object_store.h"
#include "storage/remote_config.h"
#include "storage/transfer.h"

namespace recmodel {

// Transfer tuning common to push, pull and sync; defaults as in storage::TransferOptions.
struct TransferFlags {
  std::string config;  // --config: the config file; "" = RECMODEL_CONFIG or the XDG default
  int jobs = 8;
  std::string part_size = "8MiB";
  std::string multipart_threshold = "8MiB";
  int retries = 5;
  int timeout = 30;  // seconds without a byte moving
  std::string key_file;  // --key-file: the key of encrypted remotes
};

// Adds --config, --jobs, --part-size, --multipart-threshold, --retries, --timeout and --key-file to `command`.
void add_transfer_options(CLI::App& command, TransferFlags& flags);
// Returns the options the storage layer takes, from the parsed flags.
storage::TransferOptions transfer_options(const TransferFlags& flags);
// Adds --key-file (the key of encrypted remotes) to `command`.
void add_key_file_option(CLI::App& command, std::string& key_file);
storage::StoreOptions store_options(const TransferFlags& flags, const Console& console);

// Adds --config FILE (the config file holding the remotes) to `command`.
void add_config_option(CLI::App& command, std::string& config);
// Returns the remotes of the config file (`config_flag`, else the default) and its path.
std::vector<storage::RemoteSpec> configured_remotes(const std::string& config_flag, std::string* config_path = nullptr);
// Refuses (exit 5) to place a version classified private on a public remote.
void check_residency(const std::string& what, const std::string& classification, const storage::RemoteSpec& remote);
// Returns a remote as JSON for --json output.
nlohmann::json remote_json(const storage::RemoteSpec& remote);
// Returns the transfer counters as JSON.
nlohmann::json stats_json(const storage::TransferStats& stats);

struct PushOptions {
  std::string ref;          // model directory or models:/ URI
  std::string to;           // remote name
  std::string name;         // "" = the registry's name, else the directory's name
  std::string version;      // "" = the registry's version, else derived from the contents
  bool make_private = false;
  TransferFlags transfer;
};

// Adds the options of `recmodel push` to `command` and returns its action.
CommandAction register_push(CLI::App& command, const Console& console);

// Pushes the version `options` names and reports the result.
void run_push(const PushOptions& options, const Console& console);

}  // namespace recmodel
