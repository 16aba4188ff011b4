// Test helpers for `recmodel serve`: the real binary started on a free port (ServeProcess) and a
// small libcurl client that returns the status, the headers and the body of each answer.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace recmodel::testing {

// `recmodel serve ARGS... --port 0` (CI=1 set), started by the constructor, which returns once
// the process printed `listening on http://127.0.0.1:PORT` on stdout; it throws with the
// collected stderr when the process exits first or says nothing within `startup_timeout`.
// stdout and stderr are collected by a thread of its own. The destructor SIGKILLs a process
// still running.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args,
                        std::chrono::milliseconds startup_timeout = std::chrono::seconds(60));
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // "http://127.0.0.1:PORT" + path.
  std::string url(const std::string& path = "/") const;
  void signal(int signo);
  // Waits for the process to exit; returns its exit code (128 + signal for a signal), or -1 when
  // it is still running after `timeout`.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool running();
  // What the process wrote so far.
  std::string stderr_text() const;
  std::string stdout_text() const;
  // Waits until stderr holds `needle` (true) or `timeout` passed (false).
  bool wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout);

  struct Exit {
    int exit_code = -1;  // -1: still running at the deadline (then killed)
    std::string out, err;
  };
  // Runs `recmodel serve ARGS...` (no --port added) that is expected to exit on its own, e.g.
  // refused options; a process still running after `timeout` is killed and reported as -1.
  static Exit run_to_exit(std::vector<std::string> args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  ServeProcess() = default;
  void start(std::vector<std::string> argv_storage);
  void collect(int out_fd, int err_fd);
  // SIGKILLs the server if it still runs, reaps it and joins the reader.
  void kill_and_reap();

  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  bool exited_ = false;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string out_, err_;
  bool streams_closed_ = false;
  std::thread reader_;
};

struct HttpReply {
  long status = 0;                             // 0: no answer (connect refused, reset, timeout)
  std::map<std::string, std::string> headers;  // of the final answer; names lower-case
  std::vector<long> interim;                   // 1xx statuses seen before it (100 Continue)
  std::string body;
  std::string error;                           // curl's message when status is 0
  double seconds = 0;                          // the whole transfer
  long new_connections = 0;                    // CURLINFO_NUM_CONNECTS
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
};

// A libcurl easy handle kept across requests, so they share one keep-alive connection.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `headers` are raw "Name: value" lines; "Expect:" removes curl's Expect header and
  // "Expect: 100-continue" forces it. Without a Content-Type, a body is sent as
  // application/json. curl waits up to 30 s for a 100 Continue, so a server that does not
  // answer one shows as a slow request.
  HttpReply request(const std::string& method, const std::string& url, const std::string& body = "",
                    const std::vector<std::string>& headers = {}, long timeout_seconds = 60);

 private:
  void* curl_;
};

// One request on a connection of its own.
HttpReply http_request(const std::string& method, const std::string& url, const std::string& body = "",
                       const std::vector<std::string>& headers = {}, long timeout_seconds = 60);
inline HttpReply http_get(const std::string& url) { return http_request("GET", url); }
inline HttpReply http_post(const std::string& url, const std::string& body,
                           const std::vector<std::string>& headers = {}) {
  return http_request("POST", url, body, headers);
}

}  // namespace recmodel::testing
