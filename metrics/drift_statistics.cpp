#include "metrics/drift_statistics.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"

namespace recmodel::metrics {

namespace {

// Proportions of `counts`, checked: same size as `other`, non-negative, finite, not all zero.
std::vector<double> proportions(const std::vector<double>& counts, size_t size, const char* what) {
  if (counts.size() != size)
    fail<UsageError>("{} has {} bins where the reference has {}", what, counts.size(), size);
  double total = 0;
  for (double c : counts) {
    if (!std::isfinite(c) || c < 0) fail<UsageError>("{} holds a count that is negative or not a number", what);
    total += c;
  }
  if (total <= 0) fail<UsageError>("{} has no counts", what);
  std::vector<double> out(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) out[i] = counts[i] / total;
  return out;
}

// ln Gamma(a) is std::lgamma; the series and the continued fraction of Numerical Recipes (gser,
// gcf), run to double precision.
double lower_series(double a, double x) {
  double term = 1.0 / a, sum = term;
  for (int n = 1; n < 100000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-17) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));  // P(a, x)
}

double upper_fraction(double a, double x) {
  const double tiny = std::numeric_limits<double>::min() / std::numeric_limits<double>::epsilon();
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-17) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;  // Q(a, x)
}

}  // namespace

double regularized_upper_gamma(double a, double x) {
  if (!(a > 0) || !(x >= 0)) fail<UsageError>("the incomplete gamma function needs a > 0 and x >= 0");
  if (x == 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  return x < a + 1.0 ? 1.0 - lower_series(a, x) : upper_fraction(a, x);
}

double population_stability_index(const std::vector<double>& expected, const std::vector<double>& actual) {
  const std::vector<double> e = proportions(expected, expected.size(), "the reference");
  const std::vector<double> a = proportions(actual, expected.size(), "the live data");
  double psi = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    const double ei = e[i] > 0 ? e[i] : kEmptyBinProportion;
    const double ai = a[i] > 0 ? a[i] : kEmptyBinProportion;
    psi += (ai - ei) * std::log(ai / ei);
  }
  return psi;
}

double jensen_shannon_distance(const std::vector<double>& p_counts, const std::vector<double>& q_counts) {
  const std::vector<double> p = proportions(p_counts, p_counts.size(), "the reference");
  const std::vector<double> q = proportions(q_counts, p_counts.size(), "the live data");
  // scipy: sqrt((rel_entr(p, m) + rel_entr(q, m)).sum() / 2), with 0 * ln(0 / m) = 0.
  double divergence = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = (p[i] + q[i]) / 2;
    if (p[i] > 0) divergence += p[i] * std::log(p[i] / m);
    if (q[i] > 0) divergence += q[i] * std::log(q[i] / m);
  }
  return std::sqrt(std::max(0.0, divergence / 2));
}

ChiSquareTest chi_square_test(const std::vector<double>& expected, const std::vector<double>& observed) {
  std::vector<double> e = proportions(expected, expected.size(), "the reference");
  proportions(observed, expected.size(), "the live data");  // checks the observed counts
  const double total = std::accumulate(observed.begin(), observed.end(), 0.0);
  double share = 0;
  for (double& p : e) {
    if (p <= 0) p = kEmptyBinProportion;
    share += p;
  }
  ChiSquareTest test;
  for (size_t i = 0; i < e.size(); ++i) {
    const double expected_count = e[i] / share * total;
    const double d = observed[i] - expected_count;
    test.statistic += d * d / expected_count;
  }
  test.degrees_of_freedom = static_cast<int>(e.size()) - 1;
  test.p_value = test.degrees_of_freedom > 0
                     ? regularized_upper_gamma(test.degrees_of_freedom / 2.0, test.statistic / 2.0)
                     : 1.0;
  return test;
}

}  // namespace recmodel::metrics
