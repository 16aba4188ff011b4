// Dynamic int8 quantization of a BERT classifier, and the before/after comparison
// `recmodel quantize` reports and gates on.
//
// What is quantized: every Linear of the encoder and the pooler (int8 symmetric weights, per
// output channel unless per_tensor), and the word-embedding table (int8, one scale per row: it
// is half of a small model's bytes). What stays fp32: position and token-type embeddings (small),
// LayerNorm, biases, and the classifier head (a few thousand weights that produce the logits
// themselves). Activations are quantized at run time, per tensor (converters/int8.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset_file.h"
#include "metrics/classification.h"
#include "model/bert.h"

namespace recmodel::converters {

struct QuantizeOptions {
  bool per_channel = true;  // false: one scale per weight matrix (--per-tensor)
};

// Switches `model`'s Linear layers and word embeddings to int8 in place; returns the module names.
// Throws DataError when the model is int8 already.
std::vector<std::string> quantize_model(model::BertForSequenceClassificationImpl& model, const QuantizeOptions& options);

// The model's outputs on every example of a split, in split order.
struct SplitOutputs {
  std::vector<float> logits;  // examples x num_labels, row-major
  std::vector<int> predicted; // classification: argmax of each row
  int64_t num_labels = 0;
};

// Runs `model` (eval mode, no gradients) over `split` in batches of `batch_size` examples, in
// split order, each padded to its longest example; `progress` gets the examples done.
SplitOutputs run_split(model::BertForSequenceClassificationImpl& model, const data::DatasetSplit& split,
                       size_t batch_size, const std::function<void(uint64_t)>& progress = {});

// Returns the fraction of examples whose predicted label is the same in `a` and `b`.
double top_label_agreement(const SplitOutputs& a, const SplitOutputs& b);

// The metrics of fp32 and int8 outputs against a split's truth.
struct QualityComparison {
  bool regression = false;
  std::optional<metrics::ClassificationMetrics> before, after;  // classification
  double mae_before = 0, mae_after = 0, rmse_before = 0, rmse_after = 0;  // regression
  double agreement = 1.0;            // classification: same top label
  double max_abs_output_change = 0;  // largest |logit_int8 - logit_fp32|
  // The class whose F1 fell the most (classification; empty when none fell).
  std::string worst_class;
  double worst_class_f1_before = 0, worst_class_f1_after = 0;
};

// `label_map` (data::Fit) maps the split's class ids to the model's, matched by name; empty:
// they are the model's own.
QualityComparison compare_quality(const SplitOutputs& before, const SplitOutputs& after,
                                  const data::DatasetSplit& split, const std::vector<std::string>& label_names,
                                  const std::vector<int32_t>& label_map = {});

// Returns the value of `metric` (a metrics::metric_names() entry) on one side of the comparison,
// or nullopt when it does not apply (e.g. roc_auc of three classes, accuracy of a regressor).
std::optional<double> metric_value(const QualityComparison& comparison, const std::string& metric, bool after);

}  // namespace recmodel::converters
