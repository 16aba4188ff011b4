#include "report/report_data.h"

#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "common/json.h"
#include "common/line_reader.h"

namespace recmodel::report {

namespace {

// Returns record[key] as a number when it is one, none when absent or null; DataError otherwise.
std::optional<double> optional_number(const nlohmann::json& record, const char* key, const std::string& where) {
  auto found = record.find(key);
  if (found == record.end() || found->is_null()) return std::nullopt;
  if (!found->is_number()) fail<DataError>("{}: \"{}\" is {}, expected a number", where, key, json_type_name(*found));
  return found->get<double>();
}

int64_t required_integer(const nlohmann::json& record, const char* key, const std::string& where) {
  auto found = record.find(key);
  if (found == record.end()) fail<DataError>("{}: the record has no \"{}\"", where, key);
  if (!found->is_number_integer() && !found->is_number_unsigned())
    fail<DataError>("{}: \"{}\" is {}, expected an integer", where, key, json_type_name(*found));
  return found->get<int64_t>();
}

std::string optional_string(const nlohmann::json& doc, const char* key, const std::string& where) {
  auto found = doc.find(key);
  if (found == doc.end() || found->is_null()) return "";
  if (!found->is_string()) fail<DataError>("{}: {} is {}, expected a string", where, key, json_type_name(*found));
  return found->get<std::string>();
}

std::optional<int64_t> optional_integer(const nlohmann::json& doc, const char* key, const std::string& where) {
  auto found = doc.find(key);
  if (found == doc.end() || found->is_null()) return std::nullopt;
  if (!found->is_number_integer() && !found->is_number_unsigned())
    fail<DataError>("{}: {} is {}, expected an integer", where, key, json_type_name(*found));
  return found->get<int64_t>();
}

std::optional<bool> optional_bool(const nlohmann::json& doc, const char* key, const std::string& where) {
  auto found = doc.find(key);
  if (found == doc.end() || found->is_null()) return std::nullopt;
  if (!found->is_boolean()) fail<DataError>("{}: {} is {}, expected true or false", where, key, json_type_name(*found));
  return found->get<bool>();
}

// Returns doc[key] as an object (an empty one when absent).
const nlohmann::json& optional_object(const nlohmann::json& doc, const char* key, const std::string& where) {
  static const nlohmann::json empty = nlohmann::json::object();
  auto found = doc.find(key);
  if (found == doc.end() || found->is_null()) return empty;
  if (!found->is_object()) fail<DataError>("{}: {} is {}, expected an object", where, key, json_type_name(*found));
  return *found;
}

std::vector<double> numbers(const nlohmann::json& value, const std::string& where) {
  if (!value.is_array()) fail<DataError>("{}: expected an array of numbers, found {}", where, json_type_name(value));
  std::vector<double> out;
  out.reserve(value.size());
  for (const auto& v : value) {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      fail<DataError>("{}: expected an array of finite numbers, found {}", where, json_excerpt(v));
    out.push_back(v.get<double>());
  }
  return out;
}

DriftFeature parse_feature(const std::string& name, const nlohmann::json& doc, const std::string& source) {
  const std::string where = fmt::format("{}: features.{}", source, name);
  if (!doc.is_object()) fail<DataError>("{}: expected an object, found {}", where, json_type_name(doc));
  DriftFeature feature;
  feature.name = name;
  feature.available = optional_bool(doc, "available", where).value_or(true);
  if (!feature.available) {
    feature.reason = optional_string(doc, "reason", where);
    return feature;
  }
  feature.kind = optional_string(doc, "kind", where);
  feature.test = optional_string(doc, "test", where);
  feature.psi = optional_number(doc, "psi", where);
  feature.js = optional_number(doc, "js", where);
  feature.statistic = optional_number(doc, "statistic", where);
  feature.p_value = optional_number(doc, "p_value", where);
  feature.severity = optional_string(doc, "severity", where);
  feature.drift = optional_bool(doc, "drift", where).value_or(false);
  feature.reference_mean = optional_number(doc, "reference_mean", where);
  feature.live_mean = optional_number(doc, "live_mean", where);
  const nlohmann::json& bins = optional_object(doc, "bins", where);
  if (bins.empty()) return feature;
  const std::string bins_where = where + ".bins";
  if (!bins.contains("reference") || !bins.contains("live"))
    fail<DataError>("{}: needs \"reference\" and \"live\" proportions", bins_where);
  feature.reference = numbers(bins["reference"], bins_where + ".reference");
  feature.live = numbers(bins["live"], bins_where + ".live");
  if (feature.reference.size() != feature.live.size())
    fail<DataError>("{}: {} reference proportions but {} live ones", bins_where, feature.reference.size(),
                    feature.live.size());
  if (bins.contains("labels")) {
    const auto& labels = bins["labels"];
    if (!labels.is_array()) fail<DataError>("{}.labels: expected an array of strings", bins_where);
    for (const auto& l : labels) {
      if (!l.is_string()) fail<DataError>("{}.labels: expected strings, found {}", bins_where, json_excerpt(l));
      feature.labels.push_back(l.get<std::string>());
    }
    if (feature.labels.size() != feature.reference.size())
      fail<DataError>("{}: {} labels for {} proportions", bins_where, feature.labels.size(), feature.reference.size());
  } else if (bins.contains("edges")) {
    feature.edges = numbers(bins["edges"], bins_where + ".edges");
    if (feature.edges.size() != feature.reference.size() + 1)
      fail<DataError>("{}: {} edges for {} proportions (expected one more edge than proportions)", bins_where,
                      feature.edges.size(), feature.reference.size());
    for (size_t i = 1; i < feature.edges.size(); ++i)
      if (!(feature.edges[i] > feature.edges[i - 1]))
        fail<DataError>("{}.edges: not increasing at index {}", bins_where, i);
  } else {
    fail<DataError>("{}: needs \"labels\" (categorical) or \"edges\" (numeric)", bins_where);
  }
  return feature;
}

}  // namespace

std::optional<int64_t> TrainLog::best_step() const {
  std::optional<int64_t> best;
  for (const auto& e : evaluations)
    if (e.best) best = e.step;
  return best;
}

TrainLog read_train_log(const fs::path& path) {
  LineReader reader(path.string());
  TrainLog log;
  std::string line;
  while (reader.next(line)) {
    const std::string where = fmt::format("{}:{}", path.string(), reader.line_number());
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record = parse_json(line, where);
    if (!record.is_object()) fail<DataError>("{}: expected a JSON object, found {}", where, json_type_name(record));
    if (record.contains("loss")) {
      TrainStep step;
      step.step = required_integer(record, "step", where);
      step.epoch = record.contains("epoch") ? required_integer(record, "epoch", where) : 0;
      auto loss = optional_number(record, "loss", where);
      if (!loss) fail<DataError>("{}: \"loss\" is null, expected a number", where);
      step.loss = *loss;
      step.lr = optional_number(record, "lr", where);
      log.steps.push_back(step);
    } else if (record.contains("dev")) {
      DevEvaluation evaluation;
      evaluation.step = required_integer(record, "step", where);
      evaluation.epoch = record.contains("epoch") ? required_integer(record, "epoch", where) : 0;
      if (!record["dev"].is_object())
        fail<DataError>("{}: \"dev\" is {}, expected an object of metrics", where, json_type_name(record["dev"]));
      evaluation.metrics = record["dev"];
      evaluation.best = optional_bool(record, "best", where).value_or(false);
      log.evaluations.push_back(evaluation);
    }
  }
  return log;
}

DriftReport parse_drift(const nlohmann::json& doc, const std::string& source) {
  if (!doc.is_object())
    fail<DataError>("{}: expected the JSON object `recmodel drift --json` writes, found {}", source,
                    json_type_name(doc));
  DriftReport report;
  report.model = optional_string(doc, "model", source);
  report.input = optional_string(doc, "input", source);
  report.input_kind = optional_string(doc, "input_kind", source);
  const nlohmann::json& reference = optional_object(doc, "reference", source);
  report.reference_source = optional_string(reference, "source", source + ": reference");
  report.reference_examples = optional_integer(reference, "examples", source + ": reference");
  const nlohmann::json& window = optional_object(doc, "window", source);
  report.window_records = optional_integer(window, "records", source + ": window");
  report.window_first = optional_string(window, "first", source + ": window");
  report.window_last = optional_string(window, "last", source + ": window");
  const nlohmann::json& thresholds = optional_object(doc, "thresholds", source);
  report.psi_threshold = optional_number(thresholds, "psi", source + ": thresholds");
  report.js_threshold = optional_number(thresholds, "js", source + ": thresholds");
  auto features = doc.find("features");
  if (features == doc.end() || !features->is_object())
    fail<DataError>("{}: has no \"features\" object; is it the output of `recmodel drift --json`?", source);
  for (auto& [name, feature] : features->items()) report.features.push_back(parse_feature(name, feature, source));
  const nlohmann::json& truncation = optional_object(doc, "truncation_rate", source);
  report.truncation_reference = optional_number(truncation, "reference", source + ": truncation_rate");
  report.truncation_live = optional_number(truncation, "live", source + ": truncation_rate");
  report.drift = optional_bool(doc, "drift", source).value_or(false);
  if (doc.contains("drifted")) {
    if (!doc["drifted"].is_array()) fail<DataError>("{}: drifted: expected an array of feature names", source);
    for (const auto& name : doc["drifted"]) {
      if (!name.is_string()) fail<DataError>("{}: drifted: expected feature names, found {}", source, json_excerpt(name));
      report.drifted.push_back(name.get<std::string>());
    }
  }
  return report;
}

DriftReport read_drift_file(const fs::path& path) {
  const nlohmann::json doc = read_json_file(path);
  return parse_drift(doc, path.string());
}

}  // namespace recmodel::report
