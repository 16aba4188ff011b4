// AWS Signature Version 4 for S3 requests (header authentication), written from the AWS
// specification and checked against botocore's signer in tests/storage/sigv4_test.cpp.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recmodel::storage {

// The payload hash S3 accepts when the body is not hashed (only over TLS).
inline constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string: the payload hash of a request without a body.
inline constexpr const char* kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never printed, logged or put in argv
  std::string session_token;      // empty unless temporary credentials
  std::string source;             // where they came from, for messages ("environment", "profile dev")
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// What is signed: the request as it goes on the wire, before the auth headers are added.
struct SigningRequest {
  std::string method;             // "GET", "PUT", ...
  std::string host;               // the Host header: "bucket.s3.amazonaws.com" or "127.0.0.1:7480"
  std::string encoded_path;       // the path as sent, already URI-encoded ("/bucket/a%20b")
  Headers query;                  // raw (not encoded) parameters; "uploads" has an empty value
  Headers headers;                // other headers to sign (content-type, range, x-amz-meta-*, ...)
  std::string payload_sha256;     // hex SHA-256 of the body, or kUnsignedPayload
};

// Returns `text` percent-encoded as SigV4 wants: unreserved characters kept, the rest as %XX
// (upper-case hex, UTF-8 bytes); '/' is kept unless `encode_slash`.
std::string uri_encode(std::string_view text, bool encode_slash);

// Returns the query string sent on the wire and signed: encoded pairs sorted by key, then value.
std::string canonical_query(const Headers& query);

// Returns the SigV4 canonical request of `request` with the x-amz-* headers `amz_headers` added.
std::string canonical_request(const SigningRequest& request, const Headers& amz_headers, std::string* signed_headers);

// Returns the headers to add to `request` to sign it: x-amz-date, x-amz-content-sha256,
// x-amz-security-token (with a session token) and Authorization. `amz_date` is "YYYYMMDDTHHMMSSZ".
Headers sign_request(const SigningRequest& request, const Credentials& credentials, const std::string& region,
                     const std::string& service, const std::string& amz_date);

// Returns the current UTC time as "YYYYMMDDTHHMMSSZ".
std::string amz_date_now();

// Returns the lowercase hex HMAC-SHA256 or raw digest helpers used by the signer (exposed for tests).
std::string hmac_sha256(std::string_view key, std::string_view message);
std::string to_hex(std::string_view bytes);

}  // namespace recmodel::storage
