#include "metrics/classification.h"

#include <doctest/doctest.h>

#include "common/error.h"

using namespace recmodel::metrics;
using doctest::Approx;

// Reference values below come from scikit-learn 1.2.1 (tests/peers/sklearn_parity.test.sh
// compares thousands of random cases; these pin the API and the awkward rules).

TEST_CASE("classification_metrics matches scikit-learn on a three-class example") {
  std::vector<int> truth = {0, 1, 2, 0, 1, 2}, predicted = {0, 2, 1, 0, 0, 1};
  ClassificationMetrics m = classification_metrics(truth, predicted, 3);
  CHECK(m.examples == 6);
  CHECK(m.accuracy == Approx(1.0 / 3));
  REQUIRE(m.per_class.size() == 3);
  CHECK(m.per_class[0].precision == Approx(2.0 / 3));
  CHECK(m.per_class[0].recall == 1.0);
  CHECK(m.per_class[0].f1 == Approx(0.8));
  CHECK(m.per_class[1].f1 == 0.0);
  CHECK(m.per_class[2].support == 2);
  CHECK(m.macro.precision == Approx(0.2222222222222222));
  CHECK(m.macro.f1 == Approx(0.26666666666666666));
  CHECK(m.micro.f1 == Approx(1.0 / 3));
  CHECK(m.weighted.recall == Approx(1.0 / 3));
  CHECK(m.confusion == std::vector<std::vector<int64_t>>{{2, 0, 0}, {1, 0, 1}, {0, 2, 0}});
  CHECK(m.never_predicted.empty());
  CHECK_FALSE(m.top_k_accuracy.has_value());
  CHECK_FALSE(m.get("top_k_accuracy").applicable);
  CHECK_FALSE(m.get("roc_auc").applicable);
  CHECK_FALSE(m.get("r2").applicable);
  CHECK(*m.get("f1_macro").value == Approx(0.26666666666666666));
}

TEST_CASE("top_k_accuracy breaks ties towards the higher class index, as scikit-learn does") {
  std::vector<int> truth = {0, 1, 2, 0, 1, 2}, predicted = {0, 2, 1, 0, 0, 1};
  std::vector<double> p = {0.5, 0.3, 0.2, 0.2, 0.3, 0.5, 0.1, 0.5, 0.4,
                           0.4, 0.4, 0.2, 0.7, 0.2, 0.1, 0.3, 0.4, 0.3};
  ClassificationOptions options;
  options.top_k = 1;
  CHECK(*classification_metrics(truth, predicted, 3, p, options).top_k_accuracy == Approx(1.0 / 6));
  options.top_k = 2;
  ClassificationMetrics m = classification_metrics(truth, predicted, 3, p, options);
  CHECK(*m.top_k_accuracy == 1.0);
  CHECK(m.top_k == 2);
  CHECK(*m.get("top_k_accuracy").value == 1.0);
}

TEST_CASE("binary tasks get roc_auc and pr_auc (average_precision_score)") {
  std::vector<int> truth = {0, 0, 1, 1}, predicted = {0, 0, 0, 1};
  std::vector<double> p = {0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8};
  ClassificationMetrics m = classification_metrics(truth, predicted, 2, p);
  CHECK(*m.roc_auc == Approx(0.75));
  CHECK(*m.pr_auc == Approx(0.8333333333333333));
  CHECK(*m.get("pr_auc").value == Approx(0.8333333333333333));

  SUBCASE("one class in the truth: roc_auc undefined, pr_auc 0 with a warning") {
    ClassificationMetrics one = classification_metrics({0, 0, 0, 0}, predicted, 2, p);
    CHECK_FALSE(one.roc_auc.has_value());
    MetricValue roc = one.get("roc_auc");
    CHECK(roc.applicable);
    CHECK_FALSE(roc.value.has_value());
    CHECK(*one.pr_auc == 0.0);
    auto warnings = zero_division_warnings(one, {"neg", "pos"});
    CHECK(warnings == std::vector<std::string>{
                          "recall and F1 of class 'pos' set to 0: no true example",
                          "roc_auc is undefined: the truth holds one class only",
                          "pr_auc is 0: the truth has no example of the positive class 'pos'"});
  }
}

TEST_CASE("zero division sets 0 and names the class, absent classes leave the averages") {
  // Class 1 never predicted, class 2 predicted but never true, class 3 in neither.
  ClassificationMetrics m = classification_metrics({0, 1, 0, 1}, {0, 0, 2, 0}, 4);
  CHECK(m.labels == std::vector<int>{0, 1, 2});
  CHECK(m.absent == std::vector<int>{3});
  CHECK(m.never_predicted == std::vector<int>{1});
  CHECK(m.no_true_samples == std::vector<int>{2});
  CHECK(m.per_class[1].precision == 0.0);
  CHECK(m.per_class[2].recall == 0.0);
  CHECK(m.macro.precision == Approx((1.0 / 3) / 3));
  CHECK(zero_division_warnings(m, {"a", "b", "c", "d"}) ==
        std::vector<std::string>{"precision and F1 of class 'b' set to 0: never predicted",
                                 "recall and F1 of class 'c' set to 0: no true example",
                                 "class 'd' neither in the truth nor in the predictions: left out of the averages"});

  SUBCASE("explicit labels score every class named") {
    ClassificationOptions options;
    options.labels = {0, 1, 2, 3};
    ClassificationMetrics all = classification_metrics({0, 1, 0, 1}, {0, 0, 2, 0}, 4, {}, options);
    CHECK(all.per_class.size() == 4);
    CHECK(all.macro.precision == Approx((1.0 / 3) / 4));
    CHECK(all.confusion.size() == 4);
  }
}

