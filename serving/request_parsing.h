// Request bodies of the inference APIs serve speaks, parsed into the texts to score: TEI's
// /predict, a Hugging Face Inference Endpoint's POST /, MLflow/SageMaker's /invocations and
// KServe's Open Inference Protocol v2 infer. Only the shape is checked here; whether a text can
// be tokenized is the tokenizer's to say. Pure functions, no model.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/batch_predictor.h"

namespace recmodel::serving {

// A request that cannot be served, with the HTTP status and the TEI-style error_type
// (invalid_json, validation, empty, tokenizer, ...) it is answered with.
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

enum class ScoreFunction { softmax, sigmoid, none };

struct ParsedRequest {
  std::vector<model::TextInput> inputs;
  bool batch = false;          // the request sent a list of inputs (TEI answers a list of lists)
  bool truncate = true;        // false: a too long input is refused (413) instead of truncated
  bool raw_scores = false;     // TEI: logits instead of probabilities
  ScoreFunction function = ScoreFunction::softmax;  // HF endpoint parameters.function_to_apply
  std::optional<size_t> top_k;                      // HF endpoint parameters.top_k; none = every label
  std::string id;                                   // KServe: echoed in the answer
  std::vector<std::string> outputs;                 // KServe: the outputs asked for; empty = all
};

// Each throws RequestError: 400 invalid_json (with the byte offset), 400 validation naming the
// field or inputs[i], 400 empty for no inputs, 422 tokenizer for invalid UTF-8 in input i.
// TEI: {"inputs": "t" | ["t", "pair"] | [["t"], ["a", "b"], ...], "truncate": bool, "raw_scores": bool}.
// A top-level array whose first element is a string is one input (TEI's rule).
ParsedRequest parse_tei_request(std::string_view body);
// HF endpoint: TEI's inputs (also [{"text", "text_pair"}]) and "parameters": {"top_k", "function_to_apply",
// "truncation"}.
ParsedRequest parse_endpoint_request(std::string_view body);
// MLflow / SageMaker: {"inputs": [...]} or {"instances": [...]}, items "t", ["t", "pair"] or
// {"text", "text_pair"}; a bare string is one input.
ParsedRequest parse_invocations_request(std::string_view body);
// KServe v2: {"id"?, "inputs": [{"name": "text", "datatype": "BYTES", "shape": [N] | [N, 1], "data": [...]},
// {"name": "text_pair", ...}?], "outputs"?: [{"name"}], "parameters"?: {"truncate"}}.
ParsedRequest parse_kserve_request(std::string_view body);

}  // namespace recmodel::serving
