#include "metrics/regression.h"

#include <doctest/doctest.h>

#include "common/error.h"

using namespace recmodel::metrics;
using doctest::Approx;

TEST_CASE("regression_metrics matches scikit-learn") {
  RegressionMetrics m = regression_metrics({3, -0.5, 2, 7}, {2.5, 0.0, 2, 8});
  CHECK(m.mae == Approx(0.5));
  CHECK(m.rmse == Approx(0.6123724356957945));
  CHECK(*m.r2 == Approx(0.9486081370449679));
  CHECK(*m.get("rmse").value == Approx(0.6123724356957945));
  CHECK_FALSE(m.get("accuracy").applicable);
}

TEST_CASE("r2 edge cases follow scikit-learn's force_finite") {
  CHECK(*regression_metrics({2, 2}, {2, 2}).r2 == 1.0);
  CHECK(*regression_metrics({2, 2}, {2, 3}).r2 == 0.0);
  RegressionMetrics single = regression_metrics({1}, {4});
  CHECK_FALSE(single.r2.has_value());
  CHECK(single.mae == 3.0);
  MetricValue r2 = single.get("r2");
  CHECK(r2.applicable);
  CHECK_FALSE(r2.value.has_value());
  CHECK(to_json(single)["r2"].is_null());
}

TEST_CASE("regression_metrics refuses inconsistent input") {
  CHECK_THROWS_AS(regression_metrics({1, 2}, {1}), recmodel::DataError);
  CHECK_THROWS_AS(regression_metrics({}, {}), recmodel::DataError);
  CHECK_THROWS_WITH_AS(regression_metrics({1, 2}, {1, INFINITY}),
                       "regression metrics: predicted value of example 1 is not finite", recmodel::DataError);
}
