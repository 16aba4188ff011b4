// The models a server serves, by name, in the order given (the first answers /predict,
// /invocations and /): each slot holds the version serving now, swapped atomically when an alias
// moves, and what /info says about it (what it follows, what is loading, the last failure).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/loaded_version.h"

namespace recmodel::serving {

struct LoadFailure {
  int64_t version = 0;    // the version that failed (0: the reference did not resolve)
  std::string manifest;   // its manifest digest, so the same files are not retried every poll
  std::string message;
  std::string at;         // ISO 8601 UTC
};

// Returns the version as metrics and KServe name it: "7", or "folder" for a folder given by path.
std::string version_name(const model::LoadedVersion& version);

class ModelSet {
 public:
  // Adds a slot; `follows` is set for references that can move (an alias, latest).
  void add(model::VersionPtr version, bool follows);

  size_t size() const { return slots_.size(); }
  // Returns the slot of `name`, or npos.
  size_t find(const std::string& name) const;
  static constexpr size_t npos = static_cast<size_t>(-1);
  const std::string& name(size_t slot) const { return slots_[slot]->name; }
  const std::string& ref(size_t slot) const { return slots_[slot]->ref; }
  bool follows(size_t slot) const { return slots_[slot]->follows; }

  // Returns the version serving now; a request keeps it until it is answered.
  model::VersionPtr current(size_t slot) const;
  // Serves `version` from now on and returns the version it replaces.
  model::VersionPtr swap(size_t slot, model::VersionPtr version);

  void set_loading(size_t slot, std::optional<int64_t> version);
  void set_failure(size_t slot, std::optional<LoadFailure> failure);
  std::optional<LoadFailure> failure(size_t slot) const;
  void set_alias_missing(size_t slot, bool missing);

  // Returns /info's "models" array.
  nlohmann::json describe() const;

 private:
  struct Slot {
    std::string name;
    std::string ref;
    bool follows = false;
    model::VersionPtr version;  // read and written with std::atomic_load/atomic_store
    mutable std::mutex mutex;   // guards the status below
    std::optional<int64_t> loading;
    std::optional<LoadFailure> failure;
    bool alias_missing = false;
  };
  std::vector<std::unique_ptr<Slot>> slots_;  // fixed after startup
};

}  // namespace recmodel::serving
