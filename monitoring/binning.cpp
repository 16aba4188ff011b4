#include "monitoring/binning.h"

#include <algorithm>

namespace recmodel::monitoring {

std::vector<double> linspace_edges(double low, double high, size_t bins) {
  std::vector<double> edges(bins + 1);
  const double step = (high - low) / static_cast<double>(bins);
  for (size_t i = 0; i <= bins; ++i) edges[i] = static_cast<double>(i) * step + low;  // NumPy's order of operations
  edges[bins] = high;
  return edges;
}

std::vector<double> histogram_edges(const std::vector<double>& a, const std::vector<double>& b, size_t bins) {
  if (a.empty() && b.empty()) return linspace_edges(0, 1, bins);
  double low = 0, high = 0;
  bool first = true;
  for (const auto* values : {&a, &b}) {
    for (double v : *values) {
      if (first) {
        low = high = v;
        first = false;
      }
      low = std::min(low, v);
      high = std::max(high, v);
    }
  }
  if (low == high) {
    low -= 0.5;
    high += 0.5;
  }
  return linspace_edges(low, high, bins);
}

std::vector<uint64_t> histogram_counts(const std::vector<double>& values, const std::vector<double>& edges) {
  std::vector<uint64_t> counts(edges.size() > 1 ? edges.size() - 1 : 0, 0);
  if (counts.empty()) return counts;
  std::vector<double> sorted(values);
  std::sort(sorted.begin(), sorted.end());
  // NumPy: searchsorted(sorted, edges[:-1], 'left') and searchsorted(sorted, edges[-1], 'right').
  std::vector<size_t> cumulative(edges.size());
  for (size_t i = 0; i + 1 < edges.size(); ++i)
    cumulative[i] = static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), edges[i]) - sorted.begin());
  cumulative.back() = static_cast<size_t>(std::upper_bound(sorted.begin(), sorted.end(), edges.back()) - sorted.begin());
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = cumulative[i + 1] - cumulative[i];
  return counts;
}

}  // namespace recmodel::monitoring
