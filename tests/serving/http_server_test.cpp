// HttpServer over real sockets on 127.0.0.1: round trips, keep-alive, limits answered before
// the body is read, Expect: 100-continue, timeouts a slow client cannot stretch, drain, and
// the answers the server gives on its own when a handler fails. Raw POSIX sockets where the
// exact bytes on the wire matter; curl where a real client's behaviour does.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>

#include "common/error.h"
#include "serving/http_server.h"

namespace sv = recmodel::serving;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int try_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Reply {
  int status = 0;
  std::string status_line;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::string header(const std::string& name) const {
    auto found = headers.find(name);
    return found == headers.end() ? "" : found->second;
  }
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A client connection with its own receive buffer (so pipelined replies are not lost).
class Conn {
 public:
  explicit Conn(uint16_t port) : fd_(try_connect(port)) { REQUIRE(fd_ >= 0); }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends everything; false when the server has closed (EPIPE, reset).
  bool send(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until `pending` holds `needle` or the deadline passes or the peer closes.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (pending_.find(needle) == std::string::npos) {
      if (!fill(deadline)) return false;
    }
    return true;
  }

  bool read_bytes(size_t count, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (pending_.size() < count) {
      if (!fill(deadline)) return false;
    }
    return true;
  }

  // Reads one response (Content-Length bodies only, as the server sends); nullopt on timeout
  // or when the connection closed first.
  std::optional<Reply> read_reply(bool head_request = false, std::chrono::milliseconds timeout = 2000ms) {
    if (!read_until("\r\n\r\n", timeout)) return std::nullopt;
    size_t end = pending_.find("\r\n\r\n");
    std::string head = pending_.substr(0, end);
    pending_.erase(0, end + 4);
    Reply reply;
    size_t line_end = head.find("\r\n");
    reply.status_line = head.substr(0, line_end);
    if (reply.status_line.size() >= 12) reply.status = std::stoi(reply.status_line.substr(9, 3));
    size_t at = line_end == std::string::npos ? head.size() : line_end + 2;
    while (at < head.size()) {
      size_t next = head.find("\r\n", at);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(at, next - at);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        reply.headers[lower(line.substr(0, colon))] = value;
      }
      at = next + 2;
    }
    size_t length = reply.headers.count("content-length") ? std::stoul(reply.headers["content-length"]) : 0;
    if (head_request) length = 0;
    if (!read_bytes(length, timeout)) return std::nullopt;
    reply.body = pending_.substr(0, length);
    pending_.erase(0, length);
    return reply;
  }

  // True when the server closes the connection (EOF or reset) within `timeout`; discards data.
  bool closed_within(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      pending_.clear();
      if (!fill(deadline)) return eof_;
    }
  }

  // Reads what is there without waiting long; true when the peer has closed.
  bool poll_closed(std::chrono::milliseconds wait) {
    fill(Clock::now() + wait);
    return eof_;
  }

  std::string& pending() { return pending_; }
  int fd() const { return fd_; }

 private:
  // Waits for bytes until `deadline`; false on timeout or close (eof_ tells which).
  bool fill(Clock::time_point deadline) {
    if (eof_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) left = 0;
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready <= 0) return false;
    char buffer[65536];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    pending_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
  bool eof_ = false;
};

sv::HttpServerOptions local_options() {
  sv::HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.request_timeout = 2000ms;
  options.idle_timeout = 2000ms;
  options.write_timeout = 2000ms;
  return options;
}

sv::HttpResponse ok(std::string body) {
  sv::HttpResponse response;
  response.body = std::move(body);
  return response;
}

