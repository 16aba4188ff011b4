// The statistics `recmodel drift` compares live traffic with a reference by, with Evidently's and
// SciPy's conventions so the numbers match what data scientists get in a notebook:
//   PSI      sum((a - e) * ln(a / e)) over the bins' proportions, an empty bin counted as 1e-4;
//            > 0.1 is a moderate shift, > 0.25 a major one.
//   JS       the Jensen-Shannon distance (scipy.spatial.distance.jensenshannon, natural log): the
//            square root of the mean KL divergence of each distribution from their average.
//   chi2     scipy.stats.chisquare(observed, expected scaled to the observed total): the statistic
//            and its p-value with k - 1 degrees of freedom.
//   KS       scipy.stats.ks_2samp(reference, live), two-sided, with SciPy's exact p-value (the method
//            its 'auto' picks up to 10,000 values a side).
#pragma once

#include <cstddef>
#include <vector>

namespace recmodel::metrics {

inline constexpr double kEmptyBinProportion = 1e-4;

// Returns the population stability index of `actual` against `expected` (counts per bin, the same
// bins in the same order). Throws UsageError when the sizes differ or either has no count.
double population_stability_index(const std::vector<double>& expected, const std::vector<double>& actual);

// Returns the Jensen-Shannon distance between two count (or probability) vectors, in [0, sqrt(ln 2)].
double jensen_shannon_distance(const std::vector<double>& p, const std::vector<double>& q);

struct ChiSquareTest {
  double statistic = 0;
  double p_value = 1;
  int degrees_of_freedom = 0;
};

// Pearson's chi-square goodness-of-fit of `observed` counts against `expected` counts (rescaled to
// the observed total, as SciPy requires). Bins where the expected count is 0 take kEmptyBinProportion
// of the total, so a label the reference never predicted still counts.
ChiSquareTest chi_square_test(const std::vector<double>& expected, const std::vector<double>& observed);

inline constexpr size_t kMaxExactKsSample = 10000;

struct KsTest {
  double statistic = 0;  // the largest distance between the two empirical CDFs
  double p_value = 1;
};

// The two-sided two-sample Kolmogorov-Smirnov test with the exact p-value (lattice paths, Hodges'
// inside method with Viehmann's recursion for 1 - p). Throws UsageError when a sample is empty,
// holds a NaN, or has more than kMaxExactKsSample values (drift windows are capped at that).
KsTest ks_two_sample(std::vector<double> reference, std::vector<double> live);

// Returns Q(a, x), the regularized upper incomplete gamma function (scipy.special.gammaincc), for
// a > 0 and x >= 0: the chi-square survival function is Q(df / 2, statistic / 2).
double regularized_upper_gamma(double a, double x);

}  // namespace recmodel::metrics
