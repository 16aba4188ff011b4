// An S3 client on libcurl: SigV4-signed requests with retries (exponential backoff with jitter
// on 5xx, 429/503 SlowDown, timeouts and resets), path-style or virtual-hosted addressing,
// region discovery on redirect, multipart uploads and ranged downloads. Thread-safe: each
// call borrows one pooled connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/http.h"
#include "storage/sigv4.h"

namespace recmodel::storage {

// A remote that could not be reached (refused, reset, timed out) after every retry. A multipart
// upload interrupted this way is left open so the next run resumes it.
struct ConnectionError : RemoteError {
  explicit ConnectionError(const std::string& m) : RemoteError(m) {}
};

struct RetryPolicy {
  int retries = 5;            // attempts after the first
  int base_delay_ms = 200;    // doubled per attempt, with jitter, capped at max_delay_ms
  int max_delay_ms = 10000;
};

struct S3Settings {
  std::string endpoint;       // "http://127.0.0.1:7480"; "" = AWS (https://s3.REGION.amazonaws.com)
  std::string bucket;
  std::string region = "us-east-1";
  bool path_style = false;    // "/bucket/key" instead of "bucket.host/key"
  HttpSettings http;
  RetryPolicy retry;
  std::string label;          // how messages name the remote: "remote 'private' (s3://bucket/prefix)"
  std::function<void(const std::string&)> log;  // -v detail lines (never holds secrets)
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
};

struct PartInfo {
  int number = 0;
  uint64_t size = 0;
  std::string etag;  // with its quotes, as the server sent it
};

struct UploadInfo {
  std::string key;
  std::string upload_id;
  std::string initiated;
};

class S3Client {
 public:
  S3Client(S3Settings settings, Credentials credentials);
  ~S3Client();

  // Returns the object's size and ETag, or nothing when it does not exist.
  std::optional<ObjectInfo> head(const std::string& key);
  // Streams bytes [offset, offset + length) of `key` to `sink`; a connection lost midway is
  // resumed from the last byte received. Throws NotFoundError when the object is missing.
  void get_range(const std::string& key, uint64_t offset, uint64_t length, const BodySink& sink);
  // Returns the whole (small) object; NotFoundError when missing.
  std::string get(const std::string& key);
  // Stores `body` under `key`; `sha256` (hex) is signed so the server checks the bytes.
  void put(const std::string& key, std::string_view body, const std::string& sha256 = "");
  void remove(const std::string& key);
  // Returns every object under `prefix` (ListObjectsV2, all pages).
  std::vector<ObjectInfo> list(const std::string& prefix);
  // Creates the bucket; an existing bucket owned by the caller is fine.
  void create_bucket();
  // Checks the bucket exists and the credentials work (HEAD bucket).
  void check_bucket();

  std::string create_multipart(const std::string& key);
  // Uploads one part and returns its ETag.
  std::string upload_part(const std::string& key, const std::string& upload_id, int number, std::string_view body);
  std::vector<PartInfo> list_parts(const std::string& key, const std::string& upload_id);
  std::vector<UploadInfo> list_uploads(const std::string& key);
  void complete_multipart(const std::string& key, const std::string& upload_id, const std::vector<PartInfo>& parts);
  void abort_multipart(const std::string& key, const std::string& upload_id);

  const S3Settings& settings() const { return settings_; }
  // Returns "s3://bucket/key" for messages.
  std::string describe(const std::string& key) const;

 private:
  struct Operation;
  HttpResponse execute(const Operation& operation, const BodySink& sink = {});
  HttpResponse attempt(const Operation& operation, const BodySink& sink);
  [[noreturn]] void raise(const Operation& operation, const HttpResponse& response);
  std::unique_ptr<HttpClient> acquire();
  void release(std::unique_ptr<HttpClient> client);
  void sleep_before_retry(int attempt);

  S3Settings settings_;
  Credentials credentials_;
  std::string scheme_;
  std::string host_;           // host[:port] of the endpoint, default ports dropped
  bool aws_endpoint_ = false;  // no endpoint given: the host follows the region
  std::mutex mutex_;           // guards the pool and the region
  std::vector<std::unique_ptr<HttpClient>> pool_;
};

// Returns the host, port and scheme of an endpoint URL; throws UsageError naming `what`.
struct Endpoint {
  std::string scheme;  // http or https
  std::string host;    // host[:port], default port dropped
  std::string hostname;
};
Endpoint parse_endpoint(const std::string& url, const std::string& what);

}  // namespace recmodel::storage
