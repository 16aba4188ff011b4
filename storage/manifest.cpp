#include "storage/manifest.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/text.h"
#include "common/files.h"
#include "common/json.h"
#include "common/parallel.h"
#include "storage/hashing.h"

namespace recmodel::storage {

namespace {

bool is_sha256(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

// Hashes a file in 1 MiB reads, reporting progress.
std::string hash_file(const fs::path& path, const std::function<void(uint64_t)>& on_read) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail<DataError>("{}: cannot open for hashing", path.string());
  Sha256Stream sha;
  std::string buffer(1 << 20, '\0');
  for (;;) {
    size_t n = std::fread(buffer.data(), 1, buffer.size(), file);
    if (n) {
      sha.update(std::string_view(buffer.data(), n));
      if (on_read) on_read(n);
    }
    if (n < buffer.size()) break;
  }
  bool bad = std::ferror(file);
  std::fclose(file);
  if (bad) fail<DataError>("{}: read error while hashing", path.string());
  return sha.hex();
}

}  // namespace

uint64_t Manifest::total_size() const {
  uint64_t total = 0;
  for (const auto& file : files) total += file.size;
  return total;
}

bool Manifest::same_contents(const Manifest& other) const {
  if (files.size() != other.files.size() || classification != other.classification) return false;
  for (size_t i = 0; i < files.size(); ++i)
    if (files[i].path != other.files[i].path || files[i].size != other.files[i].size ||
        files[i].sha256 != other.files[i].sha256)
      return false;
  return true;
}

namespace {

constexpr size_t kMaxPathBytes = 4096;     // PATH_MAX
constexpr size_t kMaxSegmentBytes = 255;   // NAME_MAX
constexpr size_t kMaxPathDepth = 128;      // segments, the file's name included

}  // namespace

void validate_relative_path(const std::string& path, const std::string& what) {
  if (path.empty()) fail<DataError>("{}: a file has an empty path", what);
  // Checked first, so no message below prints such a path raw.
  if (has_control_character(path))
    fail<DataError>("{}: unsafe path {} (a control character); refusing to write it", what,
                    quoted_for_message(path));
  if (path.find('\\') != std::string::npos)
    fail<DataError>("{}: unsafe path {} (a backslash); refusing to write it", what, quoted_for_message(path));
  if (path.size() > kMaxPathBytes)
    fail<DataError>("{}: unsafe path {} is {} bytes long (at most {}); refusing to write it", what,
                    quoted_for_message(path), path.size(), kMaxPathBytes);
  if (path.front() == '/')
    fail<DataError>("{}: unsafe path {} is absolute; refusing to write outside the destination", what, quoted_for_message(path));
  std::stringstream parts(path);
  size_t segments = 0;
  for (std::string part; std::getline(parts, part, '/');) {
    ++segments;
    if (part.empty() || part == "." || part == "..")
      fail<DataError>("{}: unsafe path {} (an empty, '.' or '..' segment); refusing to write outside the destination", what,
                      quoted_for_message(path));
    if (part.size() > kMaxSegmentBytes)
      fail<DataError>("{}: unsafe path {} has a name of {} bytes (at most {}); refusing to write it", what,
                      quoted_for_message(path), part.size(), kMaxSegmentBytes);
  }
  if (path.back() == '/' || segments == 0) fail<DataError>("{}: unsafe path {} ends with '/'", what, quoted_for_message(path));
  // Walking (and removing) a tree holds one descriptor per level: a model folder is never this deep.
  if (segments > kMaxPathDepth)
    fail<DataError>("{}: unsafe path {} is nested {} folders deep (at most {}); refusing to write it", what,
                    quoted_for_message(path), segments - 1, kMaxPathDepth - 1);
}

void check_manifest_key(const Manifest& manifest, const std::string& name, const std::string& version,
                        const std::string& what) {
  if (manifest.name != name || manifest.version != version)
    fail<IntegrityError>("{}: the manifest names {}/{}, not {}/{}; the remote's layout was tampered with", what,
                         manifest.name, manifest.version, name, version);
}

void validate_key_part(const std::string& text, const char* what) {
  bool ok = !text.empty() && text.size() <= 128 && text != "." && text != ".." &&
            std::all_of(text.begin(), text.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
            });
  if (!ok)
    fail<UsageError>("{} {} is not valid: use letters, digits, '.', '_' and '-' (up to 128)", what, quoted_for_message(text));
}

std::string object_key(const std::string& sha256) { return "objects/sha256/" + sha256.substr(0, 2) + "/" + sha256.substr(2); }

std::string manifest_key(const std::string& name, const std::string& version) {
  return "models/" + name + "/" + version + ".json";
}

Manifest build_manifest(const fs::path& dir, int threads, const std::function<void(uint64_t)>& on_bytes) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail<NotFoundError>("{}: no such directory", dir.string());
  if (!fs::is_directory(dir, ec)) fail<DataError>("{}: not a directory; push takes a model directory", dir.string());
  Manifest manifest;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) fail<DataError>("{}: cannot list: {}", dir.string(), ec.message());
    fs::file_status status = it->status(ec);  // follows symbolic links
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status))
      fail<DataError>("{}: not a regular file (a socket, device or dangling link); remove it from the model "
                      "directory",
                      it->path().string());
    paths.push_back(it->path());
  }
  if (ec) fail<DataError>("{}: cannot list: {}", dir.string(), ec.message());
  std::sort(paths.begin(), paths.end());
  manifest.files.resize(paths.size());
  std::mutex progress_mutex;
  uint64_t hashed = 0;
  parallel_ranges(paths.size(), threads, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      ManifestFile& file = manifest.files[i];
      file.path = fs::relative(paths[i], dir).generic_string();
      validate_relative_path(file.path, dir.string());
      std::error_code size_ec;
      file.size = static_cast<uint64_t>(fs::file_size(paths[i], size_ec));
      file.sha256 = hash_file(paths[i], [&](uint64_t n) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        hashed += n;
        if (on_bytes) on_bytes(hashed);
      });
    }
  });
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  manifest.created = utc_now();
  return manifest;
}

