#include "serving/responses.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/json.h"
#include "common/text.h"
#include "model/prediction_io.h"

namespace recmodel::serving {

namespace {

using model::append_float;


void append_label_score(std::string& out, const std::string& quoted_label, float score) {
  out += "{\"label\":";
  out += quoted_label;
  out += ",\"score\":";
  append_float(out, score);
  out += '}';
}

void append_regression(std::string& out, const model::Prediction& p) {
  out += "[{\"label\":\"value\",\"score\":";
  append_float(out, p.value());
  out += "}]";
}

// The values an answer shows for one input, in the model's label order.
const std::vector<float>& shown_values(const model::Prediction& p, ScoreFunction function, bool raw_scores,
                                       std::vector<float>& scratch) {
  if (raw_scores || function == ScoreFunction::none) return p.logits;
  if (function == ScoreFunction::softmax) return p.scores;
  scratch.resize(p.logits.size());
  for (size_t c = 0; c < p.logits.size(); ++c) scratch[c] = 1.0f / (1.0f + std::exp(-p.logits[c]));
  return scratch;
}

// Appends [{"label", "score"}, ...] for `values`, best first, at most `top_k` of them.
void append_ranked(std::string& out, const model::LoadedVersion& version, const std::vector<float>& values,
                   size_t top_k, std::vector<size_t>& order) {
  model::rank_labels(values, order);
  const size_t n = std::min(top_k, order.size());
  out += '[';
  for (size_t k = 0; k < n; ++k) {
    if (k) out += ',';
    append_label_score(out, version.quoted_labels()[order[k]], values[order[k]]);
  }
  out += ']';
}

void append_tensor_header(std::string& out, const char* name, const char* datatype, size_t rows,
                          std::optional<size_t> columns) {
  out += "{\"name\":\"";
  out += name;
  out += "\",\"datatype\":\"";
  out += datatype;
  out += "\",\"shape\":[";
  out += std::to_string(rows);
  if (columns) {
    out += ',';
    out += std::to_string(*columns);
  }
  out += "],\"data\":[";
}

std::string list_outputs(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

namespace {

// Appends each input's ranked labels (regression: its value) to `out`, one list per input.
void append_per_input(std::string& out, const model::LoadedVersion& version,
                      const std::vector<model::Prediction>& predictions, ScoreFunction function, bool raw_scores,
                      size_t top_k) {
  std::vector<size_t> order;
  std::vector<float> scratch;
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (i) out += ',';
    const auto& p = predictions[i];
    if (version.regression()) {
      append_regression(out, p);
    } else {
      append_ranked(out, version, shown_values(p, function, raw_scores, scratch), top_k, order);
    }
  }
}

}  // namespace

std::string tei_response(const model::LoadedVersion& version, const ParsedRequest& request,
                         const std::vector<model::Prediction>& predictions) {
  std::string out;
  const bool list = request.batch || predictions.size() != 1;
  if (list) out += '[';
  append_per_input(out, version, predictions, ScoreFunction::softmax, request.raw_scores, SIZE_MAX);
  if (list) out += ']';
  return out;
}

std::string endpoint_response(const model::LoadedVersion& version, const ParsedRequest& request,
                              const std::vector<model::Prediction>& predictions) {
  std::string out = "[";
  append_per_input(out, version, predictions, request.function, request.raw_scores,
                   request.top_k.value_or(SIZE_MAX));
  out += ']';
  return out;
}

std::string invocations_response(const model::LoadedVersion& version, const ParsedRequest& /*request*/,
                                 const std::vector<model::Prediction>& predictions) {
  std::string out = "{\"predictions\":[";
  std::vector<size_t> order;
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (i) out += ',';
    const auto& p = predictions[i];
    if (version.regression()) {
      out += "{\"value\":";
      append_float(out, p.value());
      out += '}';
    } else {
      model::rank_labels(p.scores, order);
      append_label_score(out, version.quoted_labels()[order[0]], p.scores[order[0]]);
    }
  }
  out += "]}";
  return out;
}

std::string kserve_infer_response(const model::LoadedVersion& version, const ParsedRequest& request,
                                  const std::vector<model::Prediction>& predictions) {
  const bool regression = version.regression();
  const std::vector<std::string> available =
      regression ? std::vector<std::string>{"value"} : std::vector<std::string>{"label", "score", "probabilities"};
  std::vector<std::string> wanted;
  for (const auto& name : request.outputs) {
    if (std::find(available.begin(), available.end(), name) == available.end())
      throw RequestError(400, "validation",
                         fmt::format("output {} is not an output of this {} model (it has {})",
                                     quoted_for_message(name, 40), regression ? "regression" : "classification",
                                     list_outputs(available)));
    if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) wanted.push_back(name);
  }
  if (wanted.empty()) wanted = available;

  const size_t n = predictions.size();
  std::string out = "{\"model_name\":";
  out += json_quoted(version.identity().name);
  if (version.identity().version > 0) out += ",\"model_version\":\"" + std::to_string(version.identity().version) + "\"";
  if (!request.id.empty()) out += ",\"id\":" + json_quoted(request.id);
  out += ",\"outputs\":[";

  // The top label of each input, found once for label and score.
  std::vector<size_t> top(regression ? 0 : n);
  std::vector<size_t> order;
  for (size_t i = 0; i < top.size(); ++i) {
    model::rank_labels(predictions[i].scores, order);
    top[i] = order[0];
  }
  for (size_t w = 0; w < wanted.size(); ++w) {
    if (w) out += ',';
    const std::string& name = wanted[w];
    if (name == "value") {
      append_tensor_header(out, "value", "FP32", n, std::nullopt);
      for (size_t i = 0; i < n; ++i) {
        if (i) out += ',';
        append_float(out, predictions[i].value());
      }
    } else if (name == "label") {
      append_tensor_header(out, "label", "BYTES", n, std::nullopt);
      for (size_t i = 0; i < n; ++i) {
        if (i) out += ',';
        out += version.quoted_labels()[top[i]];
      }
    } else if (name == "score") {
      append_tensor_header(out, "score", "FP32", n, std::nullopt);
      for (size_t i = 0; i < n; ++i) {
        if (i) out += ',';
        append_float(out, predictions[i].scores[top[i]]);
      }
    } else {
      const size_t labels = version.labels().size();
      append_tensor_header(out, "probabilities", "FP32", n, labels);
      bool first = true;
      for (size_t i = 0; i < n; ++i)
        for (float v : predictions[i].scores) {
          if (!first) out += ',';
          first = false;
          append_float(out, v);
        }
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

std::string kserve_model_metadata(const model::LoadedVersion& version) {
  std::string out = "{\"name\":";
  out += json_quoted(version.identity().name);
  if (version.identity().version > 0) out += ",\"versions\":[\"" + std::to_string(version.identity().version) + "\"]";
  out += ",\"platform\":\"recmodel_bert\",\"inputs\":["
         "{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[-1]},"
         "{\"name\":\"text_pair\",\"datatype\":\"BYTES\",\"shape\":[-1]}],\"outputs\":[";
  if (version.regression()) {
    out += "{\"name\":\"value\",\"datatype\":\"FP32\",\"shape\":[-1]}";
  } else {
    out += "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[-1]},"
           "{\"name\":\"score\",\"datatype\":\"FP32\",\"shape\":[-1]},"
           "{\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[-1,";
    out += std::to_string(version.labels().size());
    out += "]}";
  }
  out += "]}";
  return out;
}

}  // namespace recmodel::serving
