#include "storage/http.h"

#include <curl/curl.h>

#include <cctype>
#include <cstring>
#include <exception>
#include <mutex>

#include <fmt/format.h>

#include "common/error.h"

namespace recmodel::storage {

namespace {

struct Transfer {
  const HttpRequest* request = nullptr;
  size_t sent = 0;
  HttpResponse* response = nullptr;
  const BodySink* sink = nullptr;
  std::exception_ptr error;
  long status = 0;
};

size_t read_body(char* buffer, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  std::string_view body = transfer->request->body;
  size_t n = std::min(size * count, body.size() - transfer->sent);
  std::memcpy(buffer, body.data() + transfer->sent, n);
  transfer->sent += n;
  return n;
}

int seek_body(void* user, curl_off_t offset, int origin) {
  auto* transfer = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > transfer->request->body.size())
    return CURL_SEEKFUNC_FAIL;
  transfer->sent = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t n = size * count;
  bool success = transfer->status >= 200 && transfer->status < 300;
  if (success && transfer->sink && *transfer->sink) {
    try {
      (*transfer->sink)(data, n);
    } catch (...) {
      transfer->error = std::current_exception();
      return 0;  // aborts the transfer
    }
  } else {
    // Error documents and listings are small; cap them so a misbehaving server cannot fill memory.
    size_t cap = success ? (size_t{1} << 28) : (size_t{1} << 20);
    if (transfer->response->body.size() + n > cap) return 0;
    transfer->response->body.append(data, n);
  }
  return n;
}

size_t read_header(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t n = size * count;
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a 100 Continue or a redirect): start over.
    transfer->response->headers.clear();
    size_t space = line.find(' ');
    transfer->status = space == std::string_view::npos ? 0 : std::atol(std::string(line.substr(space + 1, 3)).c_str());
    transfer->response->status = transfer->status;
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  transfer->response->headers.emplace_back(name, std::string(value));
  return n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw Error(ExitCode::internal, "cannot initialise libcurl");
  });
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return value;
  return "";
}

HttpClient::HttpClient(HttpSettings settings) : curl_(nullptr), settings_(std::move(settings)) {
  global_init();
  curl_ = curl_easy_init();
  if (!curl_) throw Error(ExitCode::internal, "cannot create a libcurl handle");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResponse HttpClient::perform(const HttpRequest& request, const BodySink& sink) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);  // keeps the connection cache
  HttpResponse response;
  Transfer transfer;
  transfer.request = &request;
  transfer.response = &response;
  transfer.sink = &sink;

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, settings_.connect_timeout_s);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, settings_.stall_timeout_s);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, settings_.verify_tls ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, settings_.verify_tls ? 2L : 0L);
  if (!settings_.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_bundle.c_str());
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "recmodel/" RECMODEL_VERSION);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  // Bodies arrive in pieces of up to this size (curl's default is 16 KiB): fewer callbacks, and
  // an encrypted remote's 64 KiB chunks then mostly open straight from curl's buffer.
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);

  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, seek_body);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &transfer);
    if (request.method != "PUT") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  curl_slist* list = nullptr;
  for (const auto& [name, value] : request.headers)
    list = curl_slist_append(list, value.empty() ? (name + ";").c_str() : (name + ": " + value).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(list);
  // The secret-bearing request headers are not kept beyond this point.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (transfer.error) std::rethrow_exception(transfer.error);
  if (code != CURLE_OK) {
    bool tls = code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CONNECT_ERROR ||
               code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM;
    throw TransportError(curl_easy_strerror(code), tls);
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  return response;
}

}  // namespace recmodel::storage
