#include "commands/push.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "cli/progress.h"
#include "common/error.h"
#include "common/files.h"
#include "registry/registry.h"
#include "storage/manifest.h"
#include "storage/remote_ref.h"
#include "storage/transfer_progress.h"

namespace recmodel {

namespace {

// A CLI11 check for byte sizes ("8MiB"); the message says which units are understood.
CLI::Validator byte_size(uint64_t minimum) {
  return CLI::Validator(
      [minimum](std::string& text) -> std::string {
        auto size = storage::parse_byte_size(text);
        if (!size) return "'" + text + "' is not a size; write it as 65536, 64KiB, 8MiB, 1GiB or 5MB";
        if (*size < minimum) return "'" + text + "' is below the minimum of " + std::to_string(minimum) + " bytes";
        return "";
      },
      "");
}

// Returns the version label of a directory push without --version: the first 12 hex digits of
// the digest of its listing, so pushing the same files twice names the same version.
std::string content_version(const storage::Manifest& manifest) {
  std::string listing;
  for (const auto& file : manifest.files) listing += fmt::format("{}\t{}\t{}\n", file.path, file.size, file.sha256);
  return sha256_hex(listing).substr(0, 12);
}

}  // namespace

void add_config_option(CLI::App& command, std::string& config) {
  command.add_option("--config", config,
                     "Config file holding the remotes (default: $RECMODEL_CONFIG, else "
                     "$XDG_CONFIG_HOME/recmodel/config.toml)")
      ->type_name("FILE");
}

void add_transfer_options(CLI::App& command, TransferFlags& flags) {
  add_config_option(command, flags.config);
  const char* group = "Transfer";
  command.add_option("--jobs", flags.jobs, "Concurrent requests (parts and files in flight)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256))
      ->type_name("N")
      ->group(group);
  command.add_option("--part-size", flags.part_size,
                     "Bytes per part of a multipart upload or ranged download; memory is about jobs x part size")
      ->capture_default_str()
      ->check(byte_size(4096))
      ->type_name("SIZE")
      ->group(group);
  command.add_option("--multipart-threshold", flags.multipart_threshold,
                     "Files larger than this move in parts (parallel, resumable)")
      ->capture_default_str()
      ->check(byte_size(0))
      ->type_name("SIZE")
      ->group(group);
  command.add_option("--retries", flags.retries,
                     "Retries of a failed request (5xx, 429/503 SlowDown, timeouts, resets), with backoff; 0 = none")
      ->capture_default_str()
      ->check(CLI::Range(0, 100))
      ->type_name("N")
      ->group(group);
  command.add_option("--timeout", flags.timeout, "Seconds without a byte moving before a request is retried")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600))
      ->type_name("SECONDS")
      ->group(group);
  add_key_file_option(command, flags.key_file);
}

void add_key_file_option(CLI::App& command, std::string& key_file) {
  command.add_option("--key-file", key_file,
                     "Key of an encrypted remote (default: $RECMODEL_ENCRYPTION_KEY_FILE, else the one named at remote add)")
      ->type_name("FILE")
      ->group("Encryption");
}

storage::TransferOptions transfer_options(const TransferFlags& flags) {
  storage::TransferOptions options;
  options.jobs = flags.jobs;
  options.part_size = *storage::parse_byte_size(flags.part_size);
  options.multipart_threshold = *storage::parse_byte_size(flags.multipart_threshold);
  return options;
}

storage::StoreOptions store_options(const TransferFlags& flags, const Console& console) {
  storage::StoreOptions options;
  options.retry.retries = flags.retries;
  options.stall_timeout_s = flags.timeout;
  options.key_file = flags.key_file;
  if (console.options().verbose > 0 && !console.options().quiet)
    options.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  return options;
}

std::vector<storage::RemoteSpec> configured_remotes(const std::string& config_flag, std::string* config_path) {
  fs::path config = config_flag.empty() ? storage::config_file_path() : fs::path(config_flag);
  if (config_path) *config_path = config.string();
  return storage::load_remotes(config);
}

void check_residency(const std::string& what, const std::string& classification, const storage::RemoteSpec& remote) {
  if (classification == "private" && remote.is_public)
    fail<RemoteError>("refusing to put {} on remote '{}': the version is classified private (push --private or "
                      "registry tag classification=private) and '{}' is a public remote; private data stays in "
                      "private remotes, only approved artifacts go to the public cloud",
                      what, remote.name, remote.name);
}

