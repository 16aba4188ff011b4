#include "storage/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/error.h"
#include "common/files.h"

namespace recmodel::storage {

namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Trims the value and folds runs of whitespace into one space (SigV4 "Trimall").
std::string trim_all(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &size))
    throw Error(ExitCode::internal, "HMAC-SHA256 failed (OpenSSL)");
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string uri_encode(std::string_view text, bool encode_slash) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3 / 2);
  for (unsigned char c : text) {
    if (unreserved(c) || (c == '/' && !encode_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string canonical_query(const Headers& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [key, value] : query) encoded.emplace_back(uri_encode(key, true), uri_encode(value, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [key, value] : encoded) {
    if (!out.empty()) out += '&';
    out += key + "=" + value;
  }
  return out;
}

std::string canonical_request(const SigningRequest& request, const Headers& amz_headers, std::string* signed_headers) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("host", trim_all(request.host));
  for (const auto& [name, value] : request.headers) headers.emplace_back(lower(name), trim_all(value));
  for (const auto& [name, value] : amz_headers) headers.emplace_back(lower(name), trim_all(value));
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // Repeated headers are joined with commas, in the order given.
  std::string canonical_headers, names;
  for (size_t i = 0; i < headers.size();) {
    std::string value = headers[i].second;
    size_t j = i + 1;
    for (; j < headers.size() && headers[j].first == headers[i].first; ++j) value += "," + headers[j].second;
    canonical_headers += headers[i].first + ":" + value + "\n";
    names += (names.empty() ? "" : ";") + headers[i].first;
    i = j;
  }
  if (signed_headers) *signed_headers = names;
  return request.method + "\n" + request.encoded_path + "\n" + canonical_query(request.query) + "\n" +
         canonical_headers + "\n" + names + "\n" + request.payload_sha256;
}

Headers sign_request(const SigningRequest& request, const Credentials& credentials, const std::string& region,
                     const std::string& service, const std::string& amz_date) {
  Headers amz = {{"x-amz-date", amz_date}, {"x-amz-content-sha256", request.payload_sha256}};
  if (!credentials.session_token.empty()) amz.emplace_back("x-amz-security-token", credentials.session_token);
  std::string signed_headers;
  std::string canonical = canonical_request(request, amz, &signed_headers);
  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + region + "/" + service + "/aws4_request";
  std::string string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + sha256_hex(canonical);
  std::string key = hmac_sha256("AWS4" + credentials.secret_access_key, date);
  key = hmac_sha256(key, region);
  key = hmac_sha256(key, service);
  key = hmac_sha256(key, "aws4_request");
  std::string signature = to_hex(hmac_sha256(key, string_to_sign));
  amz.emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
                                        ", SignedHeaders=" + signed_headers + ", Signature=" + signature);
  return amz;
}

std::string amz_date_now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &utc);
  return buffer;
}

}  // namespace recmodel::storage
