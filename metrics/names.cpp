#include "metrics/names.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/suggest.h"
#include "common/error.h"

namespace recmodel::metrics {

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = {
      "accuracy",         "precision_macro", "recall_macro",    "f1_macro",           "f1_micro",
      "f1_weighted",      "precision_micro", "recall_micro",    "precision_weighted", "recall_weighted",
      "top_k_accuracy",   "roc_auc",         "pr_auc",          "mae",                "rmse",
      "r2"};
  return names;
}

bool is_metric_name(std::string_view name) {
  const auto& names = metric_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

void require_metric_name(std::string_view name, std::string_view where) {
  if (is_metric_name(name)) return;
  std::string message = fmt::format("unknown metric '{}' in {}", name, where);
  std::string hint = closest_match(std::string(name), metric_names());
  if (!hint.empty()) message += fmt::format("; did you mean '{}'?", hint);
  message += fmt::format(" (known: {})", fmt::join(metric_names(), ", "));
  throw UsageError(message);
}

bool higher_is_better(std::string_view name) { return name != "mae" && name != "rmse"; }

}  // namespace recmodel::metrics
