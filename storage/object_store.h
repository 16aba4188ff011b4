// The interface transfers see: a flat key space of immutable objects under a remote's root,
// implemented by S3 (S3Client) and by directories (file:// remotes on a NAS or local disk).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/remote_config.h"
#include "storage/s3_client.h"

namespace recmodel::storage {

struct StoreEntry {
  std::string key;       // relative to the remote's root
  uint64_t size = 0;
  std::string modified;  // as the store reports it
};

// A large object written part by part, in parallel; parts left by an interrupted run can be
// reused. Exactly one of commit(), abort() or keep() ends it.
class PartWriter {
 public:
  virtual ~PartWriter() = default;
  // Returns whether part `index` holding `data` is already stored (from an interrupted run).
  virtual bool reusable(size_t index, std::string_view data) = 0;
  virtual void write(size_t index, uint64_t offset, std::string_view data) = 0;
  // How many bytes put() may add to a part's buffer (so the caller can allocate them up front,
  // rather than have a growing string double its allocation).
  virtual uint64_t put_slack(uint64_t part_size) const {
    (void)part_size;
    return 0;
  }
  // Stores part `index` unless it is reusable; returns whether it was. `buffer` is the caller's
  // to reuse afterwards, and a writer may change it in place (the encrypted one seals it there).
  virtual bool put(size_t index, uint64_t offset, std::string& buffer) {
    if (reusable(index, buffer)) return true;
    write(index, offset, buffer);
    return false;
  }
  // Makes the object visible under its key.
  virtual void commit() = 0;
  // Discards what was written (a failed multipart upload is aborted, not left billing).
  virtual void abort() = 0;
  // Leaves what was written for a later run to resume (after a lost connection).
  virtual void keep() = 0;
  // Returns the parts found from an interrupted run.
  virtual size_t resumable_parts() const { return 0; }
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Returns "s3://bucket/prefix/KEY" or "/path/KEY" for messages.
  virtual std::string describe(const std::string& key) const = 0;
  virtual std::optional<uint64_t> size_of(const std::string& key) = 0;
  // Returns the SHA-256 of an object's bytes where the store can compute it without a transfer
  // (a file remote hashes the file); nothing where it cannot (S3: only the size is known).
  virtual std::optional<std::string> local_sha256(const std::string& key) {
    (void)key;
    return std::nullopt;
  }
  // Called when size_of(key) is not the size a manifest lists, before that is reported: a store
  // that can tell why throws its own error (an encrypted one: "cannot decrypt ...", cut short).
  virtual void explain_size_mismatch(const std::string& key) { (void)key; }
  // Returns a whole small object (a manifest); NotFoundError when missing.
  virtual std::string read(const std::string& key) = 0;
  // Fills `out` with bytes [offset, offset + length) of `key`.
  virtual void read_range(const std::string& key, uint64_t offset, uint64_t length, char* out) = 0;
  // Streams bytes [offset, offset + length) of `key` to `sink` in pieces, in order (a wrapping
  // store, the encrypted one, opens them as they come, without a buffer of the whole range). The
  // default reads the range whole.
  virtual void read_range_to(const std::string& key, uint64_t offset, uint64_t length,
                             const std::function<void(const char* data, size_t size)>& sink) {
    std::string buffer(length, '\0');
    read_range(key, offset, length, buffer.data());
    sink(buffer.data(), buffer.size());
  }
  // Stores a whole object atomically; `sha256` is its hex digest (checked by S3 servers).
  virtual void write(const std::string& key, std::string_view data, const std::string& sha256) = 0;
  virtual std::unique_ptr<PartWriter> write_parts(const std::string& key, uint64_t size, uint64_t part_size) = 0;
  // Returns every object whose key starts with `prefix`.
  virtual std::vector<StoreEntry> list(const std::string& prefix) = 0;
  virtual void remove(const std::string& key) = 0;
};

struct StoreOptions {
  RetryPolicy retry;
  std::string key_file;  // an encrypted remote's key file (--key-file); "" = the environment's, else the config's
  long stall_timeout_s = 30;
  std::function<void(const std::string&)> log;
};

// Opens the store of remote `spec`: credentials, region and endpoint are resolved here. An
// encrypted remote is opened with the key file of options.key_file, else
// $RECMODEL_ENCRYPTION_KEY_FILE, else spec.key_file (NotFoundError when none is given).
std::unique_ptr<ObjectStore> open_store(const RemoteSpec& spec, const StoreOptions& options);

// Returns the key file an encrypted remote is opened with (see open_store).
fs::path encryption_key_file(const RemoteSpec& spec, const StoreOptions& options);

// Returns the S3 settings and credentials remote `spec` resolves to (for tests and `remote add`).
std::unique_ptr<S3Client> make_s3_client(const RemoteSpec& spec, const StoreOptions& options);

}  // namespace recmodel::storage
