#include "metrics/regression.h"

#include <cmath>

#include "common/error.h"

namespace recmodel::metrics {

RegressionMetrics regression_metrics(const std::vector<double>& truth, const std::vector<double>& predicted) {
  if (truth.size() != predicted.size())
    fail<DataError>("regression metrics: {} true values but {} predictions", truth.size(), predicted.size());
  if (truth.empty()) fail<DataError>("regression metrics: no examples to evaluate");
  const size_t n = truth.size();
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(truth[i])) fail<DataError>("regression metrics: true value of example {} is not finite", i);
    if (!std::isfinite(predicted[i]))
      fail<DataError>("regression metrics: predicted value of example {} is not finite", i);
  }
  // Long double sums keep the result within a few ulps of numpy's pairwise summation.
  long double absolute = 0, squared = 0, mean = 0;
  for (size_t i = 0; i < n; ++i) {
    long double error = static_cast<long double>(truth[i]) - predicted[i];
    absolute += std::fabs(error);
    squared += error * error;
    mean += truth[i];
  }
  mean /= static_cast<long double>(n);
  RegressionMetrics m;
  m.examples = static_cast<int64_t>(n);
  m.mae = static_cast<double>(absolute / n);
  m.rmse = static_cast<double>(std::sqrt(squared / n));
  if (n >= 2) {
    long double total = 0;
    for (double y : truth) total += (y - mean) * (y - mean);
    if (total == 0)
      m.r2 = squared == 0 ? 1.0 : 0.0;
    else
      m.r2 = static_cast<double>(1.0L - squared / total);
  }
  return m;
}

MetricValue RegressionMetrics::get(std::string_view name) const {
  require_metric_name(name, "the metric lookup");
  if (name == "mae") return {mae, true, {}};
  if (name == "rmse") return {rmse, true, {}};
  if (name == "r2") {
    if (!r2) return {std::nullopt, true, "R² is undefined for a single example"};
    return {*r2, true, {}};
  }
  return {std::nullopt, false, "it is a classification metric and this is a regression task"};
}

nlohmann::ordered_json to_json(const RegressionMetrics& m) {
  nlohmann::ordered_json out;
  out["examples"] = m.examples;
  out["mae"] = m.mae;
  out["rmse"] = m.rmse;
  if (m.r2)
    out["r2"] = *m.r2;
  else
    out["r2"] = nullptr;
  return out;
}

}  // namespace recmodel::metrics
