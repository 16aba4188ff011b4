// The content-addressed layout every remote shares:
//   objects/sha256/ab/cdef...            one object per distinct file content
//   models/NAME/VERSION.json             the manifest of a model version: files, sizes, SHA-256
// Versions that share files share objects, so a push moves only what the remote lacks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace recmodel::storage {

namespace fs = std::filesystem;

inline constexpr int kManifestFormatVersion = 1;
inline constexpr const char* kManifestFormat = "recmodel-manifest";
// Larger manifests are refused before they are read or parsed (a real one is a few kB).
inline constexpr uint64_t kMaxManifestBytes = uint64_t{64} << 20;

struct ManifestFile {
  std::string path;     // relative, '/'-separated, checked by validate_relative_path
  uint64_t size = 0;
  std::string sha256;   // lowercase hex
};

struct Manifest {
  std::string name;
  std::string version;
  std::string classification;  // "private" keeps it off public remotes; "" = unclassified
  std::string created;         // UTC, ISO 8601
  std::vector<ManifestFile> files;  // sorted by path

  uint64_t total_size() const;
  // Returns whether both list the same files with the same contents and classification.
  bool same_contents(const Manifest& other) const;
};

// Checks a path read from a manifest: relative, no "..", ".", empty segments, backslashes,
// control characters (NUL, newline, ESC, DEL, C1, bidi and line separators), at most 4096 bytes
// with names of at most 255 and at most 128 segments deep;
// throws DataError naming `what` otherwise, so nothing lands outside the destination or reaches a terminal raw.
void validate_relative_path(const std::string& path, const std::string& what);

// Throws IntegrityError (exit 6) naming `what` when `manifest`, read from NAME/VERSION's key,
// names another version: a manifest copied or moved under another key is not that version.
void check_manifest_key(const Manifest& manifest, const std::string& name, const std::string& version,
                        const std::string& what);

// Checks a model name or version used in keys: letters, digits, '.', '_', '-', not "." or "..".
void validate_key_part(const std::string& text, const char* what);

// Returns the key of the object holding content `sha256`.
std::string object_key(const std::string& sha256);
// Returns the key of the manifest of NAME/VERSION.
std::string manifest_key(const std::string& name, const std::string& version);

// Lists every regular file under `dir` with its size and SHA-256 (hashed on `threads` threads);
// `on_bytes` is called with the bytes hashed so far.
Manifest build_manifest(const fs::path& dir, int threads, const std::function<void(uint64_t)>& on_bytes = {});

// Returns the manifest as JSON text (stable: same manifest, same bytes).
std::string manifest_to_json(const Manifest& manifest);

// Parses and checks a manifest; throws DataError naming `what` (format, version, name and version
// as key parts, paths, digests, a path listed twice, one SHA-256 listed with two sizes).
Manifest parse_manifest(std::string_view text, const std::string& what);

}  // namespace recmodel::storage
