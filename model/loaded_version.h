// One model version loaded to be served: what it is (name, version, the reference it was asked
// for, where its files are) and its BatchPredictor. Immutable once loaded, so any number of
// requests share it through a shared_ptr; the old version of a hot swap is freed with the last
// request that still holds it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/batch_predictor.h"
#include "model/model_open.h"

namespace recmodel::model {

namespace fs = std::filesystem;

struct VersionIdentity {
  std::string name;             // the served name (NAME= of --model, else the model's name)
  int64_t version = 0;          // the registry version; 0 for a folder given by path
  std::string ref;              // the reference as given: models:/intent@production, ./model
  std::string uri;              // models:/intent/7, or the folder's path
  fs::path dir;                 // the model folder
  std::string manifest_sha256;  // the registry manifest's digest; empty for a folder
};

class LoadedVersion {
 public:
  // Opens `identity.dir` for inference (model::open_for_inference) and builds its predictor.
  // Throws what those throw (NotFoundError, DataError, UsageError for a bad max_length).
  static std::shared_ptr<const LoadedVersion> load(VersionIdentity identity, const BatchPredictorOptions& options,
                                                   const Warn& warn);
  LoadedVersion(VersionIdentity identity, std::unique_ptr<BatchPredictor> predictor);

  const VersionIdentity& identity() const { return identity_; }
  // Returns "intent/7" (x-model-version, logs, metrics), or the name alone for a folder.
  const std::string& version_label() const { return version_label_; }
  // Returns the labels as JSON strings ("\"refund\""), in the model's order, made once.
  const std::vector<std::string>& quoted_labels() const { return quoted_labels_; }
  const std::vector<std::string>& labels() const { return predictor_->labels(); }
  bool regression() const { return predictor_->regression(); }
  size_t max_length() const { return predictor_->max_length(); }
  // Returns the time it was loaded, ISO 8601 UTC.
  const std::string& loaded_at() const { return loaded_at_; }

  // Tokenizing only reads the predictor: any thread may call encode().
  const BatchPredictor& encoder() const { return *predictor_; }
  // Scoring is not thread-safe: only the inference thread (model::DynamicBatcher) calls this.
  BatchPredictor& predictor() const { return *predictor_; }

 private:
  VersionIdentity identity_;
  std::string version_label_;
  std::vector<std::string> quoted_labels_;
  std::string loaded_at_;
  std::unique_ptr<BatchPredictor> predictor_;
};

using VersionPtr = std::shared_ptr<const LoadedVersion>;

}  // namespace recmodel::model
