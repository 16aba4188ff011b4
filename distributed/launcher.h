// `recmodel train --nproc-per-node N` on a machine without torchrun: starts N local workers running
// the same command with the environment torchrun gives its workers (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), forwards SIGINT/SIGTERM/SIGHUP to them, and when one
// fails stops the others. No restarts: that is torchrun's --max-restarts.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace recmodel::distributed {

struct LaunchOptions {
  int workers = 1;
  std::vector<std::string> command;  // the worker's argv; command[0] is the executable
  std::string master_addr = "127.0.0.1";
  int master_port = 0;                        // 0: a free port on master_addr
  std::chrono::milliseconds grace{30000};     // after a failure, SIGTERM, then SIGKILL after this
};

// Runs the workers to the end. Returns 0 when all succeeded; else the exit code of the first that
// failed (128 + N for signal N), or that of the workers when the launcher was signalled.
// `log` gets one line per event worth telling (a worker failed, the others were stopped).
int launch_local_workers(const LaunchOptions& options, const std::function<void(const std::string&)>& log);

// This process's argv (from /proc/self/cmdline) with the executable replaced by /proc/self/exe's
// target and `option` (and its value, "--opt V" or "--opt=V") removed.
std::vector<std::string> own_command_without(const std::string& option);

// Returns a TCP port that was free on `address` a moment ago.
int free_port(const std::string& address);

}  // namespace recmodel::distributed
