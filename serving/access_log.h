// One line per request on stderr, written by a thread of its own so an I/O thread never blocks
// on the terminal or a full pipe:
//   serve: 127.0.0.1 POST /predict 200 intent/7 tokens=14 3.2ms
// (method, path, status, the model version that answered or "-", the input tokens, the time
// from the request's arrival to its answer; control characters in the client's method and path
// are written as '?', a path over 256 bytes is cut). Lines are dropped only when stderr cannot
// keep up with 65,536 queued lines, and then counted in one line
// ("serve: N access-log lines dropped") once the queue has drained. message() lines are never
// dropped (they wait for room).
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace recmodel::serving {

struct AccessRecord {
  std::string remote;
  std::string method;
  std::string path;
  int status = 0;
  std::string version;  // "intent/7", empty when no model answered
  size_t tokens = 0;
  std::chrono::microseconds duration{0};
};

class AccessLog {
 public:
  explicit AccessLog(std::FILE* out = stderr);
  // Writes what is queued.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void record(AccessRecord record);
  // Writes a line of serve's own (model swaps, load failures) in order with the access lines.
  void message(std::string line);
  // Writes what is queued now and waits until it is written.
  void flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recmodel::serving
