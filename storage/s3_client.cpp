#include "storage/s3_client.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "common/files.h"
#include "storage/xml.h"

namespace recmodel::storage {

struct S3Client::Operation {
  std::string method;
  std::string key;                 // "" = the bucket itself
  Headers query;
  Headers headers;
  std::string_view body;
  std::string payload_sha256;      // "" = computed (or UNSIGNED-PAYLOAD for large bodies over TLS)
  std::function<void(Headers&)> adjust;  // per attempt (the Range of a resumed download)
};

namespace {

bool is_ip_or_localhost(const std::string& hostname) {
  if (hostname == "localhost" || hostname.find(':') != std::string::npos) return true;
  return std::all_of(hostname.begin(), hostname.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

bool retryable_status(long status, const std::string& code) {
  return status == 500 || status == 502 || status == 503 || status == 504 || status == 429 || status == 408 ||
         (status == 400 && (code == "RequestTimeout" || code == "SlowDown"));
}

struct S3ErrorBody {
  std::string code;
  std::string message;
  std::string region;
};

S3ErrorBody error_body(const HttpResponse& response) {
  S3ErrorBody out;
  if (response.body.find("<Error") == std::string::npos) return out;
  try {
    XmlNode root = parse_xml(response.body, "error");
    out.code = root.child_text("Code");
    out.message = root.child_text("Message");
    out.region = root.child_text("Region");
  } catch (const Error&) {
  }
  return out;
}

uint64_t parse_size(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), ::isdigit))
    fail<RemoteError>("{}: the server sent a bad size '{}'", what, text);
  return std::stoull(text);
}

}  // namespace

Endpoint parse_endpoint(const std::string& url, const std::string& what) {
  Endpoint endpoint;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    fail<UsageError>("{} '{}' is not a URL; give it as http://HOST[:PORT] or https://HOST[:PORT]", what, url);
  endpoint.scheme = url.substr(0, scheme_end);
  if (endpoint.scheme != "http" && endpoint.scheme != "https")
    fail<UsageError>("{} '{}': the scheme must be http or https", what, url);
  std::string rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos && rest.find_first_not_of('/', slash) != std::string::npos)
    fail<UsageError>("{} '{}': a path after the host is not supported; give only scheme, host and port", what, url);
  if (authority.find('@') != std::string::npos)
    fail<UsageError>("{} holds user information ('...@'); credentials never go in URLs: use the AWS "
                     "environment variables or a profile",
                     what);
  if (authority.empty()) fail<UsageError>("{} '{}' has no host", what, url);
  std::string hostname = authority, port;
  if (authority[0] == '[') {  // [IPv6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) fail<UsageError>("{} '{}': unterminated [IPv6 address]", what, url);
    hostname = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') fail<UsageError>("{} '{}': bad host", what, url);
      port = authority.substr(close + 2);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string::npos) {
    hostname = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!port.empty() || authority.back() == ':') {
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoul(port) == 0 || std::stoul(port) > 65535)
      fail<UsageError>("{} '{}': bad port '{}'", what, url, port);
  }
  bool default_port = port.empty() || (endpoint.scheme == "http" && port == "80") ||
                      (endpoint.scheme == "https" && port == "443");
  endpoint.hostname = hostname;
  endpoint.host = default_port ? hostname : hostname + ":" + port;
  return endpoint;
}

S3Client::S3Client(S3Settings settings, Credentials credentials)
    : settings_(std::move(settings)), credentials_(std::move(credentials)) {
  if (settings_.endpoint.empty()) {
    aws_endpoint_ = true;
    scheme_ = "https";
    host_ = "s3." + settings_.region + ".amazonaws.com";
  } else {
    Endpoint endpoint = parse_endpoint(settings_.endpoint, "the endpoint");
    scheme_ = endpoint.scheme;
    host_ = endpoint.host;
    // Virtual-hosted names cannot work on an IP address, nor (over TLS) with dots in the bucket.
    if (is_ip_or_localhost(endpoint.hostname) && endpoint.hostname != "localhost") settings_.path_style = true;
  }
  if (scheme_ == "https" && settings_.bucket.find('.') != std::string::npos) settings_.path_style = true;
}

S3Client::~S3Client() = default;

std::string S3Client::describe(const std::string& key) const {
  return key.empty() ? "s3://" + settings_.bucket : "s3://" + settings_.bucket + "/" + key;
}

std::unique_ptr<HttpClient> S3Client::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pool_.empty()) {
      auto client = std::move(pool_.back());
      pool_.pop_back();
      return client;
    }
  }
  return std::make_unique<HttpClient>(settings_.http);
}

void S3Client::release(std::unique_ptr<HttpClient> client) {
  std::lock_guard<std::mutex> lock(mutex_);
  pool_.push_back(std::move(client));
}

