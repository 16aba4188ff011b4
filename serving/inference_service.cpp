#include "serving/inference_service.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "common/error.h"
#include "common/json.h"
#include "common/text.h"
#include "registry/registry.h"
#include "serving/responses.h"

namespace recmodel::serving {

namespace {

using Clock = std::chrono::steady_clock;

int64_t whole_ms(std::chrono::microseconds duration) { return duration.count() / 1000; }
int64_t whole_ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse error_response(int status, const std::string& type, const std::string& message) {
  return json_response(status, error_body(type, message));
}

std::string served_names(const ModelSet& models) {
  std::string names;
  for (size_t i = 0; i < models.size(); ++i) names += (i ? ", " : "") + models.name(i);
  return names;
}

}  // namespace

// One inference request on its way through parse, tokenize, batch and answer.
struct InferenceService::Call {
  Route route;
  HttpRequest request;
  Responder responder;
  ParsedRequest parsed;
  model::VersionPtr version;
  size_t tokens = 0;      // tokens the model sees, all inputs
  size_t characters = 0;  // bytes of text, all inputs
  std::vector<uint32_t> unknown;  // per input: [UNK] among the tokens the model sees
  Clock::time_point tokenized;
  model::RequestTiming timing;
  bool answered = false;

  Call(Route r, HttpRequest q, Responder s) : route(std::move(r)), request(std::move(q)), responder(std::move(s)) {}
};

InferenceService::InferenceService(ModelSet& models, model::DynamicBatcher& batcher, ServeMetrics& metrics,
                                   PredictionLog* predictions, ServiceOptions options)
    : models_(models), batcher_(batcher), metrics_(metrics), predictions_(predictions), options_(options),
      pool_(options.worker_threads) {}

InferenceService::~InferenceService() = default;

void InferenceService::handle(HttpRequest request, Responder responder) {
  Route route = match_route(request.method, request.path);
  const auto received = request.received;
  auto answer = [&](HttpResponse response) {
    stamp(response, received);
    responder.send(std::move(response));
  };
  try {
    switch (route.endpoint) {
      case Endpoint::tei_predict:
      case Endpoint::hf_endpoint:
      case Endpoint::invocations:
      case Endpoint::kserve_infer:
        infer(route, std::move(request), std::move(responder));
        return;
      case Endpoint::not_found:
        answer(error_response(404, "not_found",
                              fmt::format("no route {} {}; see GET /info for the models and the routes",
                                          request.method, route.pattern == "other" ? "for this path" : route.pattern)));
        return;
      case Endpoint::method_not_allowed: {
        HttpResponse response = error_response(
            405, "method_not_allowed", fmt::format("{} takes {}, not {}", route.pattern, route.allow, request.method));
        response.headers.emplace_back("Allow", route.allow);
        answer(std::move(response));
        return;
      }
      case Endpoint::health:
      case Endpoint::ping:
        answer(ready_ ? json_response(200, R"({"status":"ok"})")
                      : error_response(503, "unhealthy", "the server is not ready (loading or shutting down)"));
        return;
      case Endpoint::kserve_live:
        answer(json_response(200, R"({"live":true})"));
        return;
      case Endpoint::kserve_ready:
        answer(json_response(ready_ ? 200 : 503, ready_ ? R"({"ready":true})" : R"({"ready":false})"));
        return;
      case Endpoint::kserve_server:
        answer(json_response(200, nlohmann::json({{"name", "recmodel"},
                                                  {"version", RECMODEL_VERSION},
                                                  {"extensions", nlohmann::json::array()}})
                                      .dump()));
        return;
      case Endpoint::kserve_model:
      case Endpoint::kserve_model_ready: {
        const size_t slot = slot_for(route);
        model::VersionPtr version = models_.current(slot);
        HttpResponse response =
            route.endpoint == Endpoint::kserve_model
                ? json_response(200, kserve_model_metadata(*version))
                : json_response(ready_ ? 200 : 503,
                                nlohmann::json({{"name", version->identity().name}, {"ready", ready_.load()}}).dump());
        response.headers.emplace_back("x-model-version", version->version_label());
        answer(std::move(response));
        return;
      }
      case Endpoint::info:
        answer(info());
        return;
      case Endpoint::metrics: {
        metrics_.set_in_flight(in_flight_);
        metrics_.set_queue_inputs(batcher_.queued_inputs());
        HttpResponse response = json_response(200, metrics_.text());
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        answer(std::move(response));
        return;
      }
    }
  } catch (const RequestError& e) {
    answer(error_response(e.status(), e.type(), e.what()));
  }
}

size_t InferenceService::slot_for(const Route& route) const {
  size_t slot = 0;
  if (!route.model.empty()) {
    slot = models_.find(route.model);
    if (slot == ModelSet::npos)
      throw RequestError(404, "not_found",
                         fmt::format("model {} is not served here (served: {})",
                                     quoted_for_message(route.model, 64), served_names(models_)));
  }
  if (!route.version.empty()) {
    const std::string serving = version_name(*models_.current(slot));
    if (route.version != serving)
      throw RequestError(404, "not_found",
                         fmt::format("version {} of {} is not served here (serving version {})",
                                     quoted_for_message(route.version, 64), models_.name(slot), serving));
  }
  return slot;
}

void InferenceService::infer(const Route& route, HttpRequest request, Responder responder) {
  // Admission first: an overloaded server refuses before spending anything on the body.
  if (in_flight_.fetch_add(1) >= options_.max_concurrent_requests) {
    in_flight_.fetch_sub(1);
    responder.send(error_response(
        429, "overloaded",
        fmt::format("the server is at its limit of {} concurrent requests (--max-concurrent-requests); retry",
                    options_.max_concurrent_requests)));
    return;
  }
  auto call = std::make_shared<Call>(route, std::move(request), std::move(responder));
  batcher_.expect(1);
  pool_.post([this, call] { run_inference(call); });
}

void InferenceService::run_inference(std::shared_ptr<Call> call) {
  bool submitted = false;
  try {
    const size_t slot = slot_for(call->route);
    // The version serving at arrival answers the whole request, even if a swap happens meanwhile;
    // its name is on every answer, errors included.
    call->version = models_.current(slot);
    switch (call->route.endpoint) {
      case Endpoint::hf_endpoint: call->parsed = parse_endpoint_request(call->request.body); break;
      case Endpoint::invocations: call->parsed = parse_invocations_request(call->request.body); break;
      case Endpoint::kserve_infer: call->parsed = parse_kserve_request(call->request.body); break;
      default: call->parsed = parse_tei_request(call->request.body); break;
    }
    const model::LoadedVersion& version = *call->version;
    std::vector<model::EncodedInput> encoded;
    encoded.reserve(call->parsed.inputs.size());
    for (size_t i = 0; i < call->parsed.inputs.size(); ++i) {
      const model::TextInput& input = call->parsed.inputs[i];
      encoded.push_back(version.encoder().encode(input.text, input.pair));
      const model::EncodedInput& e = encoded.back();
      if (!e.ok()) throw RequestError(422, "tokenizer", fmt::format("input {}: {}", i, e.error));
      if (!call->parsed.truncate && e.truncated() > 0)
        throw RequestError(413, "validation",
                           fmt::format("input {} has {} tokens; the model takes {} (send \"truncate\": true to "
                                       "truncate it)",
                                       i, e.tokens() + e.truncated(), version.max_length()));
      call->tokens += e.tokens();
      // The [UNK] count is a drift signal (the metrics, and the prediction log when there is one).
      const int32_t unk = version.encoder().tokenizer().unk_id();
      call->unknown.push_back(static_cast<uint32_t>(std::count(e.encoding.ids.begin(), e.encoding.ids.end(), unk)));
      call->characters += input.text.size() + (input.pair ? input.pair->size() : 0);
    }
    call->tokenized = Clock::now();
    batcher_.submit(call->version, std::move(encoded),
                    [this, call](std::vector<model::Prediction> predictions, model::RequestTiming timing,
                                 std::string error) {
                      // Formatting and logging happen on the pool, so the inference thread goes on.
                      pool_.post([this, call, predictions = std::move(predictions), timing,
                                  error = std::move(error)]() mutable {
                        finish(call, std::move(predictions), timing, std::move(error));
                      });
                    });
    submitted = true;
    batcher_.expect(-1);
  } catch (const RequestError& e) {
    if (!submitted) batcher_.expect(-1);
    reply_error(*call, e.status(), e.type(), e.what());
  } catch (const std::exception& e) {
    if (!submitted) batcher_.expect(-1);
    reply_error(*call, 500, "internal", e.what());
  }
}

void InferenceService::finish(std::shared_ptr<Call> call, std::vector<model::Prediction> predictions,
                              model::RequestTiming timing, std::string error) {
  call->timing = timing;
  if (!error.empty()) {
    reply_error(*call, 424, "backend", error);
    return;
  }
  const model::LoadedVersion& version = *call->version;
  std::string body;
  try {
    switch (call->route.endpoint) {
      case Endpoint::hf_endpoint: body = endpoint_response(version, call->parsed, predictions); break;
      case Endpoint::invocations: body = invocations_response(version, call->parsed, predictions); break;
      case Endpoint::kserve_infer: body = kserve_infer_response(version, call->parsed, predictions); break;
      default: body = tei_response(version, call->parsed, predictions); break;
    }
  } catch (const RequestError& e) {
    reply_error(*call, e.status(), e.type(), e.what());
    return;
  }
  const std::string& name = version.identity().name;
  const int64_t now_ms = registry::now_ms();
  std::vector<size_t> order;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const model::Prediction& p = predictions[i];
    PredictionRecord record;
    record.regression = version.regression();
    if (record.regression) {
      record.label = "value";
      record.score = p.value();
    } else {
      model::rank_labels(p.scores, order);
      record.label = version.labels()[order[0]];
      record.score = p.scores[order[0]];
    }
    serving::PredictionSignals signals;
    signals.label = record.label;
    if (!record.regression) signals.score = record.score;
    signals.input_tokens = p.tokens + p.truncated;
    signals.truncated = p.truncated > 0;
    signals.seen_tokens = p.tokens;
    signals.unknown_tokens = call->unknown[i];
    metrics_.prediction(name, signals);
    if (predictions_) {
      record.time_ms = now_ms;
      record.model = name;
      record.version = version.identity().version;
      record.tokens = p.tokens + p.truncated;
      record.truncated = p.truncated;
      // The unknown-token rate is what drift monitoring compares with the training data.
      record.unk_tokens = call->unknown[i];
      predictions_->record(std::move(record));
    }
  }
  metrics_.queue_time(name, static_cast<double>(timing.queue.count()) / 1e6);
  send(*call, 200, std::move(body));
}

