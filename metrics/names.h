// The scalar metric names of ../shared/CLI.md (used in --json, reports and quality gates), and
// the value of one metric as a result reports it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recmodel::metrics {

// A metric as one evaluation knows it: `applicable` is false when the metric does not apply to
// this kind of task or input (r2 of a classifier, roc_auc of a three-class task, top_k_accuracy
// without probabilities); `value` is empty when it applies but is undefined on this data (roc_auc
// when the truth has one class only, r2 of a single example). `reason` says why, when empty.
struct MetricValue {
  std::optional<double> value;
  bool applicable = true;
  std::string reason;
};

// Returns every scalar metric name, classification first, then regression.
const std::vector<std::string>& metric_names();

// Returns whether `name` is one of metric_names().
bool is_metric_name(std::string_view name);

// Throws UsageError unless `name` is a metric: "unknown metric 'acurracy' in --fail-under; did
// you mean 'accuracy'? (known: ...)". `where` names the option or file that used it.
void require_metric_name(std::string_view name, std::string_view where);

// Returns whether a larger value of `name` is better (false for mae and rmse).
bool higher_is_better(std::string_view name);

}  // namespace recmodel::metrics
