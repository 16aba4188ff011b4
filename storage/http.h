// A blocking HTTP client on libcurl: one connection-reusing handle per object, TLS verified
// unless told otherwise. S3Client keeps a pool of them, one per concurrent transfer.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "storage/sigv4.h"

namespace recmodel::storage {

struct HttpSettings {
  std::string ca_bundle;          // PEM file of CAs to trust; empty = the system's
  bool verify_tls = true;
  long connect_timeout_s = 10;
  long stall_timeout_s = 30;      // abort when no byte moves for this long
};

struct HttpRequest {
  std::string method;
  std::string url;
  Headers headers;
  std::string_view body;          // sent as is; must outlive perform()
};

struct HttpResponse {
  long status = 0;
  Headers headers;                // names lower-cased
  std::string body;               // the body, unless a sink took it

  // Returns the value of header `name` (lower-case), or "".
  std::string header(std::string_view name) const;
};

// A connection-level failure (refused, reset, timeout, TLS): no HTTP status came back.
class TransportError : public std::runtime_error {
 public:
  TransportError(const std::string& message, bool tls) : std::runtime_error(message), tls_(tls) {}
  bool tls() const { return tls_; }

 private:
  bool tls_;
};

using BodySink = std::function<void(const char* data, size_t size)>;

class HttpClient {
 public:
  explicit HttpClient(HttpSettings settings);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs `request`; the body of a 2xx response goes to `sink` when given (else into
  // the response). Throws TransportError when no complete response arrived.
  HttpResponse perform(const HttpRequest& request, const BodySink& sink = {});

 private:
  void* curl_;
  HttpSettings settings_;
};

}  // namespace recmodel::storage
