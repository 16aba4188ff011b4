#include "model/loaded_version.h"

#include "common/json.h"
#include "registry/registry.h"

namespace recmodel::model {

std::shared_ptr<const LoadedVersion> LoadedVersion::load(VersionIdentity identity, const BatchPredictorOptions& options,
                                                         const Warn& warn) {
  const std::string name = identity.ref.empty() ? identity.dir.string() : identity.ref;
  OpenedModel opened = open_for_inference(identity.dir, name, warn);
  auto predictor = std::make_unique<BatchPredictor>(std::move(opened), options);
  return std::make_shared<const LoadedVersion>(std::move(identity), std::move(predictor));
}

LoadedVersion::LoadedVersion(VersionIdentity identity, std::unique_ptr<BatchPredictor> predictor)
    : identity_(std::move(identity)), predictor_(std::move(predictor)) {
  version_label_ = identity_.version == 0 ? identity_.name : identity_.name + "/" + std::to_string(identity_.version);
  // Labels were validated when the model was read; `replace` keeps a stray byte from throwing anyway.
  quoted_labels_.reserve(predictor_->labels().size());
  for (const std::string& label : predictor_->labels())
    quoted_labels_.push_back(json_quoted(label));
  loaded_at_ = registry::format_time(registry::now_ms());
}

}  // namespace recmodel::model
