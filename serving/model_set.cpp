#include "serving/model_set.h"

#include <atomic>

namespace recmodel::serving {

std::string version_name(const model::LoadedVersion& version) {
  return version.identity().version > 0 ? std::to_string(version.identity().version) : "folder";
}

void ModelSet::add(model::VersionPtr version, bool follows) {
  auto slot = std::make_unique<Slot>();
  slot->name = version->identity().name;
  slot->ref = version->identity().ref;
  slot->follows = follows;
  slot->version = std::move(version);
  slots_.push_back(std::move(slot));
}

size_t ModelSet::find(const std::string& name) const {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i]->name == name) return i;
  }
  return npos;
}

model::VersionPtr ModelSet::current(size_t slot) const { return std::atomic_load(&slots_[slot]->version); }

model::VersionPtr ModelSet::swap(size_t slot, model::VersionPtr version) {
  return std::atomic_exchange(&slots_[slot]->version, std::move(version));
}

void ModelSet::set_loading(size_t slot, std::optional<int64_t> version) {
  std::lock_guard lock(slots_[slot]->mutex);
  slots_[slot]->loading = version;
}

void ModelSet::set_failure(size_t slot, std::optional<LoadFailure> failure) {
  std::lock_guard lock(slots_[slot]->mutex);
  slots_[slot]->failure = std::move(failure);
}

std::optional<LoadFailure> ModelSet::failure(size_t slot) const {
  std::lock_guard lock(slots_[slot]->mutex);
  return slots_[slot]->failure;
}

void ModelSet::set_alias_missing(size_t slot, bool missing) {
  std::lock_guard lock(slots_[slot]->mutex);
  slots_[slot]->alias_missing = missing;
}

nlohmann::json ModelSet::describe() const {
  nlohmann::json models = nlohmann::json::array();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = *slots_[i];
    model::VersionPtr version = current(i);
    const model::VersionIdentity& id = version->identity();
    nlohmann::json entry = {
        {"name", slot.name},
        {"ref", slot.ref},
        {"uri", id.uri},
        {"version", id.version > 0 ? nlohmann::json(id.version) : nlohmann::json(nullptr)},
        {"model_version", version->version_label()},
        {"follows", slot.follows ? nlohmann::json(slot.ref) : nlohmann::json(nullptr)},
        {"path", id.dir.string()},
        {"labels", version->regression() ? nlohmann::json::array() : nlohmann::json(version->labels())},
        {"problem_type", version->regression() ? "regression" : "single_label_classification"},
        {"max_input_length", version->max_length()},
        {"loaded_at", version->loaded_at()},
    };
    std::lock_guard lock(slot.mutex);
    entry["loading"] = slot.loading ? nlohmann::json(*slot.loading) : nlohmann::json(nullptr);
    entry["alias_missing"] = slot.alias_missing;
    if (slot.failure) {
      entry["last_error"] = {{"version", slot.failure->version > 0 ? nlohmann::json(slot.failure->version)
                                                                   : nlohmann::json(nullptr)},
                             {"error", slot.failure->message},
                             {"at", slot.failure->at}};
    } else {
      entry["last_error"] = nullptr;
    }
    models.push_back(std::move(entry));
  }
  return models;
}

}  // namespace recmodel::serving
