#include "converters/quantization.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "converters/int8.h"
#include "data/compatibility.h"

namespace recmodel::converters {

std::vector<std::string> quantize_model(model::BertForSequenceClassificationImpl& model, const QuantizeOptions& options) {
  if (!model.int8_modules().empty())
    fail<DataError>("the model is int8 already (recmodel quantize); quantize the fp32 model it came from");
  torch::NoGradGuard no_grad;
  std::vector<std::string> names;
  for (const auto& item : model.named_modules()) {
    if (item.key().rfind("bert.", 0) != 0) continue;  // the classifier head stays fp32
    if (auto* linear = dynamic_cast<model::QuantizableLinearImpl*>(item.value().get())) {
      Int8Weight w = quantize_symmetric(linear->weight, options.per_channel);
      linear->to_int8(w.values, w.scale);
      names.push_back(item.key());
    } else if (auto* embedding = dynamic_cast<model::QuantizableEmbeddingImpl*>(item.value().get())) {
      Int8Weight w = quantize_symmetric(embedding->weight, /*per_row=*/true);
      embedding->to_int8(w.values, w.scale);
      names.push_back(item.key());
    }
  }
  return names;
}

SplitOutputs run_split(model::BertForSequenceClassificationImpl& model, const data::DatasetSplit& split,
                       size_t batch_size, const std::function<void(uint64_t)>& progress) {
  torch::NoGradGuard no_grad;
  model.eval();
  SplitOutputs outputs;
  outputs.num_labels = model.config.num_labels();
  outputs.logits.reserve(split.size() * static_cast<size_t>(outputs.num_labels));
  data::Example example;
  const int64_t max_positions = model.config.max_position_embeddings;
  for (size_t start = 0; start < split.size(); start += batch_size) {
    const size_t count = std::min(batch_size, split.size() - start);
    size_t longest = 1;
    for (size_t i = start; i < start + count; ++i) longest = std::max(longest, split.length(i));
    if (static_cast<int64_t>(longest) > max_positions)
      fail<DataError>("{}: example {} has {} tokens, more than the model's {} positions; preprocess with "
                      "--max-length {}",
                      split.path().string(), start + 1, longest, max_positions, max_positions);
    const auto length = static_cast<int64_t>(longest);
    torch::Tensor ids = torch::zeros({static_cast<int64_t>(count), length}, torch::kLong);
    torch::Tensor types = torch::zeros_like(ids);
    torch::Tensor mask = torch::zeros_like(ids);
    auto id_access = ids.accessor<int64_t, 2>();
    auto type_access = types.accessor<int64_t, 2>();
    auto mask_access = mask.accessor<int64_t, 2>();
    for (size_t row = 0; row < count; ++row) {
      split.example(start + row, example);
      for (size_t j = 0; j < example.ids.size(); ++j) {
        id_access[static_cast<int64_t>(row)][static_cast<int64_t>(j)] = example.ids[j];
        type_access[static_cast<int64_t>(row)][static_cast<int64_t>(j)] = example.type_ids[j];
        mask_access[static_cast<int64_t>(row)][static_cast<int64_t>(j)] = 1;
      }
    }
    torch::Tensor logits = model.forward(ids, types, mask).to(torch::kFloat).contiguous();
    const float* data = logits.data_ptr<float>();
    outputs.logits.insert(outputs.logits.end(), data, data + logits.numel());
    if (model.config.problem_type != model::ProblemType::regression) {
      torch::Tensor best = logits.argmax(1).to(torch::kInt).contiguous();
      outputs.predicted.insert(outputs.predicted.end(), best.data_ptr<int>(), best.data_ptr<int>() + count);
    }
    if (progress) progress(start + count);
  }
  return outputs;
}

double top_label_agreement(const SplitOutputs& a, const SplitOutputs& b) {
  if (a.predicted.empty() || a.predicted.size() != b.predicted.size()) return 1.0;
  size_t same = 0;
  for (size_t i = 0; i < a.predicted.size(); ++i) same += a.predicted[i] == b.predicted[i];
  return static_cast<double>(same) / static_cast<double>(a.predicted.size());
}

QualityComparison compare_quality(const SplitOutputs& before, const SplitOutputs& after,
                                  const data::DatasetSplit& split, const std::vector<std::string>& label_names,
                                  const std::vector<int32_t>& label_map) {
  QualityComparison c;
  c.regression = split.task() == data::Task::regression;
  for (size_t i = 0; i < before.logits.size() && i < after.logits.size(); ++i)
    c.max_abs_output_change =
        std::max(c.max_abs_output_change, static_cast<double>(std::fabs(before.logits[i] - after.logits[i])));
  if (c.regression) {
    auto errors = [&](const SplitOutputs& outputs, double& mae, double& rmse) {
      double absolute = 0, squared = 0;
      for (size_t i = 0; i < split.size(); ++i) {
        double error = static_cast<double>(outputs.logits[i]) - static_cast<double>(split.target(i));
        absolute += std::fabs(error);
        squared += error * error;
      }
      mae = absolute / static_cast<double>(split.size());
      rmse = std::sqrt(squared / static_cast<double>(split.size()));
    };
    errors(before, c.mae_before, c.rmse_before);
    errors(after, c.mae_after, c.rmse_after);
    return c;
  }
  std::vector<int> truth(split.size());
  if (label_map.empty()) {
    for (size_t i = 0; i < split.size(); ++i) truth[i] = split.label(i);
  } else {
    const data::Fit fit{label_map};
    for (size_t i = 0; i < split.size(); ++i) truth[i] = fit.model_label(split.label(i), split.path(), i);
  }
  const int classes = static_cast<int>(before.num_labels);
  metrics::ClassificationOptions options;
  options.top_k = std::min(5, classes);
  // Score every class of the model, so per-class F1 before and after line up.
  for (int k = 0; k < classes; ++k) options.labels.push_back(k);
  auto probabilities = [&](const SplitOutputs& outputs) {
    torch::Tensor logits = torch::from_blob(const_cast<float*>(outputs.logits.data()),
                                            {static_cast<int64_t>(split.size()), outputs.num_labels}, torch::kFloat);
    torch::Tensor p = torch::softmax(logits.to(torch::kDouble), 1).contiguous();
    return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
  };
  c.before = metrics::classification_metrics(truth, before.predicted, classes, probabilities(before), options);
  c.after = metrics::classification_metrics(truth, after.predicted, classes, probabilities(after), options);
  c.agreement = top_label_agreement(before, after);
  double worst = 0;
  for (size_t k = 0; k < c.before->per_class.size() && k < c.after->per_class.size(); ++k) {
    double drop = c.before->per_class[k].f1 - c.after->per_class[k].f1;
    if (drop > worst) {
      worst = drop;
      int label = c.before->per_class[k].label;
      c.worst_class = label >= 0 && static_cast<size_t>(label) < label_names.size() ? label_names[label]
                                                                                    : std::to_string(label);
      c.worst_class_f1_before = c.before->per_class[k].f1;
      c.worst_class_f1_after = c.after->per_class[k].f1;
    }
  }
  return c;
}

std::optional<double> metric_value(const QualityComparison& comparison, const std::string& metric, bool after) {
  if (comparison.regression) {
    if (metric == "mae") return after ? comparison.mae_after : comparison.mae_before;
    if (metric == "rmse") return after ? comparison.rmse_after : comparison.rmse_before;
    return std::nullopt;
  }
  const auto& metrics = after ? comparison.after : comparison.before;
  if (!metrics) return std::nullopt;
  metrics::MetricValue value = metrics->get(metric);
  if (!value.applicable) return std::nullopt;
  return value.value;
}

}  // namespace recmodel::converters
