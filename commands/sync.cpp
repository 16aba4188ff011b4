#include "commands/sync.h"

#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "commands/pull.h"
#include "common/error.h"
#include "common/files.h"
#include "registry/registry.h"
#include "storage/manifest.h"
#include "storage/transfer_progress.h"

namespace recmodel {

void run_sync(const SyncOptions& options, const Console& console) {
  auto started = std::chrono::steady_clock::now();
  if (options.from == options.to) fail<UsageError>("--from and --to are both '{}'; name two remotes", options.from);
  std::string config;
  auto remotes = configured_remotes(options.transfer.config, &config);
  storage::RemoteSpec to = storage::find_remote(remotes, options.to, config);
  LocatedVersion located = locate_version(options.ref, options.from, options.transfer, console);
  const storage::Manifest& manifest = located.manifest;
  const std::string what = manifest.name + "/" + manifest.version;
  std::string classification =
      manifest.classification.empty() ? located.registry_classification : manifest.classification;
  check_residency(what, classification, to);

  auto destination = storage::open_store(to, store_options(options.transfer, console));
  bool already = false;
  if (destination->size_of(located.key)) {
    storage::Manifest existing =
        storage::parse_manifest(destination->read(located.key), destination->describe(located.key));
    storage::check_manifest_key(existing, manifest.name, manifest.version, destination->describe(located.key));
    if (!existing.same_contents(manifest))
      fail<IntegrityError>("remote '{}' already has {} with different contents than remote '{}'; versions are "
                           "immutable, so one of them was pushed from other files",
                           to.name, what, located.remote.name);
    already = true;
  }
  storage::TransferStats stats;
  {
    storage::TransferProgress progress(console, "sync " + what);
    stats = storage::copy_objects(*located.store, *destination, manifest, transfer_options(options.transfer),
                                  progress.observer());
    progress.finish();
  }
  if (!already) destination->write(located.key, located.manifest_text, sha256_hex(located.manifest_text));
  std::string location = to.url + (to.url.back() == '/' ? "" : "/") + located.key;
  if (located.registry_uri) {
    registry::Registry registry(registry::registry_path(console.options().registry), registry::Registry::Access::write,
                                registry::default_options());
    registry::Location record;
    record.kind = "remote";
    record.uri = location;
    record.details = {{"remote", to.name}, {"visibility", to.visibility()}, {"manifest", located.key}};
    registry.record_location(registry::parse_ref(*located.registry_uri, false), record);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json document = {{"from", remote_json(located.remote)},
                             {"to", remote_json(to)},
                             {"name", manifest.name},
                             {"version", manifest.version},
                             {"ref", located.registry_uri ? *located.registry_uri : what},
                             {"manifest", location},
                             {"classification", classification},
                             {"files", manifest.files.size()},
                             {"bytes", manifest.total_size()},
                             {"already_on_remote", already},
                             {"recorded_in_registry", located.registry_uri.has_value()},
                             {"seconds", seconds}};
  document.update(stats_json(stats));
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "synced {} from {} to {}: {} file{}, {}\n", what, located.remote.name, to.name,
               manifest.files.size(), manifest.files.size() == 1 ? "" : "s",
               storage::human_bytes(manifest.total_size()));
    fmt::print(out, "copied {} of {} object{} ({}); {} already there ({}){}\n", stats.transferred_objects,
               stats.objects, stats.objects == 1 ? "" : "s", storage::human_bytes(stats.transferred_bytes),
               stats.skipped_objects, storage::human_bytes(stats.skipped_bytes),
               stats.replaced_objects ? fmt::format("; {} found corrupt there and copied again", stats.replaced_objects)
                                      : "");
  });
}

CommandAction register_sync(CLI::App& command, const Console& console) {
  auto options = std::make_shared<SyncOptions>();
  command.footer(
      "\nStreams each missing object from --from to --to in parts (memory: jobs x part size, at most\n"
      "512 MiB), checking its SHA-256 on the way; the manifest is written last. An object already on\n"
      "--to counts only when its size matches (and, on a file:// remote, its SHA-256): one that differs\n"
      "is copied again. Versions classified private are refused by public remotes.\n");
  command.add_option("REF", options->ref, "NAME/VERSION, or models:/NAME/VERSION | @ALIAS | /latest")->required();
  command.add_option("--from", options->from, "Remote to copy from")->type_name("REMOTE")->required();
  command.add_option("--to", options->to, "Remote to copy to")->type_name("REMOTE")->required();
  add_transfer_options(command, options->transfer);
  return [options, &console] { run_sync(*options, console); };
}

}  // namespace recmodel
