#include "storage/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "storage/aws_config.h"
#include "storage/encrypted_store.h"
#include "storage/hashing.h"

namespace recmodel::storage {

namespace {

std::string random_suffix() {
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::string out(8, 'x');
  for (char& c : out) c = chars[device() % (sizeof(chars) - 1)];
  return out;
}

void write_all_at(int fd, const char* data, size_t size, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail<DataError>("{}: write failed: {}", what, std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

// ---------------------------------------------------------------- file:// remotes

class FileStore;

class FilePartWriter : public PartWriter {
 public:
  FilePartWriter(fs::path final_path, uint64_t size) : final_(std::move(final_path)) {
    std::error_code ec;
    fs::create_directories(final_.parent_path(), ec);
    if (ec) fail<RemoteError>("{}: cannot create directory: {}", final_.parent_path().string(), ec.message());
    temp_ = final_;
    temp_ += ".upload-" + random_suffix();
    fd_ = ::open(temp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0) fail<RemoteError>("{}: cannot create: {}", temp_.string(), std::strerror(errno));
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      fail<RemoteError>("{}: cannot size to {} bytes: {}", temp_.string(), size, std::strerror(errno));
  }
  ~FilePartWriter() override {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(temp_.c_str());
    }
  }
  bool reusable(size_t, std::string_view) override { return false; }
  void write(size_t, uint64_t offset, std::string_view data) override {
    write_all_at(fd_, data.data(), data.size(), offset, temp_.string());
  }
  void commit() override {
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      ::unlink(temp_.c_str());
      fail<RemoteError>("{}: cannot flush: {}", final_.string(), std::strerror(errno));
    }
    fd_ = -1;
    std::error_code ec;
    fs::rename(temp_, final_, ec);
    if (ec) {
      ::unlink(temp_.c_str());
      fail<RemoteError>("{}: cannot rename into place: {}", final_.string(), ec.message());
    }
    try {
      fsync_directory(final_.parent_path());
    } catch (const DataError& e) {
      throw RemoteError(e.what());
    }
  }
  void abort() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
  }
  void keep() override { abort(); }

 private:
  fs::path final_;
  fs::path temp_;
  int fd_ = -1;
};

class FileStore : public ObjectStore {
 public:
  explicit FileStore(const RemoteSpec& spec) : root_(spec.path) {}

  std::string describe(const std::string& key) const override { return (root_ / key).string(); }

  std::optional<uint64_t> size_of(const std::string& key) override {
    std::error_code ec;
    auto status = fs::status(root_ / key, ec);
    if (ec || !fs::is_regular_file(status)) return std::nullopt;
    return static_cast<uint64_t>(fs::file_size(root_ / key, ec));
  }

  std::optional<std::string> local_sha256(const std::string& key) override {
    std::error_code ec;
    if (!fs::is_regular_file(root_ / key, ec)) return std::nullopt;
    try {
      return sha256_file(root_ / key);
    } catch (const Error& e) {
      throw RemoteError(e.what());
    }
  }

  std::string read(const std::string& key) override {
    std::error_code ec;
    if (!fs::is_regular_file(root_ / key, ec)) fail<NotFoundError>("{}: not found", describe(key));
    return read_file(root_ / key);
  }

  void read_range(const std::string& key, uint64_t offset, uint64_t length, char* out) override {
    int fd = ::open((root_ / key).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) fail<NotFoundError>("{}: not found", describe(key));
      fail<RemoteError>("{}: cannot open: {}", describe(key), std::strerror(errno));
    }
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int saved = errno;
        ::close(fd);
        if (n == 0) fail<IntegrityError>("{}: shorter than expected ({} bytes at offset {} missing)", describe(key),
                                         length - done, offset + done);
        fail<RemoteError>("{}: read failed: {}", describe(key), std::strerror(saved));
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }

  void read_range_to(const std::string& key, uint64_t offset, uint64_t length,
                     const std::function<void(const char*, size_t)>& sink) override {
    constexpr uint64_t kBlock = uint64_t{1} << 20;  // what a file read hands on at a time
    std::string block;
    for (uint64_t done = 0; done < length; done += block.size()) {
      block.resize(std::min(kBlock, length - done));
      read_range(key, offset + done, block.size(), block.data());
      sink(block.data(), block.size());
    }
  }

