#include "model/reference_profile.h"

#include <algorithm>

#include "model/predictor.h"

namespace recmodel::model {

namespace {

constexpr size_t kWindow = 1024;  // examples scored together (sorted by length inside)

std::string dataset_label(const data::PreparedDataset& dataset, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < dataset.labels.size() ? dataset.labels[static_cast<size_t>(id)]
                                                                      : std::to_string(id);
}

}  // namespace

monitoring::ReferenceProfile profile_split(const BertForSequenceClassification& model, int32_t unk_id,
                                           const data::PreparedDataset& dataset, const std::string& split_name,
                                           size_t batch_size, torch::Device device) {
  const BertConfig& config = model->config;
  const bool regression = config.problem_type == ProblemType::regression;
  monitoring::ProfileBuilder builder(config.labels, regression, split_name);
  if (!regression && dataset.has_split("train")) {
    const data::DatasetSplit train = dataset.open_split("train");
    std::vector<uint64_t> counts(dataset.labels.size(), 0);
    for (size_t i = 0; i < train.size(); ++i) {
      const int32_t id = train.label(i);
      if (id >= 0 && static_cast<size_t>(id) < counts.size()) ++counts[static_cast<size_t>(id)];
      else builder.add_train_label(dataset_label(dataset, id));
    }
    for (size_t c = 0; c < counts.size(); ++c) builder.add_train_label(dataset.labels[c], counts[c]);
  }
  if (dataset.manifest.contains("truncation_rate") && dataset.manifest["truncation_rate"].is_number())
    builder.set_truncation_rate(dataset.manifest["truncation_rate"].get<double>());

  const data::DatasetSplit split = dataset.require_split(split_name);
  PredictorOptions options;
  options.batch_size = batch_size;
  options.device = device;
  Predictor predictor(model, config.pad_token_id, options);
  std::vector<data::Example> window;
  std::vector<SequenceView> views;
  for (size_t start = 0; start < split.size(); start += kWindow) {
    const size_t count = std::min(kWindow, split.size() - start);
    window.resize(count);
    views.clear();
    for (size_t i = 0; i < count; ++i) {
      split.example(start + i, window[i]);
      views.push_back({window[i].ids.data(), window[i].type_ids.data(), window[i].ids.size()});
    }
    const torch::Tensor logits = predictor.logits(views);
    torch::Tensor best_score, best_label;
    if (!regression) {
      std::tie(best_score, best_label) = torch::softmax(logits.to(torch::kFloat64), 1).max(1);
      best_score = best_score.contiguous();
      best_label = best_label.contiguous();
    }
    const torch::Tensor values = logits.select(1, 0).to(torch::kFloat64).contiguous();
    for (size_t i = 0; i < count; ++i) {
      monitoring::ScoredInput input;
      input.tokens = window[i].ids.size();
      input.unk_tokens = static_cast<size_t>(std::count(window[i].ids.begin(), window[i].ids.end(), unk_id));
      if (regression) {
        input.score = values.data_ptr<double>()[i];
      } else {
        input.score = best_score.data_ptr<double>()[i];
        input.label = config.labels[static_cast<size_t>(best_label.data_ptr<int64_t>()[i])];
        builder.add_true_label(dataset_label(dataset, window[i].label));
      }
      builder.add(input);
    }
  }
  return builder.finish();
}

}  // namespace recmodel::model
