// Quality gates for CI: `--fail-under accuracy=0.9,f1_macro=0.85` (a metric must reach the
// threshold) and `--max mae=0.4` (a metric must not exceed it).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/names.h"

namespace recmodel::metrics {

enum class GateKind { at_least, at_most };

struct Gate {
  std::string metric;
  GateKind kind = GateKind::at_least;
  double threshold = 0;
};

// Parses "name=value[,name=value...]" given to `option` (named in errors). Throws UsageError
// for an unknown or missing metric name (with "did you mean"), a value that is not a finite
// number, an empty item (so "accuracy=0.9," is refused, not read as one gate) or a metric named
// twice. The one gate parser: evaluate's --fail-under/--max and quantize's --max-drop.
std::vector<Gate> parse_gates(std::string_view spec, GateKind kind, std::string_view option);

// One gate that was not met, or whose metric could not be computed on this data.
struct GateFailure {
  Gate gate;
  std::optional<double> value;
  std::string reason;  // when value is empty: why the metric is undefined

  // Returns "accuracy 0.8123 is below 0.9 (--fail-under)" or
  // "roc_auc is undefined (...) so --fail-under roc_auc=0.8 cannot be met".
  std::string describe() const;
};

// Checks `gates` against `lookup` (a metrics result's get()). Throws UsageError when a gate
// names a metric that does not apply to this task (r2 of a classifier); returns the gates not
// met, in the order given. Undefined values fail their gate.
std::vector<GateFailure> check_gates(const std::vector<Gate>& gates,
                                     const std::function<MetricValue(std::string_view)>& lookup);

}  // namespace recmodel::metrics
