#include "metrics/calibration.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace recmodel::metrics {

Calibration calibration(const std::vector<double>& confidence, const std::vector<uint8_t>& correct, int bins) {
  if (confidence.size() != correct.size())
    fail<DataError>("calibration: {} confidences but {} outcomes", confidence.size(), correct.size());
  if (bins < 1) fail<DataError>("calibration: {} bins; need at least 1", bins);
  Calibration result;
  result.examples = static_cast<int64_t>(confidence.size());
  // numpy.linspace(0, 1, bins + 1) computes edge k as k * (1 / bins); the same rounding here.
  const double step = 1.0 / bins;
  result.bins.resize(static_cast<size_t>(bins));
  for (int k = 0; k < bins; ++k) {
    result.bins[k].lower = k * step;
    result.bins[k].upper = k + 1 == bins ? 1.0 : (k + 1) * step;
  }
  std::vector<double> confidence_sum(bins, 0.0), correct_sum(bins, 0.0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    const double p = std::clamp(std::isnan(confidence[i]) ? 0.0 : confidence[i], 0.0, 1.0);
    // searchsorted(edges[1:-1], p, side="left"): the number of inner edges below p.
    int bin = 0;
    while (bin + 1 < bins && result.bins[bin].upper < p) ++bin;
    ++result.bins[bin].count;
    confidence_sum[bin] += p;
    correct_sum[bin] += correct[i] ? 1.0 : 0.0;
  }
  for (int k = 0; k < bins; ++k) {
    ReliabilityBin& b = result.bins[k];
    if (b.count == 0) continue;
    b.mean_confidence = confidence_sum[k] / static_cast<double>(b.count);
    b.accuracy = correct_sum[k] / static_cast<double>(b.count);
    const double gap = std::abs(b.accuracy - b.mean_confidence);
    result.ece += static_cast<double>(b.count) / static_cast<double>(result.examples) * gap;
    result.mce = std::max(result.mce, gap);
  }
  return result;
}

}  // namespace recmodel::metrics
