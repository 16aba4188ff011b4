#include "metrics/gates.h"

#include <doctest/doctest.h>

#include "common/error.h"
#include "metrics/classification.h"
#include "metrics/regression.h"

using namespace recmodel::metrics;

TEST_CASE("parse_gates reads metric=value lists strictly") {
  auto gates = parse_gates("accuracy=0.9, f1_macro=0.85", GateKind::at_least, "--fail-under");
  REQUIRE(gates.size() == 2);
  CHECK(gates[0].metric == "accuracy");
  CHECK(gates[0].threshold == 0.9);
  CHECK(gates[1].metric == "f1_macro");
  CHECK_THROWS_WITH_AS(parse_gates("acuracy=0.9", GateKind::at_least, "--fail-under"),
                       doctest::Contains("unknown metric 'acuracy' in --fail-under; did you mean 'accuracy'?"),
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(parse_gates("mae=abc", GateKind::at_most, "--max"),
                       "--max mae: 'abc' is not a number; expected a value such as mae=0.9", recmodel::UsageError);
  CHECK_THROWS_AS(parse_gates("mae=0.5x", GateKind::at_most, "--max"), recmodel::UsageError);
  CHECK_THROWS_AS(parse_gates("mae", GateKind::at_most, "--max"), recmodel::UsageError);
  CHECK_THROWS_AS(parse_gates("mae=1,", GateKind::at_most, "--max"), recmodel::UsageError);
  CHECK_THROWS_AS(parse_gates("mae=1,mae=2", GateKind::at_most, "--max"), recmodel::UsageError);
}

TEST_CASE("check_gates returns the gates not met, one each") {
  ClassificationMetrics m = classification_metrics({0, 1, 1, 0}, {0, 1, 0, 0}, 2);  // accuracy 0.75
  auto lookup = [&](std::string_view name) { return m.get(name); };
  CHECK(check_gates(parse_gates("accuracy=0.75", GateKind::at_least, "--fail-under"), lookup).empty());
  auto failed = check_gates(parse_gates("accuracy=0.8,f1_macro=0.5", GateKind::at_least, "--fail-under"), lookup);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].describe() == "accuracy 0.75 is below 0.8 (--fail-under)");
  CHECK_THROWS_WITH_AS(check_gates(parse_gates("r2=0.5", GateKind::at_least, "--fail-under"), lookup),
                       "--fail-under r2: r2 does not apply here: it is a regression metric and this is a "
                       "classification task",
                       recmodel::UsageError);

  RegressionMetrics r = regression_metrics({1, 2, 3}, {1, 2, 4});
  auto rlookup = [&](std::string_view name) { return r.get(name); };
  auto over = check_gates(parse_gates("mae=0.2", GateKind::at_most, "--max"), rlookup);
  REQUIRE(over.size() == 1);
  CHECK(over[0].describe() == "mae 0.3333333333333333 is above 0.2 (--max)");
  RegressionMetrics single = regression_metrics({1}, {1});
  auto undefined = check_gates(parse_gates("r2=0.1", GateKind::at_least, "--fail-under"),
                               [&](std::string_view name) { return single.get(name); });
  REQUIRE(undefined.size() == 1);
  CHECK(undefined[0].describe() ==
        "r2 is undefined (R² is undefined for a single example), so --fail-under r2=0.1 cannot be met");
}

TEST_CASE("regression: parse_gates refuses a trailing comma, an empty name and non-numbers, naming the option") {
  auto refused = [](const char* spec, const std::string& message) {
    CAPTURE(spec);
    CHECK_THROWS_WITH_AS(parse_gates(spec, GateKind::at_most, "--max-drop"), message.c_str(), recmodel::UsageError);
  };
  refused("accuracy=0.01,",
          "--max-drop 'accuracy=0.01,': empty item; expected metric=value[,metric=value...], such as accuracy=0.9");
  refused("", "--max-drop '': empty item; expected metric=value[,metric=value...], such as accuracy=0.9");
  refused("=0.01", "--max-drop '=0.01': no metric name; expected metric=value, such as accuracy=0.9");
  refused(" =0.01,accuracy=0.1", "--max-drop '=0.01': no metric name; expected metric=value, such as accuracy=0.9");
  refused("accuracy=", "--max-drop accuracy: '' is not a number; expected a value such as accuracy=0.9");
  refused("accuracy=nan", "--max-drop accuracy: 'nan' is not a number; expected a value such as accuracy=0.9");
  refused("accuracy=inf", "--max-drop accuracy: 'inf' is not a number; expected a value such as accuracy=0.9");
  refused("accuracy=0x1p-3", "--max-drop accuracy: '0x1p-3' is not a number; expected a value such as accuracy=0.9");
  refused("accuracy=0.1,accuracy=0.2", "--max-drop: metric accuracy is given twice");
  CHECK_THROWS_WITH_AS(parse_gates("per_class=0.1", GateKind::at_most, "--max-drop"),
                       doctest::Contains("unknown metric 'per_class' in --max-drop"), recmodel::UsageError);
  CHECK(parse_gates(" accuracy = 0.01 ", GateKind::at_most, "--max-drop").at(0).threshold == 0.01);
}
