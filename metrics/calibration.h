// Calibration of a classifier's confidence: the reliability curve and the expected calibration
// error over equal-width confidence bins. The bins are scikit-learn 1.2's
// calibration_curve(y, p, n_bins, strategy="uniform"): edges k/n_bins, each bin (lo, hi] except
// the first, which also holds 0; its prob_true and prob_pred are `accuracy` and `mean_confidence`
// of the non-empty bins.
#pragma once

#include <cstdint>
#include <vector>

namespace recmodel::metrics {

struct ReliabilityBin {
  double lower = 0;
  double upper = 0;
  int64_t count = 0;
  double mean_confidence = 0;  // 0 when empty
  double accuracy = 0;         // share of correct predictions; 0 when empty
};

struct Calibration {
  int64_t examples = 0;
  std::vector<ReliabilityBin> bins;
  // Expected calibration error: sum over bins of count / examples * |accuracy - mean_confidence|.
  double ece = 0;
  // Maximum calibration error: the largest |accuracy - mean_confidence| of a non-empty bin.
  double mce = 0;
};

// Computes the reliability bins and ECE of predictions with confidence `confidence[i]` (clamped
// to [0, 1]) and outcome `correct[i]` (non-zero: right). Throws DataError when the sizes differ
// or `bins` is below 1.
Calibration calibration(const std::vector<double>& confidence, const std::vector<uint8_t>& correct, int bins = 10);

}  // namespace recmodel::metrics
