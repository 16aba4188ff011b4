#include "metrics/drift_statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
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

namespace {

// The share of lattice paths from (0, 0) to (m, n) that leave the band |x/m - y/n| < h / lcm(m, n):
// the exact two-sided p-value of D = h / lcm. Keeps one sliding column of the path counts as
// probabilities, so no binomial coefficient overflows.
double outside_band_probability(int64_t m, int64_t n, int64_t g, int64_t h) {
  if (m < n) std::swap(m, n);
  const int64_t mg = m / g, ng = n / g;
  int64_t minj = 0;
  int64_t maxj = std::min<int64_t>(static_cast<int64_t>(std::ceil(static_cast<double>(h) / mg)), n + 1);
  int64_t curlen = maxj - minj;
  const int64_t length = std::min<int64_t>(2 * maxj + 2, n + 1);
  std::vector<double> a(static_cast<size_t>(length), 1.0);
  for (int64_t j = minj; j < maxj; ++j) a[static_cast<size_t>(j)] = 0.0;
  for (int64_t i = 1; i <= m; ++i) {
    const int64_t lastminj = minj, lastlen = curlen;
    minj = std::max<int64_t>(static_cast<int64_t>(std::floor(static_cast<double>(ng * i - h) / mg)) + 1, 0);
    minj = std::min(minj, n);
    maxj = std::min<int64_t>(static_cast<int64_t>(std::ceil(static_cast<double>(ng * i + h) / mg)), n + 1);
    if (maxj <= minj) return 1.0;
    double value = minj == 0 ? 0.0 : 1.0;
    for (int64_t jj = 0; jj < maxj - minj; ++jj) {
      const int64_t j = jj + minj;
      value = (a[static_cast<size_t>(jj + minj - lastminj)] * static_cast<double>(i) + value * static_cast<double>(j)) /
              static_cast<double>(i + j);
      a[static_cast<size_t>(jj)] = value;
    }
    curlen = maxj - minj;
    if (lastlen > curlen)
      for (int64_t k = maxj - minj; k < maxj - minj + (lastlen - curlen); ++k) a[static_cast<size_t>(k)] = 1.0;
  }
  return a[static_cast<size_t>(maxj - minj - 1)];
}

// The exact p-value of two equal-sized samples of n whose D is h / n.
double outside_square_probability(int64_t n, int64_t h) {
  double p = 0.0;
  for (int64_t k = n / h; k >= 0; --k) {
    double p1 = 1.0;
    for (int64_t j = 0; j < h; ++j)
      p1 = static_cast<double>(n - k * h - j) * p1 / static_cast<double>(n + k * h + j + 1);
    p = p1 * (1.0 - p);
  }
  return 2 * p;
}

}  // namespace

KsTest ks_two_sample(std::vector<double> reference, std::vector<double> live) {
  for (std::vector<double>* sample : {&reference, &live}) {
    const char* what = sample == &reference ? "the reference sample" : "the live sample";
    if (sample->empty()) fail<UsageError>("{} is empty", what);
    if (sample->size() > kMaxExactKsSample)
      fail<UsageError>("{} has {} values; the exact test takes at most {}", what, sample->size(), kMaxExactKsSample);
    if (std::any_of(sample->begin(), sample->end(), [](double v) { return std::isnan(v); }))
      fail<UsageError>("{} holds a NaN", what);
    std::sort(sample->begin(), sample->end());
  }
  const auto n1 = static_cast<int64_t>(reference.size()), n2 = static_cast<int64_t>(live.size());
  // D over every value of either sample, the empirical CDFs taken right-continuous (searchsorted right).
  double d = 0;
  for (const std::vector<double>* sample : {&reference, &live}) {
    for (double v : *sample) {
      const double f1 = static_cast<double>(std::upper_bound(reference.begin(), reference.end(), v) - reference.begin()) / n1;
      const double f2 = static_cast<double>(std::upper_bound(live.begin(), live.end(), v) - live.begin()) / n2;
      d = std::max(d, std::fabs(f1 - f2));
    }
  }
  KsTest test;
  const int64_t g = std::gcd(n1, n2);
  const int64_t lcm = (n1 / g) * n2;
  const auto h = static_cast<int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
  test.statistic = static_cast<double>(h) / static_cast<double>(lcm);
  if (h == 0) return test;
  const double p = n1 == n2 ? outside_square_probability(n1, h) : outside_band_probability(n1, n2, g, h);
  test.p_value = std::clamp(p, 0.0, 1.0);
  return test;
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
