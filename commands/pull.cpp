#include "commands/pull.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "registry/registry.h"
#include "storage/manifest.h"
#include "storage/remote_ref.h"
#include "storage/transfer_progress.h"

namespace recmodel {

namespace {

// The registry's view of a models:/ reference, when there is a registry that knows it.
struct RegistryView {
  std::string name, version;
  std::string uri;
  std::string classification;
  std::vector<std::string> recorded_remotes;  // remote names from recorded locations
  std::vector<std::string> file_digests;      // path\tsha256 of the registered files
};

std::optional<RegistryView> registry_view(const storage::RemoteRef& ref, const Console& console) {
  fs::path path = registry::registry_path(console.options().registry);
  if (!registry::registry_exists(path)) {
    if (!ref.alias.empty())
      fail<NotFoundError>("{}: aliases are resolved by the registry, and there is none at {}; give NAME/VERSION or "
                          "--registry",
                          ref.text(), registry::registry_display_name(path));
    return std::nullopt;
  }
  registry::Registry registry(path, registry::Registry::Access::read, registry::default_options());
  registry::VersionInfo info;
  try {
    info = registry.version(registry::parse_ref(ref.text(), false), true);
  } catch (const UsageError&) {
    // Not a registry version number (a label given at push time): only the remotes know it.
    if (!ref.alias.empty() || ref.latest) throw;
    return std::nullopt;
  } catch (const NotFoundError&) {
    // A version pushed from a directory, or from another registry: the remotes may still have it.
    if (!ref.alias.empty() || ref.latest) throw;
    return std::nullopt;
  }
  RegistryView view;
  view.name = info.name;
  view.version = std::to_string(info.version);
  view.uri = info.uri();
  auto tag = info.tags.find("classification");
  if (tag != info.tags.end()) view.classification = tag->second;
  for (const auto& file : info.manifest.files) view.file_digests.push_back(file.path + "\t" + file.sha256);
  for (const auto& location : registry.lineage(info.ref()).locations)
    if (location.kind == "remote" && location.details.contains("remote") && location.details["remote"].is_string())
      view.recorded_remotes.push_back(location.details["remote"].get<std::string>());
  return view;
}

// Returns the highest numeric version of `name` on `store`, or "".
std::string latest_on(storage::ObjectStore& store, const std::string& name) {
  std::string best;
  uint64_t best_number = 0;
  for (const auto& entry : store.list("models/" + name + "/")) {
    std::string file = entry.key.substr(entry.key.rfind('/') + 1);
    if (file.size() <= 5 || file.substr(file.size() - 5) != ".json") continue;
    std::string version = file.substr(0, file.size() - 5);
    if (version.empty() || version.size() > 18 || !std::all_of(version.begin(), version.end(), ::isdigit)) continue;
    uint64_t number = std::stoull(version);
    if (best.empty() || number > best_number) {
      best = version;
      best_number = number;
    }
  }
  return best;
}

}  // namespace

LocatedVersion locate_version(const std::string& text, const std::string& from, const TransferFlags& flags,
                              const Console& console) {
  storage::RemoteRef ref = storage::parse_remote_ref(text);
  std::string config;
  auto remotes = configured_remotes(flags.config, &config);
  std::optional<RegistryView> view;
  if (ref.registry_uri) view = registry_view(ref, console);
  std::string name = view ? view->name : ref.name;
  std::string version = view ? view->version : ref.version;

  std::vector<storage::RemoteSpec> candidates;
  if (!from.empty()) {
    candidates.push_back(storage::find_remote(remotes, from, config));
  } else {
    if (remotes.empty())
      fail<NotFoundError>("no remotes to pull {} from: {} defines none; add one with 'recmodel remote add'", text,
                          config);
    // Private before public; within each, the remotes the registry recorded first.
    auto rank = [&](const storage::RemoteSpec& remote) {
      bool recorded = view && std::find(view->recorded_remotes.begin(), view->recorded_remotes.end(), remote.name) !=
                                  view->recorded_remotes.end();
      return (remote.is_public ? 2 : 0) + (recorded ? 0 : 1);
    };
    candidates = remotes;
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  }

  std::vector<std::string> tried;
  std::string last_problem;
  for (const auto& remote : candidates) {
    std::unique_ptr<storage::ObjectStore> store;
    std::string key;
    uint64_t manifest_size = 0;
    try {
      store = storage::open_store(remote, store_options(flags, console));
      std::string wanted = version;
      if (wanted.empty()) wanted = latest_on(*store, name);
      if (wanted.empty()) {
        tried.push_back(remote.name);
        continue;
      }
      key = storage::manifest_key(name, wanted);
      auto size = store->size_of(key);
      if (!size) {
        tried.push_back(remote.name);
        continue;
      }
      manifest_size = *size;
      version = wanted;
    } catch (const Error& e) {
      // One unreachable remote (or a missing bucket) does not stop the search.
      if (!from.empty() || (e.code() != ExitCode::remote && e.code() != ExitCode::not_found)) throw;
      console.warn("{}", e.what());
      last_problem = e.what();
      tried.push_back(remote.name);
      continue;
    }
    console.debug("{}/{} found on remote '{}'", name, version, remote.name);
    // Checked before reading, so a huge object posing as a manifest is never loaded.
    if (manifest_size > storage::kMaxManifestBytes)
      fail<DataError>("{}: a manifest of {} bytes (at most {}); not a recmodel manifest", store->describe(key),
                      manifest_size, storage::kMaxManifestBytes);
    LocatedVersion located;
    located.manifest_text = store->read(key);
    located.manifest = storage::parse_manifest(located.manifest_text, store->describe(key));
    storage::check_manifest_key(located.manifest, name, version, store->describe(key));
    if (view) {
      std::vector<std::string> digests;
      for (const auto& file : located.manifest.files) digests.push_back(file.path + "\t" + file.sha256);
      if (digests != view->file_digests)
        fail<IntegrityError>("{}: the files on remote '{}' differ from those registered as {}; it was pushed from "
                             "another registry or changed since",
                             store->describe(key), remote.name, view->uri);
      located.registry_uri = view->uri;
      located.registry_classification = view->classification;
    }
    located.remote = remote;
    located.store = std::move(store);
    located.key = key;
    return located;
  }
  std::string names;
  for (const auto& remote : tried) names += (names.empty() ? "'" : ", '") + remote + "'";
  std::string what = version.empty() ? name + " (latest)" : name + "/" + version;
  if (!from.empty())
    fail<NotFoundError>("{} is not on remote '{}'; 'recmodel ls {}' lists what it has", what, from, from);
  fail<NotFoundError>("{} is on none of the remotes ({}){}; 'recmodel ls REMOTE' lists what each has", what, names,
                      last_problem.empty() ? "" : " (some could not be reached)");
}

PulledVersion pull_version(const PullOptions& options, const Console& console) {
  // Trailing slashes stripped, so the staging directory is a sibling of --out, never inside it.
  const fs::path out = directory_to_create(options.out);
  // A directory or a link at --out is replaced (never followed) only with --force; a file never.
  check_replaceable(out, options.force);
  PulledVersion pulled{locate_version(options.ref, options.from, options.transfer, console), out, {}};
  LocatedVersion& located = pulled.located;
  const storage::Manifest& manifest = located.manifest;
  const std::string what = manifest.name + "/" + manifest.version;
  storage::check_path_lengths(manifest, out, located.store->describe(located.key));

  storage::PullStaging staging(out, located.manifest_text);
  if (staging.resumed()) console.info("resuming the interrupted pull of {} in {}", what, staging.path().string());
  storage::TransferStats& stats = pulled.stats;
  try {
    {
      storage::TransferProgress progress(console, "pull " + what);
      stats = storage::download_files(*located.store, manifest, staging.path(), transfer_options(options.transfer),
                                      progress.observer());
      progress.finish();
    }
    // Every file is verified: move the tree into place. What appeared at --out meanwhile is
    // never replaced without --force; with it, the old tree is swapped out and only then removed.
    commit_directory(storage::pull_tree(staging.path()), out, options.force);
  } catch (const Error& e) {
    // After a lost connection the staging directory stays, so the next run resumes; any other
    // failure (a corrupt remote, a lost race for --out, a bad path) keeps nothing.
    if (e.code() != ExitCode::remote) staging.remove();
    throw;
  } catch (...) {
    staging.remove();
    throw;
  }
  staging.remove();
  return pulled;
}

void run_pull(const PullOptions& options, const Console& console) {
  auto started = std::chrono::steady_clock::now();
  PulledVersion pulled = pull_version(options, console);
  const LocatedVersion& located = pulled.located;
  const storage::Manifest& manifest = located.manifest;
  const std::string what = manifest.name + "/" + manifest.version;
  const fs::path& out = pulled.out;
  const storage::TransferStats& stats = pulled.stats;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json document = {{"remote", remote_json(located.remote)},
                             {"name", manifest.name},
                             {"version", manifest.version},
                             {"ref", located.registry_uri ? *located.registry_uri : what},
                             {"out", out.string()},
                             {"classification", manifest.classification},
                             {"files", manifest.files.size()},
                             {"bytes", manifest.total_size()},
                             {"verified", true},
                             {"seconds", seconds}};
  document.update(stats_json(stats));
  console.result(document, [&](std::FILE* stream) {
    fmt::print(stream, "pulled {} from {} ({}) into {}: {} file{}, {}, SHA-256 verified\n", what,
               located.remote.name, located.remote.url, out.string(), manifest.files.size(),
               manifest.files.size() == 1 ? "" : "s", storage::human_bytes(manifest.total_size()));
    fmt::print(stream, "downloaded {} ({} object{}){}\n", storage::human_bytes(stats.transferred_bytes),
               stats.transferred_objects, stats.transferred_objects == 1 ? "" : "s",
               stats.resumed_bytes || stats.skipped_objects
                   ? fmt::format("; resumed {} from an interrupted pull",
                                 storage::human_bytes(stats.resumed_bytes + stats.skipped_bytes))
                   : "");
  });
}

CommandAction register_pull(CLI::App& command, const Console& console) {
  auto options = std::make_shared<PullOptions>();
  command.footer(
      "\nEvery file is checked against the manifest's SHA-256 before it is moved into --out; a mismatch\n"
      "is exit 6 and leaves nothing behind. An interrupted pull keeps its parts in a hidden directory\n"
      "beside --out and the next run resumes from there, hashing every reused byte again.\n");
  command.add_option("REF", options->ref, "NAME/VERSION, or models:/NAME/VERSION | @ALIAS | /latest")->required();
  command.add_option("--from", options->from,
                     "Remote to pull from (default: the first that has it, private before public)")
      ->type_name("REMOTE");
  command.add_option("--out", options->out, "Model directory to create")->type_name("DIR")->required();
  command.add_flag("--force", options->force, "Replace --out if it exists");
  add_transfer_options(command, options->transfer);
  return [options, &console] { run_pull(*options, console); };
}

}  // namespace recmodel
