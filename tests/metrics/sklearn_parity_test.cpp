// recmodel's metrics equal scikit-learn's to 1e-9 on thousands of random and edge-case inputs:
// tests/peers/sklearn_cases.py draws them and records scikit-learn's answers, this test computes
// recmodel's in-process and compares every value, and the zero-division warnings.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "metrics/classification.h"
#include "metrics/regression.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using namespace recmodel::metrics;

namespace {

bool close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }

}  // namespace

TEST_CASE("metrics equal scikit-learn on random and edge-case inputs") {
  // scripts/test.sh installs the peers: a missing one fails the test rather than skipping it.
  REQUIRE_MESSAGE(std::system("/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1") == 0,
                  "/usr/bin/python3 with scikit-learn is not installed (apt-get install python3-sklearn)");
  t::TempDir dir;
  std::string out = (dir / "cases.json").string();
  std::string command = std::string("/usr/bin/python3 ") + RECMODEL_SOURCE_DIR + "/tests/peers/sklearn_cases.py " +
                        out + " --cases 1000";
  REQUIRE(std::system(command.c_str()) == 0);
  auto doc = nlohmann::json::parse(t::read_text(out));
  size_t compared = 0, mismatches = 0;
  for (size_t index = 0; index < doc["cases"].size(); ++index) {
    const auto& c = doc["cases"][index];
    const auto& want = c["expected"];
    std::vector<std::string> problems;
    auto check = [&](const std::string& name, const std::optional<double>& got, const nlohmann::json& expected) {
      ++compared;
      if (expected.is_null() ? got.has_value() : (!got || !close(*got, expected.get<double>())))
        problems.push_back(name + ": recmodel " + (got ? std::to_string(*got) : "none") + ", scikit-learn " +
                           expected.dump());
    };
    if (c["task"] == "regression") {
      RegressionMetrics m = regression_metrics(c["truth"].get<std::vector<double>>(), c["pred"].get<std::vector<double>>());
      check("mae", m.mae, want["mae"]);
      check("rmse", m.rmse, want["rmse"]);
      check("r2", m.r2, want["r2"]);
    } else {
      ClassificationOptions options;
      options.top_k = c["top_k"].get<int>();
      options.class_values = c["class_values"].get<std::vector<double>>();
      ClassificationMetrics m = classification_metrics(c["truth"].get<std::vector<int>>(), c["pred"].get<std::vector<int>>(),
                                                       c["num_classes"].get<int>(), c["probs"].get<std::vector<double>>(),
                                                       options);
      check("accuracy", m.accuracy, want["accuracy"]);
      for (const char* avg : {"macro", "micro", "weighted"})
        for (const char* what : {"precision", "recall", "f1"}) {
          std::string name = std::string(what) + "_" + avg;
          check(name, m.get(name).value, want[name]);
        }
      if (m.labels != want["labels"].get<std::vector<int>>()) problems.push_back("labels differ");
      if (m.confusion != want["confusion"].get<std::vector<std::vector<int64_t>>>())
        problems.push_back("confusion matrix differs");
      const auto& per_class = want["per_class"];
      if (per_class.size() != m.per_class.size()) {
        problems.push_back("per-class row count differs");
      } else {
        for (size_t i = 0; i < m.per_class.size(); ++i) {
          const ClassScores& s = m.per_class[i];
          check("precision of " + std::to_string(s.label), s.precision, per_class[i][0]);
          check("recall of " + std::to_string(s.label), s.recall, per_class[i][1]);
          check("f1 of " + std::to_string(s.label), s.f1, per_class[i][2]);
          if (s.support != per_class[i][3].get<int64_t>()) problems.push_back("support differs");
        }
      }
      if (want.contains("top_k_accuracy")) check("top_k_accuracy", m.top_k_accuracy, want["top_k_accuracy"]);
      else if (m.top_k_accuracy) problems.push_back("top_k_accuracy computed without scikit-learn's");
      if (want.contains("roc_auc")) check("roc_auc", m.roc_auc, want["roc_auc"]);
      if (want.contains("pr_auc")) check("pr_auc", m.pr_auc, want["pr_auc"]);
      if (want.contains("mae")) check("mae", m.mae, want["mae"]);
      if (m.never_predicted.empty() == c["warn_precision"].get<bool>())
        problems.push_back("precision warning differs from scikit-learn's");
      if (m.no_true_samples.empty() == c["warn_recall"].get<bool>())
        problems.push_back("recall warning differs from scikit-learn's");
    }
    if (!problems.empty()) {
      ++mismatches;
      if (mismatches <= 5) {
        std::string text = "case " + std::to_string(index) + " (" + c["task"].get<std::string>() + "):";
        for (const auto& p : problems) text += "\n  " + p;
        FAIL_CHECK(text);
      }
    }
  }
  CHECK(mismatches == 0);
  CHECK(doc["cases"].size() > 1000);
  MESSAGE(compared << " values in " << doc["cases"].size() << " cases equal scikit-learn "
                   << doc["sklearn"].get<std::string>() << " to 1e-9");
}
