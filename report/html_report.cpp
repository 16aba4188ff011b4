#include "report/html_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "metrics/calibration.h"
#include "report/svg_chart.h"

namespace recmodel::report {

namespace {

// Bins of the score histogram and of the reliability diagram over [0, 1].
constexpr int kScoreBins = 20;
constexpr int kReliabilityBins = 10;
// Classes listed by name in the model section; more are counted.
constexpr size_t kListedLabels = 60;

constexpr const char* kStyle = R"css(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a;
       background: #fff; max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid #0072B2; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
header p { margin: 2px 0; color: #444; }
nav { margin: 14px 0 8px; padding: 8px 12px; background: #f3f6f9; border-radius: 4px; }
nav a { margin-right: 16px; color: #005a8c; }
section { margin: 30px 0; page-break-inside: avoid; break-inside: avoid; }
/* A table box sizes to its chart, and its caption wraps at the chart's width. */
figure { display: table; margin: 12px 0 18px; page-break-inside: avoid; break-inside: avoid; }
figcaption { display: table-caption; caption-side: bottom; color: #444; font-size: 0.92em; margin-top: 4px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 12px 3px 0; border-bottom: 1px solid #e0e0e0; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid #999; }
td.num, th.num { text-align: right; padding-left: 12px; }
table.facts th { font-weight: 600; border-bottom: 1px solid #e0e0e0; padding-right: 18px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; word-break: break-all; }
.note { color: #555; font-style: italic; }
.grid2 { display: flex; flex-wrap: wrap; gap: 8px 36px; align-items: flex-start; }
.f1bar { display: inline-block; height: 10px; background: #0072B2; vertical-align: middle; }
.f1track { display: inline-block; width: 120px; background: #e8eef3; vertical-align: middle; }
.severity-major { background: #D55E00; color: #fff; font-weight: 700; padding: 0 6px; }
.severity-moderate { background: #F0E442; color: #000; font-weight: 600; padding: 0 6px; }
.severity-none { color: #444; padding: 0 6px; }
.best { font-weight: 700; }
svg.chart { max-width: 100%; height: auto; display: block; }
footer { margin-top: 40px; color: #666; font-size: 0.85em; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav { display: none; }
  section, figure, table, svg { page-break-inside: avoid; break-inside: avoid; }
  h2 { page-break-after: avoid; break-after: avoid; }
  a { color: inherit; text-decoration: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
)css";

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "—"; }

std::string num(const std::optional<double>& v) { return v ? num(*v) : "—"; }

std::string p_value(const std::optional<double>& v) {
  if (!v) return "—";
  if (*v != 0 && std::abs(*v) < 1e-4) return fmt::format("{:.2e}", *v);
  return num(*v);
}

// Returns a JSON value for a table cell: strings as they are, numbers in evaluate's format.
std::string cell_text(const nlohmann::json& value) {
  if (value.is_null()) return "undefined";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number_float()) return num(value.get<double>());
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool numeric_cell(const nlohmann::json& value) { return value.is_number(); }

// Returns an id usable in HTML from an arbitrary name: letters, digits, '-' and '_' kept.
std::string id_part(std::string_view name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.empty() ? "feature" : out;
}

std::string th(std::string_view text, bool numeric = false) {
  return fmt::format("<th{}>{}</th>", numeric ? " class=\"num\"" : "", escape(text));
}
std::string td(std::string_view text, bool numeric = false) {
  return fmt::format("<td{}>{}</td>", numeric ? " class=\"num\"" : "", escape(text));
}

// A two-column table of facts; rows with an empty value are left out.
std::string facts_table(const std::vector<std::pair<std::string, std::string>>& rows, const std::string& id = "") {
  std::string out = id.empty() ? "<table class=\"facts\">" : fmt::format("<table class=\"facts\" id=\"{}\">", id);
  for (const auto& [key, value] : rows) {
    if (value.empty()) continue;
    out += "<tr>" + th(key) + td(value) + "</tr>";
  }
  return out + "</table>";
}

std::string note(std::string_view text) { return fmt::format("<p class=\"note\">{}</p>", escape(text)); }

std::string figure(const std::string& svg, std::string_view caption) {
  return fmt::format("<figure>{}<figcaption>{}</figcaption></figure>", svg, escape(caption));
}

std::string json_string(const nlohmann::json& doc, const char* key) {
  auto found = doc.find(key);
  return found != doc.end() && found->is_string() ? found->get<std::string>() : "";
}

const nlohmann::json& json_object(const nlohmann::json& doc, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  auto found = doc.find(key);
  return found != doc.end() && found->is_object() ? *found : empty;
}

// Returns the model's display name: its registry version, else its folder's name.
std::string display_name(const ModelFacts& model) {
  if (model.version) return *model.version;
  std::string dir = model.directory;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.find_last_of('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

std::string model_section(const ReportInput& input) {
  const ModelFacts& m = input.model;
  const nlohmann::json& lineage = m.lineage;
  std::string out = "<section id=\"model\"><h2>Model</h2>";
  std::string classes;
  if (m.task == "classification") {
    classes = fmt::format("{}: ", m.labels.size());
    for (size_t i = 0; i < std::min(m.labels.size(), kListedLabels); ++i) classes += (i ? ", " : "") + m.labels[i];
    if (m.labels.size() > kListedLabels) classes += fmt::format(", … ({} more)", m.labels.size() - kListedLabels);
  }
  const nlohmann::json& dataset = json_object(lineage, "dataset");
  out += facts_table({{"reference", m.reference},
                      {"directory", m.directory},
                      {"registry version", m.version.value_or("")},
                      {"task", m.task},
                      {"classes", classes},
                      {"made by", json_string(lineage, "created_by")},
                      {"base model", json_string(lineage, "base_model")},
                      {"dataset", json_string(dataset, "path")},
                      {"dataset manifest SHA-256", json_string(dataset, "manifest_sha256")},
                      {"recmodel version", json_string(lineage, "recmodel_version")}},
                     "model-facts");
  const nlohmann::json& params = json_object(lineage, "params");
  const nlohmann::json& training = json_object(lineage, "training");
  if (!params.empty() || !training.empty()) {
    out += "<div class=\"grid2\">";
    if (!params.empty()) {
      out += "<div><h3>Training parameters</h3><table class=\"facts\">";
      for (auto& [key, value] : params.items()) out += "<tr>" + th(key) + td(cell_text(value), numeric_cell(value)) + "</tr>";
      out += "</table></div>";
    }
    if (!training.empty()) {
      out += "<div><h3>Training run</h3><table class=\"facts\">";
      for (auto& [key, value] : training.items())
        out += "<tr>" + th(key) + td(cell_text(value), numeric_cell(value)) + "</tr>";
      out += "</table></div>";
    }
    const nlohmann::json& dev = json_object(json_object(lineage, "metrics"), "dev");
    if (!dev.empty()) {
      out += "<div><h3>Best dev metrics</h3><table class=\"facts\">";
      for (auto& [key, value] : dev.items())
        if (value.is_number() || value.is_null()) out += "<tr>" + th(key) + td(cell_text(value), true) + "</tr>";
      out += "</table></div>";
    }
    out += "</div>";
  }
  return out + "</section>";
}

// The dev metrics the training chart plots: the one train selected on, then a second one.
std::vector<std::string> dev_metrics_to_plot(const TrainLog& log, const std::string& selected, bool regression) {
  std::vector<std::string> names;
  auto present = [&](const std::string& name) {
    for (const auto& e : log.evaluations)
      if (e.metrics.contains(name) && e.metrics[name].is_number()) return true;
    return false;
  };
  if (!selected.empty() && selected != "loss" && present(selected)) names.push_back(selected);
  const std::vector<std::string> others =
      regression ? std::vector<std::string>{"mae", "rmse"} : std::vector<std::string>{"accuracy", "f1_macro"};
  for (const auto& name : others)
    if (names.size() < 2 && present(name) && std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
  return names;
}

std::string training_section(const ReportInput& input) {
  std::string out = "<section id=\"training\"><h2>Training</h2>";
  if (!input.training) return out + note(input.training_missing) + "</section>";
  const TrainLog& log = *input.training;
  const std::string selected = json_string(json_object(input.model.lineage, "params"), "metric");
  const bool regression = input.model.task == "regression";
  const std::optional<int64_t> best = log.best_step();

  LineChart chart;
  chart.id = "training-curves";
  chart.title = "Training curves: loss, learning rate and dev metrics by optimizer step";
  chart.x_label = "optimizer step";
  Panel loss{"loss", {}, false};
  Series train_loss{"training loss", {}, {}}, dev_loss{"dev loss", {}, {}};
  Panel lr{"learning rate", {}, true};
  Series lr_series{"learning rate", {}, {}};
  for (const auto& s : log.steps) {
    train_loss.x.push_back(static_cast<double>(s.step));
    train_loss.y.push_back(s.loss);
    if (s.lr) {
      lr_series.x.push_back(static_cast<double>(s.step));
      lr_series.y.push_back(*s.lr);
    }
  }
  for (const auto& e : log.evaluations) {
    if (e.metrics.contains("loss") && e.metrics["loss"].is_number()) {
      dev_loss.x.push_back(static_cast<double>(e.step));
      dev_loss.y.push_back(e.metrics["loss"].get<double>());
    }
  }
  loss.series.push_back(train_loss);
  if (!dev_loss.x.empty()) loss.series.push_back(dev_loss);
  chart.panels.push_back(loss);
  lr.series.push_back(lr_series);
  chart.panels.push_back(lr);
  const std::vector<std::string> plotted = dev_metrics_to_plot(log, selected, regression);
  if (!plotted.empty()) {
    Panel dev{"dev metrics", {}, false};
    for (const auto& name : plotted) {
      Series s{"dev " + name, {}, {}};
      for (const auto& e : log.evaluations) {
        if (!e.metrics.contains(name) || !e.metrics[name].is_number()) continue;
        s.x.push_back(static_cast<double>(e.step));
        s.y.push_back(e.metrics[name].get<double>());
      }
      dev.series.push_back(s);
    }
    chart.panels.push_back(dev);
  }
  if (best) {
    chart.marker_x = static_cast<double>(*best);
    chart.marker_label = fmt::format("best step {}", *best);
  }
  std::string caption = fmt::format("{} training records and {} dev evaluations from train_log.jsonl.",
                                    log.steps.size(), log.evaluations.size());
  if (best)
    caption += fmt::format(" The dashed vertical line marks step {}, the best dev {} — the weights this model keeps.",
                           *best, selected.empty() ? "metric" : selected);
  out += figure(line_chart(chart), caption);

  if (log.evaluations.empty()) {
    out += note("No dev evaluations were logged (the dataset has no dev split).");
  } else {
    std::vector<std::string> columns = plotted;
    if (std::find(columns.begin(), columns.end(), "loss") == columns.end()) columns.push_back("loss");
    out += "<h3>Dev evaluations</h3><table id=\"dev-evaluations\"><tr>" + th("step", true) + th("epoch", true);
    for (const auto& c : columns) out += th(c, true);
    out += th("best so far") + "</tr>";
    for (const auto& e : log.evaluations) {
      const bool is_best = best && e.step == *best && e.best;
      out += is_best ? "<tr class=\"best\">" : "<tr>";
      out += td(std::to_string(e.step), true) + td(std::to_string(e.epoch), true);
      for (const auto& c : columns)
        out += td(e.metrics.contains(c) ? cell_text(e.metrics[c]) : "—", true);
      out += td(is_best ? "best (kept)" : e.best ? "yes" : "") + "</tr>";
    }
    out += "</table>";
  }
  return out + "</section>";
}

std::string metrics_table(const nlohmann::ordered_json& metrics) {
  std::string out = "<table id=\"metrics\"><tr>" + th("metric") + th("value", true) + "</tr>";
  for (auto& [key, value] : metrics.items()) {
    if (key == "task" || key == "per_class" || key == "confusion_matrix") continue;
    const nlohmann::json plain = nlohmann::json::parse(value.dump());
    out += "<tr>" + td(key) + td(cell_text(plain), true) + "</tr>";
  }
  return out + "</table>";
}

std::string evaluation_section(const ReportInput& input, std::vector<std::string>& sections) {
  std::string out = "<section id=\"evaluation\"><h2>Evaluation</h2>";
  if (!input.evaluation) return out + note(input.evaluation_missing) + "</section>";
  sections.push_back("evaluation");
  const metrics::Evaluation& e = input.evaluation->evaluation;
  out += fmt::format("<p>Scored on <strong>{}</strong>.</p>", escape(input.evaluation->source));
  if (e.task == data::Task::regression) {
    out += metrics_table(e.to_json());
    const auto& residuals = e.outcomes.residual;
    if (!residuals.empty()) {
      BarChart chart;
      chart.id = "residual-histogram";
      chart.title = "Residuals: predicted minus true value";
      chart.x_label = "residual (predicted − true)";
      chart.y_label = "examples";
      chart.edges = round_edges(residuals, 30);
      chart.series.push_back({"examples", bin_counts(residuals, chart.edges)});
      out += figure(bar_chart(chart), fmt::format("Residuals of {} examples; MAE {}, RMSE {}.", residuals.size(),
                                                  num(e.regression.mae), num(e.regression.rmse)));
    }
    return out + "</section>";
  }
  const metrics::ClassificationMetrics& m = e.classification;
  auto name = [&](int c) { return c >= 0 && static_cast<size_t>(c) < e.labels.size() ? e.labels[c] : std::to_string(c); };
  out += "<div class=\"grid2\"><div><h3>Metrics</h3>" + metrics_table(e.to_json()) + "</div>";
  out += "<div><h3>Per class</h3><table id=\"per-class\"><tr>" + th("class") + th("precision", true) + th("recall", true) +
         th("F1", true) + th("") + th("support", true) + th("predicted", true) + "</tr>";
  for (const auto& s : m.per_class) {
    out += "<tr>" + td(name(s.label)) + td(num(s.precision), true) + td(num(s.recall), true) + td(num(s.f1), true) +
           fmt::format("<td><span class=\"f1track\"><span class=\"f1bar\" style=\"width:{:.1f}%\"></span></span></td>",
                       std::clamp(s.f1, 0.0, 1.0) * 100) +
           td(std::to_string(s.support), true) + td(std::to_string(s.predicted), true) + "</tr>";
  }
  const std::pair<const char*, metrics::Averages> averages[] = {
      {"macro avg", m.macro}, {"micro avg", m.micro}, {"weighted avg", m.weighted}};
  for (const auto& [label, avg] : averages)
    out += "<tr class=\"average\">" + td(label) + td(num(avg.precision), true) + td(num(avg.recall), true) +
           td(num(avg.f1), true) + "<td></td>" + td(std::to_string(m.examples), true) + "<td></td></tr>";
  out += "</table></div></div>";

  Heatmap map;
  map.id = "confusion-matrix";
  map.title = "Confusion matrix: rows are the true classes, columns the predicted ones";
  map.row_title = "true class";
  map.column_title = "predicted class";
  for (int c : m.labels) map.labels.push_back(name(c));
  map.counts = m.confusion;
  out += "<h3>Confusion matrix</h3>";
  out += figure(heatmap(map), fmt::format("{} examples. Each cell holds the count of examples of its row's true class "
                                          "predicted as its column's class; the colour is that count's share of the "
                                          "row (viridis: dark is few, yellow is most), so the diagonal shows each "
                                          "class's recall.",
                                          m.examples));
  return out + "</section>";
}

std::string calibration_section(const ReportInput& input, std::vector<std::string>& sections) {
  if (!input.evaluation || input.evaluation->evaluation.task != data::Task::classification) return "";
  const metrics::Evaluation& e = input.evaluation->evaluation;
  std::string out = "<section id=\"calibration\"><h2>Scores and calibration</h2>";
  if (e.outcomes.confidence.empty())
    return out + note("The predictions carry no probabilities (no \"probs\" column), so there is no score histogram "
                      "or reliability curve.") +
           "</section>";
  sections.push_back("calibration");
  const auto& confidence = e.outcomes.confidence;
  const auto& correct = e.outcomes.correct;
  BarChart chart;
  chart.id = "score-histogram";
  chart.title = "Score histogram: the probability of the predicted class, right and wrong predictions";
  chart.x_label = "probability of the predicted class";
  chart.y_label = "share of the group";
  for (int k = 0; k <= kScoreBins; ++k) chart.edges.push_back(static_cast<double>(k) / kScoreBins);
  std::vector<double> right, wrong;
  for (size_t i = 0; i < confidence.size(); ++i) (correct[i] ? right : wrong).push_back(std::clamp(confidence[i], 0.0, 1.0));
  // Each group as a share of itself: a few wrong predictions stay visible beside many right ones.
  auto shares = [&](const std::vector<double>& group) {
    std::vector<double> counts = bin_counts(group, chart.edges);
    for (double& c : counts) c = group.empty() ? 0 : c / static_cast<double>(group.size());
    return counts;
  };
  chart.series.push_back({"correct", shares(right)});
  chart.series.push_back({"wrong", shares(wrong)});
  chart.width = 600;
  chart.height = 300;
  std::string charts = figure(bar_chart(chart), fmt::format("{} correct and {} wrong predictions in {} bins of width "
                                                            "{}; each bar is the share of its group (correct or wrong) "
                                                            "in the bin.",
                                                            right.size(), wrong.size(), kScoreBins, 1.0 / kScoreBins));
  const metrics::Calibration calibration = metrics::calibration(confidence, correct, kReliabilityBins);
  ReliabilityChart reliability{"reliability", "Reliability diagram: accuracy against confidence", calibration};
  charts += figure(reliability_chart(reliability),
                   fmt::format("Expected calibration error (ECE) {}, maximum calibration error {}: bars below the "
                               "diagonal are overconfident, above it underconfident.",
                               num(calibration.ece), num(calibration.mce)));
  out += "<div class=\"grid2\">" + charts + "</div>";
  out += facts_table({{"expected calibration error (ECE)", num(calibration.ece)},
                      {"maximum calibration error (MCE)", num(calibration.mce)},
                      {"predictions", std::to_string(calibration.examples)}},
                     "calibration-summary");
  out += "<table id=\"reliability-bins\"><tr>" + th("confidence bin") + th("predictions", true) +
         th("mean confidence", true) + th("accuracy", true) + th("gap", true) + "</tr>";
  for (const auto& bin : calibration.bins) {
    const std::string range = fmt::format("{:.1f}–{:.1f}", bin.lower, bin.upper);
    if (bin.count == 0) {
      out += "<tr>" + td(range) + td("0", true) + td("—", true) + td("—", true) + td("—", true) + "</tr>";
      continue;
    }
    out += "<tr>" + td(range) + td(std::to_string(bin.count), true) + td(num(bin.mean_confidence), true) +
           td(num(bin.accuracy), true) + td(num(bin.accuracy - bin.mean_confidence), true) + "</tr>";
  }
  out += "</table>";
  return out + "</section>";
}

std::string severity_cell(const std::string& severity) {
  const std::string cls = severity == "major" ? "severity-major" : severity == "moderate" ? "severity-moderate"
                                                                                        : "severity-none";
  return fmt::format("<td><span class=\"{}\">{}</span></td>", cls, escape(severity.empty() ? "—" : severity));
}

std::string drift_section(const ReportInput& input, std::vector<std::string>& sections) {
  std::string out = "<section id=\"drift\"><h2>Drift</h2>";
  if (!input.drift) return out + note(input.drift_missing) + "</section>";
  sections.push_back("drift");
  const DriftReport& d = *input.drift;
  std::string window;
  if (d.window_records) window = fmt::format("{} records", *d.window_records);
  if (!d.window_first.empty() || !d.window_last.empty())
    window += fmt::format(" ({} to {})", d.window_first.empty() ? "?" : d.window_first,
                          d.window_last.empty() ? "?" : d.window_last);
  std::string reference = d.reference_source;
  if (d.reference_examples) reference += fmt::format(" ({} examples)", *d.reference_examples);
  std::string thresholds;
  if (d.psi_threshold) thresholds += fmt::format("PSI {}", num(*d.psi_threshold));
  if (d.js_threshold) thresholds += fmt::format("{}JS {}", thresholds.empty() ? "" : ", ", num(*d.js_threshold));
  std::string truncation;
  if (d.truncation_reference || d.truncation_live)
    truncation = fmt::format("reference {}, live {}", num(d.truncation_reference), num(d.truncation_live));
  std::string verdict = d.drift ? "yes" : "no";
  if (!d.drifted.empty()) {
    verdict += ": ";
    for (size_t i = 0; i < d.drifted.size(); ++i) verdict += (i ? ", " : "") + d.drifted[i];
  }
  out += facts_table({{"drift", verdict},
                      {"model", d.model},
                      {"live input", d.input.empty() ? "" : d.input + (d.input_kind.empty() ? "" : " (" + d.input_kind + ")")},
                      {"window", window},
                      {"reference", reference},
                      {"thresholds", thresholds},
                      {"truncation rate", truncation}},
                     "drift-summary");
  out += "<table id=\"drift-table\"><tr>" + th("feature") + th("test") + th("PSI", true) + th("JS", true) +
         th("statistic", true) + th("p-value", true) + th("severity") + th("drift") + "</tr>";
  for (const auto& f : d.features) {
    if (!f.available) {
      out += "<tr>" + td(f.name) + fmt::format("<td colspan=\"7\" class=\"note\">not available: {}</td>",
                                                 escape(f.reason.empty() ? "the input cannot give it" : f.reason)) +
             "</tr>";
      continue;
    }
    out += "<tr>" + td(f.name) + td(f.test) + td(num(f.psi), true) + td(num(f.js), true) + td(num(f.statistic), true) +
           td(p_value(f.p_value), true) + severity_cell(f.severity) + td(f.drift ? "yes ▲" : "no") + "</tr>";
  }
  out += "</table>";
  std::set<std::string> ids;
  std::string charts;
  for (const auto& f : d.features) {
    if (!f.available || f.reference.empty()) continue;
    std::string id = "drift-" + id_part(f.name);
    while (!ids.insert(id).second) id += "_";
    BarChart chart;
    chart.id = id;
    chart.title = fmt::format("{}: reference and live distributions", f.name);
    chart.x_label = f.name;
    chart.y_label = "share";
    chart.edges = f.edges;
    chart.categories = f.labels;
    chart.series.push_back({"reference", f.reference});
    chart.series.push_back({"live", f.live});
    chart.width = 510;
    chart.height = 250;
    std::string caption = fmt::format("{}: share of the reference (training) and live examples per bin", f.name);
    if (f.reference_mean && f.live_mean)
      caption += fmt::format("; mean {} in the reference, {} live", num(*f.reference_mean), num(*f.live_mean));
    caption += fmt::format(". PSI {}, JS {}.", num(f.psi), num(f.js));
    charts += figure(bar_chart(chart), caption);
  }
  if (!charts.empty()) out += "<div class=\"grid2\">" + charts + "</div>";
  return out + "</section>";
}

std::string optional_text(const std::optional<std::string>& v) { return v.value_or(""); }

std::string registry_section(const ReportInput& input, std::vector<std::string>& sections) {
  std::string out = "<section id=\"registry\"><h2>Registry</h2>";
  if (!input.registry) return out + note(input.registry_missing) + "</section>";
  sections.push_back("registry");
  const registry::Lineage& lineage = input.registry->lineage;
  const registry::VersionInfo& v = lineage.version;
  std::string tags, aliases, ancestors, children;
  for (const auto& [key, value] : v.tags) tags += (tags.empty() ? "" : ", ") + key + "=" + value;
  for (const auto& alias : v.aliases) aliases += (aliases.empty() ? "" : ", ") + alias;
  for (const auto& a : lineage.ancestors) ancestors += (ancestors.empty() ? "" : " ← ") + a;
  if (lineage.missing_ancestor) ancestors += (ancestors.empty() ? "" : " ← ") + *lineage.missing_ancestor + " (deleted)";
  for (const auto& c : lineage.children) children += (children.empty() ? "" : ", ") + c;
  out += "<h3>Lineage</h3>";
  out += facts_table({{"version", v.uri()},
                      {"status", v.status},
                      {"aliases", aliases},
                      {"registered", v.created_at + (v.created_by.empty() ? "" : " by " + v.created_by)},
                      {"description", v.description},
                      {"source", v.source_path},
                      {"files", fmt::format("{} ({} bytes)", v.file_count, v.total_size)},
                      {"manifest SHA-256", v.manifest_sha256},
                      {"dataset SHA-256", optional_text(v.dataset_sha256)},
                      {"base checkpoint", optional_text(v.base_checkpoint)},
                      {"ancestors", ancestors},
                      {"children", children},
                      {"tags", tags}},
                     "lineage");
  if (!lineage.evaluations.empty()) {
    out += "<h3>Recorded evaluations</h3><table id=\"registry-evaluations\"><tr>" + th("at") + th("by") + th("split") +
           th("metrics") + "</tr>";
    for (const auto& e : lineage.evaluations) {
      std::string shown;
      for (const char* key : {"examples", "accuracy", "f1_macro", "mae", "rmse", "r2"})
        if (e.metrics.contains(key) && e.metrics[key].is_number())
          shown += fmt::format("{}{} {}", shown.empty() ? "" : ", ", key, cell_text(e.metrics[key]));
      out += "<tr>" + td(e.at) + td(e.by) + td(e.split) + td(shown) + "</tr>";
    }
    out += "</table>";
  }
  if (!lineage.locations.empty()) {
    out += "<h3>Copies</h3><table id=\"locations\"><tr>" + th("at") + th("kind") + th("where") + "</tr>";
    for (const auto& l : lineage.locations) out += "<tr>" + td(l.at) + td(l.kind) + td(l.uri) + "</tr>";
    out += "</table>";
  }
  out += "<h3>Alias history</h3>";
  const auto& history = input.registry->history;
  if (history.empty()) {
    out += note(fmt::format("No alias of {} has been set yet.", v.name));
  } else {
    out += "<table id=\"alias-history\"><tr>" + th("at") + th("alias") + th("from", true) + th("to", true) + th("by") +
           th("reason") + "</tr>";
    auto version = [](const std::optional<int64_t>& n) { return n ? std::to_string(*n) : std::string("—"); };
    for (const auto& move : history)
      out += "<tr>" + td(move.at) + td(move.alias) + td(version(move.from), true) + td(version(move.to), true) +
             td(move.by) + td(move.reason) + "</tr>";
    out += "</table>";
  }
  return out + "</section>";
}

}  // namespace

std::vector<double> round_edges(const std::vector<double>& values, int bins) {
  double lo = 0, hi = 1;
  bool any = false;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = any ? std::min(lo, v) : v;
    hi = any ? std::max(hi, v) : v;
    any = true;
  }
  const Axis axis = nice_axis(lo, hi, std::max(2, bins + 1));
  std::vector<double> edges;
  for (double t : axis.ticks) edges.push_back(t);
  if (edges.size() < 2) edges = {axis.lo, axis.hi};
  return edges;
}

std::vector<double> bin_counts(const std::vector<double>& values, const std::vector<double>& edges) {
  if (edges.size() < 2) return {};
  std::vector<double> counts(edges.size() - 1, 0.0);
  for (double v : values) {
    if (!std::isfinite(v) || v < edges.front() || v > edges.back()) continue;
    // The first edge above v, less one; the top edge belongs to the last bin.
    size_t bin = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
    bin = bin == 0 ? 0 : bin - 1;
    counts[std::min(bin, counts.size() - 1)] += 1;
  }
  return counts;
}

Report render_report(const ReportInput& input) {
  Report report;
  report.sections.push_back("model");
  const std::string name = display_name(input.model);
  std::string body;
  body += model_section(input);
  body += training_section(input);
  if (input.training) report.sections.push_back("training");
  body += evaluation_section(input, report.sections);
  body += calibration_section(input, report.sections);
  body += drift_section(input, report.sections);
  body += registry_section(input, report.sections);

  // The table of contents lists every section on the page, with or without data.
  std::string nav = "<nav>";
  const std::pair<const char*, const char*> entries[] = {{"model", "Model"},       {"training", "Training"},
                                                         {"evaluation", "Evaluation"}, {"calibration", "Calibration"},
                                                         {"drift", "Drift"},       {"registry", "Registry"}};
  for (const auto& [id, title] : entries)
    if (body.find(fmt::format("<section id=\"{}\">", id)) != std::string::npos)
      nav += fmt::format("<a href=\"#{}\">{}</a>", id, title);
  nav += "</nav>";

  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  html += "<meta name=\"generator\" content=\"recmodel " + escape(input.recmodel_version) + "\">";
  html += "<title>recmodel report: " + escape(name) + "</title><style>" + kStyle + "</style></head><body>";
  html += "<header><h1>Model report: " + escape(name) + "</h1>";
  html += "<p>" + escape(input.model.reference) + (input.model.task.empty() ? "" : " · " + escape(input.model.task)) +
          "</p></header>";
  html += nav + body;
  html += "<footer>Written by recmodel " + escape(input.recmodel_version) + " on " + escape(input.generated_at) +
          " (`recmodel report`). Self-contained: no scripts, no network.</footer>";
  html += "</body></html>\n";
  report.html = std::move(html);
  return report;
}

}  // namespace recmodel::report
