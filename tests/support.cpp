#include "tests/support.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace recmodel::testing {

TempDir::TempDir() {
  std::random_device device;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path candidate = fs::temp_directory_path() / ("recmodel-test-" + std::to_string(device()));
    if (fs::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temp directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_text(const fs::path& path, const std::string& contents) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string random_bytes(size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

fs::path shared_data(const std::string& relative) {
  fs::path path = fs::path(RECMODEL_SHARED_DATA) / relative;
  return fs::exists(path) ? path : fs::path();
}

std::string recmodel_binary() {
#ifdef RECMODEL_BINARY
  return RECMODEL_BINARY;
#else
  const char* from_env = std::getenv("RECMODEL");
  return from_env ? from_env : "recmodel";
#endif
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "CI=", 3) != 0) env.emplace_back(*e);
  }
  env.emplace_back("CI=1");
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

namespace {

// Runs argv_storage[0] with the rest as arguments; see run_recmodel.
RunResult spawn_and_collect(std::vector<std::string> argv_storage, const std::string& stdin_text,
                            const std::vector<std::string>& env) {
  const std::string binary = argv_storage.front();
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe failed");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
    posix_spawn_file_actions_addclose(&actions, fd);

  std::signal(SIGPIPE, SIG_IGN);  // a child that exits early must not kill the test
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage = child_environment(env);
  std::vector<char*> envp;
  for (auto& var : env_storage) envp.push_back(var.data());
  envp.push_back(nullptr);

  pid_t pid;
  int spawn_error = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawn_error) throw std::runtime_error("cannot run " + binary + ": " + std::strerror(spawn_error));

  // Feed stdin and drain both outputs together so no pipe fills up and blocks the child.
  RunResult result;
  size_t fed = 0;
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  if (stdin_text.empty()) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  bool out_open = true, err_open = true;
  char buffer[65536];
  while (out_open || err_open) {
    pollfd fds[3] = {{out_open ? out_pipe[0] : -1, POLLIN, 0},
                     {err_open ? err_pipe[0] : -1, POLLIN, 0},
                     {in_pipe[1], POLLOUT, 0}};
    if (poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t n = write(in_pipe[1], stdin_text.data() + fed, stdin_text.size() - fed);
      if (n > 0) fed += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN) fed = stdin_text.size();
      if (fed >= stdin_text.size()) {
        close(in_pipe[1]);
        in_pipe[1] = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
      }
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace

RunResult run_recmodel(const std::vector<std::string>& args, const std::string& stdin_text,
                       const std::vector<std::string>& env) {
  std::vector<std::string> argv{recmodel_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_and_collect(std::move(argv), stdin_text, env);
}

RunResult run_recmodel_limited(const std::vector<std::string>& args, const std::string& stdin_text,
                               const std::vector<std::string>& env) {
  // sh sets the limit and execs recmodel, so a signal still shows as 128 + signo.
  std::vector<std::string> argv{"/bin/sh", "-c",
                                "ulimit -v " + std::to_string(kHostileMemoryLimitKiB) + " && exec \"$0\" \"$@\"",
                                recmodel_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_and_collect(std::move(argv), stdin_text, env);
}

int error_line_count(const std::string& err) {
  int count = 0;
  for (size_t at = err.find("recmodel: error:"); at != std::string::npos; at = err.find("recmodel: error:", at + 1))
    ++count;
  return count;
}

}  // namespace recmodel::testing
