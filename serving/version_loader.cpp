#include "serving/version_loader.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "common/error.h"
#include "registry/manifest.h"
#include "registry/reference.h"

namespace recmodel::serving {

VersionLoader::VersionLoader(LoaderOptions options, model::DynamicBatcher& batcher, FetchVersion fetch,
                             model::Warn warn)
    : options_(std::move(options)), batcher_(batcher), fetch_(std::move(fetch)), warn_(std::move(warn)) {}

registry::VersionInfo VersionLoader::resolve(const registry::ModelRef& ref) const {
  registry::Registry registry(registry::registry_path(options_.registry), registry::Registry::Access::read,
                              registry::default_options());
  return registry.version(ref, true);
}

model::VersionPtr VersionLoader::load_folder(const std::string& name, const std::string& ref,
                                             const fs::path& dir) const {
  model::VersionIdentity identity;
  identity.name = name;
  identity.ref = ref;
  identity.uri = dir.string();
  identity.dir = dir;
  return open_and_warm(std::move(identity));
}

fs::path VersionLoader::locate(const registry::VersionInfo& info) const {
  const fs::path registered(info.source_path);
  std::error_code ec;
  if (fs::is_directory(registered, ec)) return registered;
  const fs::path cached = options_.cache / info.name / std::to_string(info.version);
  if (fs::is_directory(cached, ec)) return cached;
  if (!fetch_)
    fail<NotFoundError>("{}: its directory {} is gone and serve has no --from remote to pull it from", info.uri(),
                        registered.string());
  fs::create_directories(cached.parent_path(), ec);
  if (ec) fail<DataError>("cannot create serve's cache {}: {}", cached.parent_path().string(), ec.message());
  return fetch_(info, cached);
}

model::VersionPtr VersionLoader::load_registered(const std::string& name, const std::string& ref,
                                                 const registry::VersionInfo& info) const {
  const fs::path dir = locate(info);
  // Sizes alone (resolve_model's check) would pass a same-size corruption: every byte is hashed.
  const registry::VerifyReport report = registry::verify_manifest(dir, info.manifest, options_.hash_threads);
  if (!report.ok()) {
    std::string what = report.directory_missing ? "the directory is gone"
                       : !report.changed.empty() ? report.changed.front() + " changed"
                                                 : report.missing.front() + " is missing";
    size_t more = report.changed.size() + report.missing.size();
    if (more > 1) what += fmt::format(" (and {} more)", more - 1);
    fail<IntegrityError>("{} in {} does not match the registry's manifest: {}; check with 'recmodel registry "
                         "verify {}'",
                         info.uri(), dir.string(), what, info.uri());
  }
  model::VersionIdentity identity;
  identity.name = name;
  identity.version = info.version;
  identity.ref = ref;
  identity.uri = info.uri();
  identity.dir = dir;
  identity.manifest_sha256 = info.manifest_sha256;
  return open_and_warm(std::move(identity));
}

model::VersionPtr VersionLoader::open_and_warm(model::VersionIdentity identity) const {
  const std::string uri = identity.uri;
  model::VersionPtr version = model::LoadedVersion::load(std::move(identity), options_.predictor, warn_);
  if (version->max_length() > options_.max_batch_tokens)
    fail<UsageError>("{} takes inputs of up to {} tokens, more than --max-batch-tokens {}: raise it or lower "
                     "--max-length",
                     uri, version->max_length(), options_.max_batch_tokens);
  // Warm-up forward passes at a short, a middle and the longest length, on the inference thread
  // (never beside another forward pass); they also show that the model's scores are numbers.
  std::vector<model::EncodedInput> inputs;
  for (size_t words : {size_t{1}, version->max_length() / 2, version->max_length()}) {
    std::string long_text;
    for (size_t w = 0; w < std::max<size_t>(words, 1); ++w) long_text += w ? " warm" : "warm";
    inputs.push_back(version->encoder().encode(long_text));
  }
  std::vector<model::Prediction> predictions;
  batcher_.run([&] { predictions = version->predictor().predict(inputs); });
  for (const auto& prediction : predictions) {
    for (float logit : prediction.logits) {
      if (!std::isfinite(logit))
        fail<DataError>("{}: the model's scores are not numbers (NaN or infinite logits in a warm-up pass)", uri);
    }
  }
  return version;
}

fs::path default_serve_cache() {
  const char* cache_home = std::getenv("XDG_CACHE_HOME");
  if (cache_home && *cache_home) return fs::path(cache_home) / "recmodel" / "serve";
  const char* home = std::getenv("HOME");
  if (home && *home) return fs::path(home) / ".cache" / "recmodel" / "serve";
  return fs::temp_directory_path() / "recmodel-serve-cache";
}

}  // namespace recmodel::serving
