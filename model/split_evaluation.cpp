#include "model/split_evaluation.h"

#include <algorithm>
#include <vector>

#include "model/predictor.h"

namespace recmodel::model {

namespace {

// Examples scored per window of the split; bounds memory for any split size.
constexpr size_t kWindow = 4096;

}  // namespace

metrics::Evaluation evaluate_split(OpenedModel& opened, const data::DatasetSplit& split, data::Task task,
                                   const SplitEvaluationOptions& options) {
  LoadedModel& loaded = opened.loaded;
  const std::vector<std::string>& model_labels = loaded.config.labels;
  const fs::path split_file = split.path();

  PredictorOptions popts;
  popts.batch_size = options.batch_size;
  popts.device = options.device;
  Predictor predictor(loaded.model, loaded.config.pad_token_id, popts);
  const int64_t classes = predictor.num_labels();

  metrics::Evaluation result;
  result.task = task;
  metrics::Outcomes& outcomes = result.outcomes;
  std::vector<int> truth, predicted;
  std::vector<double> probabilities, true_values, predicted_values;
  std::vector<data::Example> window;
  std::vector<SequenceView> views;
  for (size_t start = 0; start < split.size(); start += kWindow) {
    size_t count = std::min(kWindow, split.size() - start);
    window.resize(count);
    views.clear();
    for (size_t i = 0; i < count; ++i) {
      split.example(start + i, window[i]);
      views.push_back({window[i].ids.data(), window[i].type_ids.data(), window[i].ids.size()});
    }
    torch::Tensor logits = predictor.logits(views);
    if (task == data::Task::regression) {
      auto values = logits.select(1, 0).to(torch::kFloat64).contiguous();
      const double* v = values.data_ptr<double>();
      for (size_t i = 0; i < count; ++i) {
        true_values.push_back(window[i].target);
        predicted_values.push_back(v[i]);
        outcomes.residual.push_back(v[i] - static_cast<double>(window[i].target));
      }
    } else {
      torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), 1).contiguous();
      torch::Tensor best = logits.argmax(1).contiguous();
      const double* p = probs.data_ptr<double>();
      const int64_t* b = best.data_ptr<int64_t>();
      for (size_t i = 0; i < count; ++i) {
        truth.push_back(opened.fit.model_label(window[i].label, split_file, start + i));
        predicted.push_back(static_cast<int>(b[i]));
        outcomes.confidence.push_back(p[i * static_cast<size_t>(classes) + static_cast<size_t>(b[i])]);
        outcomes.correct.push_back(truth.back() == predicted.back() ? 1 : 0);
      }
      probabilities.insert(probabilities.end(), p, p + count * classes);
    }
    if (options.on_progress) options.on_progress(start + count);
  }

  if (task == data::Task::regression) {
    result.regression = metrics::regression_metrics(true_values, predicted_values);
  } else {
    result.labels = model_labels;
    metrics::ClassificationOptions copts;
    copts.top_k = options.top_k > 0 ? options.top_k : metrics::default_top_k(static_cast<int>(classes));
    copts.class_values = metrics::numeric_label_values(model_labels);
    result.classification =
        metrics::classification_metrics(truth, predicted, static_cast<int>(classes), probabilities, copts);
  }
  return result;
}

}  // namespace recmodel::model