void S3Client::sleep_before_retry(int attempt) {
  thread_local std::mt19937 random{std::random_device{}()};
  double ceiling = std::min<double>(settings_.retry.max_delay_ms,
                                    settings_.retry.base_delay_ms * static_cast<double>(1u << std::min(attempt, 20)));
  // "Equal jitter": half the delay fixed, half random, so concurrent retries spread out.
  double delay = ceiling / 2 + std::uniform_real_distribution<double>(0, ceiling / 2)(random);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(delay)));
}

HttpResponse S3Client::attempt(const Operation& operation, const BodySink& sink) {
  std::string region, host;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    region = settings_.region;
    host = aws_endpoint_ ? "s3." + region + ".amazonaws.com" : host_;
  }
  std::string path;
  if (settings_.path_style) {
    path = "/" + settings_.bucket + (operation.key.empty() ? "" : "/" + uri_encode(operation.key, false));
  } else {
    host = settings_.bucket + "." + host;
    path = "/" + uri_encode(operation.key, false);
  }
  SigningRequest signing;
  signing.method = operation.method;
  signing.host = host;
  signing.encoded_path = path;
  signing.query = operation.query;
  signing.headers = operation.headers;
  if (operation.adjust) operation.adjust(signing.headers);
  if (!operation.payload_sha256.empty()) signing.payload_sha256 = operation.payload_sha256;
  else if (operation.body.empty()) signing.payload_sha256 = kEmptyPayloadSha256;
  else if (scheme_ == "https" && operation.body.size() > (1u << 20)) signing.payload_sha256 = kUnsignedPayload;
  else signing.payload_sha256 = sha256_hex(operation.body);

  HttpRequest request;
  request.method = operation.method;
  std::string query = canonical_query(operation.query);
  request.url = scheme_ + "://" + host + path + (query.empty() ? "" : "?" + query);
  request.headers = signing.headers;
  request.headers.emplace_back("Host", host);
  for (auto& header : sign_request(signing, credentials_, region, "s3", amz_date_now()))
    request.headers.push_back(std::move(header));
  request.body = operation.body;
  auto client = acquire();
  HttpResponse response = client->perform(request, sink);
  release(std::move(client));
  return response;
}

HttpResponse S3Client::execute(const Operation& operation, const BodySink& sink) {
  const int attempts = settings_.retry.retries + 1;
  std::string last_problem;
  bool region_switched = false;
  for (int attempt_number = 0; attempt_number < attempts; ++attempt_number) {
    if (attempt_number > 0) sleep_before_retry(attempt_number - 1);
    HttpResponse response;
    try {
      response = this->attempt(operation, sink);
    } catch (const TransportError& e) {
      if (e.tls())
        fail<RemoteError>("{}: TLS failure talking to {}://{}: {}; for a private CA give its certificate with "
                          "--ca-bundle (or AWS_CA_BUNDLE)",
                          settings_.label, scheme_, host_, e.what());
      last_problem = e.what();
      if (settings_.log)
        settings_.log(fmt::format("{} {}: {} (attempt {} of {})", operation.method, describe(operation.key),
                                  last_problem, attempt_number + 1, attempts));
      continue;
    }
    if (response.status < 300 || response.status == 304 || (response.status == 404 && operation.method == "HEAD"))
      return response;
    S3ErrorBody error = error_body(response);
    // Region discovery: S3 names the bucket's region when the request was signed for another.
    std::string region = response.header("x-amz-bucket-region");
    if (region.empty()) region = error.region;
    if (!region_switched && !region.empty() && (response.status == 301 || response.status == 307 ||
                                                response.status == 400 || response.status == 403)) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (region != settings_.region) {
        if (settings_.log) settings_.log(fmt::format("bucket {} is in region {}, not {}; re-signing", settings_.bucket,
                                                     region, settings_.region));
        settings_.region = region;
        region_switched = true;
        --attempt_number;  // a redirect is not a failed attempt
        continue;
      }
    }
    if (!retryable_status(response.status, error.code)) return response;
    last_problem = fmt::format("HTTP {}{}", response.status, error.code.empty() ? "" : " " + error.code);
    if (settings_.log)
      settings_.log(fmt::format("{} {}: {} (attempt {} of {})", operation.method, describe(operation.key),
                                last_problem, attempt_number + 1, attempts));
    if (attempt_number + 1 == attempts)
      fail<RemoteError>("{}: {} {} failed after {} attempts: {}{}", settings_.label, operation.method,
                        describe(operation.key), attempts, last_problem,
                        error.message.empty() ? "" : " (" + error.message + ")");
  }
  throw ConnectionError(fmt::format("{}: cannot reach {}://{} ({} {} failed after {} attempts: {}); check that the "
                                    "server is up, then run the command again to resume",
                                    settings_.label, scheme_, host_, operation.method, describe(operation.key),
                                    attempts, last_problem));
}

