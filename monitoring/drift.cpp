#include "monitoring/drift.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <cstdlib>
#include <map>
#include <set>

#include "common/error.h"
#include "metrics/drift_statistics.h"
#include "monitoring/binning.h"

namespace recmodel::monitoring {

namespace {

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

std::vector<double> proportions(const std::vector<double>& counts) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  std::vector<double> out(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) out[i] = total > 0 ? counts[i] / total : 0.0;
  return out;
}

void judge(FeatureDrift& feature, const DriftThresholds& thresholds) {
  feature.drift = feature.psi > thresholds.psi || feature.js > thresholds.js ||
                  (thresholds.p_value && feature.p_value < *thresholds.p_value);
}

// Sets the statistics every feature has from its bins' counts.
void measure_bins(FeatureDrift& f, const std::vector<double>& ref_counts, const std::vector<double>& live_counts) {
  f.psi = metrics::population_stability_index(ref_counts, live_counts);
  f.js = metrics::jensen_shannon_distance(ref_counts, live_counts);
  f.reference = proportions(ref_counts);
  f.live = proportions(live_counts);
}

FeatureDrift unavailable(std::string name, bool categorical, std::string reason) {
  FeatureDrift f;
  f.name = std::move(name);
  f.categorical = categorical;
  f.available = false;
  f.reason = std::move(reason);
  return f;
}

FeatureDrift numeric_feature(std::string name, const std::vector<double>& reference, const std::vector<double>& live,
                             const DriftThresholds& thresholds) {
  FeatureDrift f;
  f.name = std::move(name);
  f.edges = histogram_edges(reference, live, kNumericBins);
  std::vector<double> ref_counts, live_counts;
  for (uint64_t c : histogram_counts(reference, f.edges)) ref_counts.push_back(static_cast<double>(c));
  for (uint64_t c : histogram_counts(live, f.edges)) live_counts.push_back(static_cast<double>(c));
  measure_bins(f, ref_counts, live_counts);
  const metrics::KsTest ks = metrics::ks_two_sample(reference, live);
  f.statistic = ks.statistic;
  f.p_value = ks.p_value;
  f.reference_mean = mean(reference);
  f.live_mean = mean(live);
  judge(f, thresholds);
  return f;
}

FeatureDrift label_feature(const ReferenceProfile& profile, const LiveTraffic& live, const DriftThresholds& thresholds) {
  FeatureDrift f;
  f.name = "predicted_label";
  f.categorical = true;
  std::set<std::string> known;
  for (const auto& label : profile.labels)
    if (known.insert(label).second) f.bin_labels.push_back(label);
  for (const auto& [label, count] : profile.predicted_counts)
    if (known.insert(label).second) f.bin_labels.push_back(label);
  for (const auto& label : live.labels)
    if (known.insert(label).second) f.bin_labels.push_back(label);  // a label the model never had: a bin of its own
  std::vector<double> ref_counts(f.bin_labels.size(), 0), live_counts(f.bin_labels.size(), 0);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < f.bin_labels.size(); ++i) index[f.bin_labels[i]] = i;
  for (const auto& [label, count] : profile.predicted_counts) ref_counts[index[label]] += static_cast<double>(count);
  for (const auto& label : live.labels) live_counts[index[label]] += 1;
  measure_bins(f, ref_counts, live_counts);
  const metrics::ChiSquareTest chi = metrics::chi_square_test(ref_counts, live_counts);
  f.statistic = chi.statistic;
  f.p_value = chi.p_value;
  judge(f, thresholds);
  return f;
}

std::string trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  const size_t last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

}  // namespace

