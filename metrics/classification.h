// Classification metrics over class indices, with the values and the zero-division rules of
// scikit-learn 1.2 (Debian's python3-sklearn), so numbers reported here can be checked there.
//
// Which scikit-learn call each value matches (y_true/y_pred are class indices; `L` is
// ClassificationMetrics::labels, by default the classes present in y_true or y_pred, which is
// scikit-learn's labels=None):
//   accuracy            accuracy_score(y_true, y_pred)
//   per_class           precision_recall_fscore_support(y_true, y_pred, labels=L, average=None,
//                       zero_division=0)
//   precision_macro ... precision_score/recall_score/f1_score(..., labels=L, average="macro"|
//                       "micro"|"weighted", zero_division=0)
//   confusion           confusion_matrix(y_true, y_pred, labels=L)   (rows: truth, columns: predicted)
//   top_k_accuracy      top_k_accuracy_score(y_true, P, k=top_k, labels=range(num_classes)) for
//                       three or more classes; for two, top_k_accuracy_score(y_true, P[:, 1], k)
//   roc_auc             roc_auc_score(y_true, P[:, 1])            (two classes only)
//   pr_auc              average_precision_score(y_true, P[:, 1])  (two classes only)
//   mae (ordinal)       mean_absolute_error(value[y_true], value[y_pred]) when classes are numbers
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/names.h"

namespace recmodel::metrics {

// Precision, recall and F1 of one class, with its support (true examples) and predicted count.
struct ClassScores {
  int label = 0;
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  int64_t support = 0;    // examples whose truth is this class
  int64_t predicted = 0;  // examples predicted as this class
};

struct Averages {
  double precision = 0;
  double recall = 0;
  double f1 = 0;
};

struct ClassificationOptions {
  // k of top_k_accuracy; 0 = default_top_k(num_classes).
  int top_k = 0;
  // Classes to score and average over, ascending; empty = the classes present in the truth or
  // the predictions (scikit-learn's labels=None).
  std::vector<int> labels;
  // Numeric value of each class (e.g. 1..5 stars), size num_classes; empty = classes are not
  // ordered numbers. When given, `mae` is the mean absolute error of the predicted class.
  std::vector<double> class_values;
};

struct ClassificationMetrics {
  int num_classes = 0;
  int64_t examples = 0;
  std::vector<int> labels;  // the classes scored, ascending; per_class and confusion follow it
  double accuracy = 0;
  std::vector<ClassScores> per_class;
  Averages macro;
  Averages micro;
  Averages weighted;
  std::vector<std::vector<int64_t>> confusion;  // [truth][predicted], indexed like `labels`
  int top_k = 0;                                // k used for top_k_accuracy (0 = not computed)
  std::optional<double> top_k_accuracy;         // with probabilities only
  std::optional<double> roc_auc;                // two classes, probabilities, both classes in truth
  std::optional<double> pr_auc;                 // two classes, probabilities
  std::optional<double> mae;                    // ordinal classes only
  bool has_probabilities = false;

  // Zero-division cases (each value is set to 0, as scikit-learn's zero_division=0 does):
  std::vector<int> never_predicted;  // classes in `labels` with no predictions: precision 0
  std::vector<int> no_true_samples;  // classes in `labels` with no true examples: recall 0
  std::vector<int> absent;           // classes in neither truth nor predictions: left out of `labels`

  // Returns the scalar metric `name` (one of metric_names()); see MetricValue. Throws UsageError
  // with "did you mean" for a name that is not a metric.
  MetricValue get(std::string_view name) const;
};

// Computes every classification metric of `predicted` against `truth` (class indices in
// [0, num_classes)). `probabilities`, when not empty, is row-major examples x num_classes (rows
// need not sum to 1; only their order and, for two classes, column 1 are used). Throws
// DataError when sizes disagree, a class index is out of range or there are no examples.
ClassificationMetrics classification_metrics(const std::vector<int>& truth, const std::vector<int>& predicted,
                                             int num_classes, const std::vector<double>& probabilities = {},
                                             const ClassificationOptions& options = {});

// Returns the k evaluate uses when none is asked for: 5, but below the class count (k >= classes
// always gives 1), and at least 1.
int default_top_k(int num_classes);

// Returns the numeric value of each label ("1", "2.5", "-3") when every label is a finite
// number, else an empty vector: the classes are then not ordinal.
std::vector<double> numeric_label_values(const std::vector<std::string>& label_names);

// Returns the metrics as the JSON of ../shared/CLI.md: every available scalar by name, then
// `per_class` ({label: {precision, recall, f1, support}}) and `confusion_matrix`
// ({"labels": [...], "matrix": [[...]]}, rows are the truth), labels named by `label_names`.
nlohmann::ordered_json to_json(const ClassificationMetrics& metrics, const std::vector<std::string>& label_names);

// Returns one line per zero-division case naming the classes, e.g. "precision of class 'b' is
// ill-defined (never predicted) and set to 0"; the caller prints them as warnings.
std::vector<std::string> zero_division_warnings(const ClassificationMetrics& metrics,
                                                const std::vector<std::string>& label_names);

}  // namespace recmodel::metrics
