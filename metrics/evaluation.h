// An evaluation result of either task, and evaluation of a predictions file against a labels
// file (JSONL, CSV or TSV with the columns of ../shared/CLI.md, joined on `id`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset_file.h"
#include "metrics/classification.h"
#include "metrics/regression.h"

namespace recmodel::metrics {

namespace fs = std::filesystem;

// Each example's outcome, in evaluation order: what score histograms, reliability curves and
// residual plots are drawn from.
struct Outcomes {
  std::vector<double> confidence;  // classification with probabilities: the predicted class's probability
  std::vector<uint8_t> correct;    // classification: 1 when the predicted class is the true one
  std::vector<double> residual;    // regression: predicted minus true value
};

// The metrics of one evaluation, classification or regression.
struct Evaluation {
  data::Task task = data::Task::classification;
  std::vector<std::string> labels;  // class names by index (classification)
  ClassificationMetrics classification;
  RegressionMetrics regression;
  Outcomes outcomes;

  // Returns metric `name` of the task's result (see MetricValue); UsageError for unknown names.
  MetricValue get(std::string_view name) const;
  // Returns {"task": ..., metrics...} as in ../shared/CLI.md.
  nlohmann::ordered_json to_json() const;
  // Returns the warnings to show (zero division, undefined values), one sentence each.
  std::vector<std::string> warnings() const;
};

struct FileEvaluationOptions {
  int top_k = 0;  // 0: default_top_k(classes)
  std::string id_column = "id";
};

// Evaluates `predictions` (id, label or value, optional probs {"label": p, ...}; in CSV/TSV a
// probs column holds that JSON object) against `labels` (id, label or value), joined on id.
// The task follows the predictions' columns: `label` classification, `value` regression. The
// classes are every label seen in either file or in probs, in recmodel's label order (numeric
// when all are integers, else by bytes); a class missing from a probs object has probability 0.
// Throws DataError naming the file and line for a malformed row, a duplicate id in either file,
// a prediction whose id has no label and a label whose id has no prediction; NotFoundError for
// a missing file.
Evaluation evaluate_files(const fs::path& predictions, const fs::path& labels, const FileEvaluationOptions& options);

}  // namespace recmodel::metrics