TEST_CASE("one class only and a single example") {
  ClassificationMetrics single = classification_metrics({2}, {2}, 3);
  CHECK(single.accuracy == 1.0);
  CHECK(single.labels == std::vector<int>{2});
  CHECK(single.macro.f1 == 1.0);
  ClassificationMetrics wrong = classification_metrics({2}, {0}, 3);
  CHECK(wrong.accuracy == 0.0);
  CHECK(wrong.weighted.f1 == 0.0);
  ClassificationMetrics lone = classification_metrics({0, 0}, {0, 0}, 1);
  CHECK(lone.micro.precision == 1.0);
  CHECK_FALSE(lone.get("top_k_accuracy").applicable);
}

TEST_CASE("ordinal classes get the MAE of the predicted class") {
  std::vector<std::string> stars = {"1", "2", "3", "4", "5"};
  ClassificationOptions options;
  options.class_values = numeric_label_values(stars);
  REQUIRE(options.class_values == std::vector<double>{1, 2, 3, 4, 5});
  ClassificationMetrics m = classification_metrics({0, 4, 2}, {1, 1, 2}, 5, {}, options);
  CHECK(*m.mae == Approx(4.0 / 3));
  CHECK(*m.get("mae").value == Approx(4.0 / 3));
  CHECK(numeric_label_values({"1", "two"}).empty());
  CHECK(numeric_label_values({"-1.5", "+2", "1e3"}) == std::vector<double>{-1.5, 2, 1000});
  CHECK(numeric_label_values({"nan"}).empty());
  CHECK_FALSE(classification_metrics({0}, {0}, 2).get("mae").applicable);
}

TEST_CASE("classification_metrics refuses inconsistent input") {
  CHECK_THROWS_WITH_AS(classification_metrics({0, 1}, {0}, 2), "classification metrics: 2 true labels but 1 predictions",
                       recmodel::DataError);
  CHECK_THROWS_WITH_AS(classification_metrics({}, {}, 2), "classification metrics: no examples to evaluate",
                       recmodel::DataError);
  CHECK_THROWS_WITH_AS(classification_metrics({0, 3}, {0, 1}, 3),
                       "classification metrics: true class 3 of example 1 is outside 0..2", recmodel::DataError);
  CHECK_THROWS_AS(classification_metrics({0}, {0}, 2, {0.5}), recmodel::DataError);
  CHECK_THROWS_AS(classification_metrics({0}, {0}, 2, {0.5, NAN}), recmodel::DataError);
}

TEST_CASE("metric names: lookup and did you mean") {
  ClassificationMetrics m = classification_metrics({0, 1}, {0, 1}, 2);
  CHECK_THROWS_WITH_AS(m.get("acuracy"),
                       doctest::Contains("unknown metric 'acuracy' in the metric lookup; did you mean 'accuracy'?"),
                       recmodel::UsageError);
  CHECK(is_metric_name("f1_weighted"));
  CHECK_FALSE(is_metric_name("per_class"));
  CHECK_FALSE(higher_is_better("mae"));
  CHECK(higher_is_better("r2"));
}

TEST_CASE("to_json names labels and carries every applicable metric") {
  std::vector<double> p = {0.9, 0.1, 0.2, 0.8, 0.6, 0.4};
  ClassificationMetrics m = classification_metrics({0, 1, 1}, {0, 1, 0}, 2, p);
  nlohmann::ordered_json j = to_json(m, {"neg", "pos"});
  CHECK(j["examples"] == 3);
  CHECK(j["accuracy"].get<double>() == Approx(2.0 / 3));
  CHECK(j.contains("roc_auc"));
  CHECK(j["top_k"] == 1);  // the default for two classes
  CHECK_FALSE(j.contains("mae"));
  CHECK_FALSE(j.contains("r2"));
  CHECK(j["per_class"]["pos"]["support"] == 2);
  CHECK(j["confusion_matrix"]["labels"] == nlohmann::ordered_json{"neg", "pos"});
  CHECK(j["confusion_matrix"]["matrix"] == nlohmann::ordered_json{{1, 0}, {1, 1}});
}

TEST_CASE("default_top_k stays below the class count") {
  CHECK(default_top_k(2) == 1);
  CHECK(default_top_k(3) == 2);
  CHECK(default_top_k(6) == 5);
  CHECK(default_top_k(40) == 5);
  CHECK(default_top_k(1) == 1);
}
