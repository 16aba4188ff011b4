// `recmodel report`: the HTML page of a trained, registered model (every section, the numbers
// evaluate prints, the heatmap's cells), a model without a training log, predictions files,
// a directory found in the registry, and the errors (exit 2, 3, 4 with one line each).
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/cli/train_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;
using t::train::Fixture;

namespace {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A drift result in the shape `recmodel drift --json` writes, with one feature unavailable.
const char* kDriftJson = R"({"model": "models:/products/1", "input": "served.jsonl", "input_kind": "log",
 "reference": {"source": "recmodel.json", "examples": 480},
 "window": {"records": 500, "first": "2026-12-04T10:00:00.000Z", "last": "2026-12-04T11:00:00.000Z"},
 "thresholds": {"psi": 0.2, "js": 0.1},
 "features": {
  "predicted_label": {"kind": "categorical", "test": "chi_square", "psi": 0.0312, "js": 0.0101, "statistic": 3.2,
    "p_value": 0.2019, "severity": "none", "drift": false,
    "bins": {"labels": ["clothing", "grocery", "home"], "reference": [0.35, 0.33, 0.32], "live": [0.30, 0.40, 0.30]}},
  "score": {"kind": "numeric", "test": "ks", "psi": 0.4321, "js": 0.1502, "statistic": 0.31, "p_value": 0.00002,
    "severity": "major", "drift": true, "reference_mean": 0.81, "live_mean": 0.62,
    "bins": {"edges": [0, 0.25, 0.5, 0.75, 1], "reference": [0.05, 0.1, 0.25, 0.6], "live": [0.1, 0.3, 0.3, 0.3]}},
  "unk_rate": {"available": false, "reason": "a predictions file has no token counts"}},
 "truncation_rate": {"reference": 0.01, "live": 0.02},
 "drift": true, "drifted": ["score"]}
)";

// A trained model registered as models:/products/1 and promoted to production.
struct Registered {
  Fixture f;
  std::string registry = f.path("registry.db");
  std::string model = f.path("model");
  nlohmann::json trained;
  Registered() {
    auto train = t::run_recmodel(t::train::train_args(f, model, {"--json", "--register", "products", "--registry", registry}));
    REQUIRE_MESSAGE(train.exit_code == 0, train.err);
    trained = nlohmann::json::parse(train.out);
    auto promote = t::run_recmodel({"registry", "promote", "models:/products/1", "--alias", "production", "--reason",
                                    "first <good> model", "--registry", registry, "-q"});
    REQUIRE_MESSAGE(promote.exit_code == 0, promote.err);
    t::write_text(f.dir / "drift.json", kDriftJson);
  }
};

}  // namespace