  void write(const std::string& key, std::string_view data, const std::string&) override {
    fs::path path = root_ / key;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) fail<RemoteError>("{}: cannot create directory: {}", path.parent_path().string(), ec.message());
    try {
      write_file_atomic(path, data);
    } catch (const DataError& e) {
      throw RemoteError(e.what());
    }
  }

  std::unique_ptr<PartWriter> write_parts(const std::string& key, uint64_t size, uint64_t) override {
    return std::make_unique<FilePartWriter>(root_ / key, size);
  }

  std::vector<StoreEntry> list(const std::string& prefix) override {
    std::vector<StoreEntry> entries;
    fs::path start = root_ / fs::path(prefix).parent_path();
    std::error_code ec;
    if (!fs::is_directory(start, ec)) return entries;
    for (auto it = fs::recursive_directory_iterator(start, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string key = fs::relative(it->path(), root_, ec).generic_string();
      if (key.rfind(prefix, 0) != 0) continue;
      if (key.find(".upload-") != std::string::npos || key.find(".tmp-") != std::string::npos) continue;
      StoreEntry entry;
      entry.key = key;
      entry.size = static_cast<uint64_t>(it->file_size(ec));
      entries.push_back(std::move(entry));
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
    return entries;
  }

  void remove(const std::string& key) override {
    std::error_code ec;
    fs::remove(root_ / key, ec);
  }

 private:
  fs::path root_;
};

// ---------------------------------------------------------------- s3:// remotes

class S3PartWriter : public PartWriter {
 public:
  S3PartWriter(S3Client& client, std::string key, uint64_t size, uint64_t part_size)
      : client_(client), key_(std::move(key)), size_(size), part_size_(part_size) {
    // Resume: an upload of this key left open by an interrupted run keeps its parts.
    auto uploads = client_.list_uploads(key_);
    std::sort(uploads.begin(), uploads.end(),
              [](const auto& a, const auto& b) { return a.initiated > b.initiated; });
    for (const auto& upload : uploads) {
      auto parts = client_.list_parts(key_, upload.upload_id);
      if (upload_id_.empty()) {
        upload_id_ = upload.upload_id;
        for (const auto& part : parts) existing_[part.number] = part;
      } else {
        stale_.push_back(upload.upload_id);
      }
    }
    if (upload_id_.empty()) upload_id_ = client_.create_multipart(key_);
    size_t count = static_cast<size_t>((size_ + part_size_ - 1) / part_size_);
    etags_.resize(count);
  }

  // Makes room for part `index` (a wrapping store, the encrypted one, may make its first part
  // larger than the others, so the count above can be one short). Called under mutex_.
  void track(size_t index) {
    if (etags_.size() <= index) etags_.resize(index + 1);
  }
  ~S3PartWriter() override = default;

  size_t resumable_parts() const override { return existing_.size(); }

  bool reusable(size_t index, std::string_view data) override {
    auto found = existing_.find(static_cast<int>(index + 1));
    if (found == existing_.end() || found->second.size != data.size()) return false;
    std::string etag = found->second.etag;
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    if (etag != md5_hex(data)) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    track(index);
    etags_[index] = found->second.etag;
    return true;
  }

  void write(size_t index, uint64_t, std::string_view data) override {
    std::string etag = client_.upload_part(key_, upload_id_, static_cast<int>(index + 1), data);
    std::lock_guard<std::mutex> lock(mutex_);
    track(index);
    etags_[index] = etag;
  }

  void commit() override {
    std::vector<PartInfo> parts;
    while (!etags_.empty() && etags_.back().empty()) etags_.pop_back();  // the count was an estimate
    for (size_t i = 0; i < etags_.size(); ++i) {
      if (etags_[i].empty()) throw Error(ExitCode::internal, fmt::format("{}: part {} was never written", key_, i + 1));
      parts.push_back(PartInfo{static_cast<int>(i + 1), 0, etags_[i]});
    }
    client_.complete_multipart(key_, upload_id_, parts);
    for (const auto& id : stale_) {
      try {
        client_.abort_multipart(key_, id);
      } catch (const Error&) {
      }
    }
  }

  void abort() override {
    try {
      client_.abort_multipart(key_, upload_id_);
    } catch (const Error&) {
      // Best effort: the original failure is what the user needs to see.
    }
  }

  void keep() override {}

 private:
  S3Client& client_;
  std::string key_;
  uint64_t size_;
  uint64_t part_size_;
  std::string upload_id_;
  std::map<int, PartInfo> existing_;
  std::vector<std::string> stale_;
  std::vector<std::string> etags_;
  std::mutex mutex_;
};

class S3Store : public ObjectStore {
 public:
  S3Store(std::unique_ptr<S3Client> client, std::string prefix)
      : owned_(std::move(client)), client_(*owned_), prefix_(std::move(prefix)) {}

  std::string describe(const std::string& key) const override { return client_.describe(full(key)); }

  std::optional<uint64_t> size_of(const std::string& key) override {
    auto info = client_.head(full(key));
    if (!info) return std::nullopt;
    return info->size;
  }

  std::string read(const std::string& key) override { return client_.get(full(key)); }

  void read_range(const std::string& key, uint64_t offset, uint64_t length, char* out) override {
    uint64_t at = 0;
    client_.get_range(full(key), offset, length, [&](const char* data, size_t size) {
      std::memcpy(out + at, data, size);
      at += size;
    });
  }

  void read_range_to(const std::string& key, uint64_t offset, uint64_t length,
                     const std::function<void(const char*, size_t)>& sink) override {
    client_.get_range(full(key), offset, length, sink);
  }

  void write(const std::string& key, std::string_view data, const std::string& sha256) override {
    client_.put(full(key), data, sha256);
  }

  std::unique_ptr<PartWriter> write_parts(const std::string& key, uint64_t size, uint64_t part_size) override {
    return std::make_unique<S3PartWriter>(client_, full(key), size, part_size);
  }

  std::vector<StoreEntry> list(const std::string& prefix) override {
    std::vector<StoreEntry> entries;
    size_t strip = prefix_.empty() ? 0 : prefix_.size() + 1;
    for (auto& info : client_.list(full(prefix))) {
      if (info.key.size() < strip) continue;
      entries.push_back(StoreEntry{info.key.substr(strip), info.size, info.last_modified});
    }
    return entries;
  }

  void remove(const std::string& key) override { client_.remove(full(key)); }

 private:
  std::string full(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "/" + key; }

  std::unique_ptr<S3Client> owned_;
  S3Client& client_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<S3Client> make_s3_client(const RemoteSpec& spec, const StoreOptions& options) {
  AwsSettings aws = resolve_aws_settings(spec.profile);
  std::string label = fmt::format("remote '{}' ({})", spec.name, spec.url);
  if (!aws.credentials)
    fail<RemoteError>("{}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put profile '{}' "
                      "in ~/.aws/credentials (remote add --profile)",
                      label, aws.profile);
  S3Settings settings;
  settings.endpoint = !spec.endpoint.empty() ? spec.endpoint : aws.endpoint;
  settings.bucket = spec.bucket;
  settings.region = !spec.region.empty() ? spec.region : aws.region;
  settings.path_style = spec.path_style.value_or(false);
  settings.http.ca_bundle = !spec.ca_bundle.empty() ? spec.ca_bundle : aws.ca_bundle;
  settings.http.stall_timeout_s = options.stall_timeout_s;
  settings.retry = options.retry;
  settings.label = label;
  settings.log = options.log;
  return std::make_unique<S3Client>(std::move(settings), *aws.credentials);
}

fs::path encryption_key_file(const RemoteSpec& spec, const StoreOptions& options) {
  if (!options.key_file.empty()) return options.key_file;
  const char* env = std::getenv("RECMODEL_ENCRYPTION_KEY_FILE");
  if (env && *env) return env;
  if (!spec.key_file.empty()) return spec.key_file;
  // Not found rather than a usage error: a pull searching every remote skips this one.
  fail<NotFoundError>("remote '{}' is encrypted and no key file is given: pass --key-file FILE or set "
                      "RECMODEL_ENCRYPTION_KEY_FILE",
                      spec.name);
}

std::unique_ptr<ObjectStore> open_store(const RemoteSpec& spec, const StoreOptions& options) {
  std::unique_ptr<ObjectStore> store;
  if (spec.kind == RemoteKind::file)
    store = std::make_unique<FileStore>(spec);
  else
    store = std::make_unique<S3Store>(make_s3_client(spec, options), spec.prefix);
  if (!spec.encrypt) return store;
  return open_encrypted_store(std::move(store), read_key_file(encryption_key_file(spec, options)));
}

}  // namespace recmodel::storage