DriftThresholds parse_thresholds(std::string_view spec) {
  DriftThresholds out;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string item(spec.substr(start, comma - start));
    start = comma + 1;
    const size_t eq = item.find('=');
    const std::string key = trim(eq == std::string::npos ? item : item.substr(0, eq));
    if (key.empty() || eq == std::string::npos)
      fail<UsageError>("--fail-over: '{}' is not NAME=VALUE; use psi=0.2,js=0.1 (p_value=0.01 also works)", item);
    const std::string text = trim(item.substr(eq + 1));
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < 0)
      fail<UsageError>("--fail-over: {} must be a number >= 0, got '{}'", key, text);
    if (!seen.insert(key).second) fail<UsageError>("--fail-over: {} is given twice", key);
    if (key == "psi") {
      out.psi = value;
    } else if (key == "js") {
      out.js = value;
    } else if (key == "p_value") {
      if (!(value > 0 && value < 1)) fail<UsageError>("--fail-over: p_value must be in (0, 1), got {}", text);
      out.p_value = value;
    } else {
      fail<UsageError>("--fail-over: unknown statistic '{}'; use psi, js or p_value", key);
    }
  }
  return out;
}

const char* FeatureDrift::severity() const {
  if (!available) return "unknown";
  if (psi > 0.25) return "major";
  if (psi > 0.1) return "moderate";
  return "none";
}

std::vector<std::string> DriftResult::drifted() const {
  std::vector<std::string> out;
  for (const auto& f : features)
    if (f.available && f.drift) out.push_back(f.name);
  return out;
}

DriftResult compare(const ReferenceProfile& profile, const LiveTraffic& live, const DriftThresholds& thresholds) {
  if (live.size() == 0) fail<UsageError>("no live inputs to compare with the reference");
  if (live.size() > kMaxProfileSamples)
    fail<UsageError>("{} live inputs are more than a drift window takes ({}); pass --window", live.size(),
                     kMaxProfileSamples);
  DriftResult result;
  if (profile.regression)
    result.features.push_back(unavailable("predicted_label", true, "a regression model predicts no labels"));
  else
    result.features.push_back(label_feature(profile, live, thresholds));
  result.features.push_back(numeric_feature("score", profile.scores, live.scores, thresholds));
  if (live.tokens.empty()) {
    const std::string reason = live.no_tokens_reason.empty() ? "the input holds no token counts" : live.no_tokens_reason;
    result.features.push_back(unavailable("tokens", false, reason));
    result.features.push_back(unavailable("unk_rate", false, reason));
  } else {
    result.features.push_back(numeric_feature("tokens", profile.tokens, live.tokens, thresholds));
    result.features.push_back(numeric_feature("unk_rate", profile.unk_rates, live.unk_rates, thresholds));
    result.live_truncation_rate = static_cast<double>(live.truncated) / static_cast<double>(live.size());
  }
  result.reference_truncation_rate = profile.truncation_rate;
  for (const auto& f : result.features) result.drift = result.drift || (f.available && f.drift);
  return result;
}

nlohmann::ordered_json features_json(const DriftResult& result) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& f : result.features) {
    nlohmann::ordered_json item;
    if (!f.available) {
      item["available"] = false;
      item["reason"] = f.reason;
      item["psi"] = nullptr;
      item["js"] = nullptr;
      item["p_value"] = nullptr;
      item["drift"] = false;
      out[f.name] = item;
      continue;
    }
    item["kind"] = f.categorical ? "categorical" : "numeric";
    item["test"] = f.categorical ? "chi_square" : "ks";
    item["psi"] = f.psi;
    item["js"] = f.js;
    item["statistic"] = f.statistic;
    item["p_value"] = f.p_value;
    item["severity"] = f.severity();
    item["drift"] = f.drift;
    if (!f.categorical) {
      item["reference_mean"] = f.reference_mean;
      item["live_mean"] = f.live_mean;
    }
    nlohmann::ordered_json bins;
    if (f.categorical)
      bins["labels"] = f.bin_labels;
    else
      bins["edges"] = f.edges;
    bins["reference"] = f.reference;
    bins["live"] = f.live;
    item["bins"] = bins;
    out[f.name] = item;
  }
  return out;
}

}  // namespace recmodel::monitoring
