// HttpServer on Boost.Beast 1.74. The only file of recmodel that includes Beast or Asio.
//
// Threads: `io_threads` threads run one io_context. The acceptor and every connection have their
// own strand, so a connection's reads, writes, timers and its Responder's delivery never run at
// once. One request at a time per connection: await → header → body → handler → write → await.
//
// Timeouts (beast::tcp_stream::expires_*; an expiry is a deadline, not an inactivity timer, so a
// client trickling one byte at a time cannot stretch it — slowloris):
//   - first request of a connection: connect + request_timeout covers the wait for the first
//     byte, the header and the body;
//   - later requests: idle_timeout until the first byte arrives, then request_timeout from that
//     first byte for header and body (bytes already buffered from a pipelining client count as
//     the first byte having arrived);
//   - while the handler works: no timeout (inference may queue);
//   - write_timeout to write the response (and the 100 Continue falls under the read deadline).
//   A timed-out read closes the connection without an answer (as nginx does for a slow header).
// Closing after a response (413, 431, 400, `Connection: close`, drain) shuts down our sending
// side and reads and discards what the client still sends for up to kLingerTime, so a client
// that sent its whole over-limit body still reads the 413 instead of a connection reset.
#include "serving/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json.h"

namespace recmodel::serving {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// How long a connection that is being closed after a response keeps reading (and discarding)
// what the client still sends, so its close does not reset the response away.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kFirstReadSize = 4096;
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";


HttpResponse error_response(int status, const std::string& type, const std::string& message) {
  HttpResponse response;
  response.status = status;
  response.body = error_body(type, message);
  return response;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string host_port(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// Keeps a Responder that outlives the server from posting to a destroyed io_context: stop()
// closes the gate under its mutex, and a delivery posts only while holding it open.
struct Gate {
  std::mutex mutex;
  bool open = true;
};

class Session;

// The server's state, shared by its connections (HttpServer::Impl is private to HttpServer).
struct ServerState {
  // Declared first, destroyed last: every socket, timer and strand below refers to it.
  net::io_context ioc;
  HttpServerOptions options;
  Handler handler;
  std::function<void(const ExchangeRecord&)> on_exchange;
  std::function<void(HttpResponse&)> on_own_response;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  uint16_t bound_port = 0;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::atomic<bool> draining{false};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::mutex lifecycle;  // start() and stop()
  bool started = false;
  bool stopped = false;

  // Open connections. The map owns them while their socket is open (a connection whose
  // handler is working has no pending operation to keep it alive).
  mutable std::mutex sessions_mutex;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions;

  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void forget(Session* session);
  void report(const ExchangeRecord& record) {
    if (!on_exchange) return;
    try {
      on_exchange(record);
    } catch (...) {
      // A failing access log or metric must not take the connection down.
    }
  }
};

}  // namespace

struct Responder::Target {
  Target(std::weak_ptr<Session> session, std::shared_ptr<Gate> gate)
      : session(std::move(session)), gate(std::move(gate)) {}
  // A request whose every Responder copy was dropped unanswered still gets an answer (500), so
  // its client is never left waiting for a response that cannot come.
  ~Target() {
    deliver(error_response(500, "internal", "the server dropped the request without answering it"));
  }
  void deliver(HttpResponse response);

  std::weak_ptr<Session> session;
  std::shared_ptr<Gate> gate;
  std::atomic<bool> sent{false};
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerState& server, tcp::socket socket)
      : server_(server), strand_(socket.get_executor()), stream_(std::move(socket)) {}

  const net::any_io_executor& strand() const { return strand_; }

  // On the strand, from here on.
  void start() {
    beast::error_code ec;
    auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = peer.address().to_string();
    connected_ = Clock::now();
    await_request();
  }

  // Closes the connection when it is waiting for a request and has read none of it.
  void on_drain() {
    if (idle_) close();
  }

  // Closes the connection; it no longer counts in active_connections() by the time the client
  // can see the close. The caller holds a reference (forget drops the server's).
  void close() {
    idle_ = false;
    if (!closed_) {
      closed_ = true;
      server_.forget(this);
    }
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // Writes the handler's answer to the current request (or a 500 standing in for it).
  void respond(HttpResponse response) { write_response(std::move(response), /*close_after=*/false, false); }

 private:
  const HttpServerOptions& options() const { return server_.options; }

  void await_request() {
    if (closed_) return;
    if (server_.draining) {
      close();
      return;
    }
    method_.clear();
    target_.clear();
    path_.clear();
    version_ = 11;
    keep_alive_ = false;
    head_ = false;
    request_bytes_ = 0;
    if (buffer_.size() > 0) {  // a pipelined request has started already
      first_byte_ = Clock::now();
      set_request_deadline();
      read_header();
      return;
    }
    idle_ = true;
    if (first_request_) {
      stream_.expires_at(connected_ + options().request_timeout);
    } else {
      stream_.expires_after(options().idle_timeout);
    }
    stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->on_first_bytes(ec, n);
                            });
  }