// An echo handler: answers the body, or the path when there is none.
void echo(sv::HttpRequest request, sv::Responder responder) {
  responder.send(ok(request.body.empty() ? request.path : request.body));
}

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 1000ms) {
  auto deadline = Clock::now() + timeout;
  while (!predicate()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

size_t collect_body(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

TEST_CASE("http_server: port 0 binds a free port and a POST round trip carries body and headers both ways") {
  std::mutex mutex;
  std::optional<sv::HttpRequest> seen;
  std::vector<sv::ExchangeRecord> records;
  auto options = local_options();
  options.server_header = "recmodel/test";
  sv::HttpServer server(options, [&](sv::HttpRequest request, sv::Responder responder) {
    sv::HttpResponse response = ok("got:" + request.body);
    response.headers = {{"x-model-version", "intent/7"}, {"X-Total-Time", "3"}};
    {
      std::lock_guard<std::mutex> lock(mutex);
      seen = std::move(request);
    }
    responder.send(std::move(response));
  });
  server.on_exchange([&](const sv::ExchangeRecord& record) {
    std::lock_guard<std::mutex> lock(mutex);
    records.push_back(record);
  });
  REQUIRE(server.port() != 0);
  server.start();

  auto before = Clock::now();
  Conn conn(server.port());
  REQUIRE(conn.send("POST /echo?x=1 HTTP/1.1\r\nHost: here\r\nX-Custom-Header: Abc\r\n"
                    "Content-Length: 5\r\n\r\nhello"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status_line == "HTTP/1.1 200 OK");
  CHECK(reply->body == "got:hello");
  CHECK(reply->header("content-type") == "application/json");
  CHECK(reply->header("content-length") == "9");
  CHECK(reply->header("server") == "recmodel/test");
  CHECK(reply->header("x-model-version") == "intent/7");
  CHECK(reply->header("x-total-time") == "3");
  CHECK(reply->header("connection") != "close");

  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(seen);
  CHECK(seen->method == "POST");
  CHECK(seen->target == "/echo?x=1");
  CHECK(seen->path == "/echo");
  CHECK(seen->body == "hello");
  CHECK(seen->header("x-custom-header") == "Abc");
  CHECK(seen->header("host") == "here");
  CHECK(seen->header("X-Custom-Header") == "");  // names are lower-cased
  CHECK(seen->remote == "127.0.0.1");
  CHECK(seen->received >= before);
  CHECK(seen->received <= Clock::now());
}

TEST_CASE("http_server: on_exchange reports each answered request with its status") {
  std::mutex mutex;
  std::vector<sv::ExchangeRecord> records;
  auto options = local_options();
  options.body_limit = 10;
  sv::HttpServer server(options, [](sv::HttpRequest request, sv::Responder responder) {
    sv::HttpResponse response = ok("answer:" + request.body);
    response.headers = {{"x-model-version", "intent/7"}};
    responder.send(std::move(response));
  });
  server.on_exchange([&](const sv::ExchangeRecord& record) {
    std::lock_guard<std::mutex> lock(mutex);
    records.push_back(record);
  });
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("POST /a?q HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"));
  REQUIRE(conn.read_reply());
  REQUIRE(conn.send("POST /b HTTP/1.1\r\nContent-Length: 11\r\n\r\n"));
  auto refused = conn.read_reply();
  REQUIRE(refused);
  CHECK(refused->status == 413);
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> lock(mutex);
    return records.size() == 2;
  }));
  std::lock_guard<std::mutex> lock(mutex);
  CHECK(records[0].method == "POST");
  CHECK(records[0].path == "/a");
  CHECK(records[0].status == 200);
  CHECK(records[0].remote == "127.0.0.1");
  CHECK(records[0].duration.count() >= 0);
  CHECK(records[0].duration < std::chrono::microseconds(1000000));
  CHECK(records[0].request_bytes == 4);
  CHECK(records[0].response_bytes == 11);
  REQUIRE(records[0].response_headers.size() == 1);
  CHECK(records[0].response_headers[0].first == "x-model-version");
  CHECK(records[0].response_headers[0].second == "intent/7");
  CHECK(records[1].method == "POST");
  CHECK(records[1].path == "/b");
  CHECK(records[1].status == 413);
  CHECK(records[1].request_bytes == 0);
  CHECK(records[1].response_headers.empty());
}

