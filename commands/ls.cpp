#include "commands/ls.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "commands/push.h"
#include "common/error.h"
#include "common/text.h"
#include "storage/manifest.h"
#include "storage/remote_ref.h"

namespace recmodel {

namespace {

nlohmann::json version_json(const storage::Manifest& manifest) {
  return {{"name", manifest.name},         {"version", manifest.version},   {"files", manifest.files.size()},
          {"bytes", manifest.total_size()}, {"classification", manifest.classification},
          {"created", manifest.created}};
}

// Orders versions by name, then numerically when both are numbers, else as text.
bool version_less(const storage::Manifest& a, const storage::Manifest& b) {
  if (a.name != b.name) return a.name < b.name;
  auto numeric = [](const std::string& v) { return !v.empty() && v.size() < 19 && std::all_of(v.begin(), v.end(), ::isdigit); };
  if (numeric(a.version) && numeric(b.version)) return std::stoull(a.version) < std::stoull(b.version);
  return a.version < b.version;
}

// Reads the manifest at `key` (NAME/VERSION's), of `size` bytes as the store reported it,
// refusing an object too large to be one and a manifest that names another version
// (IntegrityError, as pull refuses it).
storage::Manifest read_listed_manifest(storage::ObjectStore& store, const std::string& key, uint64_t size,
                                       const std::string& name, const std::string& version) {
  if (size > storage::kMaxManifestBytes)
    fail<DataError>("{}: a manifest of {} bytes (at most {}); not a recmodel manifest", store.describe(key), size,
                    storage::kMaxManifestBytes);
  storage::Manifest manifest = storage::parse_manifest(store.read(key), store.describe(key));
  storage::check_manifest_key(manifest, name, version, store.describe(key));
  return manifest;
}

}  // namespace

void run_ls(const LsOptions& options, const Console& console) {
  std::string config;
  auto remotes = configured_remotes(options.config, &config);
  storage::RemoteSpec remote = storage::find_remote(remotes, options.remote, config);
  TransferFlags flags;
  flags.key_file = options.key_file;
  auto store = storage::open_store(remote, store_options(flags, console));

  std::string name, version;
  if (!options.what.empty()) {
    size_t slash = options.what.find('/');
    name = options.what.substr(0, slash);
    storage::validate_key_part(name, "model name");
    if (slash != std::string::npos) {
      version = options.what.substr(slash + 1);
      storage::validate_key_part(version, "version");
    }
  }

  if (!version.empty()) {
    std::string key = storage::manifest_key(name, version);
    const auto size = store->size_of(key);
    if (!size)
      fail<NotFoundError>("{}/{} is not on remote '{}'; 'recmodel ls {} {}' lists its versions", name, version,
                          remote.name, remote.name, name);
    // Checked as pull checks it: a manifest under another version's key is not that version.
    storage::Manifest manifest = read_listed_manifest(*store, key, *size, name, version);
    nlohmann::json files = nlohmann::json::array();
    for (const auto& file : manifest.files)
      files.push_back({{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
    nlohmann::json document = version_json(manifest);
    document["remote"] = remote.name;
    document["files"] = files;
    document["file_count"] = manifest.files.size();
    console.result(document, [&](std::FILE* out) {
      fmt::print(out, "{}/{} on {} ({}): {} files, {}{}\n", name, version, remote.name, remote.url,
                 manifest.files.size(), storage::human_bytes(manifest.total_size()),
                 manifest.classification.empty() ? "" : ", " + manifest.classification);
      for (const auto& file : manifest.files)
        fmt::print(out, "{:>10}  {}  {}\n", storage::human_bytes(file.size), file.sha256.substr(0, 12), file.path);
    });
    return;
  }

  std::string prefix = name.empty() ? "models/" : "models/" + name + "/";
  struct Listed {
    std::string key, name, version;
    uint64_t size = 0;
  };
  std::vector<Listed> keys;
  // Keys that cannot be a version's manifest (a name with a control character, say): one warning
  // each, quoted, so nothing from the remote reaches the terminal raw.
  std::vector<std::pair<std::string, std::string>> unreadable;  // key, reason
  for (const auto& entry : store->list(prefix)) {
    const std::string& key = entry.key;
    if (key.size() <= 5 || key.compare(key.size() - 5, 5, ".json") != 0 ||
        std::count(key.begin(), key.end(), '/') != 2)
      continue;
    size_t first = key.find('/'), second = key.find('/', first + 1);
    Listed found{key, key.substr(first + 1, second - first - 1), key.substr(second + 1, key.size() - second - 6),
                 entry.size};
    try {
      storage::validate_key_part(found.name, "model name");
      storage::validate_key_part(found.version, "version");
    } catch (const Error&) {
      unreadable.emplace_back(key, quoted_for_message(store->describe(key), 300) +
                                       ": not a model name and version recmodel writes");
      continue;
    }
    keys.push_back(std::move(found));
  }
  // Manifests are small: read them in parallel. One that cannot be read or does not check out is
  // a warning; the others are listed.
  std::vector<std::optional<storage::Manifest>> manifests(keys.size());
  std::vector<std::string> problems(keys.size());
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (size_t i; (i = next++) < keys.size();) {
      try {
        manifests[i] = read_listed_manifest(*store, keys[i].key, keys[i].size, keys[i].name, keys[i].version);
      } catch (const Error& e) {
        if (e.code() == ExitCode::bad_input || e.code() == ExitCode::integrity || e.code() == ExitCode::not_found) {
          problems[i] = e.what();
          continue;
        }
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int w = 1; w < std::min<int>(options.jobs, static_cast<int>(keys.size())); ++w) pool.emplace_back(worker);
  } catch (...) {
    // Fewer threads than asked (a process or memory limit): the ones started share the work.
  }
  worker();
  for (auto& thread : pool) thread.join();
  if (error) std::rethrow_exception(error);
  std::vector<storage::Manifest> listed;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (manifests[i])
      listed.push_back(std::move(*manifests[i]));
    else
      unreadable.emplace_back(keys[i].key, problems[i]);
  }
  std::sort(listed.begin(), listed.end(), version_less);
  for (const auto& [key, problem] : unreadable)
    console.warn("{}; not listed", printable(problem, 600));
  if (!name.empty() && listed.empty() && unreadable.empty())
    fail<NotFoundError>("no versions of '{}' on remote '{}'; 'recmodel ls {}' lists every model there", name,
                        remote.name, remote.name);

  nlohmann::json versions = nlohmann::json::array();
  for (const auto& manifest : listed) versions.push_back(version_json(manifest));
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& [key, problem] : unreadable) skipped.push_back({{"key", key}, {"error", problem}});
  nlohmann::json document = {
      {"remote", remote.name}, {"url", remote.url}, {"versions", versions}, {"unreadable", skipped}};
  console.result(document, [&](std::FILE* out) {
    if (listed.empty()) {
      fmt::print(out, "no model versions on {} ({})\n", remote.name, remote.url);
      return;
    }
    size_t width = 12;
    for (const auto& manifest : listed) width = std::max(width, manifest.name.size() + manifest.version.size() + 1);
    fmt::print(out, "{:<{}}  {:>5}  {:>10}  {:<14}  {}\n", "VERSION", width, "FILES", "SIZE", "CLASSIFICATION",
               "CREATED");
    for (const auto& manifest : listed)
      fmt::print(out, "{:<{}}  {:>5}  {:>10}  {:<14}  {}\n", manifest.name + "/" + manifest.version, width,
                 manifest.files.size(), storage::human_bytes(manifest.total_size()),
                 manifest.classification.empty() ? "-" : manifest.classification, manifest.created);
  });
}

CommandAction register_ls(CLI::App& command, const Console& console) {
  auto options = std::make_shared<LsOptions>();
  command.add_option("REMOTE", options->remote, "Remote to list (see 'recmodel remote list')")->required();
  command.add_option("WHAT", options->what, "NAME: its versions; NAME/VERSION: its files (default: every version)");
  command.add_option("--jobs", options->jobs, "Manifests read at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 256))
      ->type_name("N");
  add_config_option(command, options->config);
  add_key_file_option(command, options->key_file);
  return [options, &console] { run_ls(*options, console); };
}

}  // namespace recmodel
