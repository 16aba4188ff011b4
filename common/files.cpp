#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdio.h>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>

#include "common/error.h"
#include "common/text.h"

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
  // "v/" or "." would put the temp file inside a directory instead of beside the file.
  const std::string name = path.filename().string();
  if (name.empty() || name == "." || name == "..")
    fail<UsageError>("{} names a directory, not a file to write; give a file name",
                     quoted_for_message(path.string()));
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

namespace {

// renameat2(2) with `flags`; ENOSYS where the C library lacks it.
int rename_with_flags(const fs::path& from, const fs::path& to, unsigned flags) {
#if defined(RENAME_NOREPLACE) && defined(RENAME_EXCHANGE)
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
#else
  (void)from, (void)to, (void)flags;
  errno = ENOSYS;
  return -1;
#endif
}

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

// Whether renameat2 failed because the kernel or filesystem lacks the flag, not the rename.
bool flags_unsupported(int error) { return error == EINVAL || error == ENOSYS || error == EOPNOTSUPP; }

const char* kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a directory";
}

[[noreturn]] void refuse_non_directory(const fs::path& final_path, mode_t mode) {
  fail<UsageError>("{}: is {}, not a directory; --out names the directory to create and a file is never replaced "
                   "(remove it or choose another --out)",
                   final_path.string(), kind_of(mode));
}

[[noreturn]] void refuse_appeared(const fs::path& final_path) {
  fail<UsageError>("{}: appeared while working; not replacing it (pass --force to replace it)", final_path.string());
}

}  // namespace

fs::path directory_to_create(const fs::path& path) {
  std::string text = path.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  fs::path result(text);
  const std::string name = result.filename().string();
  if (text.empty() || text == "/" || name == "." || name == "..")
    fail<UsageError>("{} names no new directory; give the name of a directory to create",
                     quoted_for_message(path.string()));
  return result;
}

void check_replaceable(const fs::path& final_path, bool replace) {
  struct stat st;
  // Nothing there (or a parent that is not a directory, which creating it reports).
  if (::lstat(final_path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) refuse_non_directory(final_path, st.st_mode);
  if (!replace)
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", final_path.string());
}

void commit_directory(const fs::path& staged, const fs::path& final_path, bool replace) {
  const fs::path parent = parent_or_dot(final_path);
  // A few rounds: with --force, concurrent writers may each swap the final path meanwhile.
  for (int attempt = 0; attempt < 8; ++attempt) {
    struct stat st;
    if (::lstat(final_path.c_str(), &st) != 0) {
      if (rename_with_flags(staged, final_path, RENAME_NOREPLACE) == 0) return fsync_directory(parent);
      int error = errno;
      if (flags_unsupported(error)) {
        // No renameat2 here: rename(2) would silently replace an empty directory, so look
        // once more right before it (a narrow window remains on such filesystems).
        if (::lstat(final_path.c_str(), &st) != 0) {
          if (::rename(staged.c_str(), final_path.c_str()) == 0) return fsync_directory(parent);
          error = errno;
        } else {
          error = EEXIST;
        }
      }
      if (error == EEXIST || error == ENOTEMPTY) {
        if (!replace) refuse_appeared(final_path);
        continue;  // replace what appeared
      }
      fail<DataError>("{}: cannot rename {} into place: {}", final_path.string(), staged.string(),
                      std::strerror(error));
    }
    if (!replace) refuse_appeared(final_path);
    if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) refuse_non_directory(final_path, st.st_mode);
    if (rename_with_flags(staged, final_path, RENAME_EXCHANGE) == 0) {
      // `staged` now names what was there. A file swapped in since the check goes back, refused.
      struct stat old;
      if (::lstat(staged.c_str(), &old) == 0 && !S_ISDIR(old.st_mode) && !S_ISLNK(old.st_mode)) {
        rename_with_flags(staged, final_path, RENAME_EXCHANGE);
        refuse_non_directory(final_path, old.st_mode);
      }
      fsync_directory(parent);
      std::error_code ec;
      fs::remove_all(staged, ec);  // a link is removed, never followed
      return;
    }
    int error = errno;
    if (error == ENOENT) continue;  // it went away meanwhile
    if (!flags_unsupported(error))
      fail<DataError>("{}: cannot swap in {}: {}", final_path.string(), staged.string(), std::strerror(error));
    // No RENAME_EXCHANGE: move the old one aside, rename, and only then remove the old one.
    fs::path old = final_path;
    old += ".old-" + random_suffix();
    if (::rename(final_path.c_str(), old.c_str()) != 0) {
      if (errno == ENOENT) continue;
      fail<DataError>("{}: cannot move the old directory aside: {}", final_path.string(), std::strerror(errno));
    }
    if (::rename(staged.c_str(), final_path.c_str()) == 0) {
      fsync_directory(parent);
      std::error_code ec;
      fs::remove_all(old, ec);
      return;
    }
    error = errno;
    // Put the old one back; if another writer's result took its place, --force replaces it anyway.
    if (::rename(old.c_str(), final_path.c_str()) != 0) {
      std::error_code ec;
      fs::remove_all(old, ec);
    }
    if (error == EEXIST || error == ENOTEMPTY) continue;
    fail<DataError>("{}: cannot rename {} into place: {}", final_path.string(), staged.string(), std::strerror(error));
  }
  fail<IntegrityError>("{}: kept changing while it was being replaced (another writer at the same time?); not "
                       "replaced",
                       final_path.string());
}

StagingDir::StagingDir(const fs::path& final_path, bool replace)
    : final_(directory_to_create(final_path)), replace_(replace) {
  check_replaceable(final_, replace_);
  std::error_code ec;
  fs::path parent = parent_or_dot(final_);
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
  commit_directory(staging_, final_, replace_);
  committed_ = true;
}

}  // namespace recmodel
