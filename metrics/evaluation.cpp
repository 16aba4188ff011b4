#include "metrics/evaluation.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.h"
#include "common/json.h"
#include "data/labels.h"
#include "data/readers.h"

namespace recmodel::metrics {

MetricValue Evaluation::get(std::string_view name) const {
  return task == data::Task::classification ? classification.get(name) : regression.get(name);
}

nlohmann::ordered_json Evaluation::to_json() const {
  nlohmann::ordered_json out;
  out["task"] = data::task_name(task);
  nlohmann::ordered_json body =
      task == data::Task::classification ? metrics::to_json(classification, labels) : metrics::to_json(regression);
  for (auto& [key, value] : body.items()) out[key] = value;
  return out;
}

std::vector<std::string> Evaluation::warnings() const {
  if (task == data::Task::classification) return zero_division_warnings(classification, labels);
  std::vector<std::string> lines;
  if (!regression.r2) lines.push_back("r2 is undefined for a single example");
  return lines;
}

namespace {

data::Format format_of(const fs::path& path, std::string_view option) {
  std::optional<data::Format> format = data::format_from_extension(path);
  if (!format)
    fail<UsageError>("{} {}: cannot tell the format from the file name; name it .jsonl, .csv or .tsv", option,
                     path.string());
  return *format;
}

// One row of a predictions or labels file.
struct Row {
  std::string id;
  std::string value;         // label or value as written
  nlohmann::json probs;      // object or null
  uint64_t line = 0;
};

// The columns a file offers: CSV/TSV from the header, JSONL from the first object.
std::vector<std::string> columns_of(const fs::path& path, data::Format format, const std::string& id_column) {
  data::RecordReader reader(path, format, {id_column});
  if (format != data::Format::jsonl) return reader.header();
  data::Record record;
  while (reader.next(record)) {
    if (!record.problem.empty()) fail<DataError>("{}:{}: {}", path.string(), record.line, record.problem);
    nlohmann::json doc = parse_json(record.raw_line, fmt::format("{}:{}", path.string(), record.line));
    if (!doc.is_object()) fail<DataError>("{}:{}: {}", path.string(), record.line, record.problem.empty() ? "expected a JSON object" : record.problem);
    std::vector<std::string> keys;
    for (auto& [key, value] : doc.items()) keys.push_back(key);
    return keys;
  }
  fail<DataError>("{}: is empty; expected one JSON object per line with \"{}\"", path.string(), id_column);
}

bool has(const std::vector<std::string>& columns, const std::string& name) {
  return std::find(columns.begin(), columns.end(), name) != columns.end();
}

// Reads every row of `path` (columns id and `key`, plus probs when `with_probs`), calling `use`.
template <typename Use>
void read_rows(const fs::path& path, data::Format format, const std::string& id_column, const std::string& key,
               bool with_probs, Use use) {
  data::RecordReader reader(path, format, {id_column, key});
  size_t probs_index = 0;
  if (with_probs && format != data::Format::jsonl) {
    const auto& header = reader.header();
    probs_index = static_cast<size_t>(std::find(header.begin(), header.end(), "probs") - header.begin());
  }
  data::Record record;
  Row row;
  while (reader.next(record)) {
    if (!record.problem.empty()) fail<DataError>("{}:{}: {}", path.string(), record.line, record.problem);
    row.id = record.values[0];
    row.value = record.values[1];
    row.line = record.line;
    row.probs = nullptr;
    if (row.id.empty()) fail<DataError>("{}:{}: empty \"{}\"", path.string(), record.line, id_column);
    if (with_probs) {
      nlohmann::json doc;
      if (format == data::Format::jsonl) {
        doc = parse_json(record.raw_line, fmt::format("{}:{}", path.string(), record.line));
        auto found = doc.find("probs");
        if (found != doc.end()) row.probs = *found;
      } else if (probs_index < record.fields.size() && !record.fields[probs_index].empty()) {
        const char* hint = "the probs column is not a JSON object such as {\"neg\": 0.2, \"pos\": 0.8}";
        try {
          row.probs = parse_json(record.fields[probs_index], path.string());
        } catch (const DataError&) {
          fail<DataError>("{}:{}: {}", path.string(), record.line, hint);
        }
      }
      if (row.probs.is_null())
        fail<DataError>("{}:{}: no probs for id \"{}\", while the first row has them; give probs on every row or on "
                        "none", path.string(), record.line, row.id);
      if (!row.probs.is_object() || row.probs.empty())
        fail<DataError>("{}:{}: probs must be a non-empty object {{\"label\": probability, ...}}", path.string(),
                        record.line);
      for (auto& [label, p] : row.probs.items())
        if (!p.is_number() || !std::isfinite(p.template get<double>()))
          fail<DataError>("{}:{}: probs[\"{}\"] is not a finite number", path.string(), record.line, label);
    }
    use(row);
  }
}

double parse_value(const Row& row, const fs::path& path) {
  double v = 0;
  const char* begin = row.value.data();
  const char* end = begin + row.value.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (row.value.empty() || ec != std::errc() || ptr != end || !std::isfinite(v))
    fail<DataError>("{}:{}: value \"{}\" of id \"{}\" is not a finite number", path.string(), row.line, row.value,
                    row.id);
  return v;
}

}  // namespace

Evaluation evaluate_files(const fs::path& predictions, const fs::path& labels, const FileEvaluationOptions& options) {
  const data::Format prediction_format = format_of(predictions, "--predictions");
  const data::Format label_format = format_of(labels, "--labels");
  const std::string& id = options.id_column;
  std::vector<std::string> prediction_columns = columns_of(predictions, prediction_format, id);
  Evaluation result;
  std::string key;
  if (has(prediction_columns, "label")) {
    key = "label";
  } else if (has(prediction_columns, "value")) {
    key = "value";
    result.task = data::Task::regression;
  } else {
    fail<DataError>("{}: has no \"label\" column (classification) or \"value\" column (regression)",
                    predictions.string());
  }
  if (!has(prediction_columns, id)) fail<DataError>("{}: has no \"{}\" column", predictions.string(), id);
  const bool with_probs = result.task == data::Task::classification && has(prediction_columns, "probs");

  // The labels, by id.
  struct Truth {
    std::string value;
    uint64_t line;
    bool matched = false;
  };
  std::unordered_map<std::string, Truth> truth;
  std::vector<std::string> label_order;  // ids in file order, to name the first unmatched one
  read_rows(labels, label_format, id, key, false, [&](const Row& row) {
    auto [it, added] = truth.emplace(row.id, Truth{row.value, row.line});
    if (!added)
      fail<DataError>("{}:{}: duplicate id \"{}\" (first on line {}); every id must be labelled once", labels.string(),
                      row.line, row.id, it->second.line);
    label_order.push_back(row.id);
  });
  if (truth.empty()) fail<DataError>("{}: no labels", labels.string());

  // The predictions, joined.
  std::vector<std::string> true_names, predicted_names;
  std::vector<double> true_values, predicted_values;
  std::vector<nlohmann::json> probs;
  std::unordered_map<std::string, uint64_t> seen;
  read_rows(predictions, prediction_format, id, key, with_probs, [&](const Row& row) {
    auto [first, added] = seen.emplace(row.id, row.line);
    if (!added)
      fail<DataError>("{}:{}: duplicate id \"{}\" (first on line {}); predict each id once", predictions.string(),
                      row.line, row.id, first->second);
    auto found = truth.find(row.id);
    if (found == truth.end())
      fail<DataError>("{}:{}: id \"{}\" has no label in {}", predictions.string(), row.line, row.id, labels.string());
    found->second.matched = true;
    if (result.task == data::Task::classification) {
      if (row.value.empty())
        fail<DataError>("{}:{}: empty label for id \"{}\"", predictions.string(), row.line, row.id);
      if (found->second.value.empty())
        fail<DataError>("{}:{}: empty label for id \"{}\"", labels.string(), found->second.line, row.id);
      true_names.push_back(found->second.value);
      predicted_names.push_back(row.value);
      if (with_probs) probs.push_back(row.probs);
    } else {
      Row label_row{row.id, found->second.value, nullptr, found->second.line};
      true_values.push_back(parse_value(label_row, labels));
      predicted_values.push_back(parse_value(row, predictions));
    }
  });
  if (seen.size() != truth.size()) {
    size_t missing = truth.size() - seen.size();
    for (const std::string& label_id : label_order) {
      const Truth& t = truth.at(label_id);
      if (!t.matched)
        fail<DataError>("{}:{}: id \"{}\" has no prediction in {}{}", labels.string(), t.line, label_id,
                        predictions.string(),
                        missing > 1 ? fmt::format(" ({} labelled ids have none)", missing) : std::string());
    }
  }

  if (result.task == data::Task::regression) {
    result.regression = regression_metrics(true_values, predicted_values);
    for (size_t i = 0; i < true_values.size(); ++i)
      result.outcomes.residual.push_back(predicted_values[i] - true_values[i]);
    return result;
  }

  // Classes: every name seen, in recmodel's label order.
  std::map<std::string, int> index;
  for (const auto& name : true_names) index.emplace(name, 0);
  for (const auto& name : predicted_names) index.emplace(name, 0);
  for (const auto& row : probs)
    for (auto& [name, p] : row.items()) index.emplace(name, 0);
  for (const auto& entry : index) result.labels.push_back(entry.first);
  data::sort_labels(result.labels);
  for (size_t i = 0; i < result.labels.size(); ++i) index[result.labels[i]] = static_cast<int>(i);
  const int classes = static_cast<int>(result.labels.size());
  std::vector<int> t(true_names.size()), p(predicted_names.size());
  for (size_t i = 0; i < t.size(); ++i) {
    t[i] = index[true_names[i]];
    p[i] = index[predicted_names[i]];
  }
  std::vector<double> matrix;
  if (with_probs) {
    matrix.assign(probs.size() * static_cast<size_t>(classes), 0.0);
    for (size_t i = 0; i < probs.size(); ++i)
      for (auto& [name, value] : probs[i].items()) matrix[i * classes + index[name]] = value.get<double>();
    // The confidence of a prediction is the probability given to the label it names (which need
    // not be the most probable one in a file written by another tool).
    for (size_t i = 0; i < p.size(); ++i) result.outcomes.confidence.push_back(matrix[i * classes + p[i]]);
  }
  for (size_t i = 0; i < t.size(); ++i) result.outcomes.correct.push_back(t[i] == p[i] ? 1 : 0);
  ClassificationOptions copts;
  copts.top_k = options.top_k > 0 ? options.top_k : default_top_k(classes);
  copts.class_values = numeric_label_values(result.labels);
  result.classification = classification_metrics(t, p, classes, matrix, copts);
  return result;
}

}  // namespace recmodel::metrics
