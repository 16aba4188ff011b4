#include "report/report_data.h"

#include <doctest/doctest.h>

#include "common/error.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using namespace recmodel::report;

namespace {

// Returns the message of the DataError `run` throws, or "" when it throws none.
template <typename Run>
std::string data_error(Run run) {
  try {
    run();
  } catch (const recmodel::DataError& e) {
    return e.what();
  }
  return "";
}

// A drift result in the shape `recmodel drift --json` writes.
nlohmann::json drift_document() {
  return nlohmann::json::parse(R"({
    "model": "models:/intent/3", "input": "log.jsonl", "input_kind": "log",
    "reference": {"source": "recmodel.json", "examples": 1234},
    "window": {"records": 500, "first": "2026-12-04T10:00:00.000Z", "last": null},
    "thresholds": {"psi": 0.2, "js": 0.1},
    "features": {
      "predicted_label": {"kind": "categorical", "test": "chi_square", "psi": 0.03, "js": 0.05, "statistic": 3.2,
                          "p_value": 0.36, "severity": "none", "drift": false,
                          "bins": {"labels": ["a", "b"], "reference": [0.5, 0.5], "live": [0.4, 0.6]}},
      "score": {"kind": "numeric", "test": "ks", "psi": 0.31, "js": 0.12, "statistic": 0.2, "p_value": 1e-9,
                "severity": "major", "drift": true, "reference_mean": 0.8, "live_mean": 0.7,
                "bins": {"edges": [0, 0.5, 1], "reference": [0.3, 0.7], "live": [0.6, 0.4]}},
      "tokens": {"available": false, "reason": "a predictions file has no token counts"}
    },
    "truncation_rate": {"reference": 0.01, "live": 0.02},
    "drift": true, "drifted": ["score"]})");
}

}  // namespace

TEST_CASE("report read_train_log splits training steps from dev evaluations") {
  t::TempDir dir;
  t::write_text(dir / "train_log.jsonl",
                "{\"step\": 10, \"epoch\": 1, \"loss\": 1.1, \"lr\": 0.001}\n"
                "\n"
                "{\"step\": 20, \"epoch\": 1, \"dev\": {\"accuracy\": 0.7, \"loss\": 0.9}, \"best\": true}\n"
                "{\"step\": 30, \"epoch\": 2, \"loss\": 0.6}\n"
                "{\"step\": 40, \"epoch\": 2, \"dev\": {\"accuracy\": 0.65}, \"best\": false}\n"
                "{\"note\": \"something else\"}\n");
  TrainLog log = read_train_log(dir / "train_log.jsonl");
  REQUIRE(log.steps.size() == 2);
  CHECK(log.steps[0].lr == 0.001);
  CHECK_FALSE(log.steps[1].lr.has_value());
  REQUIRE(log.evaluations.size() == 2);
  CHECK(log.evaluations[0].metrics["accuracy"] == 0.7);
  CHECK(log.best_step() == 20);
}

TEST_CASE("report read_train_log names the file and line of a bad record") {
  t::TempDir dir;
  const auto path = dir / "train_log.jsonl";
  t::write_text(path, "{\"step\": 10, \"loss\": 1.1}\n{\"step\": 20, \"loss\": \n");
  std::string message = data_error([&] { read_train_log(path); });
  CHECK(message.find(path.string() + ":2: not valid JSON") != std::string::npos);
  t::write_text(path, "{\"step\": \"ten\", \"loss\": 1.1}\n");
  CHECK(data_error([&] { read_train_log(path); }) == path.string() + ":1: \"step\" is string, expected an integer");
  t::write_text(path, "[1, 2]\n");
  CHECK(data_error([&] { read_train_log(path); }) == path.string() + ":1: expected a JSON object, found array");
  CHECK_THROWS_AS(read_train_log(dir / "missing.jsonl"), recmodel::NotFoundError);
}

TEST_CASE("report parse_drift reads drift's JSON") {
  DriftReport d = parse_drift(drift_document(), "drift.json");
  CHECK(d.model == "models:/intent/3");
  CHECK(d.reference_examples == 1234);
  CHECK(d.window_records == 500);
  CHECK(d.window_last.empty());
  CHECK(d.drift);
  CHECK(d.drifted == std::vector<std::string>{"score"});
  REQUIRE(d.features.size() == 3);
  const DriftFeature& label = d.features[0];
  CHECK(label.name == "predicted_label");
  CHECK(label.labels == std::vector<std::string>{"a", "b"});
  const DriftFeature& score = d.features[1];
  CHECK(score.edges == std::vector<double>{0, 0.5, 1});
  CHECK(score.live == std::vector<double>{0.6, 0.4});
  CHECK(score.severity == "major");
  CHECK(score.p_value == 1e-9);
  CHECK_FALSE(d.features[2].available);
  CHECK(d.features[2].reason == "a predictions file has no token counts");
}

TEST_CASE("report parse_drift names the key at fault") {
  auto doc = drift_document();
  doc["features"]["score"]["bins"]["live"] = {0.5, "x"};
  CHECK(data_error([&] { parse_drift(doc, "d.json"); }).find("d.json: features.score.bins.live: expected an array") == 0);
  doc = drift_document();
  doc["features"]["score"]["bins"]["edges"] = {0, 1};
  CHECK(data_error([&] { parse_drift(doc, "d.json"); }) ==
        "d.json: features.score.bins: 2 edges for 2 proportions (expected one more edge than proportions)");
  doc = drift_document();
  doc["features"]["score"]["psi"] = "high";
  CHECK(data_error([&] { parse_drift(doc, "d.json"); }) == "d.json: features.score: \"psi\" is string, expected a number");
  CHECK(data_error([&] { parse_drift(nlohmann::json::object(), "d.json"); })
            .find("d.json: has no \"features\" object") == 0);
  CHECK(data_error([&] { parse_drift(nlohmann::json::array(), "d.json"); }).find("d.json: expected the JSON object") == 0);
}

TEST_CASE("report read_drift_file names the file and line of malformed JSON") {
  t::TempDir dir;
  t::write_text(dir / "drift.json", "{\n  \"features\": {\n    \"score\": oops\n}\n");
  std::string message = data_error([&] { read_drift_file(dir / "drift.json"); });
  CHECK(message.find((dir / "drift.json").string()) == 0);
  CHECK(message.find("line 3") != std::string::npos);
  CHECK_THROWS_AS(read_drift_file(dir / "none.json"), recmodel::NotFoundError);
}
