#include "distributed/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/format.h>

#include "common/error.h"
#include "common/subprocess.h"

namespace recmodel::distributed {

namespace fs = std::filesystem;

namespace {

std::string describe(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited {}", exit_code_of_status(status));
}

}  // namespace

int free_port(const std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail<RemoteError>("cannot open a socket to find a free port: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    fail<UsageError>("{}: not an IPv4 address to host the workers' store on", address);
  }
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    const int error = errno;
    ::close(fd);
    fail<RemoteError>("cannot find a free port on {}: {}", address, std::strerror(error));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::vector<std::string> own_command_without(const std::string& option) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  for (size_t start = 0; start < raw.size();) {
    const size_t end = raw.find('\0', start);
    argv.push_back(raw.substr(start, (end == std::string::npos ? raw.size() : end) - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (argv.empty()) throw Error(ExitCode::internal, fmt::format("cannot read this process's command line from /proc/self/cmdline"));
  argv[0] = current_executable(argv[0]).string();
  std::vector<std::string> kept{argv[0]};
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--") {  // everything after is positional
      kept.insert(kept.end(), argv.begin() + static_cast<std::ptrdiff_t>(i), argv.end());
      break;
    }
    if (argv[i] == option) {
      ++i;  // and its value
      continue;
    }
    if (argv[i].rfind(option + "=", 0) == 0) continue;
    kept.push_back(argv[i]);
  }
  return kept;
}

int launch_local_workers(const LaunchOptions& options, const std::function<void(const std::string&)>& log) {
  const int port = options.master_port > 0 ? options.master_port : free_port(options.master_addr);
  // The signals are taken synchronously (sigtimedwait) and forwarded; the workers get them unblocked.
  sigset_t watched, previous;
  sigemptyset(&watched);
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&watched, signal);
  if (::sigprocmask(SIG_BLOCK, &watched, &previous) != 0)
    throw Error(ExitCode::internal, fmt::format("cannot block signals to supervise the workers: {}", std::strerror(errno)));

  std::vector<char*> argv;
  for (const auto& arg : options.command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<pid_t> workers(static_cast<size_t>(options.workers), -1);
  auto stop_all = [&](int signal) {
    for (pid_t pid : workers)
      if (pid > 0) ::kill(pid, signal);
  };
  for (int rank = 0; rank < options.workers; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int error = errno;
      stop_all(SIGKILL);
      throw Error(ExitCode::internal, fmt::format("cannot start worker {}: fork: {}", rank, std::strerror(error)));
    }
    if (pid == 0) {
      // Its own process group: Ctrl-C at the terminal reaches the launcher, which forwards it once.
      ::setpgid(0, 0);
      // A launcher that is killed outright takes its workers along (they save a checkpoint).
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      ::sigprocmask(SIG_SETMASK, &previous, nullptr);
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("GROUP_RANK", "0", 1);
      ::setenv("WORLD_SIZE", std::to_string(options.workers).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(options.workers).c_str(), 1);
      ::setenv("MASTER_ADDR", options.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("TORCHELASTIC_RESTART_COUNT", "0", 1);
      ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      ::execv(argv[0], argv.data());
      std::fprintf(stderr, "recmodel: error: cannot start worker %d (%s): %s\n", rank, argv[0], std::strerror(errno));
      ::_exit(70);
    }
    workers[static_cast<size_t>(rank)] = pid;
  }

  std::optional<int> first_failure, signalled;
  bool killing = false;  // SIGTERM sent after a failure; SIGKILL at kill_at
  auto kill_at = std::chrono::steady_clock::now();
  int running = options.workers;
  while (running > 0) {
    timespec tick{0, 100 * 1000 * 1000};
    const int signal = ::sigtimedwait(&watched, nullptr, &tick);
    if (signal == SIGINT || signal == SIGTERM || signal == SIGHUP) {
      if (!signalled) signalled = signal;
      stop_all(signal);  // a second Ctrl-C is forwarded too: the workers then stop at once
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (size_t rank = 0; rank < workers.size(); ++rank) {
        if (workers[rank] != pid) continue;
        workers[rank] = -1;
        --running;
        if (exit_code_of_status(status) != 0 && !first_failure) {
          first_failure = exit_code_of_status(status);
          if (!signalled) {
            log(fmt::format("worker {} (rank {}) {}; stopping the other {}", pid, rank, describe(status), running));
            stop_all(SIGTERM);
            killing = true;
            kill_at = std::chrono::steady_clock::now() + options.grace;
          }
        }
      }
    }
    if (killing && std::chrono::steady_clock::now() > kill_at) {
      log(fmt::format("{} worker(s) still running {} s after SIGTERM; killing them", running,
                      std::chrono::duration_cast<std::chrono::seconds>(options.grace).count()));
      stop_all(SIGKILL);
      killing = false;
    }
  }
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  return first_failure.value_or(0);
}

}  // namespace recmodel::distributed