TEST_CASE("report of a registered model has every section and the numbers evaluate prints") {
  Registered r;
  const std::string out = r.f.path("report.html");
  auto run = t::run_recmodel({"report", "models:/products@production", "--registry", r.registry, "--out", out,
                              "--data", r.f.data, "--drift", r.f.path("drift.json"), "--json"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto doc = nlohmann::json::parse(run.out);
  CHECK(doc["out"] == out);
  CHECK(doc["sections"] ==
        nlohmann::json{"model", "training", "evaluation", "calibration", "drift", "registry"});
  CHECK(doc["missing"].empty());
  const std::string html = t::read_text(out);
  CHECK(doc["bytes"] == html.size());
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("<script") == std::string::npos);
  CHECK_FALSE(fs::exists(out + ".tmp"));

  for (const char* id : {"training-curves", "confusion-matrix", "score-histogram", "reliability", "drift-score",
                         "drift-predicted_label"})
    CHECK_MESSAGE(html.find(fmt::format("<svg id=\"{}\"", id)) != std::string::npos, id);
  CHECK(html.find("id=\"drift-unk_rate\"") == std::string::npos);
  CHECK(html.find("not available: a predictions file has no token counts") != std::string::npos);
  CHECK(occurrences(html, "<rect class=\"cell\"") == 9);  // three classes
  // The best step train reports is the one marked.
  const int64_t best = r.trained["best_step"].get<int64_t>();
  CHECK(html.find(fmt::format("<line class=\"marker\" data-x=\"{}\"", best)) != std::string::npos);
  CHECK(html.find(fmt::format(">best step {}</text>", best)) != std::string::npos);

  // The same split through evaluate: its accuracy and per-class F1, with evaluate's four decimals.
  auto evaluated = t::run_recmodel({"evaluate", "--model", r.model, "--data", r.f.data, "--json", "-q"});
  REQUIRE_MESSAGE(evaluated.exit_code == 0, evaluated.err);
  auto metrics = nlohmann::json::parse(evaluated.out);
  CHECK(html.find(fmt::format("<td>accuracy</td><td class=\"num\">{:.4f}</td>", metrics["accuracy"].get<double>())) !=
        std::string::npos);
  CHECK(html.find(fmt::format("<td>f1_macro</td><td class=\"num\">{:.4f}</td>", metrics["f1_macro"].get<double>())) !=
        std::string::npos);
  for (auto& [label, scores] : metrics["per_class"].items())
    CHECK_MESSAGE(html.find(fmt::format("<tr><td>{}</td><td class=\"num\">{:.4f}</td>", label,
                                        scores["precision"].get<double>())) != std::string::npos,
                  label);
  const auto& matrix = metrics["confusion_matrix"]["matrix"];
  for (size_t row = 0; row < matrix.size(); ++row)
    for (size_t column = 0; column < matrix[row].size(); ++column)
      CHECK(html.find(fmt::format("data-row=\"{}\" data-column=\"{}\" data-count=\"{}\"", row, column,
                                  matrix[row][column].get<int64_t>())) != std::string::npos);

  // Drift numbers and the registry's lineage and alias history, escaped.
  CHECK(html.find("<td class=\"num\">0.4321</td>") != std::string::npos);
  CHECK(html.find("<span class=\"severity-major\">major</span>") != std::string::npos);
  CHECK(html.find("models:/products/1") != std::string::npos);
  CHECK(html.find("<table id=\"alias-history\">") != std::string::npos);
  CHECK(html.find("first &lt;good&gt; model") != std::string::npos);

  auto human = t::run_recmodel({"report", "models:/products/1", "--registry", r.registry, "--out", out});
  REQUIRE_MESSAGE(human.exit_code == 0, human.err);
  CHECK(human.out.rfind("wrote " + out + " (", 0) == 0);
  CHECK(human.out.find("KB): model, training, registry\n") != std::string::npos);
}

TEST_CASE("report of a model directory finds its registry version only with --registry") {
  Registered r;
  const std::string out = r.f.path("dir.html");
  auto plain = t::run_recmodel({"report", r.model, "--out", out, "--json"},
                               "", {"RECMODEL_REGISTRY=" + r.registry});
  REQUIRE_MESSAGE(plain.exit_code == 0, plain.err);
  auto doc = nlohmann::json::parse(plain.out);
  CHECK(doc["sections"] == nlohmann::json{"model", "training"});
  CHECK(doc["missing"]["registry"].get<std::string>().find("is a model directory") != std::string::npos);
  CHECK(doc["missing"]["evaluation"].get<std::string>().find("--data DIR") != std::string::npos);
  CHECK(doc["missing"]["drift"].get<std::string>().find("--drift FILE") != std::string::npos);

  auto found = t::run_recmodel({"report", r.model, "--out", out, "--json", "--registry", r.registry});
  REQUIRE_MESSAGE(found.exit_code == 0, found.err);
  CHECK(nlohmann::json::parse(found.out)["sections"] == nlohmann::json{"model", "training", "registry"});
  CHECK(t::read_text(out).find("<h1>Model report: models:/products/1</h1>") != std::string::npos);

  // A registry the directory is not in says so on the page.
  auto other = t::run_recmodel({"report", r.f.model, "--out", out, "--json", "--registry", r.registry});
  REQUIRE_MESSAGE(other.exit_code == 0, other.err);
  CHECK(nlohmann::json::parse(other.out)["missing"]["registry"].get<std::string>().find("is not registered in") !=
        std::string::npos);
}

TEST_CASE("report of an untrained model and predictions files: no curves, calibration from probs") {
  Fixture f(60);
  t::write_text(f.dir / "labels.jsonl",
                "{\"id\": 1, \"label\": \"home\"}\n{\"id\": 2, \"label\": \"grocery\"}\n"
                "{\"id\": 3, \"label\": \"clothing\"}\n{\"id\": 4, \"label\": \"home\"}\n");
  t::write_text(f.dir / "pred.jsonl",
                "{\"id\": 1, \"label\": \"home\", \"probs\": {\"home\": 0.9, \"grocery\": 0.05, \"clothing\": 0.05}}\n"
                "{\"id\": 2, \"label\": \"grocery\", \"probs\": {\"home\": 0.3, \"grocery\": 0.6, \"clothing\": 0.1}}\n"
                "{\"id\": 3, \"label\": \"home\", \"probs\": {\"home\": 0.7, \"grocery\": 0.1, \"clothing\": 0.2}}\n"
                "{\"id\": 4, \"label\": \"home\", \"probs\": {\"home\": 0.95, \"grocery\": 0.0, \"clothing\": 0.05}}\n");
  const std::string out = f.path("init.html");
  auto run = t::run_recmodel({"report", f.model, "--out", out, "--predictions", f.path("pred.jsonl"), "--labels",
                              f.path("labels.jsonl"), "--json"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto doc = nlohmann::json::parse(run.out);
  CHECK(doc["sections"] == nlohmann::json{"model", "evaluation", "calibration"});
  CHECK(doc["missing"]["training"].get<std::string>().find("has no train_log.jsonl") != std::string::npos);
  const std::string html = t::read_text(out);
  CHECK(html.find("has no train_log.jsonl") != std::string::npos);
  CHECK(html.find("id=\"training-curves\"") == std::string::npos);
  CHECK(html.find("<td>accuracy</td><td class=\"num\">0.7500</td>") != std::string::npos);
  // Confidences 0.9, 0.6, 0.7 (wrong) and 0.95: bins (0.5,0.6], (0.6,0.7], (0.8,0.9], (0.9,1];
  // ECE = (|1-0.6| + |0-0.7| + |1-0.9| + |1-0.95|) / 4.
  CHECK(html.find(fmt::format("<th>expected calibration error (ECE)</th><td>{:.4f}</td>", (0.4 + 0.7 + 0.1 + 0.05) / 4)) !=
        std::string::npos);
  CHECK(occurrences(html, "<rect class=\"bin\"") == 4);

  // Regression predictions: the residual histogram and no calibration.
  t::write_text(f.dir / "values.jsonl", "{\"id\": 1, \"value\": 3}\n{\"id\": 2, \"value\": 4.5}\n");
  t::write_text(f.dir / "truth.jsonl", "{\"id\": 1, \"value\": 2}\n{\"id\": 2, \"value\": 5}\n");
  auto regression = t::run_recmodel({"report", f.model, "--out", out, "--predictions", f.path("values.jsonl"),
                                     "--labels", f.path("truth.jsonl"), "--json"});
  REQUIRE_MESSAGE(regression.exit_code == 0, regression.err);
  CHECK(nlohmann::json::parse(regression.out)["sections"] == nlohmann::json{"model", "evaluation"});
  const std::string page = t::read_text(out);
  CHECK(page.find("<svg id=\"residual-histogram\"") != std::string::npos);
  CHECK(page.find("<td>mae</td><td class=\"num\">0.7500</td>") != std::string::npos);
}

TEST_CASE("report errors: one line with exit 2 for flags, 3 for bad files, 4 for missing ones") {
  Fixture f(60);
  const std::string out = f.path("r.html");
  auto expect = [&](const std::vector<std::string>& args, int code, const std::string& text) {
    auto run = t::run_recmodel(args);
    CHECK_MESSAGE(run.exit_code == code, run.err);
    CHECK_MESSAGE(t::error_line_count(run.err) == 1, run.err);
    CHECK_MESSAGE(run.err.find(text) != std::string::npos, run.err);
    CHECK(run.out.empty());
    CHECK_FALSE(fs::exists(out));
  };
  expect({"report", "--out", out}, 2, "REF is required");
  expect({"report", f.model}, 2, "--out is required");
  expect({"report", f.model, "--out", out, "--predictions", f.path("p.jsonl")}, 2,
         "--predictions and --labels go together");
  expect({"report", f.model, "--out", out, "--split", "dev"}, 2, "--split names a split of --data DIR");
  expect({"report", f.model, "--out", out, "--data", f.data, "--split", "tset"}, 2, "--split");
  expect({"report", f.model, "--out", f.dir.path().string()}, 2, "is a directory");
  expect({"report", f.model, "--out", f.path("no/such/r.html")}, 4, "does not exist");
  expect({"report", f.path("nothing"), "--out", out}, 4, "no config.json");
  expect({"report", "models:/ghost/1", "--out", out, "--registry", f.path("none.db")}, 4, "none.db");
  expect({"report", f.model, "--out", out, "--drift", f.path("missing.json")}, 4, "missing.json");
  t::write_text(f.dir / "drift.json", "{\n  \"features\": {\n    \"score\": oops\n  }\n}\n");
  expect({"report", f.model, "--out", out, "--drift", f.path("drift.json")}, 3, "drift.json: not valid JSON: parse error at line 3");
  t::write_text(f.dir / "drift.json", "{\"features\": {\"score\": {\"bins\": {\"edges\": [0, 1], \"reference\": [1], "
                                      "\"live\": [\"x\"]}}}}\n");
  expect({"report", f.model, "--out", out, "--drift", f.path("drift.json")}, 3, "features.score.bins.live");
  expect({"report", f.model, "--out", out, "--data", f.path("nodata")}, 4, "nodata");

  // A training log with a line cut short is named with its line.
  t::write_text(fs::path(f.model) / "train_log.jsonl", "{\"step\": 10, \"epoch\": 1, \"loss\": 1.0}\n{\"step\": 2\n");
  expect({"report", f.model, "--out", out}, 3, "train_log.jsonl:2: not valid JSON");
}