void S3Client::raise(const Operation& operation, const HttpResponse& response) {
  S3ErrorBody error = error_body(response);
  std::string what = fmt::format("{} {}", operation.method, describe(operation.key));
  if (response.status == 403 || error.code == "SignatureDoesNotMatch" || error.code == "InvalidAccessKeyId") {
    static const char* auth_codes[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
                                       "TokenRefreshRequired", "RequestTimeTooSkewed", "AuthorizationHeaderMalformed",
                                       "InvalidSecurity", ""};
    bool auth = std::find(std::begin(auth_codes), std::end(auth_codes), error.code) != std::end(auth_codes);
    if (auth)
      fail<RemoteError>("{}: authentication failed ({}: HTTP {}{}); check the credentials from {}",
                        settings_.label, what, response.status, error.code.empty() ? "" : " " + error.code,
                        credentials_.source);
    fail<RemoteError>("{}: access denied ({}: HTTP {} {}); the credentials from {} lack permission", settings_.label,
                      what, response.status, error.code, credentials_.source);
  }
  if (error.code == "NoSuchBucket")
    fail<NotFoundError>("{}: bucket '{}' does not exist at {}://{}; create it (remote add --create-bucket) or fix "
                        "the remote's URL",
                        settings_.label, settings_.bucket, scheme_, host_);
  if (response.status == 404 || error.code == "NoSuchKey")
    fail<NotFoundError>("{}: {} not found", settings_.label, describe(operation.key));
  fail<RemoteError>("{}: {} failed: HTTP {}{}{}", settings_.label, what, response.status,
                    error.code.empty() ? "" : " " + error.code, error.message.empty() ? "" : " (" + error.message + ")");
}

std::optional<ObjectInfo> S3Client::head(const std::string& key) {
  Operation op{"HEAD", key, {}, {}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status == 404) return std::nullopt;
  if (response.status >= 300) raise(op, response);
  ObjectInfo info;
  info.key = key;
  info.size = parse_size(response.header("content-length"), describe(key));
  info.etag = response.header("etag");
  info.last_modified = response.header("last-modified");
  return info;
}

void S3Client::get_range(const std::string& key, uint64_t offset, uint64_t length, const BodySink& sink) {
  if (length == 0) return;
  uint64_t received = 0;
  Operation op{"GET", key, {}, {}, {}, "", {}};
  op.adjust = [&](Headers& headers) {
    headers.emplace_back("Range", fmt::format("bytes={}-{}", offset + received, offset + length - 1));
  };
  BodySink counting = [&](const char* data, size_t size) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(size, length - received));
    if (take) sink(data, take);
    received += take;
  };
  // A connection that drops midway is retried from the byte where it stopped.
  for (int restarts = 0;; ++restarts) {
    uint64_t before = received;
    HttpResponse response;
    try {
      response = execute(op, counting);
    } catch (const ConnectionError&) {
      if (received > before && restarts < 1000) continue;  // progress was made: keep going
      throw;
    }
    if (response.status >= 300) raise(op, response);
    if (received == length) return;
    if (received == before || restarts >= 1000)
      fail<RemoteError>("{}: {} ended early: {} of {} bytes from offset {}", settings_.label, describe(key), received,
                        length, offset);
  }
}

std::string S3Client::get(const std::string& key) {
  Operation op{"GET", key, {}, {}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300) raise(op, response);
  return response.body;
}

void S3Client::put(const std::string& key, std::string_view body, const std::string& sha256) {
  Operation op{"PUT", key, {}, {{"Content-Type", "application/octet-stream"}}, body, sha256, {}};
  HttpResponse response = execute(op);
  if (response.status >= 300) {
    S3ErrorBody error = error_body(response);
    if (error.code == "XAmzContentSHA256Mismatch" || error.code == "BadDigest")
      fail<IntegrityError>("{}: the server received different bytes than were sent for {} ({}); run the command "
                           "again",
                           settings_.label, describe(key), error.code);
    raise(op, response);
  }
}

void S3Client::remove(const std::string& key) {
  Operation op{"DELETE", key, {}, {}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300 && response.status != 404) raise(op, response);
}

std::vector<ObjectInfo> S3Client::list(const std::string& prefix) {
  std::vector<ObjectInfo> objects;
  std::string token;
  for (;;) {
    Operation op{"GET", "", {{"list-type", "2"}, {"prefix", prefix}}, {}, {}, "", {}};
    if (!token.empty()) op.query.emplace_back("continuation-token", token);
    HttpResponse response = execute(op);
    if (response.status >= 300) raise(op, response);
    XmlNode root = parse_xml(response.body, describe(prefix));
    for (const XmlNode* entry : root.all("Contents")) {
      ObjectInfo info;
      info.key = entry->child_text("Key");
      info.size = parse_size(entry->child_text("Size"), describe(info.key));
      info.etag = entry->child_text("ETag");
      info.last_modified = entry->child_text("LastModified");
      objects.push_back(std::move(info));
    }
    token = root.child_text("NextContinuationToken");
    if (root.child_text("IsTruncated") != "true" || token.empty()) break;
  }
  return objects;
}