nlohmann::json remote_json(const storage::RemoteSpec& remote) {
  nlohmann::json out = {{"name", remote.name},
                        {"url", remote.url},
                        {"type", remote.kind == storage::RemoteKind::s3 ? "s3" : "file"},
                        {"visibility", remote.visibility()},
                        {"encrypted", remote.encrypt}};
  if (remote.encrypt) out["key_file"] = remote.key_file.empty() ? nlohmann::json(nullptr) : nlohmann::json(remote.key_file);
  if (remote.kind == storage::RemoteKind::s3) {
    out["endpoint"] = remote.endpoint;
    out["region"] = remote.region;
    out["profile"] = remote.profile;
    out["ca_bundle"] = remote.ca_bundle;
    out["path_style"] = remote.path_style ? nlohmann::json(*remote.path_style) : nlohmann::json(nullptr);
  }
  return out;
}

nlohmann::json stats_json(const storage::TransferStats& stats) {
  return {{"objects", stats.objects},
          {"transferred_objects", stats.transferred_objects},
          {"transferred_bytes", stats.transferred_bytes},
          {"skipped_objects", stats.skipped_objects},
          {"skipped_bytes", stats.skipped_bytes},
          {"resumed_parts", stats.resumed_parts},
          {"resumed_bytes", stats.resumed_bytes},
          {"replaced_objects", stats.replaced_objects}};
}

