#include "tests/cli/serve_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cerrno>
#include <cstring>
#include <regex>
#include <stdexcept>

#include "tests/support.h"

namespace recmodel::testing {

namespace {

// Returns the port of a complete `listening on http://127.0.0.1:PORT` line in `out`, else 0.
int listening_port(const std::string& out) {
  static const std::regex line("(^|\n)listening on http://127\\.0\\.0\\.1:([0-9]+)\n");
  std::smatch match;
  if (!std::regex_search(out, match, line)) return 0;
  return std::stoi(match[2].str());
}

}  // namespace

ServeProcess::ServeProcess(std::vector<std::string> args, std::chrono::milliseconds startup_timeout) {
  args.insert(args.end(), {"--port", "0"});
  start(std::move(args));

  std::unique_lock<std::mutex> lock(mutex_);
  bool ready = changed_.wait_for(lock, startup_timeout, [this] {
    port_ = listening_port(out_);
    return port_ != 0 || streams_closed_;
  });
  if (port_ != 0) return;
  std::string why = ready ? "exited before listening" : "did not print 'listening on' in time";
  std::string err = err_, out_text = out_;
  lock.unlock();
  kill_and_reap();
  throw std::runtime_error("recmodel serve " + why + "; stdout: " + out_text + "; stderr: " + err);
}

ServeProcess::Exit ServeProcess::run_to_exit(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  ServeProcess process;
  process.start(std::move(args));
  Exit result;
  result.exit_code = process.wait(timeout);
  if (result.exit_code == -1) process.kill_and_reap();
  result.out = process.stdout_text();
  result.err = process.stderr_text();
  return result;
}

void ServeProcess::start(std::vector<std::string> args) {
  std::vector<std::string> argv_storage{recmodel_binary(), "serve"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);

  std::signal(SIGPIPE, SIG_IGN);
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = child_environment();
  std::vector<char*> envp;
  for (auto& var : env_storage) envp.push_back(var.data());
  envp.push_back(nullptr);

  int spawn_error = posix_spawn(&pid_, argv_storage[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawn_error) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    throw std::runtime_error("cannot run " + argv_storage[0] + ": " + std::strerror(spawn_error));
  }
  reader_ = std::thread([this, out = out_pipe[0], err = err_pipe[0]] { collect(out, err); });
}

ServeProcess::~ServeProcess() { kill_and_reap(); }

void ServeProcess::kill_and_reap() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
  }
  if (reader_.joinable()) reader_.join();
}

void ServeProcess::collect(int out_fd, int err_fd) {
  bool out_open = true, err_open = true;
  char buffer[65536];
  while (out_open || err_open) {
    pollfd fds[2] = {{out_open ? out_fd : -1, POLLIN, 0}, {err_open ? err_fd : -1, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      std::lock_guard<std::mutex> lock(mutex_);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? out_ : err_).append(buffer, static_cast<size_t>(n));
      }
      changed_.notify_all();
    }
  }
  close(out_fd);
  close(err_fd);
  std::lock_guard<std::mutex> lock(mutex_);
  streams_closed_ = true;
  changed_.notify_all();
}

std::string ServeProcess::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void ServeProcess::signal(int signo) {
  if (!exited_ && pid_ > 0) kill(pid_, signo);
}

bool ServeProcess::running() {
  if (exited_ || pid_ <= 0) return false;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done != pid_) return true;
  exited_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

int ServeProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (reader_.joinable()) reader_.join();  // the pipes close with the process
  return exit_code_;
}

std::string ServeProcess::stderr_text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return err_;
}

std::string ServeProcess::stdout_text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return out_;
}

bool ServeProcess::wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout,
                           [&] { return err_.find(needle) != std::string::npos || streams_closed_; }) &&
         err_.find(needle) != std::string::npos;
}

namespace {

struct Transfer {
  HttpReply* reply;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<Transfer*>(user)->reply->body.append(data, size * count);
  return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  HttpReply& reply = *static_cast<Transfer*>(user)->reply;
  std::string line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line: what came before belonged to an interim (1xx) answer.
    reply.headers.clear();
    size_t space = line.find(' ');
    if (space != std::string::npos) {
      long status = std::strtol(line.c_str() + space + 1, nullptr, 10);
      if (status >= 100 && status < 200) reply.interim.push_back(status);
    }
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * count;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  size_t start = line.find_first_not_of(' ', colon + 1);
  reply.headers[name] = start == std::string::npos ? "" : line.substr(start);
  return size * count;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

HttpClient::HttpClient() {
  static CurlGlobal global;
  curl_ = curl_easy_init();
  if (!curl_) throw std::runtime_error("curl_easy_init failed");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpReply HttpClient::request(const std::string& method, const std::string& url, const std::string& body,
                              const std::vector<std::string>& headers, long timeout_seconds) {
  CURL* curl = static_cast<CURL*>(curl_);
  HttpReply reply;
  Transfer transfer{&reply};
  curl_easy_reset(curl);  // keeps the connection cache
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    if (method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
    } else {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  }
  curl_slist* list = nullptr;
  bool has_type = false;
  for (const auto& header : headers) {
    list = curl_slist_append(list, header.c_str());
    std::string lower = header;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.rfind("content-type:", 0) == 0) has_type = true;
  }
  if (!has_type && !body.empty()) list = curl_slist_append(list, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(list);
  double seconds = 0;
  curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &seconds);
  reply.seconds = seconds;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &reply.new_connections);
  if (code != CURLE_OK) {
    reply.status = 0;
    reply.error = curl_easy_strerror(code);
    return reply;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

HttpReply http_request(const std::string& method, const std::string& url, const std::string& body,
                       const std::vector<std::string>& headers, long timeout_seconds) {
  HttpClient client;
  return client.request(method, url, body, headers, timeout_seconds);
}

}  // namespace recmodel::testing
