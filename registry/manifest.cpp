#include "registry/manifest.h"

#include <algorithm>
#include <atomic>
#include <mutex>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "common/parallel.h"

namespace recmodel::registry {

namespace {

// Hashes `entries[i]` (paths relative to `dir`) on `threads` threads, filling in sha256.
void hash_files(const fs::path& dir, std::vector<FileEntry>& entries, int threads,
                const std::function<void(uint64_t)>& progress) {
  std::atomic<uint64_t> done{0};
  std::mutex progress_mutex;
  parallel_ranges(entries.size(), threads, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      entries[i].sha256 = sha256_file(dir / entries[i].path);
      uint64_t total = done += entries[i].size;
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(total);
      }
    }
  });
}

// Returns the regular files under `dir` with their sizes, sorted by relative path.
std::vector<FileEntry> list_files(const fs::path& dir) {
  std::vector<FileEntry> entries;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) fail<DataError>("{}: cannot list the directory: {}", dir.string(), ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail<DataError>("{}: cannot list the directory: {}", dir.string(), ec.message());
    const fs::path& path = it->path();
    fs::path relative = path.lexically_relative(dir);
    std::error_code stat_ec;
    fs::file_status status = fs::status(path, stat_ec);  // follows links
    if (fs::is_directory(status)) {
      if (fs::is_symlink(it->symlink_status()))
        fail<DataError>("{}: is a link to a directory; a model directory holds plain files (copy it in instead)",
                        path.string());
      continue;
    }
    if (stat_ec || !fs::is_regular_file(status)) {
      if (fs::is_symlink(it->symlink_status()))
        fail<DataError>("{}: is a broken symbolic link; fix or remove it before registering", path.string());
      fail<DataError>("{}: is not a regular file (a socket, pipe or device); remove it before registering",
                      path.string());
    }
    uint64_t size = fs::file_size(path, stat_ec);
    if (stat_ec) fail<DataError>("{}: cannot read its size: {}", path.string(), stat_ec.message());
    entries.push_back({relative.generic_string(), size, ""});
  }
  std::sort(entries.begin(), entries.end(), [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  return entries;
}

}  // namespace

uint64_t Manifest::total_size() const {
  uint64_t total = 0;
  for (const auto& file : files) total += file.size;
  return total;
}

std::string Manifest::digest() const {
  std::string listing;
  for (const auto& file : files) listing += fmt::format("{}\t{}\t{}\n", file.path, file.size, file.sha256);
  return sha256_hex(listing);
}

const FileEntry* Manifest::find(const std::string& path) const {
  auto it = std::lower_bound(files.begin(), files.end(), path,
                             [](const FileEntry& entry, const std::string& key) { return entry.path < key; });
  return it != files.end() && it->path == path ? &*it : nullptr;
}

bool is_sha256(const std::string& value) {
  return value.size() == 64 &&
         std::all_of(value.begin(), value.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Manifest compute_manifest(const fs::path& dir, int threads, const std::function<void(uint64_t)>& progress) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail<NotFoundError>("{}: no such directory (--path)", dir.string());
  if (!fs::is_directory(dir, ec)) fail<DataError>("{}: is not a directory; --path takes a model directory", dir.string());
  Manifest manifest;
  manifest.files = list_files(dir);
  if (manifest.files.empty()) fail<DataError>("{}: is empty; there is no model to register", dir.string());
  hash_files(dir, manifest.files, threads, progress);
  return manifest;
}

nlohmann::json manifest_to_json(const Manifest& manifest) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& file : manifest.files)
    files.push_back({{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
  return {{"files", files}};
}

Manifest manifest_from_json(const nlohmann::json& document, const std::string& source) {
  const nlohmann::json* files = nullptr;
  if (document.is_object() && document.contains("files")) files = &document["files"];
  if (!files || !files->is_array())
    fail<DataError>("{}: not a manifest: expected {{\"files\": [{{\"path\", \"size\", \"sha256\"}}, ...]}}", source);
  Manifest manifest;
  for (size_t i = 0; i < files->size(); ++i) {
    const auto& file = (*files)[i];
    if (!file.is_object() || !file.contains("path") || !file["path"].is_string() || !file.contains("size") ||
        !file["size"].is_number_unsigned() || !file.contains("sha256") || !file["sha256"].is_string())
      fail<DataError>("{}: files[{}] needs \"path\" (text), \"size\" (a whole number) and \"sha256\"", source, i);
    FileEntry entry{file["path"].get<std::string>(), file["size"].get<uint64_t>(), file["sha256"].get<std::string>()};
    fs::path relative(entry.path);
    bool escapes = relative.is_absolute() || entry.path.empty();
    for (const auto& part : relative) escapes = escapes || part == "..";
    if (escapes) fail<DataError>("{}: files[{}]: path '{}' is not inside the model directory", source, i, entry.path);
    if (!is_sha256(entry.sha256))
      fail<DataError>("{}: files[{}] ({}): sha256 '{}' is not 64 lowercase hex digits", source, i, entry.path,
                      entry.sha256);
    manifest.files.push_back(std::move(entry));
  }
  if (manifest.files.empty()) fail<DataError>("{}: the manifest lists no files", source);
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  for (size_t i = 1; i < manifest.files.size(); ++i)
    if (manifest.files[i].path == manifest.files[i - 1].path)
      fail<DataError>("{}: lists {} twice", source, manifest.files[i].path);
  return manifest;
}

void check_manifest_sizes(const fs::path& dir, const Manifest& manifest, const std::string& source) {
  for (const auto& file : manifest.files) {
    std::error_code ec;
    uint64_t size = fs::file_size(dir / file.path, ec);
    if (ec) fail<NotFoundError>("{}: lists {}, which is not in {}", source, file.path, dir.string());
    if (size != file.size)
      fail<IntegrityError>("{}: {} is {} bytes on disk but the manifest says {}; it is not the manifest of {}", source,
                           file.path, size, file.size, dir.string());
  }
}

VerifyReport verify_manifest(const fs::path& dir, const Manifest& manifest, int threads,
                             const std::function<void(uint64_t)>& progress) {
  VerifyReport report;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    report.directory_missing = true;
    for (const auto& file : manifest.files) report.missing.push_back(file.path);
    return report;
  }
  std::vector<FileEntry> present;
  for (const auto& file : manifest.files) {
    std::error_code size_ec;
    uint64_t size = fs::file_size(dir / file.path, size_ec);
    if (size_ec) {
      report.missing.push_back(file.path);
    } else if (size != file.size) {
      report.changed.push_back(file.path);
    } else {
      present.push_back({file.path, file.size, ""});
    }
  }
  hash_files(dir, present, threads, progress);
  for (const auto& file : present) {
    ++report.checked;
    if (manifest.find(file.path)->sha256 != file.sha256) report.changed.push_back(file.path);
  }
  std::sort(report.changed.begin(), report.changed.end());
  try {
    for (const auto& file : list_files(dir))
      if (!manifest.find(file.path)) report.untracked.push_back(file.path);
  } catch (const Error&) {
    // An odd entry in the directory does not make the registered files wrong.
  }
  return report;
}

}  // namespace recmodel::registry
