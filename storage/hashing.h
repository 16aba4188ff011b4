// Streaming digests for transfers: SHA-256 over parts fed in order, MD5 to compare a part
// with the ETag S3 gave it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace recmodel::storage {

class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(std::string_view bytes);
  // Returns the lowercase hex digest; the stream cannot be fed afterwards.
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Returns the lowercase hex MD5 of `bytes` (what S3 puts in a part's ETag).
std::string md5_hex(std::string_view bytes);

}  // namespace recmodel::storage
