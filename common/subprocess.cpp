#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "common/error.h"

namespace recmodel {

namespace {

// In the child, between fork and exec: points `fd` at `path` (created, appended to).
void redirect(int fd, const std::filesystem::path& path) {
  if (path.empty()) return;
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (file < 0 || ::dup2(file, fd) < 0) {
    std::fprintf(stderr, "recmodel: error: %s: cannot open for the child's output: %s\n", path.c_str(), std::strerror(errno));
    ::_exit(70);
  }
  ::close(file);
}

}  // namespace

int exit_code_of_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 70;
}

std::filesystem::path current_executable(const std::filesystem::path& fallback) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? fallback : self;
}

int run_child(const ChildProcess& child) {
  if (child.argv.empty()) throw Error(ExitCode::internal, "run_child: no command");
  // Signals are taken synchronously and forwarded; the child gets them unblocked.
  sigset_t watched, previous;
  sigemptyset(&watched);
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&watched, signal);
  if (::sigprocmask(SIG_BLOCK, &watched, &previous) != 0)
    throw Error(ExitCode::internal, fmt::format("cannot block signals to supervise {}: {}", child.argv[0], std::strerror(errno)));
  std::vector<char*> argv;
  for (const auto& arg : child.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    throw Error(ExitCode::internal, fmt::format("cannot start {}: fork: {}", child.argv[0], std::strerror(error)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // a supervisor killed outright takes the child along
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    redirect(STDOUT_FILENO, child.stdout_file);
    redirect(STDERR_FILENO, child.stderr_file);
    for (const auto& [name, value] : child.environment) ::setenv(name.c_str(), value.c_str(), 1);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "recmodel: error: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(70);
  }
  int status = 0;
  for (;;) {
    timespec tick{0, 100 * 1000 * 1000};
    const int signal = ::sigtimedwait(&watched, nullptr, &tick);
    if (signal == SIGINT || signal == SIGTERM || signal == SIGHUP) ::kill(pid, signal);
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      status = 0x4600;  // exit 70: lost the child
      break;
    }
  }
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  return exit_code_of_status(status);
}

}  // namespace recmodel
