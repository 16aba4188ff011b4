#include "monitoring/profile.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/json.h"
#include "monitoring/binning.h"

namespace recmodel::monitoring {

namespace {

// Six decimals keep recmodel.json short and are far below any drift that matters.
double rounded(double v) { return std::round(v * 1e6) / 1e6; }

// Whole numbers (token counts, empty rates) are written as integers: "12", not "12.0".
nlohmann::json rounded_array(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) {
    const double r = rounded(v);
    if (r == std::floor(r) && std::fabs(r) < 9e15)
      out.push_back(static_cast<int64_t>(r));
    else
      out.push_back(r);
  }
  return out;
}

nlohmann::json histogram_json(const std::vector<double>& values, size_t bins, bool unit_interval) {
  const std::vector<double> edges = unit_interval ? linspace_edges(0, 1, bins) : histogram_edges(values, {}, bins);
  const std::vector<uint64_t> counts = histogram_counts(values, edges);
  return {{"edges", rounded_array(edges)}, {"counts", counts}};
}

std::vector<double> number_array(const nlohmann::json& value, const std::string& source, const char* name) {
  if (!value.is_array()) fail<DataError>("{}: profile.samples.{} must be an array of numbers", source, name);
  std::vector<double> out;
  out.reserve(value.size());
  for (const auto& v : value) {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      fail<DataError>("{}: profile.samples.{} holds {}, not a number", source, name, json_excerpt(v));
    out.push_back(v.get<double>());
  }
  if (out.size() > kMaxProfileSamples)
    fail<DataError>("{}: profile.samples.{} holds {} values, more than {}", source, name, out.size(), kMaxProfileSamples);
  return out;
}

std::map<std::string, uint64_t> count_map(const nlohmann::json& value, const std::string& source, const char* name) {
  std::map<std::string, uint64_t> out;
  if (value.is_null()) return out;
  if (!value.is_object()) fail<DataError>("{}: profile.labels.{} must be an object of counts", source, name);
  for (const auto& [label, count] : value.items()) {
    if (!count.is_number_unsigned())
      fail<DataError>("{}: profile.labels.{}.{} is {}, not a count", source, name, label, json_excerpt(count));
    out[label] = count.get<uint64_t>();
  }
  return out;
}

double rate(const nlohmann::json& p, const char* name, const std::string& source) {
  const auto it = p.find(name);
  if (it == p.end() || !it->is_number() || it->get<double>() < 0 || it->get<double>() > 1)
    fail<DataError>("{}: profile.{} must be a number in [0, 1]", source, name);
  return it->get<double>();
}

}  // namespace

std::vector<size_t> evenly_spaced(size_t total, size_t count) {
  std::vector<size_t> out;
  if (total <= count) {
    out.resize(total);
    for (size_t i = 0; i < total; ++i) out[i] = i;
    return out;
  }
  out.reserve(count);
  for (size_t i = 0; i < count; ++i)
    out.push_back(static_cast<size_t>((static_cast<unsigned __int128>(i) * total) / count));
  return out;
}

nlohmann::json ReferenceProfile::to_json() const {
  nlohmann::json labels_json = nlohmann::json::object();
  if (!regression) {
    labels_json["train"] = train_label_counts;
    labels_json["dev"] = label_counts;
    nlohmann::json predicted = nlohmann::json::object();
    for (const auto& label : labels) predicted[label] = predicted_counts.count(label) ? predicted_counts.at(label) : 0;
    labels_json["predicted"] = predicted;
  }
  nlohmann::json out = {
      {"format_version", kProfileFormatVersion},
      {"split", split},
      {"examples", examples},
      {"task", regression ? "regression" : "classification"},
      {"labels", labels_json},
      {"score_histogram", histogram_json(scores, 10, !regression)},
      {"token_histogram", histogram_json(tokens, 16, false)},
      {"unk_rate", rounded(unk_rate)},
      {"truncation_rate", rounded(truncation_rate)},
      {"samples", {{"score", rounded_array(scores)}, {"tokens", rounded_array(tokens)}, {"unk_rate", rounded_array(unk_rates)}}},
  };
  return out;
}

