// Regression metrics with scikit-learn 1.2's values:
//   mae   mean_absolute_error(y_true, y_pred)
//   rmse  mean_squared_error(y_true, y_pred, squared=False)
//   r2    r2_score(y_true, y_pred)  (force_finite: constant truth gives 1 for a perfect fit, else
//         0; undefined for fewer than two examples, where scikit-learn returns nan)
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/names.h"

namespace recmodel::metrics {

struct RegressionMetrics {
  int64_t examples = 0;
  double mae = 0;
  double rmse = 0;
  std::optional<double> r2;  // empty for a single example

  // Returns the scalar metric `name` (see MetricValue); classification metrics are not
  // applicable. Throws UsageError with "did you mean" for a name that is not a metric.
  MetricValue get(std::string_view name) const;
};

// Computes MAE, RMSE and R² of `predicted` against `truth`. Throws DataError when the sizes
// differ, there are no examples or a value is not finite.
RegressionMetrics regression_metrics(const std::vector<double>& truth, const std::vector<double>& predicted);

// Returns {"examples", "mae", "rmse", "r2"} (r2 null when undefined).
nlohmann::ordered_json to_json(const RegressionMetrics& metrics);

}  // namespace recmodel::metrics
