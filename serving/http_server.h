// The HTTP/1.1 server of `recmodel serve`, on Boost.Beast: keep-alive connections on a few I/O
// threads, a body limit answered with 413 before the body is read, `Expect: 100-continue`,
// timeouts that a slow client cannot stretch (slowloris), and a drain that stops accepting,
// lets busy requests finish and closes idle connections. It knows nothing of models: each
// request goes to the handler, which answers through its Responder from any thread, once.
// Boost stays inside http_server.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace recmodel::serving {

struct HttpRequest {
  std::string method;                                    // "GET", "POST", ...
  std::string target;                                    // path and query as sent: /v2/models/intent/infer
  std::string path;                                      // target without the query
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in arrival order
  std::string remote;                                    // peer address, for the access log
  std::chrono::steady_clock::time_point received;        // when the whole request had been read

  // Returns the first header named `name` (lower case), or "" when absent.
  const std::string& header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // added as given
};

// Answers one request. Copyable and cheap; send() may be called from any thread, exactly once
// (later calls are ignored). When the connection is already gone the response is dropped.
// When the last copy is destroyed without send(), the request is answered 500 `internal` (so a
// lost request never leaves its client waiting); a handler that throws is answered 500 with
// the exception's message. A Responder that outlives the server sends nothing.
class Responder {
 public:
  struct Target;
  explicit Responder(std::shared_ptr<Target> target) : target_(std::move(target)) {}
  void send(HttpResponse response) const;

 private:
  std::shared_ptr<Target> target_;
};

using Handler = std::function<void(HttpRequest request, Responder responder)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                   // 0: a free port (port() tells which)
  size_t io_threads = 1;
  size_t body_limit = 2000000;            // bytes; more is answered 413 (and the connection closed)
  size_t header_limit = 16 * 1024;        // bytes; more is answered 431
  // Deadlines, not inactivity timers: a client trickling bytes cannot stretch them. The first
  // request of a connection must be read within request_timeout of the connect; a later one
  // must start within idle_timeout of the previous response and be read within request_timeout
  // of its first byte. A read past its deadline closes the connection without an answer. No
  // deadline while the handler works.
  std::chrono::milliseconds request_timeout{30000};  // to read one request, headers and body
  std::chrono::milliseconds idle_timeout{60000};     // between requests on a kept-alive connection
  std::chrono::milliseconds write_timeout{30000};    // to write one response
  std::string server_header;              // the Server header, e.g. "recmodel/0.1.0"
};

// Called once per finished exchange, for the access log and metrics: the request's method and
// path, the status sent, bytes, and the time from `received` to the response being written
// (for the server's own 413/431/400, from the request's first byte). method and path are empty
// when the request line could not be parsed (431, 400).
struct ExchangeRecord {
  std::string method;
  std::string path;
  int status = 0;
  std::string remote;
  std::chrono::microseconds duration{0};
  // The response's extra headers (HttpResponse::headers) as sent: the access log reads the
  // model version and token count the handler put there.
  std::vector<std::pair<std::string, std::string>> response_headers;
  size_t request_bytes = 0;   // the request body
  size_t response_bytes = 0;  // the response body
};

class HttpServer {
 public:
  // Binds and listens (throws RemoteError naming host:port when it cannot: in use, bad address),
  // but does not accept until start().
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Returns the bound port (the free one chosen for port 0).
  uint16_t port() const;
  // Starts the I/O threads and accepting.
  void start();
  // Requests the server answered on its own (413, 431, 400 for unparsable HTTP) and every
  // handler response are reported here when set (before start()).
  void on_exchange(std::function<void(const ExchangeRecord&)> callback);
  // Adds headers to the answers the server writes on its own (413, 431, 400), as the handler
  // adds them to its own (e.g. the model version every response names); set before start().
  void on_own_response(std::function<void(HttpResponse&)> decorate);
  // Stops accepting, closes idle connections and, from then on, answers each busy connection's
  // response with `Connection: close`. Returns at once; wait with active_connections().
  void drain();
  // Returns the connections still open.
  size_t active_connections() const;
  // Closes everything and joins the I/O threads. Idempotent; the destructor calls it. Not from
  // a handler (it joins the thread it would run on).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Returns the body of every error answer: {"error": "...", "error_type": "..."} (the server's own
// 413/431/400 and every route's).
std::string error_body(const std::string& type, const std::string& message);

// Returns the reason phrase of an HTTP status ("Too Many Requests").
std::string status_reason(int status);

}  // namespace recmodel::serving