  void set_request_deadline() {
    if (first_request_) {
      stream_.expires_at(connected_ + options().request_timeout);
    } else {
      stream_.expires_after(options().request_timeout);
    }
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    idle_ = false;
    if (ec || closed_) {  // timeout, the client left, or drain/stop closed us
      close();
      return;
    }
    buffer_.commit(n);
    first_byte_ = Clock::now();
    set_request_deadline();
    read_header();
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(options().header_limit, std::numeric_limits<uint32_t>::max())));
    // Beast 1.74 compares Content-Length with an unset limit as if it were over it, so the
    // header is read with the largest limit and the real one applied once the header is in.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    const auto& request = parser_->get();
    method_ = std::string(request.method_string());
    target_ = std::string(request.target());
    path_ = target_.substr(0, target_.find('?'));
    version_ = request.version();
    keep_alive_ = request.keep_alive();
    head_ = request.method() == http::verb::head;
    const uint64_t limit = options().body_limit;
    if (auto length = parser_->content_length(); length && *length > limit) {
      write_error(413, "payload_too_large",
                  fmt::format("payload of {} bytes is over the limit of {} bytes", *length, limit));
      return;
    }
    parser_->body_limit(limit);  // for chunked bodies
    auto expect = request[http::field::expect];
    if (!parser_->is_done() && version_ >= 11 && beast::iequals(expect, "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue, sizeof kContinue - 1),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) {
                           self->close();
                         } else {
                           self->read_body();
                         }
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    if (closed_) return;
    if (parser_->is_done()) {
      on_body({});
      return;
    }
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_read_error(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::body_limit) {
      write_error(413, "payload_too_large",
                  fmt::format("chunked payload is over the limit of {} bytes", options().body_limit));
    } else if (ec == http::error::header_limit) {
      write_error(431, "validation",
                  fmt::format("the request header is over the limit of {} bytes", options().header_limit));
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      write_error(400, "validation", fmt::format("malformed HTTP request: {}", ec.message()));
    } else {
      close();  // timeout, the client left mid-request, or drain/stop closed us
    }
  }

  void on_body(beast::error_code ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    received_ = Clock::now();
    stream_.expires_never();
    auto message = parser_->release();
    parser_.reset();
    HttpRequest request;
    request.method = method_;
    request.target = target_;
    request.path = path_;
    request.body = std::move(message.body());
    request_bytes_ = request.body.size();
    for (const auto& field : message) {
      request.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
    }
    request.remote = remote_;
    request.received = received_;

    auto target = std::make_shared<Responder::Target>(weak_from_this(), server_.gate);
    try {
      server_.handler(std::move(request), Responder(target));
    } catch (const std::exception& e) {
      target->deliver(error_response(500, "internal", e.what()));
    } catch (...) {
      target->deliver(error_response(500, "internal", "the request handler failed"));
    }
  }

  void write_error(int status, const std::string& type, const std::string& message) {
    HttpResponse response = error_response(status, type, message);
    if (server_.on_own_response) server_.on_own_response(response);
    write_response(std::move(response), /*close_after=*/true, /*own=*/true);
  }

  void write_response(HttpResponse response, bool close_after, bool own) {
    if (closed_) return;
    idle_ = false;
    parser_.reset();
    int status = response.status;
    if (status < 200 || status > 999) status = 500;  // a 1xx would leave the client waiting
    const bool keep_alive = keep_alive_ && !close_after && !server_.draining;
    res_ = {};
    res_.version(version_ == 10 ? 10 : 11);
    res_.result(static_cast<unsigned>(status));
    if (!options().server_header.empty()) res_.set(http::field::server, options().server_header);
    if (!response.content_type.empty()) res_.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res_.insert(name, value);
    response_headers_ = std::move(response.headers);
    res_.keep_alive(keep_alive);
    // 204 and 304 carry no body and no Content-Length (RFC 9110 8.6); HEAD gets GET's length.
    const bool bodiless = status == 204 || status == 304;
    if (!bodiless) res_.content_length(response.body.size());
    if (!bodiless && !head_) res_.body() = std::move(response.body);
    res_status_ = status;
    response_bytes_ = res_.body().size();
    stream_.expires_after(options().write_timeout);
    http::async_write(stream_, res_,
                      [self = shared_from_this(), keep_alive, own](beast::error_code ec, size_t) {
                        self->on_written(ec, keep_alive, own);
                      });
  }

  void on_written(beast::error_code ec, bool keep_alive, bool own) {
    ExchangeRecord record;
    record.method = method_;
    record.path = path_;
    record.status = res_status_;
    record.remote = remote_;
    record.response_headers = std::move(response_headers_);
    record.request_bytes = request_bytes_;
    record.response_bytes = response_bytes_;
    record.duration =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - (own ? first_byte_ : received_));
    server_.report(record);
    res_ = {};
    if (ec || closed_) {
      close();
      return;
    }
    if (!keep_alive) {
      linger();
      return;
    }
    first_request_ = false;
    await_request();
  }

  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTime);
    discard();
  }

  void discard() {
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || self->closed_) {
        self->close();
      } else {
        self->discard();
      }
    });
  }

  ServerState& server_;
  net::any_io_executor strand_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  int res_status_ = 0;
  std::vector<std::pair<std::string, std::string>> response_headers_;
  size_t request_bytes_ = 0, response_bytes_ = 0;
  std::array<char, 8192> discard_{};

  std::string remote_;
  Clock::time_point connected_, first_byte_, received_;
  bool first_request_ = true;
  bool idle_ = false;  // waiting for the first byte of a request
  bool closed_ = false;
  // The request being served.
  std::string method_, target_, path_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
};

}  // namespace

