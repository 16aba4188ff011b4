// How serve gets a version ready to answer: a folder is opened as it is; a registry version is
// found where it was registered (or pulled from --from into serve's cache when it is not on this
// machine), every file re-hashed against the registry's manifest, opened, checked against the
// batching limits and warmed with forward passes on the inference thread. The same steps run at
// startup and for each alias move, so a version that would fail to serve fails before it is
// swapped in.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

#include "model/dynamic_batcher.h"
#include "model/loaded_version.h"
#include "registry/registry.h"

namespace recmodel::serving {

namespace fs = std::filesystem;

// Brings registered version `info` onto this machine under `dir` (a fresh directory) and returns
// where its files are; throws on failure. Empty: there is no remote to fetch from.
using FetchVersion = std::function<fs::path(const registry::VersionInfo& info, const fs::path& dir)>;

struct LoaderOptions {
  model::BatchPredictorOptions predictor;  // batch_size = max_batch_requests
  size_t max_batch_tokens = 16384;         // a version with longer inputs could never run
  std::string registry;                    // as --registry
  fs::path cache;                          // where fetched versions go: CACHE/NAME/VERSION
  int hash_threads = 1;
};

class VersionLoader {
 public:
  VersionLoader(LoaderOptions options, model::DynamicBatcher& batcher, FetchVersion fetch, model::Warn warn);

  // Returns what registry reference `ref` names now, with its manifest.
  registry::VersionInfo resolve(const registry::ModelRef& ref) const;
  // Opens the folder `dir`, served as `name`.
  model::VersionPtr load_folder(const std::string& name, const std::string& ref, const fs::path& dir) const;
  // Makes registered version `info` ready, served as `name` for reference `ref`.
  model::VersionPtr load_registered(const std::string& name, const std::string& ref,
                                    const registry::VersionInfo& info) const;

 private:
  fs::path locate(const registry::VersionInfo& info) const;
  model::VersionPtr open_and_warm(model::VersionIdentity identity) const;

  LoaderOptions options_;
  model::DynamicBatcher& batcher_;
  FetchVersion fetch_;
  model::Warn warn_;
};

// Returns serve's cache of fetched versions: $XDG_CACHE_HOME/recmodel/serve, else
// ~/.cache/recmodel/serve.
fs::path default_serve_cache();

}  // namespace recmodel::serving
