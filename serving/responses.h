// The JSON answers of each API, written straight into a string with the version's pre-quoted
// labels and predict's float formatting (model::append_float), so a score reads the same in
// `recmodel predict` and in every route. Pure functions, no HTTP.
#pragma once

#include <string>
#include <vector>

#include "model/loaded_version.h"
#include "serving/http_server.h"  // error_body
#include "serving/request_parsing.h"

namespace recmodel::serving {

// TEI /predict: one input -> [{"label", "score"}, ...] (every label, best first); a batch -> a
// list of those. Regression: [{"label": "value", "score": v}]. raw_scores: logits, still best first.
std::string tei_response(const model::LoadedVersion& version, const ParsedRequest& request,
                         const std::vector<model::Prediction>& predictions);
// HF endpoint POST /: always a list per input, [[{"label", "score"}, ...], ...], after
// function_to_apply and top_k.
std::string endpoint_response(const model::LoadedVersion& version, const ParsedRequest& request,
                              const std::vector<model::Prediction>& predictions);
// MLflow /invocations: {"predictions": [{"label", "score"}, ...]} (top label per input);
// regression {"predictions": [{"value": v}, ...]}.
std::string invocations_response(const model::LoadedVersion& version, const ParsedRequest& request,
                                 const std::vector<model::Prediction>& predictions);
// KServe v2 infer: {"model_name", "model_version", "id"?, "outputs": [label BYTES [N], score FP32 [N],
// probabilities FP32 [N, labels]]} (regression: value FP32 [N]), filtered by request.outputs.
std::string kserve_infer_response(const model::LoadedVersion& version, const ParsedRequest& request,
                                  const std::vector<model::Prediction>& predictions);
// KServe v2 GET /v2/models/NAME: name, versions, platform, inputs and outputs with their shapes.
std::string kserve_model_metadata(const model::LoadedVersion& version);

}  // namespace recmodel::serving
