// Histogram bins the way NumPy makes them, so drift numbers equal a notebook's:
// numpy.histogram_bin_edges(values, bins=n) and numpy.histogram(values, edges).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace recmodel::monitoring {

// Returns numpy.linspace(low, high, bins + 1): the edges of `bins` equal-width bins.
std::vector<double> linspace_edges(double low, double high, size_t bins);

// Returns numpy.histogram_bin_edges(a + b, bins): equal-width bins over the range of both samples
// (a range of one value becomes [v - 0.5, v + 0.5], as NumPy does). Both empty: [0, 1].
std::vector<double> histogram_edges(const std::vector<double>& a, const std::vector<double>& b, size_t bins);

// Returns numpy.histogram(values, edges)[0]: the values in [edge i, edge i+1), the last bin
// closed on the right; values outside the edges are not counted.
std::vector<uint64_t> histogram_counts(const std::vector<double>& values, const std::vector<double>& edges);

}  // namespace recmodel::monitoring