void Responder::Target::deliver(HttpResponse response) {
  if (sent.exchange(true)) return;
  std::lock_guard<std::mutex> lock(gate->mutex);
  if (!gate->open) return;
  // Declared after the lock: the last reference to the session may be this one, and the
  // session must be destroyed while the io_context still exists.
  std::shared_ptr<Session> live = session.lock();
  if (!live) return;
  net::post(live->strand(), [live, response = std::move(response)]() mutable { live->respond(std::move(response)); });
}

void Responder::send(HttpResponse response) const {
  if (target_) target_->deliver(std::move(response));
}

const std::string& HttpRequest::header(const std::string& name) const {
  static const std::string none;
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return none;
}

void ServerState::accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        [this](beast::error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void ServerState::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Out of descriptors and the like: try again shortly rather than spin.
    auto timer = std::make_shared<net::steady_timer>(acceptor.get_executor(), std::chrono::milliseconds(50));
    timer->async_wait([this, timer](beast::error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) accept();
    });
    return;
  }
  if (draining) {
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto session = std::make_shared<Session>(*this, std::move(socket));
  {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    sessions.emplace(session.get(), session);
  }
  net::dispatch(session->strand(), [session] { session->start(); });
  accept();
}

void ServerState::forget(Session* session) {
  std::shared_ptr<Session> keep;  // destroyed after the mutex is released
  std::lock_guard<std::mutex> lock(sessions_mutex);
  auto found = sessions.find(session);
  if (found == sessions.end()) return;
  keep = std::move(found->second);
  sessions.erase(found);
}