void run_push(const PushOptions& options, const Console& console) {
  auto started = std::chrono::steady_clock::now();
  std::string config;
  auto remotes = configured_remotes(options.transfer.config, &config);
  storage::RemoteSpec remote = storage::find_remote(remotes, options.to, config);
  if (!options.name.empty()) storage::validate_key_part(options.name, "--name");
  if (!options.version.empty()) storage::validate_key_part(options.version, "--version");

  fs::path dir;
  std::string name = options.name, version = options.version, classification;
  std::optional<registry::VersionInfo> registered;
  if (storage::is_registry_uri(options.ref)) {
    registry::ResolvedModel resolved = registry::resolve_model(options.ref, console.options().registry);
    dir = resolved.path;
    registered = std::move(resolved.version);
    std::string registry_version = std::to_string(registered->version);
    if ((!name.empty() && name != registered->name) || (!version.empty() && version != registry_version))
      fail<UsageError>("{} is {} in the registry; --name and --version cannot rename a registry version", options.ref,
                       registered->uri());
    name = registered->name;
    version = registry_version;
    auto tag = registered->tags.find("classification");
    if (tag != registered->tags.end()) classification = tag->second;
  } else {
    dir = options.ref;
    std::error_code ec;
    if (!fs::exists(dir, ec))
      fail<NotFoundError>("{}: no such directory; push takes a model directory or a models:/ reference", dir.string());
    if (!fs::is_directory(dir, ec)) fail<DataError>("{}: not a directory; push takes a model directory", dir.string());
    if (name.empty()) {
      name = fs::absolute(dir).lexically_normal().filename().string();
      if (name.empty()) name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
      try {
        storage::validate_key_part(name, "model name");
      } catch (const UsageError&) {
        fail<UsageError>("{}: the directory name '{}' cannot name the model on the remote; give --name", dir.string(),
                         name);
      }
    }
  }
  if (options.make_private) classification = "private";
  // Residency is checked before anything is read or sent.
  check_residency(version.empty() ? name : name + "/" + version, classification, remote);

  storage::Manifest manifest;
  {
    ProgressBar hashing(console, "hash", 0, "B");
    manifest = storage::build_manifest(dir, console.threads(), [&](uint64_t bytes) { hashing.update(bytes); });
    hashing.finish();
  }
  if (manifest.files.empty()) fail<DataError>("{}: no files to push", dir.string());
  if (registered) {
    std::string listing;
    bool same = registered->manifest.files.size() == manifest.files.size();
    for (size_t i = 0; same && i < manifest.files.size(); ++i)
      same = registered->manifest.files[i].path == manifest.files[i].path &&
             registered->manifest.files[i].sha256 == manifest.files[i].sha256;
    if (!same)
      fail<IntegrityError>("{}: the files in {} differ from those registered as {}; check them with 'recmodel "
                           "registry verify {}'",
                           options.ref, dir.string(), registered->uri(), registered->uri());
  }
  if (version.empty()) version = content_version(manifest);
  manifest.name = name;
  manifest.version = version;
  manifest.classification = classification;
  const std::string what = name + "/" + version;
  const std::string key = storage::manifest_key(name, version);

  auto store = storage::open_store(remote, store_options(options.transfer, console));
  bool already = false;
  if (store->size_of(key)) {
    storage::Manifest existing = storage::parse_manifest(store->read(key), store->describe(key));
    if (!existing.same_contents(manifest))
      fail<IntegrityError>("remote '{}' already has {} with different {}; versions are immutable: push under another "
                           "--version",
                           remote.name, what, existing.classification != manifest.classification ? "classification" : "files");
    already = true;
  }
  storage::TransferStats stats;
  {
    storage::TransferProgress progress(console, "push " + what);
    stats = storage::upload_objects(dir, manifest, *store, transfer_options(options.transfer), progress.observer());
    progress.finish();
  }
  // The manifest goes last: a version is visible on the remote only when all its objects are.
  if (!already) {
    std::string text = storage::manifest_to_json(manifest);
    store->write(key, text, sha256_hex(text));
  }
  std::string location = remote.url + (remote.url.back() == '/' ? "" : "/") + key;
  if (registered) {
    registry::Registry registry(registry::registry_path(console.options().registry), registry::Registry::Access::write,
                                registry::default_options());
    registry::Location record;
    record.kind = "remote";
    record.uri = location;
    record.details = {{"remote", remote.name}, {"visibility", remote.visibility()}, {"manifest", key}};
    registry.record_location(registered->ref(), record);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json document = {{"remote", remote_json(remote)},
                             {"name", name},
                             {"version", version},
                             {"ref", registered ? registered->uri() : what},
                             {"manifest", location},
                             {"classification", classification},
                             {"files", manifest.files.size()},
                             {"bytes", manifest.total_size()},
                             {"already_on_remote", already},
                             {"recorded_in_registry", registered.has_value()},
                             {"seconds", seconds}};
  document.update(stats_json(stats));
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "pushed {} to {} ({}): {} files, {}\n", what, remote.name, remote.url, manifest.files.size(),
               storage::human_bytes(manifest.total_size()));
    fmt::print(out, "uploaded {} of {} object{} ({}); {} already there ({}){}{}\n", stats.transferred_objects,
               stats.objects, stats.objects == 1 ? "" : "s", storage::human_bytes(stats.transferred_bytes),
               stats.skipped_objects, storage::human_bytes(stats.skipped_bytes),
               stats.replaced_objects ? fmt::format("; {} found corrupt there and uploaded again", stats.replaced_objects)
                                      : "",
               stats.resumed_parts ? fmt::format("; resumed {} parts ({}) of an interrupted upload", stats.resumed_parts,
                                                 storage::human_bytes(stats.resumed_bytes))
                                   : "");
    if (registered) fmt::print(out, "recorded the location on {}\n", registered->uri());
    fmt::print(out, "pull it with: recmodel pull {} --from {} --out DIR\n", registered ? registered->uri() : what,
               remote.name);
  });
}

CommandAction register_push(CLI::App& command, const Console& console) {
  auto options = std::make_shared<PushOptions>();
  command.footer(
      "\nStores each file once by SHA-256 (objects/sha256/..) and the version's manifest last\n"
      "(models/NAME/VERSION.json); only objects the remote lacks are uploaded. Resumes an interrupted\n"
      "upload from the parts already on the server.\n");
  command.add_option("REF", options->ref, "Model directory, or models:/NAME/VERSION | @ALIAS | /latest")
      ->required();
  command.add_option("--to", options->to, "Remote to push to (see 'recmodel remote list')")
      ->type_name("REMOTE")
      ->required();
  const char* group = "Version";
  command.add_option("--name", options->name, "Model name on the remote (default: the registry's, else the directory's)")
      ->type_name("NAME")
      ->group(group);
  command.add_option("--version", options->version,
                     "Version label on the remote (default: the registry's, else 12 hex digits of the contents)")
      ->type_name("VERSION")
      ->group(group);
  command.add_flag("--private", options->make_private,
                   "Classify the version private: public remotes refuse it (as registry tag classification=private)")
      ->group(group);
  add_transfer_options(command, options->transfer);
  return [options, &console] { run_push(*options, console); };
}

}  // namespace recmodel
