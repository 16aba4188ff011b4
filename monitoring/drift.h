// Live traffic against a model's reference profile, feature by feature, with Evidently's
// conventions (metrics/drift_statistics.h has the statistics themselves):
//   predicted_label  one bin per label (the model's labels, then any other label seen live, in
//                    order of first appearance); the reference is the profile's predicted-label
//                    counts on dev; Pearson's chi-square test.
//   score, tokens, unk_rate
//                    numeric: kNumericBins equal-width bins over the range of reference and live
//                    values together (numpy.histogram_bin_edges of both); two-sample KS test.
// PSI is computed with empty bins at 1e-4 (both sides); the Jensen-Shannon distance on the bins as
// they are. Severity by PSI: none <= 0.1 < moderate <= 0.25 < major. A feature drifts when its PSI
// or JS distance is above the thresholds (defaults psi 0.2, js 0.1) or, with a p-value threshold,
// its p-value is below it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "monitoring/profile.h"

namespace recmodel::monitoring {

inline constexpr size_t kNumericBins = 30;

// The thresholds of `--fail-over psi=0.2,js=0.1[,p_value=0.01]`.
struct DriftThresholds {
  double psi = 0.2;
  double js = 0.1;
  std::optional<double> p_value;  // drift when a p-value is below it
};

// Parses --fail-over: items "psi=X", "js=X", "p_value=X" (X finite, >= 0; p_value in (0, 1)),
// comma-separated, each at most once. Throws UsageError naming the bad item.
DriftThresholds parse_thresholds(std::string_view spec);

// The live values, one per input, in the same units as the profile's samples.
struct LiveTraffic {
  std::vector<std::string> labels;  // classification: predicted labels
  std::vector<double> scores;
  std::vector<double> tokens;       // empty when the input holds no token counts
  std::vector<double> unk_rates;    // likewise
  uint64_t truncated = 0;           // inputs truncated (when tokens are known)
  std::string no_tokens_reason;     // why tokens/unk_rate are missing
  size_t size() const { return scores.size(); }
};

struct FeatureDrift {
  std::string name;  // predicted_label, score, tokens, unk_rate
  bool categorical = false;
  bool available = true;
  std::string reason;  // when not available
  double psi = 0, js = 0, statistic = 0, p_value = 1;
  double reference_mean = 0, live_mean = 0;  // numeric
  std::vector<std::string> bin_labels;       // categorical
  std::vector<double> edges;                 // numeric: kNumericBins + 1 edges
  std::vector<double> reference, live;       // proportions per bin
  bool drift = false;
  // Returns "none", "moderate" or "major" by PSI.
  const char* severity() const;
};

struct DriftResult {
  std::vector<FeatureDrift> features;
  double reference_truncation_rate = 0;
  std::optional<double> live_truncation_rate;
  bool drift = false;
  // Returns the names of the features that drifted.
  std::vector<std::string> drifted() const;
};

// Compares `live` with `profile`. Throws UsageError when `live` is empty or holds more than
// kMaxProfileSamples inputs (a drift window is capped there: the exact KS p-value's limit).
DriftResult compare(const ReferenceProfile& profile, const LiveTraffic& live, const DriftThresholds& thresholds);

// Returns the features as `--json` prints them: {"predicted_label": {"kind", "test", "psi", "js",
// "statistic", "p_value", "severity", "drift", "bins": {...}}, ...}.
nlohmann::ordered_json features_json(const DriftResult& result);

}  // namespace recmodel::monitoring
