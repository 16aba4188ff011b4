#include "report/html_report.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "report/svg_chart.h"

using namespace recmodel;
using namespace recmodel::report;

namespace {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A three-class evaluation: 8 of 10 right, with probabilities.
metrics::Evaluation classification_evaluation() {
  metrics::Evaluation e;
  e.labels = {"books", "<toys>", "garden"};
  const std::vector<int> truth = {0, 0, 0, 1, 1, 1, 2, 2, 2, 2}, predicted = {0, 0, 1, 1, 1, 1, 2, 2, 2, 0};
  e.classification = metrics::classification_metrics(truth, predicted, 3);
  e.outcomes.confidence = {0.9, 0.8, 0.55, 0.7, 0.95, 0.6, 0.85, 0.75, 0.99, 0.5};
  for (size_t i = 0; i < truth.size(); ++i) e.outcomes.correct.push_back(truth[i] == predicted[i]);
  return e;
}

ReportInput base_input() {
  ReportInput input;
  input.model.reference = "models/intent";
  input.model.directory = "models/intent";
  input.model.task = "classification";
  input.model.labels = {"books", "<toys>", "garden"};
  input.model.lineage = {{"created_by", "train"}, {"params", {{"lr", 0.001}, {"metric", "accuracy"}}}};
  input.generated_at = "2026-01-02T03:04:05.000Z";
  input.recmodel_version = "0.1.0";
  input.training_missing = "no log here";
  input.evaluation_missing = "no evaluation here";
  input.drift_missing = "no drift here";
  input.registry_missing = "not registered";
  return input;
}

}  // namespace

TEST_CASE("report round_edges and bin_counts follow numpy.histogram's rule") {
  CHECK(bin_counts({0, 0.25, 0.5, 1, 1, 2}, {0, 0.5, 1}) == std::vector<double>{2, 3});
  std::vector<double> edges = round_edges({-0.37, 0.12, 0.41}, 8);
  CHECK(edges.front() <= -0.37);
  CHECK(edges.back() >= 0.41);
  CHECK(bin_counts({-0.37, 0.12, 0.41}, edges).size() == edges.size() - 1);
  double total = 0;
  for (double c : bin_counts({-0.37, 0.12, 0.41}, edges)) total += c;
  CHECK(total == 3);
}

TEST_CASE("report page without data says so in each section and has no script") {
  Report r = render_report(base_input());
  CHECK(r.sections == std::vector<std::string>{"model"});
  CHECK(r.html.rfind("<!DOCTYPE html>", 0) == 0);
  for (const char* text : {"no log here", "no evaluation here", "no drift here", "not registered"})
    CHECK_MESSAGE(r.html.find(text) != std::string::npos, text);
  CHECK(r.html.find("<script") == std::string::npos);
  CHECK(r.html.find("http://") == r.html.find("http://www.w3.org/2000/svg"));  // no link to fetch
  CHECK(r.html.find("@media print") != std::string::npos);
  CHECK(r.html.find("page-break-inside: avoid") != std::string::npos);
  CHECK(r.html.find("<title>recmodel report: intent</title>") != std::string::npos);
}

TEST_CASE("report page of a classifier: curves, per-class table, confusion heatmap, calibration") {
  ReportInput input = base_input();
  TrainLog log;
  log.steps = {{10, 1, 1.2, 0.001}, {20, 1, 0.9, 0.0008}, {30, 2, 0.7, 0.0004}};
  log.evaluations = {{20, 1, {{"accuracy", 0.7}, {"loss", 0.95}}, true}, {30, 2, {{"accuracy", 0.65}}, false}};
  input.training = log;
  input.evaluation = EvaluationFacts{"data (test split)", classification_evaluation()};
  Report r = render_report(input);
  CHECK(r.sections == std::vector<std::string>{"model", "training", "evaluation", "calibration"});
  const std::string& html = r.html;
  CHECK(html.find("<svg id=\"training-curves\"") != std::string::npos);
  CHECK(html.find("<line class=\"marker\" data-x=\"20\"") != std::string::npos);
  CHECK(html.find(">best step 20</text>") != std::string::npos);
  CHECK(occurrences(html, "<rect class=\"cell\"") == 9);
  CHECK(html.find("<svg id=\"confusion-matrix\"") != std::string::npos);
  CHECK(html.find("<svg id=\"score-histogram\"") != std::string::npos);
  CHECK(html.find("<svg id=\"reliability\"") != std::string::npos);
  // Accuracy 0.8 with four decimals, as evaluate prints it; the label escaped everywhere.
  CHECK(html.find("<td>accuracy</td><td class=\"num\">0.8000</td>") != std::string::npos);
  CHECK(html.find("&lt;toys&gt;") != std::string::npos);
  CHECK(html.find("<toys>") == std::string::npos);
  const metrics::Calibration c =
      metrics::calibration(input.evaluation->evaluation.outcomes.confidence, input.evaluation->evaluation.outcomes.correct);
  CHECK(html.find(fmt::format("<th>expected calibration error (ECE)</th><td>{:.4f}</td>", c.ece)) != std::string::npos);
  // 20 score bins, two series.
  CHECK(occurrences(html, "<rect class=\"bar\" data-series=\"correct\"") == 20);
  CHECK(occurrences(html, "<rect class=\"bar\" data-series=\"wrong\"") == 20);
  // Each group as a share of itself: the two wrong predictions (0.55 and 0.5) are half each.
  CHECK(html.find("data-series=\"wrong\" data-bin=\"10\" data-value=\"0.5\"") != std::string::npos);
  CHECK(html.find("data-series=\"wrong\" data-bin=\"11\" data-value=\"0.5\"") != std::string::npos);
  CHECK(html.find("data-series=\"correct\" data-bin=\"19\" data-value=\"0.25\"") != std::string::npos);
}