void S3Client::create_bucket() {
  std::string body;
  std::string region = settings_.region;
  if (aws_endpoint_ && region != "us-east-1")
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
           xml_escape(region) + "</LocationConstraint></CreateBucketConfiguration>";
  Operation op{"PUT", "", {}, {}, body, "", {}};
  HttpResponse response = execute(op);
  if (response.status < 300) return;
  if (error_body(response).code == "BucketAlreadyOwnedByYou") return;
  raise(op, response);
}

void S3Client::check_bucket() {
  Operation op{"GET", "", {{"list-type", "2"}, {"max-keys", "1"}}, {}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300) raise(op, response);
}

std::string S3Client::create_multipart(const std::string& key) {
  Operation op{"POST", key, {{"uploads", ""}}, {{"Content-Type", "application/octet-stream"}}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300) raise(op, response);
  std::string id = parse_xml(response.body, describe(key)).child_text("UploadId");
  if (id.empty()) fail<RemoteError>("{}: no UploadId in the answer to starting a multipart upload of {}",
                                    settings_.label, describe(key));
  return id;
}

std::string S3Client::upload_part(const std::string& key, const std::string& upload_id, int number,
                                  std::string_view body) {
  Operation op{"PUT", key, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, {}, body, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300) {
    S3ErrorBody error = error_body(response);
    if (error.code == "XAmzContentSHA256Mismatch" || error.code == "BadDigest")
      fail<IntegrityError>("{}: the server received different bytes for part {} of {}; run the command again",
                           settings_.label, number, describe(key));
    raise(op, response);
  }
  std::string etag = response.header("etag");
  if (etag.empty()) fail<RemoteError>("{}: no ETag for part {} of {}", settings_.label, number, describe(key));
  return etag;
}

std::vector<PartInfo> S3Client::list_parts(const std::string& key, const std::string& upload_id) {
  std::vector<PartInfo> parts;
  std::string marker;
  for (;;) {
    Operation op{"GET", key, {{"uploadId", upload_id}}, {}, {}, "", {}};
    if (!marker.empty()) op.query.emplace_back("part-number-marker", marker);
    HttpResponse response = execute(op);
    if (response.status == 404) return {};  // the upload is gone (completed or aborted meanwhile)
    if (response.status >= 300) raise(op, response);
    XmlNode root = parse_xml(response.body, describe(key));
    for (const XmlNode* part : root.all("Part")) {
      PartInfo info;
      info.number = std::atoi(part->child_text("PartNumber").c_str());
      info.size = parse_size(part->child_text("Size"), describe(key));
      info.etag = part->child_text("ETag");
      parts.push_back(std::move(info));
    }
    marker = root.child_text("NextPartNumberMarker");
    if (root.child_text("IsTruncated") != "true" || marker.empty()) break;
  }
  return parts;
}

std::vector<UploadInfo> S3Client::list_uploads(const std::string& key) {
  Operation op{"GET", "", {{"uploads", ""}, {"prefix", key}}, {}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300) raise(op, response);
  std::vector<UploadInfo> uploads;
  XmlNode root = parse_xml(response.body, describe(key));
  for (const XmlNode* upload : root.all("Upload")) {
    UploadInfo info{upload->child_text("Key"), upload->child_text("UploadId"), upload->child_text("Initiated")};
    if (info.key == key) uploads.push_back(std::move(info));
  }
  return uploads;
}

void S3Client::complete_multipart(const std::string& key, const std::string& upload_id,
                                  const std::vector<PartInfo>& parts) {
  std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& part : parts)
    body += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", part.number, xml_escape(part.etag));
  body += "</CompleteMultipartUpload>";
  Operation op{"POST", key, {{"uploadId", upload_id}}, {{"Content-Type", "application/xml"}}, body, "", {}};
  HttpResponse response = execute(op);
  // S3 may answer 200 and still report an error in the body.
  if (response.status >= 300 || response.body.find("<Error>") != std::string::npos) {
    if (response.status < 300) response.status = 500;
    raise(op, response);
  }
}

void S3Client::abort_multipart(const std::string& key, const std::string& upload_id) {
  Operation op{"DELETE", key, {{"uploadId", upload_id}}, {}, {}, "", {}};
  HttpResponse response = execute(op);
  if (response.status >= 300 && response.status != 404) raise(op, response);
}

}  // namespace recmodel::storage
