// Moving model versions between a local directory and remotes, verified by SHA-256:
// only objects the destination lacks move; large objects go in parallel parts whose bytes
// are hashed in order as they pass, so memory stays at jobs x part size whatever the file
// size (and within kTransferMemoryBudget whatever --jobs asks), and interrupted transfers resume
// (ListParts on push, ranged GETs on pull).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "storage/manifest.h"
#include "storage/object_store.h"

namespace recmodel::storage {

namespace fs = std::filesystem;

// Transfer buffers in flight, all jobs together: whatever --jobs asks, fewer parts move at once
// when parts are large (at least one at a time).
inline constexpr uint64_t kTransferMemoryBudget = uint64_t{512} << 20;

struct TransferOptions {
  int jobs = 8;                                  // concurrent requests
  uint64_t part_size = uint64_t{8} << 20;        // bytes per part of a multipart transfer
  uint64_t multipart_threshold = uint64_t{8} << 20;  // larger objects go in parts
  uint64_t memory_budget = kTransferMemoryBudget;    // bytes of buffers held at once
};

struct TransferStats {
  uint64_t objects = 0;            // distinct objects the version needs
  uint64_t transferred_objects = 0;
  uint64_t transferred_bytes = 0;  // bytes that moved over the wire in this run
  uint64_t skipped_objects = 0;    // already at the destination
  uint64_t skipped_bytes = 0;
  uint64_t resumed_parts = 0;      // parts an interrupted run had already moved
  uint64_t resumed_bytes = 0;
  uint64_t replaced_objects = 0;   // at the destination with the wrong size or bytes: copied again
};

// Receives progress from the transfer threads (calls are serialized by the caller's lock).
struct TransferObserver {
  std::function<void(uint64_t total_bytes)> start;
  std::function<void(const std::string& path, uint64_t size)> file_start;  // large files only
  std::function<void(const std::string& path, uint64_t bytes)> file_advance;
  std::function<void(const std::string& path)> file_done;
  std::function<void(uint64_t bytes)> advance;  // bytes done, any file
  std::function<void(const std::string& message)> warn;  // e.g. a corrupt object replaced
};

// Parses "8MiB", "64KiB", "5MB", "1GiB", "65536"; returns nothing when it is not a size.
std::optional<uint64_t> parse_byte_size(const std::string& text);
// Returns bytes as "12.3 MB".
std::string human_bytes(uint64_t bytes);

// An object counts as already at the destination when its size there is the manifest's and,
// where the store can hash it locally (a file remote), its SHA-256 too; one that differs is
// copied again over it (observer.warn names it). After the transfer every copied object's size
// at the destination is checked again (IntegrityError, exit 6, naming it).

// Uploads every object of `manifest` that `store` lacks, reading files from `dir`.
TransferStats upload_objects(const fs::path& dir, const Manifest& manifest, ObjectStore& store,
                             const TransferOptions& options, const TransferObserver& observer);

// Copies every object of `manifest` that `to` lacks from `from`, part by part (no local copy).
TransferStats copy_objects(ObjectStore& from, ObjectStore& to, const Manifest& manifest,
                           const TransferOptions& options, const TransferObserver& observer);

// No transfer buffer is larger than this, whatever a manifest declares: downloads use parts of
// at most this size (whatever --part-size asks) and fetch larger objects in parts.
inline constexpr uint64_t kMaxPartBuffer = uint64_t{64} << 20;

// The work directory of a pull, beside --out: `.OUT.recmodel-pull-SHA12-XXXXXX`, made by mkdtemp
// (mode 0700, an unpredictable name) and locked while in use. It holds `files/`, the tree that
// becomes --out, and `parts/`, partial downloads named by SHA-256 (no manifest path lands there).
class PullStaging {
 public:
  // Reuses the directory an interrupted pull of the same manifest into `out` left (a directory of
  // this user's, mode 0700, not a link, not in use), else creates a fresh one.
  PullStaging(const fs::path& out, const std::string& manifest_text);
  ~PullStaging();
  PullStaging(const PullStaging&) = delete;
  PullStaging& operator=(const PullStaging&) = delete;

  const fs::path& path() const { return path_; }
  // Returns whether an interrupted pull's directory is being reused.
  bool resumed() const { return resumed_; }
  // Removes the directory and everything in it (links removed, never followed).
  void remove();

 private:
  fs::path path_;
  bool resumed_ = false;
  int lock_fd_ = -1;
};

// Refuses (DataError naming the file, cut for the message) a manifest path that would be longer
// than PATH_MAX once under the work directory of a pull into `out`, and an `out` whose work
// directory name would exceed NAME_MAX: checked before anything is created.
void check_path_lengths(const Manifest& manifest, const fs::path& out, const std::string& what);

// Returns the folder of a pull's work directory that holds the finished tree.
fs::path pull_tree(const fs::path& staging);

// Downloads every file of `manifest` into pull_tree(staging), creating `staging` (mode 0700) when
// absent. Whatever an earlier run left there is hashed before it is kept, links and files the
// manifest does not list are removed, and nothing is opened through a link. Declared sizes are
// checked against the store's real object sizes before anything is allocated or written (exit 6).
// On return the tree holds exactly the manifest's files, regular, verified and flushed.
TransferStats download_files(ObjectStore& store, const Manifest& manifest, const fs::path& staging,
                             const TransferOptions& options, const TransferObserver& observer);

}  // namespace recmodel::storage