std::string manifest_to_json(const Manifest& manifest) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& file : manifest.files)
    files.push_back({{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
  nlohmann::ordered_json document = {
      {"format", kManifestFormat},
      {"format_version", kManifestFormatVersion},
      {"name", manifest.name},
      {"version", manifest.version},
      {"classification", manifest.classification},
      {"created", manifest.created},
      {"total_size", manifest.total_size()},
      {"files", files},
  };
  return document.dump(2) + "\n";
}

Manifest parse_manifest(std::string_view text, const std::string& what) {
  if (text.size() > kMaxManifestBytes)
    fail<DataError>("{}: a manifest of {} bytes (at most {}); not a recmodel manifest", what, text.size(),
                    kMaxManifestBytes);
  // Bounded nesting: a crafted manifest cannot exhaust the stack (DataError naming `what`).
  nlohmann::json document = parse_json(text, what);
  auto field = [&](const char* name) -> const nlohmann::json& {
    if (!document.is_object() || !document.contains(name))
      fail<DataError>("{}: not a recmodel manifest (no \"{}\")", what, name);
    return document[name];
  };
  if (field("format") != kManifestFormat) fail<DataError>("{}: not a recmodel manifest (format is not \"{}\")", what, kManifestFormat);
  const auto& version = field("format_version");
  if (!version.is_number_integer()) fail<DataError>("{}: format_version must be an integer", what);
  if (version.get<int64_t>() > kManifestFormatVersion)
    fail<DataError>("{}: manifest format version {} was written by a newer recmodel (this one reads up to {}); "
                    "upgrade recmodel",
                    what, version.get<int64_t>(), kManifestFormatVersion);
  if (version.get<int64_t>() < 1) fail<DataError>("{}: bad manifest format version {}", what, version.get<int64_t>());
  Manifest manifest;
  auto text_field = [&](const char* name) {
    const auto& value = field(name);
    if (!value.is_string()) fail<DataError>("{}: \"{}\" must be a string, not {}", what, name, json_excerpt(value));
    std::string result = value.get<std::string>();
    if (has_control_character(result) || result.size() > 1024)
      fail<DataError>("{}: \"{}\" is {} (control characters or over 1024 bytes); not a recmodel manifest", what, name,
                      quoted_for_message(result));
    return result;
  };
  manifest.name = text_field("name");
  manifest.version = text_field("version");
  manifest.classification = text_field("classification");
  manifest.created = text_field("created");
  auto key_part = [&](const std::string& part, const char* name) {
    bool ok = !part.empty() && part.size() <= 128 && part != "." && part != ".." &&
              std::all_of(part.begin(), part.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
              });
    if (!ok)
      fail<DataError>("{}: \"{}\" {} is not a valid {} (letters, digits, '.', '_' and '-', up to 128)", what, name,
                      quoted_for_message(part), name);
  };
  key_part(manifest.name, "name");
  key_part(manifest.version, "version");
  const auto& files = field("files");
  if (!files.is_array()) fail<DataError>("{}: \"files\" must be an array", what);
  std::set<std::string> seen;
  std::map<std::string, const ManifestFile*> by_sha;  // the first entry listing each SHA-256
  manifest.files.reserve(files.size());
  uint64_t total = 0;
  for (const auto& entry : files) {
    if (!entry.is_object() || !entry.contains("path") || !entry.contains("size") || !entry.contains("sha256") ||
        !entry["path"].is_string() || !entry["size"].is_number_unsigned() || !entry["sha256"].is_string())
      fail<DataError>("{}: each file needs a string \"path\", an unsigned \"size\" and a string \"sha256\" (got {})",
                      what, json_excerpt(entry));
    ManifestFile file{entry["path"].get<std::string>(), entry["size"].get<uint64_t>(),
                      entry["sha256"].get<std::string>()};
    validate_relative_path(file.path, what);
    if (!is_sha256(file.sha256))
      fail<DataError>("{}: file '{}' has a bad sha256 {} (64 lower-case hex digits expected)", what, file.path,
                      quoted_for_message(file.sha256));
    if (!seen.insert(file.path).second) fail<DataError>("{}: file '{}' is listed twice", what, file.path);
    if (file.size > std::numeric_limits<uint64_t>::max() - total)
      fail<DataError>("{}: the files' sizes add up to more than 2^64 bytes; not a recmodel manifest", what);
    total += file.size;
    manifest.files.push_back(std::move(file));
  }
  // The same contents cannot have two sizes: one of the entries lies.
  for (const auto& file : manifest.files) {
    auto [first, added] = by_sha.emplace(file.sha256, &file);
    if (!added && first->second->size != file.size)
      fail<DataError>("{}: '{}' ({} bytes) and '{}' ({} bytes) list the same SHA-256 {} with different sizes; the "
                      "manifest was tampered with",
                      what, first->second->path, first->second->size, file.path, file.size, file.sha256);
  }
  // A file and a directory of the same name cannot both exist.
  for (const auto& path : seen) {
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1))
      if (seen.count(path.substr(0, slash)))
        fail<DataError>("{}: '{}' is listed both as a file and as a directory", what, path.substr(0, slash));
  }
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return manifest;
}

}  // namespace recmodel::storage
