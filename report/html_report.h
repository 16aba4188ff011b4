// `recmodel report`'s page: one self-contained HTML file (inline CSS and SVG, no script, no
// network) with a model's identity, training curves, evaluation, calibration, drift and registry
// history. Each section is a <section id=...>; the charts carry the ids svg_chart.h documents.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/evaluation.h"
#include "registry/registry.h"
#include "report/report_data.h"

namespace recmodel::report {

// Which model the page is about.
struct ModelFacts {
  std::string reference;             // as the user gave it
  std::string directory;
  std::optional<std::string> version;  // models:/NAME/VERSION when it came from the registry
  std::string task;                  // classification | regression
  std::vector<std::string> labels;   // classification: class names in the model's order
  nlohmann::json lineage = nlohmann::json::object();  // recmodel.json
};

struct EvaluationFacts {
  std::string source;  // what was scored: "data/products (test)", "pred.jsonl against labels.csv"
  metrics::Evaluation evaluation;
};

struct RegistryFacts {
  registry::Lineage lineage;
  std::vector<registry::AliasMove> history;  // every alias move of the model, oldest first
};

// Everything the page shows. A section without data says why instead (the *_missing texts).
struct ReportInput {
  ModelFacts model;
  std::optional<TrainLog> training;
  std::string training_missing;
  std::optional<EvaluationFacts> evaluation;
  std::string evaluation_missing;
  std::optional<DriftReport> drift;
  std::string drift_missing;
  std::optional<RegistryFacts> registry;
  std::string registry_missing;
  std::string generated_at;      // ISO 8601
  std::string recmodel_version;
};

struct Report {
  std::string html;
  std::vector<std::string> sections;  // ids of the sections with data, in page order
};

// Renders the page. Numbers in tables are printed with four decimals, as `recmodel evaluate`
// prints them.
Report render_report(const ReportInput& input);

// Returns about `bins` equal-width bins with round edges (nice_axis) covering `values`.
std::vector<double> round_edges(const std::vector<double>& values, int bins);
// Returns how many of `values` fall in each bin [edges[i], edges[i+1]) — the last bin includes
// its upper edge, as numpy.histogram counts; values outside the edges are not counted.
std::vector<double> bin_counts(const std::vector<double>& values, const std::vector<double>& edges);

}  // namespace recmodel::report
