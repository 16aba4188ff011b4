// Moving model versions between a local directory and remotes, verified by SHA-256:
// only objects the destination lacks move; large objects go in parallel parts whose bytes
// are hashed in order as they pass, so memory stays at jobs x part size whatever the file
// size, and interrupted transfers resume (ListParts on push, ranged GETs on pull).
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

struct TransferOptions {
  int jobs = 8;                                  // concurrent requests
  uint64_t part_size = uint64_t{8} << 20;        // bytes per part of a multipart transfer
  uint64_t multipart_threshold = uint64_t{8} << 20;  // larger objects go in parts
};

struct TransferStats {
  uint64_t objects = 0;            // distinct objects the version needs
  uint64_t transferred_objects = 0;
  uint64_t transferred_bytes = 0;  // bytes that moved over the wire in this run
  uint64_t skipped_objects = 0;    // already at the destination
  uint64_t skipped_bytes = 0;
  uint64_t resumed_parts = 0;      // parts an interrupted run had already moved
  uint64_t resumed_bytes = 0;
};

// Receives progress from the transfer threads (calls are serialized by the caller's lock).
struct TransferObserver {
  std::function<void(uint64_t total_bytes)> start;
  std::function<void(const std::string& path, uint64_t size)> file_start;  // large files only
  std::function<void(const std::string& path, uint64_t bytes)> file_advance;
  std::function<void(const std::string& path)> file_done;
  std::function<void(uint64_t bytes)> advance;  // bytes done, any file
};

// Parses "8MiB", "64KiB", "5MB", "1GiB", "65536"; returns nothing when it is not a size.
std::optional<uint64_t> parse_byte_size(const std::string& text);
// Returns bytes as "12.3 MB".
std::string human_bytes(uint64_t bytes);

// Uploads every object of `manifest` that `store` lacks, reading files from `dir`.
TransferStats upload_objects(const fs::path& dir, const Manifest& manifest, ObjectStore& store,
                             const TransferOptions& options, const TransferObserver& observer);

// Copies every object of `manifest` that `to` lacks from `from`, part by part (no local copy).
TransferStats copy_objects(ObjectStore& from, ObjectStore& to, const Manifest& manifest,
                           const TransferOptions& options, const TransferObserver& observer);

// Returns the directory where a pull of `manifest_text` into `out` keeps its partial files.
fs::path pull_staging_dir(const fs::path& out, const std::string& manifest_text);

// Downloads every file of `manifest` into `staging` (resuming what an earlier run left there),
// verifies each SHA-256, and leaves the complete tree in `staging`.
TransferStats download_files(ObjectStore& store, const Manifest& manifest, const fs::path& staging,
                             const TransferOptions& options, const TransferObserver& observer);

}  // namespace recmodel::storage
