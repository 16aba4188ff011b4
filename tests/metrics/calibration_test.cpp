#include "metrics/calibration.h"

#include <doctest/doctest.h>

#include "common/error.h"

using namespace recmodel::metrics;
using doctest::Approx;

TEST_CASE("calibration bins confidences as scikit-learn's calibration_curve and computes ECE by hand") {
  // Edges are k * 0.1 as numpy.linspace computes them: 0.9 is an edge and falls in (0.8, 0.9],
  // 0.3 is below the edge 0.30000000000000004 and 0.7 below 0.7000000000000001.
  const std::vector<double> confidence = {0.95, 0.9, 0.1, 0.3, 0.35, 0.62, 0.65, 0.7};
  const std::vector<uint8_t> correct = {1, 0, 1, 1, 0, 1, 0, 1};
  Calibration c = calibration(confidence, correct, 10);
  CHECK(c.examples == 8);
  REQUIRE(c.bins.size() == 10);
  std::vector<int64_t> counts;
  for (const auto& b : c.bins) counts.push_back(b.count);
  CHECK(counts == std::vector<int64_t>{1, 0, 1, 1, 0, 0, 3, 0, 1, 1});
  CHECK(c.bins[6].mean_confidence == Approx((0.62 + 0.65 + 0.7) / 3));
  CHECK(c.bins[6].accuracy == Approx(2.0 / 3));
  CHECK(c.bins[8].accuracy == 0.0);
  CHECK(c.bins[0].lower == 0.0);
  CHECK(c.bins[9].upper == 1.0);
  // ECE = (|1-0.1| + |1-0.3| + |0-0.35| + 3*|2/3-0.65667| + |0-0.9| + |1-0.95|) / 8
  CHECK(c.ece == Approx((0.9 + 0.7 + 0.35 + 3 * std::abs(2.0 / 3 - (0.62 + 0.65 + 0.7) / 3) + 0.9 + 0.05) / 8));
  CHECK(c.ece == Approx(0.36625));
  CHECK(c.mce == Approx(0.9));
}

TEST_CASE("calibration of perfectly calibrated bins is 0, and 0 and 1 land in the end bins") {
  Calibration c = calibration({0.0, 1.0, 1.0, 0.5, 0.5}, {0, 1, 1, 1, 0}, 2);
  REQUIRE(c.bins.size() == 2);
  CHECK(c.bins[0].count == 3);  // 0, and 0.5 twice: (0, 0.5] holds its upper edge
  CHECK(c.bins[1].count == 2);
  CHECK(c.bins[1].accuracy == 1.0);
  CHECK(c.ece == Approx(3.0 / 5 * std::abs(1.0 / 3 - 1.0 / 3)));
}

TEST_CASE("calibration clamps confidences outside [0, 1] and refuses mismatched sizes") {
  Calibration c = calibration({-0.2, 1.7}, {0, 1}, 10);
  CHECK(c.bins[0].count == 1);
  CHECK(c.bins[9].count == 1);
  CHECK(c.bins[9].mean_confidence == 1.0);
  CHECK(c.ece == 0.0);
  CHECK_THROWS_AS(calibration({0.5}, {}, 10), recmodel::DataError);
  CHECK_THROWS_AS(calibration({0.5}, {1}, 0), recmodel::DataError);
  CHECK(calibration({}, {}, 10).ece == 0.0);
}
