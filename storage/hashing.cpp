#include "storage/hashing.h"

#include <openssl/evp.h>

#include "common/error.h"
#include "storage/sigv4.h"

namespace recmodel::storage {

struct Sha256Stream::State {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256Stream::Sha256Stream() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1)
    throw Error(ExitCode::internal, "cannot initialise SHA-256 (OpenSSL)");
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(state_->ctx); }

void Sha256Stream::update(std::string_view bytes) { EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size()); }

std::string Sha256Stream::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(state_->ctx, digest, &size);
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest), size));
}

std::string md5_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_md5(), nullptr) != 1)
    throw Error(ExitCode::internal, "MD5 failed (OpenSSL)");
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest), size));
}

}  // namespace recmodel::storage
