// PSI, Jensen-Shannon distance and the chi-square test against SciPy 1.10 (Debian's python3-scipy).
// The reference values come from:
//   e, a = proportions with empty bins at 1e-4; psi = sum((a - e) * log(a / e))
//   scipy.spatial.distance.jensenshannon(e, a); scipy.stats.chisquare(a, e_scaled_to_sum(a))
//   scipy.special.gammaincc(a, x); scipy.stats.ks_2samp(a, b) (method 'auto': exact up to 10,000 a side)
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "metrics/drift_statistics.h"

using namespace recmodel::metrics;

namespace {

// Relative closeness to 1e-9 (absolute below 1e-300, where SciPy rounds to 0).
bool close(double got, double want) {
  if (std::fabs(want) < 1e-300) return std::fabs(got) < 1e-300;
  return std::fabs(got - want) <= 1e-9 * std::fabs(want) + 1e-15;
}

struct Case {
  std::vector<double> expected, actual;
  double psi, js, chi2, p;
};

}  // namespace

TEST_CASE("drift statistics equal SciPy's on counts with and without empty bins") {
  const Case cases[] = {
      {{120, 80, 40, 10}, {100, 90, 50, 10}, 0.028222788022340087, 0.05935215438785124, 7.083333333333334,
       0.0692885571632859},
      {{50, 30, 20, 0}, {10, 20, 30, 40}, 4.041658637672074, 0.47060916310185213, 159976.33936666668, 0.0},
      {{1, 1, 1, 1, 1}, {5, 0, 0, 0, 0}, 7.36523193659713, 0.6502387678692824, 20.0, 0.0004993992273873336},
      {{300, 200}, {300, 200}, 0.0, 0.0, 0.0, 1.0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.psi);
    CHECK(close(population_stability_index(c.expected, c.actual), c.psi));
    CHECK(close(jensen_shannon_distance(c.expected, c.actual), c.js));
    const ChiSquareTest test = chi_square_test(c.expected, c.actual);
    CHECK(close(test.statistic, c.chi2));
    CHECK(close(test.p_value, c.p));
    CHECK(test.degrees_of_freedom == static_cast<int>(c.expected.size()) - 1);
  }
}

TEST_CASE("the regularized upper incomplete gamma function equals scipy.special.gammaincc") {
  const double cases[][3] = {{0.5, 0.1, 0.6547208460185768}, {1.5, 3.0, 0.11161022509471268},
                             {10, 2, 0.9999535019249828},    {10, 25, 0.0002214766382487835},
                             {3, 100, 1.8976107553682236e-40}, {0.5, 40, 3.744097384202887e-19}};
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    CAPTURE(c[1]);
    CHECK(close(regularized_upper_gamma(c[0], c[1]), c[2]));
  }
  CHECK(regularized_upper_gamma(2, 0) == 1.0);
}

TEST_CASE("drift statistics refuse bins that do not line up, negative counts and empty sides") {
  CHECK_THROWS_WITH_AS(population_stability_index({1, 2}, {1, 2, 3}), "the live data has 3 bins where the reference has 2",
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(jensen_shannon_distance({1, -2}, {1, 2}),
                       "the reference holds a count that is negative or not a number", recmodel::UsageError);
  CHECK_THROWS_WITH_AS(chi_square_test({1, 2}, {0, 0}), "the live data has no counts", recmodel::UsageError);
}

namespace {

// ((i * mul + 13) mod mod) / mod * scale + shift for i < n: the same doubles in Python and here.
std::vector<double> sequence(int n, long mul, long mod, double scale = 1.0, double shift = 0.0) {
  std::vector<double> out;
  for (long i = 0; i < n; ++i) out.push_back(static_cast<double>((i * mul + 13) % mod) / static_cast<double>(mod) * scale + shift);
  return out;
}

std::vector<double> integers(int n, long mul, long mod, long shift) {
  std::vector<double> out;
  for (long i = 0; i < n; ++i) out.push_back(static_cast<double>((i * mul) % mod + shift));
  return out;
}

}  // namespace

TEST_CASE("the two-sample Kolmogorov-Smirnov test equals scipy.stats.ks_2samp, exact p-values") {
  struct KsCase {
    const char* name;
    std::vector<double> a, b;
    double d, p;
  };
  const KsCase cases[] = {
      {"equal sizes", sequence(200, 7919, 1009), sequence(200, 104729, 1013, 1.1, 0.05), 0.14, 0.03956202584899502},
      {"other sizes", sequence(300, 7919, 1009), sequence(170, 6007, 997, 1.2, -0.02), 0.14882352941176472,
       0.014381662113551767},
      {"ties", integers(500, 37, 17, 3), integers(800, 53, 19, 4), 0.1575, 3.985500095841541e-07},
      {"the same", sequence(50, 1, 1000000), sequence(50, 1, 1000000), 0.0, 1.0},
      {"far apart", sequence(40, 7919, 1009), sequence(60, 6007, 997, 1.1, 0.9), 0.925, 1.2787080311277087e-22},
      {"10,000 against 7,000", sequence(10000, 7919, 10007), sequence(7000, 6007, 9973, 1.01, 0.003),
       0.013042857142857142, 0.4809164128966096},
  };
  for (const KsCase& c : cases) {
    CAPTURE(c.name);
    const KsTest test = ks_two_sample(c.a, c.b);
    CHECK(close(test.statistic, c.d));
    CHECK(close(test.p_value, c.p));
  }
  CHECK_THROWS_WITH_AS(ks_two_sample({}, {1.0}), "the reference sample is empty", recmodel::UsageError);
  CHECK_THROWS_WITH_AS(ks_two_sample(std::vector<double>(10001, 1.0), {1.0}),
                       "the reference sample has 10001 values; the exact test takes at most 10000", recmodel::UsageError);
}