TEST_CASE("report page of predictions without probabilities has no calibration charts") {
  ReportInput input = base_input();
  metrics::Evaluation e = classification_evaluation();
  e.outcomes.confidence.clear();
  input.evaluation = EvaluationFacts{"p.jsonl against l.csv", e};
  Report r = render_report(input);
  CHECK(r.sections == std::vector<std::string>{"model", "evaluation"});
  CHECK(r.html.find("id=\"reliability\"") == std::string::npos);
  CHECK(r.html.find("carry no probabilities") != std::string::npos);
}

TEST_CASE("report page of a regression model has the residual histogram instead of a confusion matrix") {
  ReportInput input = base_input();
  input.model.task = "regression";
  metrics::Evaluation e;
  e.task = data::Task::regression;
  e.regression = metrics::regression_metrics({1, 2, 3, 4}, {1.5, 2, 2.5, 5});
  e.outcomes.residual = {0.5, 0, -0.5, 1};
  input.evaluation = EvaluationFacts{"reviews (test split)", e};
  Report r = render_report(input);
  CHECK(r.sections == std::vector<std::string>{"model", "evaluation"});
  CHECK(r.html.find("<svg id=\"residual-histogram\"") != std::string::npos);
  CHECK(r.html.find("confusion-matrix") == std::string::npos);
  CHECK(r.html.find(fmt::format("<td>mae</td><td class=\"num\">{:.4f}</td>", e.regression.mae)) != std::string::npos);
}

TEST_CASE("report page with drift and registry: table, histograms per feature, alias history") {
  ReportInput input = base_input();
  DriftReport d;
  d.drift = true;
  d.drifted = {"score"};
  auto feature = [](std::string name, std::string test, double psi, double js, double statistic, double p,
                    std::string severity, bool drift) {
    DriftFeature f;
    f.name = std::move(name);
    f.test = std::move(test);
    f.psi = psi;
    f.js = js;
    f.statistic = statistic;
    f.p_value = p;
    f.severity = std::move(severity);
    f.drift = drift;
    return f;
  };
  DriftFeature label = feature("predicted_label", "chi_square", 0.03, 0.05, 3.2, 0.36, "none", false);
  label.labels = {"a", "b"};
  label.reference = {0.5, 0.5};
  label.live = {0.4, 0.6};
  DriftFeature score = feature("score", "ks", 0.31, 0.12, 0.2, 1e-9, "major", true);
  score.edges = {0, 0.5, 1};
  score.reference = {0.3, 0.7};
  score.live = {0.6, 0.4};
  DriftFeature tokens;
  tokens.name = "tokens";
  tokens.available = false;
  tokens.reason = "no token counts";
  d.features = {label, score, tokens};
  input.drift = d;
  RegistryFacts facts;
  facts.lineage.version.name = "intent";
  facts.lineage.version.version = 3;
  facts.lineage.ancestors = {"models:/intent/2", "models:/intent/1"};
  facts.history = {{"intent", "production", std::nullopt, 2, "2026-01-01T00:00:00.000Z", "ci@host", "first"},
                   {"intent", "production", 2, 3, "2026-01-02T00:00:00.000Z", "ci@host", "better <f1>"}};
  input.registry = facts;
  Report r = render_report(input);
  CHECK(r.sections == std::vector<std::string>{"model", "drift", "registry"});
  const std::string& html = r.html;
  CHECK(html.find("<table id=\"drift-table\">") != std::string::npos);
  CHECK(html.find("<svg id=\"drift-predicted_label\"") != std::string::npos);
  CHECK(html.find("<svg id=\"drift-score\"") != std::string::npos);
  CHECK(html.find("id=\"drift-tokens\"") == std::string::npos);
  CHECK(html.find("not available: no token counts") != std::string::npos);
  CHECK(html.find("<td class=\"num\">0.3100</td>") != std::string::npos);
  CHECK(html.find("<td class=\"num\">1.00e-09</td>") != std::string::npos);
  CHECK(html.find("<span class=\"severity-major\">major</span>") != std::string::npos);
  CHECK(html.find("models:/intent/3") != std::string::npos);
  CHECK(html.find("models:/intent/2 ← models:/intent/1") != std::string::npos);
  CHECK(html.find("<table id=\"alias-history\">") != std::string::npos);
  CHECK(html.find("better &lt;f1&gt;") != std::string::npos);
  CHECK(occurrences(html, "<td>production</td>") == 2);
}
