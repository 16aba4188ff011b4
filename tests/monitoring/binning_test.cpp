// Bins against NumPy 1.24 (Debian's python3-numpy): numpy.histogram_bin_edges(a + b, bins) and
// numpy.histogram(values, edges)[0], values printed by Python's repr.
#include <doctest/doctest.h>

#include <vector>

#include "monitoring/binning.h"

using namespace recmodel::monitoring;

TEST_CASE("bins equal numpy.histogram_bin_edges over both samples, the last bin closed") {
  const std::vector<double> a = {0.1, 0.35, 0.35, 0.9, 0.2}, b = {0.3, 1.0, 0.05};
  const std::vector<double> edges = histogram_edges(a, b, 4);
  CHECK(edges == std::vector<double>{0.05, 0.2875, 0.525, 0.7625, 1.0});
  CHECK(histogram_counts(a, edges) == std::vector<uint64_t>{2, 2, 0, 1});
  CHECK(histogram_counts(b, edges) == std::vector<uint64_t>{1, 1, 0, 1});  // 1.0 on the last edge counts
}

TEST_CASE("one value makes the bins of [v - 0.5, v + 0.5] and outside values are not counted") {
  const std::vector<double> edges = histogram_edges({3, 3, 3}, {}, 2);
  CHECK(edges == std::vector<double>{2.5, 3.0, 3.5});
  CHECK(histogram_counts({3, 3}, edges) == std::vector<uint64_t>{0, 2});
  CHECK(histogram_counts({1, 9}, edges) == std::vector<uint64_t>{0, 0});
  CHECK(histogram_edges({}, {}, 2) == std::vector<double>{0, 0.5, 1});
}

TEST_CASE("edges are numpy.linspace's to the last bit") {
  const std::vector<double> edges = linspace_edges(4, 21, 30);
  CHECK(edges[7] == 7.966666666666667);
  CHECK(edges[13] == 11.366666666666667);
  CHECK(edges.back() == 21.0);
  CHECK(histogram_edges({0.1}, {0.7}, 3) == std::vector<double>{0.1, 0.3, 0.5, 0.7});
}
