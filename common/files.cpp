#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>

#include "common/error.h"

namespace recmodel {

namespace {

std::string hex(const unsigned char* bytes, unsigned int size) {
  static const char digits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (unsigned int i = 0; i < size; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

struct DigestDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw Error(ExitCode::internal, "cannot initialise SHA-256 (OpenSSL)");
  }
  void update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string hex_digest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &size);
    return hex(digest, size);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> ctx_;
};

std::string random_suffix() {
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::string out(6, 'x');
  for (char& c : out) c = chars[device() % (sizeof(chars) - 1)];
  return out;
}

fs::path parent_or_dot(const fs::path& path) {
  fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail<NotFoundError>("{}: no such file", path.string());
  if (fs::is_directory(path, ec)) fail<DataError>("{}: is a directory, expected a file", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<DataError>("{}: cannot open: {}", path.string(), std::strerror(errno));
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail<DataError>("{}: read error", path.string());
  return contents;
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
  fs::path temp = path;
  temp += ".tmp-" + random_suffix();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail<DataError>("{}: cannot create: {}", temp.string(), std::strerror(errno));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      fail<DataError>("{}: write failed: {}", path.string(), std::strerror(saved));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temp.c_str());
    fail<DataError>("{}: cannot flush: {}", path.string(), std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    fail<DataError>("{}: cannot rename into place: {}", path.string(), ec.message());
  }
  fsync_directory(parent_or_dot(path));
}

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail<DataError>("{}: cannot open the directory to flush it: {}", dir.string(), std::strerror(errno));
  int result = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (result != 0 && saved != EINVAL && saved != EROFS)
    fail<DataError>("{}: cannot flush the directory: {}", dir.string(), std::strerror(saved));
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<NotFoundError>("{}: cannot open for hashing", path.string());
  Sha256 sha;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    sha.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail<DataError>("{}: read error while hashing", path.string());
  return sha.hex_digest();
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 sha;
  sha.update(bytes.data(), bytes.size());
  return sha.hex_digest();
}

StagingDir::StagingDir(const fs::path& final_path, bool replace) : final_(final_path), replace_(replace) {
  std::error_code ec;
  if (fs::exists(final_, ec) && !replace_)
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", final_.string());
  fs::path parent = final_.parent_path().empty() ? fs::path(".") : final_.parent_path();
  fs::create_directories(parent, ec);
  if (ec) fail<DataError>("{}: cannot create directory: {}", parent.string(), ec.message());
  // mkdir creates the name or fails: an existing entry (a link planted there) is never used.
  for (int attempt = 0; attempt < 16; ++attempt) {
    fs::path candidate = final_;
    candidate += ".tmp-" + random_suffix();
    if (::mkdir(candidate.c_str(), 0777) == 0) {
      staging_ = candidate;
      return;
    }
    if (errno != EEXIST)
      fail<DataError>("{}: cannot create a staging directory: {}", candidate.string(), std::strerror(errno));
  }
  fail<DataError>("{}: cannot create a staging directory beside it", final_.string());
}

StagingDir::~StagingDir() {
  if (!committed_ && !staging_.empty()) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void StagingDir::commit() {
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_, ec)) {
    if (!replace_) fail<UsageError>("{}: appeared while working; not replacing it", final_.string());
    old = final_;
    old += ".old-" + random_suffix();
    fs::rename(final_, old, ec);
    if (ec) fail<DataError>("{}: cannot move the old directory aside: {}", final_.string(), ec.message());
  }
  fs::rename(staging_, final_, ec);
  if (ec) {
    std::string reason = ec.message();
    if (!old.empty()) fs::rename(old, final_, ec);
    fail<DataError>("{}: cannot rename into place: {}", final_.string(), reason);
  }
  committed_ = true;
  fsync_directory(parent_or_dot(final_));
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace recmodel