void InferenceService::reply_error(Call& call, int status, const std::string& type, const std::string& message) {
  send(call, status, error_body(type, message));
}

void InferenceService::send(Call& call, int status, std::string body) {
  if (call.answered) return;
  call.answered = true;
  HttpResponse response = json_response(status, std::move(body));
  if (call.version) {
    response.headers.emplace_back("x-model-version", call.version->version_label());
    response.headers.emplace_back("x-compute-type", options_.device);
    response.headers.emplace_back("x-compute-tokens", std::to_string(call.tokens));
    response.headers.emplace_back("x-compute-characters", std::to_string(call.characters));
  }
  stamp(response, call.request.received);
  if (call.tokenized != Clock::time_point{}) {
    response.headers.emplace_back("x-tokenization-time", std::to_string(whole_ms(call.tokenized - call.request.received)));
    response.headers.emplace_back("x-queue-time", std::to_string(whole_ms(call.timing.queue)));
    response.headers.emplace_back("x-inference-time", std::to_string(whole_ms(call.timing.inference)));
  }
  in_flight_.fetch_sub(1);
  call.responder.send(std::move(response));
}

void InferenceService::name_version(HttpResponse& response) const {
  const bool named = std::any_of(response.headers.begin(), response.headers.end(),
                                 [](const auto& header) { return header.first == "x-model-version"; });
  if (!named) response.headers.emplace_back("x-model-version", models_.current(0)->version_label());
}