TEST_CASE("http_server: curl's GET and its Expect: 100-continue POST are answered on one reused connection without a stall") {
  sv::HttpServer server(local_options(), [](sv::HttpRequest request, sv::Responder responder) {
    responder.send(ok(request.method + " " + std::to_string(request.body.size()) + " " + request.header("expect")));
  });
  server.start();
  CURL* curl = curl_easy_init();
  REQUIRE(curl);
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/x";
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  REQUIRE(curl_easy_perform(curl) == CURLE_OK);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  CHECK(code == 200);
  CHECK(body == "GET 0 ");

  std::string payload(100000, 'p');
  curl_slist* headers = curl_slist_append(nullptr, "Expect: 100-continue");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  body.clear();
  auto start = Clock::now();
  REQUIRE(curl_easy_perform(curl) == CURLE_OK);
  auto took = ms_since(start);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  long new_connections = -1;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &new_connections);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  CHECK(code == 200);
  CHECK(body == "POST 100000 100-continue");
  CHECK(took < 800);  // curl waits 1 s for a 100 Continue that does not come
  CHECK(new_connections == 0);  // the kept-alive connection was reused
}

TEST_CASE("http_server: twenty requests on one kept-alive connection are all answered, pipelined ones too") {
  sv::HttpServer server(local_options(), echo);
  server.start();
  Conn conn(server.port());
  for (int i = 0; i < 20; ++i) {
    std::string path = "/n/" + std::to_string(i);
    REQUIRE(conn.send("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n"));
    auto reply = conn.read_reply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == path);
  }
  REQUIRE(conn.send("GET /p1 HTTP/1.1\r\n\r\nPOST /p2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /p3 HTTP/1.1\r\n\r\n"));
  for (std::string expected : {"/p1", "abc", "/p3"}) {
    auto reply = conn.read_reply();
    REQUIRE(reply);
    CHECK(reply->body == expected);
  }
  CHECK(server.active_connections() == 1);
}

