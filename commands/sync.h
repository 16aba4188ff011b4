// `recmodel sync`: a model version from one remote to another, streamed part by part (no
// local copy), verified by SHA-256, with only the objects the destination lacks.
#pragma once

#include <string>

#include "commands/command.h"
#include "commands/push.h"

namespace recmodel {

struct SyncOptions {
  std::string ref;
  std::string from;
  std::string to;
  TransferFlags transfer;
};

// Adds the options of `recmodel sync` to `command` and returns its action.
CommandAction register_sync(CLI::App& command, const Console& console);

// Copies the version `options` names and reports the result.
void run_sync(const SyncOptions& options, const Console& console);

}  // namespace recmodel
