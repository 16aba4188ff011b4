// What the HTML report is drawn from, read from the files other commands write: a model's
// train_log.jsonl (`recmodel train`) and a drift result (`recmodel drift --json`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace recmodel::report {

namespace fs = std::filesystem;

// A training record of train_log.jsonl: the mean loss over the steps since the last record.
struct TrainStep {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss = 0;
  std::optional<double> lr;
};

// A dev evaluation of train_log.jsonl: its metrics (evaluate's JSON) and whether it was the best so far.
struct DevEvaluation {
  int64_t step = 0;
  int64_t epoch = 0;
  nlohmann::json metrics = nlohmann::json::object();
  bool best = false;
};

struct TrainLog {
  std::vector<TrainStep> steps;
  std::vector<DevEvaluation> evaluations;

  // Returns the step of the last evaluation marked best (the model train kept), if any.
  std::optional<int64_t> best_step() const;
};

// Reads train_log.jsonl. Records with "loss" are training steps, records with "dev" dev
// evaluations; others are skipped. Throws NotFoundError for a missing file and DataError naming
// the file and line for a line that is not a JSON object or a record whose step or loss is not a
// number.
TrainLog read_train_log(const fs::path& path);

// One feature of a drift result.
struct DriftFeature {
  std::string name;
  bool available = true;
  std::string reason;  // why the input cannot give it (available = false)
  std::string kind;    // categorical | numeric
  std::string test;    // chi_square | ks
  std::optional<double> psi, js, statistic, p_value;
  std::string severity;  // none | moderate | major
  bool drift = false;
  std::optional<double> reference_mean, live_mean;
  std::vector<std::string> labels;  // categorical bins
  std::vector<double> edges;        // numeric bins: one more than the proportions
  std::vector<double> reference, live;  // proportions per bin
};

// A drift result as `recmodel drift --json` writes it.
struct DriftReport {
  std::string model;
  std::string input;
  std::string input_kind;
  std::string reference_source;
  std::optional<int64_t> reference_examples;
  std::optional<int64_t> window_records;
  std::string window_first, window_last;  // empty when unknown
  std::optional<double> psi_threshold, js_threshold;
  std::vector<DriftFeature> features;  // by name
  std::optional<double> truncation_reference, truncation_live;
  bool drift = false;
  std::vector<std::string> drifted;
};

// Reads a drift result from `doc`; `source` names it in messages. Throws DataError naming the
// key at fault ("features.score.bins.live: expected an array of numbers").
DriftReport parse_drift(const nlohmann::json& doc, const std::string& source);
// Reads and parses a drift result file (NotFoundError when missing, DataError naming the file
// and line for malformed JSON).
DriftReport read_drift_file(const fs::path& path);

}  // namespace recmodel::report