ReferenceProfile ReferenceProfile::from_json(const nlohmann::json& p, const std::string& source) {
  if (!p.is_object()) fail<DataError>("{}: \"profile\" must be an object", source);
  const auto version = p.find("format_version");
  if (version == p.end() || !version->is_number_integer())
    fail<DataError>("{}: profile.format_version is missing", source);
  if (version->get<int64_t>() > kProfileFormatVersion)
    fail<DataError>("{}: the profile has format version {}, newer than this recmodel reads ({}); upgrade recmodel",
                    source, version->get<int64_t>(), kProfileFormatVersion);
  ReferenceProfile out;
  out.split = p.value("split", std::string("dev"));
  out.regression = p.value("task", std::string("classification")) == "regression";
  const auto examples = p.find("examples");
  if (examples == p.end() || !examples->is_number_unsigned() || examples->get<uint64_t>() == 0)
    fail<DataError>("{}: profile.examples must be a positive count", source);
  out.examples = examples->get<uint64_t>();
  out.unk_rate = rate(p, "unk_rate", source);
  out.truncation_rate = rate(p, "truncation_rate", source);
  const auto labels = p.find("labels");
  if (!out.regression) {
    if (labels == p.end() || !labels->is_object()) fail<DataError>("{}: profile.labels is missing", source);
    out.train_label_counts = count_map(labels->value("train", nlohmann::json()), source, "train");
    out.label_counts = count_map(labels->value("dev", nlohmann::json()), source, "dev");
    const auto predicted = labels->find("predicted");
    if (predicted == labels->end() || !predicted->is_object() || predicted->empty())
      fail<DataError>("{}: profile.labels.predicted is missing", source);
    // The object's order is not kept by the parser; the predicted counts' keys are the labels.
    out.predicted_counts = count_map(*predicted, source, "predicted");
    for (const auto& [label, count] : out.predicted_counts) out.labels.push_back(label);
  }
  const auto samples = p.find("samples");
  if (samples == p.end() || !samples->is_object()) fail<DataError>("{}: profile.samples is missing", source);
  out.scores = number_array(samples->value("score", nlohmann::json()), source, "score");
  out.tokens = number_array(samples->value("tokens", nlohmann::json()), source, "tokens");
  out.unk_rates = number_array(samples->value("unk_rate", nlohmann::json()), source, "unk_rate");
  if (out.scores.empty() || out.scores.size() != out.tokens.size() || out.scores.size() != out.unk_rates.size())
    fail<DataError>("{}: profile.samples must hold the same positive number of score, tokens and unk_rate values",
                    source);
  return out;
}

ProfileBuilder::ProfileBuilder(std::vector<std::string> labels, bool regression, std::string split) {
  profile_.labels = std::move(labels);
  profile_.regression = regression;
  profile_.split = std::move(split);
}

void ProfileBuilder::add(const ScoredInput& input) {
  ++profile_.examples;
  if (!profile_.regression) ++profile_.predicted_counts[input.label];
  profile_.scores.push_back(input.score);
  profile_.tokens.push_back(static_cast<double>(input.tokens));
  profile_.unk_rates.push_back(input.tokens ? static_cast<double>(input.unk_tokens) / static_cast<double>(input.tokens) : 0.0);
  tokens_ += input.tokens;
  unk_tokens_ += input.unk_tokens;
  truncated_ += input.truncated ? 1 : 0;
}

ReferenceProfile ProfileBuilder::finish() {
  ReferenceProfile out = std::move(profile_);
  out.unk_rate = tokens_ ? static_cast<double>(unk_tokens_) / static_cast<double>(tokens_) : 0.0;
  out.truncation_rate = truncation_rate_ >= 0 ? truncation_rate_
                        : out.examples    ? static_cast<double>(truncated_) / static_cast<double>(out.examples)
                                          : 0.0;
  const std::vector<size_t> keep = evenly_spaced(out.scores.size(), kMaxProfileSamples);
  if (keep.size() < out.scores.size()) {
    auto pick = [&](std::vector<double>& values) {
      std::vector<double> kept;
      kept.reserve(keep.size());
      for (size_t i : keep) kept.push_back(values[i]);
      values.swap(kept);
    };
    pick(out.scores);
    pick(out.tokens);
    pick(out.unk_rates);
  }
  // The stored samples are rounded: the statistics computed now and after reading them back agree.
  for (auto* values : {&out.scores, &out.tokens, &out.unk_rates})
    for (double& v : *values) v = rounded(v);
  for (const auto& label : out.labels) out.predicted_counts.emplace(label, 0);
  return out;
}

bool read_model_profile(const std::string& dir, ReferenceProfile& profile) {
  const fs::path path = fs::path(dir) / "recmodel.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  const nlohmann::json doc = read_json_file(path);
  const auto it = doc.find("profile");
  if (it == doc.end() || it->is_null()) return false;
  profile = ReferenceProfile::from_json(*it, path.string());
  return true;
}

}  // namespace recmodel::monitoring