void InferenceService::stamp(HttpResponse& response, Clock::time_point received) const {
  name_version(response);
  response.headers.emplace_back("x-total-time", std::to_string(whole_ms(Clock::now() - received)));
}

HttpResponse InferenceService::info() const {
  const model::VersionPtr first = models_.current(0);
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (size_t i = 0; i < first->labels().size(); ++i) {
    id2label[std::to_string(i)] = first->labels()[i];
    label2id[first->labels()[i]] = i;
  }
  const auto& batching = batcher_.options();
  nlohmann::json document = {
      {"recmodel_version", RECMODEL_VERSION},
      {"device", options_.device},
      {"threads", options_.threads},
      {"ready", ready_.load()},
      {"models", models_.describe()},
      {"batching",
       {{"max_batch_tokens", batching.max_batch_tokens},
        {"max_batch_requests", batching.max_batch_requests},
        {"max_queue_delay_ms", static_cast<double>(batching.max_queue_delay.count()) / 1000.0},
        {"max_concurrent_requests", options_.max_concurrent_requests},
        {"payload_limit", options_.payload_limit}}},
      // Text Embeddings Inference's keys, for the first model, so TEI tooling reads this too.
      {"model_id", first->identity().uri},
      {"model_sha", first->identity().manifest_sha256.empty() ? nlohmann::json(nullptr)
                                                               : nlohmann::json(first->identity().manifest_sha256)},
      {"model_dtype", "float32"},
      {"model_type", {{"classifier", {{"id2label", id2label}, {"label2id", label2id}}}}},
      {"max_concurrent_requests", options_.max_concurrent_requests},
      {"max_input_length", first->max_length()},
      {"max_batch_tokens", batching.max_batch_tokens},
      {"max_batch_requests", batching.max_batch_requests},
      {"max_client_batch_size", nullptr},
      {"auto_truncate", true},
      {"tokenization_workers", pool_.threads()},
      {"version", RECMODEL_VERSION},
  };
  return json_response(200, json_dump(document));
}

}  // namespace recmodel::serving