struct HttpServer::Impl : ServerState {};

HttpServer::HttpServer(HttpServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  const std::string& host = impl_->options.host;
  const uint16_t port = impl_->options.port;
  auto refuse = [&](const std::string& why) {
    fail<RemoteError>("cannot listen on {}: {}", host_port(host, port), why);
  };

  std::vector<tcp::endpoint> endpoints;
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (!ec) {
    endpoints.emplace_back(address, port);
  } else {
    tcp::resolver resolver(impl_->ioc);
    auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec) refuse(ec.message());
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    // "localhost" gives ::1 and 127.0.0.1; take IPv4 first, as most clients try it.
    std::stable_partition(endpoints.begin(), endpoints.end(),
                          [](const tcp::endpoint& e) { return e.address().is_v4(); });
    if (endpoints.empty()) refuse("the host name has no address");
  }

  auto& acceptor = impl_->acceptor;
  for (const auto& endpoint : endpoints) {
    beast::error_code ignored;
    if (acceptor.is_open()) acceptor.close(ignored);
    acceptor.open(endpoint.protocol(), ec);
    if (ec) continue;
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) continue;
    acceptor.bind(endpoint, ec);
    if (ec) continue;
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) break;
  }
  if (ec) refuse(ec.message());
  impl_->bound_port = acceptor.local_endpoint().port();
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::on_exchange(std::function<void(const ExchangeRecord&)> callback) {
  impl_->on_exchange = std::move(callback);
}

void HttpServer::on_own_response(std::function<void(HttpResponse&)> decorate) {
  impl_->on_own_response = std::move(decorate);
}

void HttpServer::start() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  impl_->work.emplace(impl_->ioc.get_executor());
  net::dispatch(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    if (impl->acceptor.is_open()) impl->accept();
  });
  const size_t count = std::max<size_t>(1, impl_->options.io_threads);
  for (size_t i = 0; i < count; ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] {
      for (;;) {
        try {
          impl->ioc.run();
          return;
        } catch (...) {
          // A throwing completion (out of memory building a request) loses that connection
          // only; the thread goes on serving the others.
        }
      }
    });
  }
}

void HttpServer::drain() {
  impl_->draining = true;
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  std::lock_guard<std::mutex> lock(impl_->sessions_mutex);
  for (auto& [raw, session] : impl_->sessions) {
    net::post(session->strand(), [session = session] { session->on_drain(); });
  }
}

size_t HttpServer::active_connections() const {
  std::lock_guard<std::mutex> lock(impl_->sessions_mutex);
  return impl_->sessions.size();
}

void HttpServer::stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->draining = true;
  {
    std::lock_guard<std::mutex> gate_lock(impl_->gate->mutex);
    impl_->gate->open = false;
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  // No thread runs the io_context any more: close what is left from here.
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> sessions_lock(impl_->sessions_mutex);
    sessions.swap(impl_->sessions);
  }
  for (auto& [raw, session] : sessions) session->close();
}

std::string error_body(const std::string& type, const std::string& message) {
  return json_dump({{"error", message}, {"error_type", type}});
}

std::string status_reason(int status) {
  if (status < 0 || status > 999) return "Unknown";
  auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  if (reason.empty() || reason == "<unknown-status>") return "Unknown";
  return std::string(reason);
}

}  // namespace recmodel::serving
