// serve's access log: one line per request in the documented format, serve's own messages in
// order with them, flush() and the destructor write everything, client-chosen text cannot
// drive the terminal, and a stalled stderr drops lines and says how many.
#include "serving/access_log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using recmodel::serving::AccessLog;
using recmodel::serving::AccessRecord;
using namespace std::chrono_literals;

// Returns what was written to `file` so far.
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::string text;
  std::rewind(file);
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  std::fseek(file, 0, SEEK_END);
  return text;
}

AccessRecord predict_record(int status = 200, std::chrono::microseconds duration = 3200us) {
  AccessRecord r;
  r.remote = "127.0.0.1";
  r.method = "POST";
  r.path = "/predict";
  r.status = status;
  r.version = "intent/7";
  r.tokens = 14;
  r.duration = duration;
  return r;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("access log: a request's line has the documented format") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file);
  {
    AccessLog log(file);
    log.record(predict_record());
    AccessRecord health;
    health.remote = "::1";
    health.method = "GET";
    health.path = "/health";
    health.status = 503;
    health.duration = 40us;
    log.record(health);
    log.record(predict_record(429, 1234567us));
    log.flush();
    CHECK(contents(file) ==
          "serve: 127.0.0.1 POST /predict 200 intent/7 tokens=14 3.2ms\n"
          "serve: ::1 GET /health 503 - tokens=0 0.0ms\n"
          "serve: 127.0.0.1 POST /predict 429 intent/7 tokens=14 1234.6ms\n");
  }
  std::fclose(file);
}

TEST_CASE("access log: control characters in the client's method and path are written as ?") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file);
  {
    AccessLog log(file);
    AccessRecord r = predict_record(404);
    r.method = "G\x1b[2JT";
    r.path = "/a\x1b]0;owned\x07\x7f";
    r.version.clear();
    log.record(r);
    AccessRecord long_path = predict_record(404);
    long_path.path = "/" + std::string(1000, 'x');
    log.record(long_path);
  }
  auto lines = split_lines(contents(file));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "serve: 127.0.0.1 G?[2JT /a?]0;owned?? 404 - tokens=14 3.2ms");
  CHECK(lines[1] == "serve: 127.0.0.1 POST /" + std::string(255, 'x') + "... 404 intent/7 tokens=14 3.2ms");
  std::fclose(file);
}

TEST_CASE("access log: messages and request lines from many threads keep each thread's order") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file);
  {
    AccessLog log(file);
    log.message("serve: intent: serving version 8 (was 7)");
    log.record(predict_record());
    log.message("recmodel: error: intent/9 failed to load: bad checksum\n");  // a newline is not doubled
    log.record(predict_record(413));
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&log, i] {
        for (int k = 0; k < 1000; ++k) {
          AccessRecord r = predict_record();
          r.tokens = static_cast<size_t>(k);
          r.remote = "10.0.0." + std::to_string(i);
          if (k % 100 == 0)
            log.message("serve: thread " + std::to_string(i) + " at " + std::to_string(k));
          else
            log.record(r);
        }
      });
    for (auto& thread : threads) thread.join();
  }  // the destructor drains
  auto lines = split_lines(contents(file));
  REQUIRE(lines.size() == 4 + 4000);
  CHECK(lines[0] == "serve: intent: serving version 8 (was 7)");
  CHECK(lines[1] == "serve: 127.0.0.1 POST /predict 200 intent/7 tokens=14 3.2ms");
  CHECK(lines[2] == "recmodel: error: intent/9 failed to load: bad checksum");
  CHECK(lines[3] == "serve: 127.0.0.1 POST /predict 413 intent/7 tokens=14 3.2ms");
  std::vector<int> next(4, 0);
  for (size_t n = 4; n < lines.size(); ++n) {
    int thread = -1, k = -1;
    if (std::sscanf(lines[n].c_str(), "serve: thread %d at %d", &thread, &k) != 2) {
      REQUIRE(std::sscanf(lines[n].c_str(), "serve: 10.0.0.%d POST /predict 200 intent/7 tokens=%d 3.2ms", &thread,
                          &k) == 2);
    }
    REQUIRE(thread >= 0);
    REQUIRE(thread < 4);
    CHECK(k == next[thread]);
    next[thread] = k + 1;
  }
  CHECK(next == std::vector<int>{1000, 1000, 1000, 1000});
  std::fclose(file);
}

TEST_CASE("access log: flush() returns once every queued line is written") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file);
  AccessLog log(file);
  for (int round = 1; round <= 3; ++round) {
    for (int k = 0; k < 500; ++k) log.record(predict_record());
    log.message("serve: round " + std::to_string(round));
    log.flush();
    auto lines = split_lines(contents(file));
    REQUIRE(lines.size() == static_cast<size_t>(round) * 501);
    CHECK(lines.back() == "serve: round " + std::to_string(round));
  }
  log.flush();  // nothing queued: returns at once
  std::fclose(file);
}

TEST_CASE("access log: a stalled stderr drops request lines, counts them once, and never drops messages") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::FILE* out = ::fdopen(fds[1], "w");
  REQUIRE(out);
  std::string read_back;
  {
    AccessLog log(out);
    log.message("serve: first");
    // Nobody reads: the writer blocks on a full pipe, the queue fills, then lines are dropped.
    for (int k = 0; k < 200000; ++k) log.record(predict_record());
    std::atomic<bool> stop{false};
    std::thread reader([&] {
      char buffer[65536];
      for (;;) {
        ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n > 0)
          read_back.append(buffer, static_cast<size_t>(n));
        else if (stop)
          break;
        else
          std::this_thread::sleep_for(1ms);
      }
    });
    log.message("serve: last");
    log.flush();
    stop = true;
    reader.join();
  }
  std::fclose(out);
  char buffer[65536];
  ssize_t n;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) read_back.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);

  auto lines = split_lines(read_back);
  REQUIRE(lines.size() >= 3);
  CHECK(lines.front() == "serve: first");
  CHECK(lines.back() == "serve: last");
  size_t requests = 0, notices = 0, dropped = 0;
  for (const auto& line : lines) {
    unsigned long count = 0;
    if (line == "serve: 127.0.0.1 POST /predict 200 intent/7 tokens=14 3.2ms") {
      ++requests;
    } else if (std::sscanf(line.c_str(), "serve: %lu access-log lines dropped", &count) == 1) {
      ++notices;
      dropped += count;
    }
  }
  CHECK(notices >= 1);
  CHECK(requests + dropped == 200000);
  CHECK(requests < 200000);
  // At most one notice per drained queue, and never more lines kept than the queue and a batch hold.
  CHECK(notices <= 3);
  CHECK(requests <= 2 * 65536 + 2000);
}
