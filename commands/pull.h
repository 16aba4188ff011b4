// `recmodel pull`: a model version from a remote into a directory, every file verified by
// SHA-256 before it is moved into place; an interrupted pull resumes with ranged GETs.
#pragma once

#include <filesystem>
#include <string>

#include "commands/command.h"
#include "commands/push.h"

namespace recmodel {

struct PullOptions {
  std::string ref;    // NAME/VERSION or models:/...
  std::string from;   // "" = the first remote that has it, private before public
  std::string out;    // the model directory to create
  bool force = false;
  TransferFlags transfer;
};

// A version located on a remote: which remote, its manifest and the manifest's text.
struct LocatedVersion {
  storage::RemoteSpec remote;
  std::unique_ptr<storage::ObjectStore> store;
  storage::Manifest manifest;
  std::string manifest_text;
  std::string key;                          // models/NAME/VERSION.json
  std::optional<std::string> registry_uri;  // models:/NAME/N when the registry resolved it
  std::string registry_classification;      // the registry's classification tag, if any
};

// Finds the version `ref` names: on remote `from` when given, else on the first configured
// remote that has it (the registry's recorded remotes first, private before public).
LocatedVersion locate_version(const std::string& ref, const std::string& from, const TransferFlags& flags,
                              const Console& console);

struct PulledVersion {
  LocatedVersion located;
  std::filesystem::path out;     // the directory created
  storage::TransferStats stats;
};

// Pulls the version `options` names into options.out, every file verified, and returns what it
// did without reporting it (`pull` reports; `serve` pulls the versions an alias moves to).
PulledVersion pull_version(const PullOptions& options, const Console& console);

// Adds the options of `recmodel pull` to `command` and returns its action.
CommandAction register_pull(CLI::App& command, const Console& console);

// Pulls the version `options` names and reports the result.
void run_pull(const PullOptions& options, const Console& console);

}  // namespace recmodel