TEST_CASE("http_server: HTTP/1.0 keeps the connection only when the request asks for keep-alive") {
  sv::HttpServer server(local_options(), echo);
  server.start();
  Conn conn(server.port());
  for (int i = 0; i < 2; ++i) {
    REQUIRE(conn.send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto reply = conn.read_reply();
    REQUIRE(reply);
    CHECK(reply->status_line == "HTTP/1.0 200 OK");
    CHECK(lower(reply->header("connection")) == "keep-alive");
  }
  REQUIRE(conn.send("GET /last HTTP/1.0\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->body == "/last");
  CHECK(conn.closed_within(1000ms));
}

TEST_CASE("http_server: HEAD is answered with GET's headers and no body") {
  sv::HttpServer server(local_options(), [](sv::HttpRequest request, sv::Responder responder) {
    responder.send(ok("hello"));
  });
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("HEAD / HTTP/1.1\r\n\r\n"));
  auto reply = conn.read_reply(/*head_request=*/true);
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->header("content-length") == "5");
  REQUIRE(conn.send("GET / HTTP/1.1\r\n\r\n"));
  auto next = conn.read_reply();  // would misparse if the HEAD answer had carried a body
  REQUIRE(next);
  CHECK(next->status_line == "HTTP/1.1 200 OK");
  CHECK(next->body == "hello");
}

TEST_CASE("http_server: a 204 carries no body and no Content-Length, and the connection goes on") {
  sv::HttpServer server(local_options(), [](sv::HttpRequest request, sv::Responder responder) {
    sv::HttpResponse response = ok(request.path == "/none" ? "ignored" : "after");
    if (request.path == "/none") response.status = 204;
    responder.send(std::move(response));
  });
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("GET /none HTTP/1.1\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status_line == "HTTP/1.1 204 No Content");
  CHECK(reply->headers.count("content-length") == 0);
  REQUIRE(conn.send("GET /next HTTP/1.1\r\n\r\n"));
  auto next = conn.read_reply();
  REQUIRE(next);
  CHECK(next->status_line == "HTTP/1.1 200 OK");
  CHECK(next->body == "after");
}

TEST_CASE("http_server: a responder answering later from another thread does not hold up the I/O thread") {
  std::mutex mutex;
  std::vector<std::thread> workers;
  auto options = local_options();
  options.io_threads = 1;
  {
    sv::HttpServer server(options, [&](sv::HttpRequest request, sv::Responder responder) {
      std::lock_guard<std::mutex> lock(mutex);
      workers.emplace_back([responder, path = request.path] {
        std::this_thread::sleep_for(300ms);
        responder.send(ok(path));
      });
    });
    server.start();
    Conn first(server.port()), second(server.port());
    auto start = Clock::now();
    REQUIRE(first.send("GET /one HTTP/1.1\r\n\r\n"));
    REQUIRE(second.send("GET /two HTTP/1.1\r\n\r\n"));
    auto a = first.read_reply();
    auto b = second.read_reply();
    auto took = ms_since(start);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->body == "/one");
    CHECK(b->body == "/two");
    CHECK(took >= 290);
    CHECK(took < 550);  // both waited at the same time, not one after the other
  }
  for (auto& worker : workers) worker.join();
}

TEST_CASE("http_server: a second Responder::send is ignored and the connection goes on to the next request") {
  sv::HttpServer server(local_options(), [](sv::HttpRequest request, sv::Responder responder) {
    responder.send(ok("first" + request.path));
    responder.send(ok("second" + request.path));
  });
  server.start();
  Conn conn(server.port());
  for (std::string path : {"/a", "/b"}) {
    REQUIRE(conn.send("GET " + path + " HTTP/1.1\r\n\r\n"));
    auto reply = conn.read_reply();
    REQUIRE(reply);
    CHECK(reply->body == "first" + path);
  }
  CHECK_FALSE(conn.read_until("HTTP/1.1", 100ms));  // no stray second answer
}

TEST_CASE("http_server: a Content-Length over the body limit is answered 413 and the body never reaches the handler") {
  std::atomic<int> calls{0};
  auto options = local_options();
  options.body_limit = 1000;
  sv::HttpServer server(options, [&](sv::HttpRequest request, sv::Responder responder) {
    ++calls;
    echo(std::move(request), responder);
  });
  server.start();
  Conn conn(server.port());
  // The whole body is sent at once: the server's close must not reset the 413 away.
  REQUIRE(conn.send("POST /p HTTP/1.1\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'b')));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status_line == "HTTP/1.1 413 Payload Too Large");
  CHECK(reply->body == R"({"error":"payload of 2000 bytes is over the limit of 1000 bytes","error_type":"payload_too_large"})");
  CHECK(reply->header("connection") == "close");
  CHECK(conn.closed_within(1500ms));
  CHECK(calls == 0);
}

TEST_CASE("http_server: Expect: 100-continue over the body limit gets 413 and no 100 Continue") {
  auto options = local_options();
  options.body_limit = 1000;
  sv::HttpServer server(options, echo);
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("POST /p HTTP/1.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status == 413);
  CHECK(reply->body.find("payload_too_large") != std::string::npos);
  CHECK(conn.closed_within(1500ms));
}

TEST_CASE("http_server: Expect: 100-continue under the limit gets 100 Continue before the body is sent, then 200") {
  sv::HttpServer server(local_options(), echo);
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("POST /p HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  REQUIRE(conn.read_until("\r\n\r\n", 1000ms));
  CHECK(conn.pending() == "HTTP/1.1 100 Continue\r\n\r\n");
  conn.pending().clear();
  REQUIRE(conn.send("hello"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->body == "hello");
}

TEST_CASE("http_server: a chunked body is read, and one over the body limit is answered 413") {
  auto options = local_options();
  options.body_limit = 100;
  sv::HttpServer server(options, echo);
  server.start();
  {
    Conn conn(server.port());
    REQUIRE(conn.send("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
    auto reply = conn.read_reply();
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == "abcde");
  }
  Conn conn(server.port());
  REQUIRE(conn.send("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n60\r\n" + std::string(96, 'x') +
                    "\r\n10\r\n" + std::string(16, 'y') + "\r\n0\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status == 413);
  CHECK(reply->body == R"({"error":"chunked payload is over the limit of 100 bytes","error_type":"payload_too_large"})");
  CHECK(conn.closed_within(1500ms));
}

TEST_CASE("http_server: a header over the header limit is answered 431 and the connection closed") {
  auto options = local_options();
  options.header_limit = 1024;
  sv::HttpServer server(options, echo);
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status_line == "HTTP/1.1 431 Request Header Fields Too Large");
  CHECK(reply->body == R"({"error":"the request header is over the limit of 1024 bytes","error_type":"validation"})");
  CHECK(reply->header("connection") == "close");
  CHECK(conn.closed_within(1500ms));
}

TEST_CASE("http_server: garbage instead of HTTP is answered 400 and the connection closed") {
  std::atomic<int> calls{0};
  sv::HttpServer server(local_options(), [&](sv::HttpRequest request, sv::Responder responder) {
    ++calls;
    echo(std::move(request), responder);
  });
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("HELLO\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status == 400);
  CHECK(reply->body.rfind(R"({"error":"malformed HTTP request: )", 0) == 0);
  CHECK(reply->body.find(R"("error_type":"validation")") != std::string::npos);
  CHECK(conn.closed_within(1500ms));
  CHECK(calls == 0);
}

TEST_CASE("http_server: a slowloris client trickling its header is cut off at the request timeout") {
  std::atomic<int> calls{0};
  auto options = local_options();
  options.request_timeout = 300ms;
  sv::HttpServer server(options, [&](sv::HttpRequest request, sv::Responder responder) {
    ++calls;
    echo(std::move(request), responder);
  });
  server.start();
  Conn conn(server.port());
  auto start = Clock::now();
  REQUIRE(conn.send("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "));
  bool closed = false;
  while (!closed && ms_since(start) < 1500) {
    if (!conn.send("x")) {
      closed = true;
      break;
    }
    closed = conn.poll_closed(100ms);
  }
  auto took = ms_since(start);
  CHECK(closed);
  CHECK(took >= 250);
  CHECK(took < 1000);
  CHECK(calls == 0);
  CHECK(eventually([&] { return server.active_connections() == 0; }));
}

TEST_CASE("http_server: a connection that never sends a request is closed at the request timeout") {
  auto options = local_options();
  options.request_timeout = 300ms;
  sv::HttpServer server(options, echo);
  server.start();
  Conn conn(server.port());
  auto start = Clock::now();
  CHECK(conn.closed_within(1500ms));
  auto took = ms_since(start);
  CHECK(took >= 250);
  CHECK(took < 1000);
}

TEST_CASE("http_server: an idle kept-alive connection is closed after the idle timeout") {
  auto options = local_options();
  options.idle_timeout = 200ms;
  options.request_timeout = 5000ms;
  sv::HttpServer server(options, echo);
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("GET / HTTP/1.1\r\n\r\n"));
  REQUIRE(conn.read_reply());
  auto start = Clock::now();
  CHECK(conn.closed_within(1500ms));
  auto took = ms_since(start);
  CHECK(took >= 150);
  CHECK(took < 1000);
  CHECK(eventually([&] { return server.active_connections() == 0; }));
}

TEST_CASE("http_server: drain closes idle connections, answers busy ones with Connection: close and refuses new ones") {
  std::mutex mutex;
  std::vector<sv::Responder> parked;  // (a vector: GCC 12 misreads an optional's shared_ptr)
  std::promise<void> entered;
  sv::HttpServer server(local_options(), [&](sv::HttpRequest request, sv::Responder responder) {
    std::lock_guard<std::mutex> lock(mutex);
    parked.push_back(responder);
    entered.set_value();
  });
  server.start();
  Conn idle(server.port());
  Conn busy(server.port());
  REQUIRE(busy.send("GET /slow HTTP/1.1\r\n\r\n"));
  REQUIRE(entered.get_future().wait_for(2s) == std::future_status::ready);
  REQUIRE(eventually([&] { return server.active_connections() == 2; }));

  server.drain();
  CHECK(idle.closed_within(1000ms));
  bool refused = eventually(
      [&] {
        int fd = try_connect(server.port());
        if (fd < 0) return true;
        ::close(fd);
        return false;
      },
      1000ms);
  CHECK(refused);
  CHECK(server.active_connections() == 1);

  {
    std::lock_guard<std::mutex> lock(mutex);
    REQUIRE(parked.size() == 1);
    parked[0].send(ok("done"));
  }
  auto reply = busy.read_reply();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->body == "done");
  CHECK(reply->header("connection") == "close");
  CHECK(busy.closed_within(1000ms));
  busy.close();
  CHECK(eventually([&] { return server.active_connections() == 0; }));
}

TEST_CASE("http_server: a throwing handler is answered 500 internal and the connection stays usable") {
  sv::HttpServer server(local_options(), [](sv::HttpRequest request, sv::Responder responder) {
    throw std::runtime_error("boom \"quoted\"");
  });
  server.start();
  Conn conn(server.port());
  for (int i = 0; i < 2; ++i) {
    REQUIRE(conn.send("GET / HTTP/1.1\r\n\r\n"));
    auto reply = conn.read_reply();
    REQUIRE(reply);
    CHECK(reply->status_line == "HTTP/1.1 500 Internal Server Error");
    CHECK(reply->body == R"({"error":"boom \"quoted\"","error_type":"internal"})");
  }
}

TEST_CASE("http_server: a request whose Responder is dropped unanswered gets 500") {
  sv::HttpServer server(local_options(), [](sv::HttpRequest, sv::Responder) {});
  server.start();
  Conn conn(server.port());
  REQUIRE(conn.send("GET / HTTP/1.1\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->status == 500);
  CHECK(reply->body == R"({"error":"the server dropped the request without answering it","error_type":"internal"})");
}

TEST_CASE("http_server: a Responder kept past stop() sends nothing and the client sees the connection closed") {
  std::mutex mutex;
  std::vector<sv::Responder> parked;  // (a vector: GCC 12 misreads an optional's shared_ptr)
  {
    sv::HttpServer server(local_options(), [&](sv::HttpRequest, sv::Responder responder) {
      std::lock_guard<std::mutex> lock(mutex);
      parked.push_back(responder);
    });
    server.start();
    Conn conn(server.port());
    REQUIRE(conn.send("GET / HTTP/1.1\r\n\r\n"));
    REQUIRE(eventually([&] {
      std::lock_guard<std::mutex> lock(mutex);
      return !parked.empty();
    }));
    server.stop();
    server.stop();  // idempotent
    CHECK(server.active_connections() == 0);
    parked[0].send(ok("late"));
    CHECK(conn.closed_within(1000ms));
    CHECK(conn.pending().empty());
  }
  parked.clear();  // the last copy, after the server is gone: its 500 goes nowhere
}

TEST_CASE("http_server: binding a port in use throws RemoteError naming host and port") {
  sv::HttpServer first(local_options(), echo);
  auto options = local_options();
  options.port = first.port();
  try {
    sv::HttpServer second(options, echo);
    FAIL("the second bind succeeded");
  } catch (const recmodel::RemoteError& e) {
    std::string message = e.what();
    CHECK(message.rfind("cannot listen on 127.0.0.1:" + std::to_string(first.port()) + ": ", 0) == 0);
    CHECK(message.find("in use") != std::string::npos);
  }
}

TEST_CASE("http_server: localhost and an IPv6 literal can be bound") {
  auto options = local_options();
  options.host = "localhost";
  sv::HttpServer by_name(options, echo);
  by_name.start();
  Conn conn(by_name.port());  // IPv4 first for localhost
  REQUIRE(conn.send("GET /lh HTTP/1.1\r\n\r\n"));
  auto reply = conn.read_reply();
  REQUIRE(reply);
  CHECK(reply->body == "/lh");

  options.host = "::1";
  try {
    sv::HttpServer v6(options, echo);
    CHECK(v6.port() != 0);
  } catch (const recmodel::RemoteError& e) {
    // A machine without IPv6 loopback must still name the address in the refusal.
    CHECK(std::string(e.what()).rfind("cannot listen on [::1]:0: ", 0) == 0);
  }
}

TEST_CASE("http_server: status_reason names the statuses serve answers") {
  CHECK(sv::status_reason(200) == "OK");
  CHECK(sv::status_reason(413) == "Payload Too Large");
  CHECK(sv::status_reason(424) == "Failed Dependency");
  CHECK(sv::status_reason(429) == "Too Many Requests");
  CHECK(sv::status_reason(431) == "Request Header Fields Too Large");
  CHECK(sv::status_reason(503) == "Service Unavailable");
  CHECK(sv::status_reason(799) == "Unknown");
}
