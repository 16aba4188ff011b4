#include "monitoring/traffic.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <set>

#include "common/error.h"
#include "common/json.h"
#include "common/line_reader.h"
#include "common/text.h"
#include "registry/registry.h"

namespace recmodel::monitoring {

namespace {

struct Record {
  int64_t time_ms = 0;
  std::string label;
  double score = 0;
  size_t tokens = 0;  // seen by the model
  size_t unk_tokens = 0;
  bool truncated = false;
};

const nlohmann::json* member(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

uint64_t count_field(const nlohmann::json& object, const char* name, const std::string& where) {
  const nlohmann::json* v = member(object, name);
  if (!v || !v->is_number_unsigned())
    fail<DataError>("{}: \"{}\" must be a count, got {}", where, name, v ? json_excerpt(*v) : "nothing");
  return v->get<uint64_t>();
}

double number_field(const nlohmann::json& object, const char* name, const std::string& where) {
  const nlohmann::json* v = member(object, name);
  if (!v || !v->is_number() || !std::isfinite(v->get<double>()))
    fail<DataError>("{}: \"{}\" must be a number, got {}", where, name, v ? json_excerpt(*v) : "nothing");
  return v->get<double>();
}

// Reads the prediction of a line: the label and its score, or the value.
void read_prediction(const nlohmann::json& object, bool regression, const std::string& where, Record& record) {
  if (regression) {
    if (!member(object, "value"))
      fail<DataError>("{}: no \"value\": the model is a regression model, this line {}", where,
                      member(object, "label") ? "holds a label (another model's output?)" : "holds no prediction");
    record.score = number_field(object, "value", where);
    return;
  }
  const nlohmann::json* label = member(object, "label");
  if (!label || !label->is_string())
    fail<DataError>("{}: \"label\" must be a string, got {}{}", where, label ? json_excerpt(*label) : "nothing",
                    member(object, "value") ? " (a regression model's output?)" : "");
  record.label = label->get<std::string>();
  record.score = number_field(object, "score", where);
  if (record.score < 0 || record.score > 1) fail<DataError>("{}: \"score\" {} is not a probability", where, record.score);
}

}  // namespace

std::optional<TrafficKind> detect_kind(const std::string& first_line) {
  std::string why;
  const nlohmann::json value = try_parse_json(first_line, why);
  if (!value.is_object()) return std::nullopt;
  if (value.contains("unk_tokens") && value.contains("tokens")) return TrafficKind::log;
  if (value.contains("text")) return std::nullopt;
  if (value.contains("label") || value.contains("score") || value.contains("value") || value.contains("error"))
    return TrafficKind::predictions;
  return std::nullopt;
}

LiveTraffic read_traffic(const std::string& path, TrafficKind kind, const TrafficFilter& filter, TrafficSummary& summary) {
  if (kind == TrafficKind::predictions && filter.since_ms)
    fail<UsageError>("--since needs times: {} is a predictions file; give serve's --log-predictions file, or --window",
                     path == "-" ? "<stdin>" : path);
  summary = TrafficSummary();
  summary.kind = kind;
  LineReader reader(path);
  // The last `window` records of each served model: which one counts is known only at the end.
  std::map<std::string, std::deque<Record>> kept;
  std::map<std::string, uint64_t> older;
  std::set<int64_t> other_versions;
  std::string line, pending_error;
  while (reader.next(line)) {
    if (!pending_error.empty()) throw DataError(pending_error);  // a bad line that was not the last
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", reader.name(), reader.line_number());
    std::string why;
    const nlohmann::json object = try_parse_json(line, why);
    if (!object.is_object()) {
      // A crash of the writer can cut the last line short; any other bad line is an error.
      pending_error = fmt::format("{}: not a JSON object ({})", where, why.empty() ? "a " + json_type_name(object) : why);
      continue;
    }
    ++summary.lines;
    Record record;
    std::string model;
    if (kind == TrafficKind::log) {
      const nlohmann::json* time = member(object, "time");
      if (!time || !time->is_string()) fail<DataError>("{}: \"time\" must be a time string (is this serve's log?)", where);
      try {
        record.time_ms = registry::parse_time(time->get<std::string>());
      } catch (const UsageError&) {
        fail<DataError>("{}: \"time\" {} is not an ISO 8601 time", where, quoted_for_message(time->get<std::string>()));
      }
      const nlohmann::json* name = member(object, "model");
      model = name && name->is_string() ? name->get<std::string>() : "";
      const int64_t version = member(object, "version") && object["version"].is_number_integer()
                                  ? object["version"].get<int64_t>()
                                  : 0;
      const uint64_t tokens = count_field(object, "tokens", where);
      const uint64_t truncated = count_field(object, "truncated", where);
      const uint64_t unk = count_field(object, "unk_tokens", where);
      if (truncated > tokens || unk > tokens - truncated)
        fail<DataError>("{}: \"truncated\" {} and \"unk_tokens\" {} do not fit in \"tokens\" {}", where, truncated, unk,
                        tokens);
      record.tokens = static_cast<size_t>(tokens - truncated);
      record.unk_tokens = static_cast<size_t>(unk);
      record.truncated = truncated > 0;
      read_prediction(object, filter.regression, where, record);
      if (filter.since_ms && record.time_ms < *filter.since_ms) {
        ++summary.skipped;
        continue;
      }
      if (!filter.served_name.empty() && model != filter.served_name) {
        ++summary.skipped;
        kept.try_emplace(model);  // listed among the others
        continue;
      }
      if (filter.version && version != *filter.version) {
        ++summary.skipped;
        other_versions.insert(version);
        continue;
      }
    } else {
      if (member(object, "error") && !member(object, "label") && !member(object, "value")) {
        ++summary.skipped;  // an input predict could not score
        continue;
      }
      read_prediction(object, filter.regression, where, record);
    }
    auto& records = kept[model];
    records.push_back(std::move(record));
    if (records.size() > filter.window) {
      records.pop_front();
      ++older[model];
    }
  }
  if (!pending_error.empty()) ++summary.skipped;  // the cut last line

  std::deque<Record>* chosen = nullptr;
  if (!filter.served_name.empty()) {
    for (const auto& [name, records] : kept)
      if (name != filter.served_name) summary.other_models.push_back(name);
    auto it = kept.find(filter.served_name);
    if (it != kept.end()) {
      chosen = &it->second;
      summary.dropped_by_window = older[filter.served_name];
    }
  } else {
    std::vector<std::string> names;
    for (const auto& [name, records] : kept)
      if (!records.empty()) names.push_back(name);
    if (names.size() > 1) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + quoted_for_message(n);
      fail<UsageError>("{} holds the predictions of several served models ({}); choose one with --served-name",
                       reader.name(), list);
    }
    if (!names.empty()) {
      chosen = &kept[names.front()];
      summary.dropped_by_window = older[names.front()];
    }
  }
  summary.other_versions.assign(other_versions.begin(), other_versions.end());

  LiveTraffic live;
  if (kind == TrafficKind::predictions)
    live.no_tokens_reason = "a predictions file holds no token counts (give serve's --log-predictions file, or the texts)";
  if (!chosen) return live;
  for (const Record& r : *chosen) {
    if (!filter.regression) live.labels.push_back(r.label);
    live.scores.push_back(r.score);
    if (kind == TrafficKind::log) {
      live.tokens.push_back(static_cast<double>(r.tokens));
      live.unk_rates.push_back(r.tokens ? static_cast<double>(r.unk_tokens) / static_cast<double>(r.tokens) : 0.0);
      live.truncated += r.truncated ? 1 : 0;
      if (!summary.first_ms || r.time_ms < *summary.first_ms) summary.first_ms = r.time_ms;
      if (!summary.last_ms || r.time_ms > *summary.last_ms) summary.last_ms = r.time_ms;
    }
  }
  return live;
}

}  // namespace recmodel::monitoring
