// Runs one child process to its end: the stages of `recmodel pipeline` are recmodel's own
// commands, run as children so each keeps its exit code, its signal handling and its memory.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace recmodel {

struct ChildProcess {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  // Appended to (created when missing); "" = this process's own. Both may name one file.
  std::filesystem::path stdout_file;
  std::filesystem::path stderr_file;
  std::vector<std::pair<std::string, std::string>> environment;  // set on top of this process's
};

// Runs `child` and waits for it, forwarding SIGINT, SIGTERM and SIGHUP to it (it runs in its own
// process group, so a Ctrl-C reaches it once, through us). Returns its exit code, 128 + N when
// signal N killed it. Throws Error (internal) when it cannot be started.
int run_child(const ChildProcess& child);

// Returns the exit code a shell would show for a waitpid() status.
int exit_code_of_status(int status);

// Returns the path of the running executable (/proc/self/exe), else `fallback`.
std::filesystem::path current_executable(const std::filesystem::path& fallback);

}  // namespace recmodel
