#include "serving/alias_watcher.h"

#include <fmt/format.h>

#include "common/error.h"
#include "registry/reference.h"
#include "registry/registry.h"

namespace recmodel::serving {

AliasWatcher::AliasWatcher(ModelSet& models, const VersionLoader& loader, ServeMetrics& metrics,
                           std::function<void(const std::string&)> log, std::chrono::milliseconds poll)
    : models_(models), loader_(loader), metrics_(metrics), log_(std::move(log)), poll_(poll),
      registry_failing_(models.size(), false) {
  bool any = false;
  for (size_t slot = 0; slot < models_.size(); ++slot) any = any || models_.follows(slot);
  if (any) thread_ = std::thread([this] { run(); });
}

AliasWatcher::~AliasWatcher() { stop(); }

void AliasWatcher::check_now() {
  {
    std::lock_guard lock(mutex_);
    check_requested_ = true;
  }
  wake_.notify_all();
}

void AliasWatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AliasWatcher::run() {
  for (;;) {
    bool retry = false;
    {
      std::unique_lock lock(mutex_);
      auto woken = [this] { return stopping_ || check_requested_; };
      if (poll_.count() > 0) {
        wake_.wait_for(lock, poll_, woken);
      } else {
        wake_.wait(lock, woken);
      }
      if (stopping_) return;
      retry = check_requested_;
      check_requested_ = false;
    }
    for (size_t slot = 0; slot < models_.size(); ++slot) {
      if (models_.follows(slot)) check(slot, retry);
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
  }
}

void AliasWatcher::check(size_t slot, bool retry_failed) {
  const std::string& name = models_.name(slot);
  const std::string& ref_text = models_.ref(slot);
  const registry::ModelRef ref = registry::parse_ref(ref_text, false);
  registry::VersionInfo info;
  try {
    info = loader_.resolve(ref);
  } catch (const NotFoundError& e) {
    // The alias was removed (or the model deleted): keep serving what is loaded, say so once.
    if (!registry_failing_[slot])
      log_(fmt::format("serve: warning: {}: {}; still serving {}", ref_text, e.what(),
                       models_.current(slot)->version_label()));
    registry_failing_[slot] = true;
    models_.set_alias_missing(slot, true);
    return;
  } catch (const std::exception& e) {
    metrics_.registry_poll_error(name);
    if (!registry_failing_[slot])
      log_(fmt::format("serve: warning: cannot read the registry for {}: {}; still serving {}", ref_text, e.what(),
                       models_.current(slot)->version_label()));
    registry_failing_[slot] = true;
    return;
  }
  if (registry_failing_[slot]) log_(fmt::format("serve: {}: the registry answers again", ref_text));
  registry_failing_[slot] = false;
  models_.set_alias_missing(slot, false);

  const model::VersionPtr current = models_.current(slot);
  if (info.version == current->identity().version && info.manifest_sha256 == current->identity().manifest_sha256)
    return;
  const auto failure = models_.failure(slot);
  if (!retry_failed && failure && failure->version == info.version && failure->manifest == info.manifest_sha256)
    return;  // failed already; retried when the reference moves again or on SIGHUP

  models_.set_loading(slot, info.version);
  model::VersionPtr loaded;
  try {
    loaded = loader_.load_registered(name, ref_text, info);
  } catch (const std::exception& e) {
    models_.set_loading(slot, std::nullopt);
    models_.set_failure(slot, LoadFailure{info.version, info.manifest_sha256, e.what(), registry::format_time(registry::now_ms())});
    metrics_.model_load_failed(name);
    log_(fmt::format("serve: error: cannot serve {} ({}): {}; still serving {}", info.uri(), ref_text, e.what(),
                     current->version_label()));
    return;
  }
  models_.set_loading(slot, std::nullopt);
  // The reference may have moved again while this version loaded; then the next check loads
  // where it points now instead of swapping in a version that is no longer wanted.
  try {
    const registry::VersionInfo again = loader_.resolve(ref);
    if (again.version != info.version) {
      check_now();
      return;
    }
  } catch (const std::exception&) {
    // The registry went away meanwhile: what was asked for is loaded and verified; serve it.
  }
  models_.swap(slot, loaded);
  models_.set_failure(slot, std::nullopt);
  metrics_.model_loaded(name, version_name(*loaded), ref_text);
  log_(fmt::format("serve: {} now serves {} ({}, was {})", name, loaded->version_label(), ref_text,
                   current->version_label()));
}

}  // namespace recmodel::serving
