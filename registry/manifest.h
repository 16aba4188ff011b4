// The artifact manifest of a model version: every file under its directory with size and
// SHA-256, so `registry verify` can prove the bytes on disk are the bytes registered.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace recmodel::registry {

namespace fs = std::filesystem;

struct FileEntry {
  std::string path;  // relative to the version's directory, '/'-separated
  uint64_t size = 0;
  std::string sha256;
};

struct Manifest {
  std::vector<FileEntry> files;  // sorted by path

  uint64_t total_size() const;
  // Returns the SHA-256 of the canonical listing ("path\tsize\tsha256\n" per file, sorted):
  // two versions with the same digest hold the same bytes.
  std::string digest() const;
  // Returns the entry for `path`, or nullptr.
  const FileEntry* find(const std::string& path) const;
};

// Lists and hashes every regular file under `dir` (symbolic links to files are followed;
// links to directories are refused, as they could loop). `progress` receives bytes hashed.
Manifest compute_manifest(const fs::path& dir, int threads, const std::function<void(uint64_t)>& progress = {});

// Returns the manifest as JSON: {"files": [{"path", "size", "sha256"}, ...]}.
nlohmann::json manifest_to_json(const Manifest& manifest);
// Parses a manifest written by manifest_to_json (or `registry show --json`); `source` names it in errors.
Manifest manifest_from_json(const nlohmann::json& document, const std::string& source);

// Checks that the files a pre-hashed manifest lists exist under `dir` with the listed sizes.
void check_manifest_sizes(const fs::path& dir, const Manifest& manifest, const std::string& source);

struct VerifyReport {
  size_t checked = 0;                 // files of the manifest present and hashed
  std::vector<std::string> missing;   // in the manifest, not on disk
  std::vector<std::string> changed;   // size or SHA-256 differs
  std::vector<std::string> untracked; // on disk, not in the manifest (reported, not a failure)
  bool directory_missing = false;
  bool ok() const { return missing.empty() && changed.empty() && !directory_missing; }
};

// Re-hashes the files of `manifest` under `dir` and compares.
VerifyReport verify_manifest(const fs::path& dir, const Manifest& manifest, int threads,
                             const std::function<void(uint64_t)>& progress = {});

// Returns true when `value` is 64 lowercase hex digits.
bool is_sha256(const std::string& value);

}  // namespace recmodel::registry
