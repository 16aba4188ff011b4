#include "serving/metrics.h"

#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace recmodel::serving {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Request, queue and forward times: 0.5 ms (a batch-1 forward of a small model) to 10 s.
const Histogram::BucketBoundaries kSecondsBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// Returns first, 2*first, 4*first, ... below `last`, then `last` (so the limit is a bucket of its
// own and the boundaries stay strictly increasing).
Histogram::BucketBoundaries powers_of_two(size_t first, size_t last) {
  Histogram::BucketBoundaries buckets;
  for (size_t b = first; b < last; b *= 2) buckets.push_back(static_cast<double>(b));
  buckets.push_back(static_cast<double>(last < first ? first : last));
  return buckets;
}

// Methods a client cannot invent: any other verb is counted as "other", so a scanner sending
// random methods cannot grow the series without bound.
const std::string& method_label(const std::string& method) {
  static const std::string known[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"};
  static const std::string other = "other";
  for (const auto& k : known)
    if (method == k) return k;
  return other;
}

// The series of one served model, created together the first time the model is named.
struct ModelChildren {
  Histogram* queue_duration = nullptr;
  Histogram* inference_duration = nullptr;
  Histogram* batch_inputs = nullptr;
  Histogram* batch_tokens = nullptr;
  Counter* loads = nullptr;
  Counter* load_failures = nullptr;
  Counter* poll_errors = nullptr;
  Gauge* load_failed = nullptr;
  Histogram* input_tokens = nullptr;
  Counter* truncated = nullptr;
  Histogram* score = nullptr;
  Counter* unknown_tokens = nullptr;
  Counter* seen_tokens = nullptr;
  Gauge* info = nullptr;  // recmodel_model_info's one series; guarded by Impl::info_mutex
  std::unordered_map<std::string, Counter*> predictions;  // by label; guarded by Impl::prediction_mutex
};

struct RouteChildren {
  Histogram* duration;
  std::unordered_map<std::string, Counter*> requests;  // by method + ' ' + status
};

}  // namespace

struct ServeMetrics::Impl {
  Impl(size_t max_batch_requests, size_t max_batch_tokens)
      : batch_input_buckets(powers_of_two(1, max_batch_requests)),
        batch_token_buckets(powers_of_two(64, max_batch_tokens)),
        input_token_buckets(powers_of_two(8, 1024)),
        score_buckets({0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}),
        http_requests(prometheus::BuildCounter()
                          .Name("recmodel_http_requests_total")
                          .Help("HTTP requests answered, by route template, method and status code.")
                          .Register(registry)),
        http_duration(prometheus::BuildHistogram()
                          .Name("recmodel_http_request_duration_seconds")
                          .Help("Time from a request's arrival to its answer, by route template.")
                          .Register(registry)),
        queue_duration(prometheus::BuildHistogram()
                           .Name("recmodel_queue_duration_seconds")
                           .Help("Time an input waited for its batch's forward pass to start.")
                           .Register(registry)),
        inference_duration(prometheus::BuildHistogram()
                               .Name("recmodel_inference_duration_seconds")
                               .Help("Time of one forward pass over a batch.")
                               .Register(registry)),
        batch_inputs(prometheus::BuildHistogram()
                         .Name("recmodel_batch_inputs")
                         .Help("Inputs in one forward pass.")
                         .Register(registry)),
        batch_tokens(prometheus::BuildHistogram()
                         .Name("recmodel_batch_tokens")
                         .Help("Tokens computed in one forward pass: the real tokens of an fp32 model, "
                               "inputs times the longest for an int8 one.")
                         .Register(registry)),
        queue_inputs(prometheus::BuildGauge()
                         .Name("recmodel_queue_inputs")
                         .Help("Inputs waiting for a forward pass.")
                         .Register(registry)),
        in_flight(prometheus::BuildGauge()
                      .Name("recmodel_requests_in_flight")
                      .Help("Inference requests being tokenized, queued or scored.")
                      .Register(registry)),
        model_info(prometheus::BuildGauge()
                       .Name("recmodel_model_info")
                       .Help("The version each model name serves now (always 1).")
                       .Register(registry)),
        model_loads(prometheus::BuildCounter()
                        .Name("recmodel_model_loads_total")
                        .Help("Versions loaded, verified, warmed and swapped in.")
                        .Register(registry)),
        model_load_failures(prometheus::BuildCounter()
                                .Name("recmodel_model_load_failures_total")
                                .Help("Versions that failed to load or verify (the previous one kept serving).")
                                .Register(registry)),
        registry_poll_errors(prometheus::BuildCounter()
                                 .Name("recmodel_registry_poll_errors_total")
                                 .Help("Registry polls for a model's alias that failed.")
                                 .Register(registry)),
        model_load_failed(prometheus::BuildGauge()
                              .Name("recmodel_model_load_failed")
                              .Help("1 when the last version that was to be served failed to load, else 0.")
                              .Register(registry)),
        predictions(prometheus::BuildCounter()
                        .Name("recmodel_predictions_total")
                        .Help("Inputs scored, by model and predicted label (\"value\" for regression).")
                        .Register(registry)),
        input_tokens(prometheus::BuildHistogram()
                         .Name("recmodel_input_tokens")
                         .Help("Tokens of an input before truncation, [CLS] and [SEP] included.")
                         .Register(registry)),
        truncated_inputs(prometheus::BuildCounter()
                             .Name("recmodel_truncated_inputs_total")
                             .Help("Inputs longer than the model takes, truncated.")
                             .Register(registry)),
        prediction_score(prometheus::BuildHistogram()
                             .Name("recmodel_prediction_score")
                             .Help("Probability of the predicted label (classification), the confidence drift signal.")
                             .Register(registry)),
        unknown_tokens(prometheus::BuildCounter()
                           .Name("recmodel_unknown_tokens_total")
                           .Help("[UNK] tokens among the tokens the model saw.")
                           .Register(registry)),
        seen_tokens(prometheus::BuildCounter()
                        .Name("recmodel_seen_tokens_total")
                        .Help("Tokens the model saw (after truncation, [CLS] and [SEP] included).")
                        .Register(registry)),
        prediction_log_dropped(prometheus::BuildCounter()
                                   .Name("recmodel_prediction_log_dropped_total")
                                   .Help("Prediction log records dropped because the writer fell behind.")
                                   .Register(registry)
                                   .Add({})),
        queue_inputs_gauge(queue_inputs.Add({})),
        in_flight_gauge(in_flight.Add({})) {
    prometheus::BuildGauge()
        .Name("recmodel_build_info")
        .Help("The recmodel version serving (always 1).")
        .Register(registry)
        .Add({{"version", RECMODEL_VERSION}})
        .Set(1);
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    prometheus::BuildGauge()
        .Name("recmodel_start_time_seconds")
        .Help("When the server started, in seconds since the Unix epoch.")
        .Register(registry)
        .Add({})
        .Set(std::chrono::duration<double>(now).count());
  }

  // Returns the series of `name`, creating them on first use.
  ModelChildren& model(const std::string& name) {
    {
      std::shared_lock lock(models_mutex);
      auto found = models.find(name);
      if (found != models.end() && found->second) return *found->second;
    }
    std::unique_lock lock(models_mutex);
    auto& slot = models[name];
    if (!slot) {
      const prometheus::Labels labels = {{"model", name}};
      auto children = std::make_unique<ModelChildren>();
      children->queue_duration = &queue_duration.Add(labels, kSecondsBuckets);
      children->inference_duration = &inference_duration.Add(labels, kSecondsBuckets);
      children->batch_inputs = &batch_inputs.Add(labels, batch_input_buckets);
      children->batch_tokens = &batch_tokens.Add(labels, batch_token_buckets);
      children->loads = &model_loads.Add(labels);
      children->load_failures = &model_load_failures.Add(labels);
      children->poll_errors = &registry_poll_errors.Add(labels);
      children->load_failed = &model_load_failed.Add(labels);
      children->input_tokens = &input_tokens.Add(labels, input_token_buckets);
      children->truncated = &truncated_inputs.Add(labels);
      children->score = &prediction_score.Add(labels, score_buckets);
      children->unknown_tokens = &unknown_tokens.Add(labels);
      children->seen_tokens = &seen_tokens.Add(labels);
      slot = std::move(children);
    }
    return *slot;  // the map holds pointers: a later insert never moves it
  }

  RouteChildren& route(const std::string& name) {
    {
      std::shared_lock lock(routes_mutex);
      auto found = routes.find(name);
      if (found != routes.end() && found->second) return *found->second;
    }
    std::unique_lock lock(routes_mutex);
    auto& slot = routes[name];
    if (!slot) slot = std::make_unique<RouteChildren>(RouteChildren{&http_duration.Add({{"route", name}}, kSecondsBuckets), {}});
    return *slot;
  }

  Counter& request_counter(RouteChildren& r, const std::string& route, const std::string& method, int status) {
    std::string key = method;
    key += ' ';
    key += std::to_string(status);
    {
      std::shared_lock lock(routes_mutex);
      auto found = r.requests.find(key);
      if (found != r.requests.end() && found->second) return *found->second;
    }
    std::unique_lock lock(routes_mutex);
    auto& slot = r.requests[key];
    if (!slot) slot = &http_requests.Add({{"route", route}, {"method", method}, {"status", std::to_string(status)}});
    return *slot;
  }

  Counter& prediction_counter(const std::string& name, const std::string& label) {
    ModelChildren& m = model(name);
    {
      std::shared_lock lock(prediction_mutex);
      auto found = m.predictions.find(label);
      if (found != m.predictions.end() && found->second) return *found->second;
    }
    std::unique_lock lock(prediction_mutex);
    auto& slot = m.predictions[label];
    if (!slot) slot = &predictions.Add({{"model", name}, {"label", label}});
    return *slot;
  }

  // Declared before the families: they live inside it.
  prometheus::Registry registry;
  const Histogram::BucketBoundaries batch_input_buckets;
  const Histogram::BucketBoundaries batch_token_buckets;
  const Histogram::BucketBoundaries input_token_buckets;
  const Histogram::BucketBoundaries score_buckets;

  Family<Counter>& http_requests;
  Family<Histogram>& http_duration;
  Family<Histogram>& queue_duration;
  Family<Histogram>& inference_duration;
  Family<Histogram>& batch_inputs;
  Family<Histogram>& batch_tokens;
  Family<Gauge>& queue_inputs;
  Family<Gauge>& in_flight;
  Family<Gauge>& model_info;
  Family<Counter>& model_loads;
  Family<Counter>& model_load_failures;
  Family<Counter>& registry_poll_errors;
  Family<Gauge>& model_load_failed;
  Family<Counter>& predictions;
  Family<Histogram>& input_tokens;
  Family<Counter>& truncated_inputs;
  Family<Histogram>& prediction_score;
  Family<Counter>& unknown_tokens;
  Family<Counter>& seen_tokens;
  Counter& prediction_log_dropped;
  Gauge& queue_inputs_gauge;
  Gauge& in_flight_gauge;

  // Children are never removed (except model_info's, under info_mutex), so a pointer found under
  // a shared lock stays valid after the lock is released.
  std::shared_mutex routes_mutex;  // routes and every RouteChildren::requests
  std::unordered_map<std::string, std::unique_ptr<RouteChildren>> routes;
  std::shared_mutex models_mutex;
  std::unordered_map<std::string, std::unique_ptr<ModelChildren>> models;
  std::shared_mutex prediction_mutex;  // every ModelChildren::predictions
  std::mutex info_mutex;               // every ModelChildren::info
};

ServeMetrics::ServeMetrics(size_t max_batch_requests, size_t max_batch_tokens)
    : impl_(std::make_unique<Impl>(max_batch_requests, max_batch_tokens)) {}

ServeMetrics::~ServeMetrics() = default;

void ServeMetrics::request(const std::string& route, const std::string& method, int status, double seconds) {
  RouteChildren& r = impl_->route(route);
  impl_->request_counter(r, route, method_label(method), status).Increment();
  r.duration->Observe(seconds);
}

void ServeMetrics::queue_time(const std::string& model, double seconds) {
  impl_->model(model).queue_duration->Observe(seconds);
}

void ServeMetrics::batch(const std::string& model, size_t inputs, size_t padded_tokens, double seconds) {
  ModelChildren& m = impl_->model(model);
  m.batch_inputs->Observe(static_cast<double>(inputs));
  m.batch_tokens->Observe(static_cast<double>(padded_tokens));
  m.inference_duration->Observe(seconds);
}

void ServeMetrics::set_queue_inputs(size_t inputs) { impl_->queue_inputs_gauge.Set(static_cast<double>(inputs)); }

void ServeMetrics::set_in_flight(size_t requests) { impl_->in_flight_gauge.Set(static_cast<double>(requests)); }

void ServeMetrics::model_loaded(const std::string& model, const std::string& version, const std::string& ref) {
  ModelChildren& m = impl_->model(model);
  {
    // One series per model: a scrape between Remove and Add sees none, never two (and a reload of
    // the same version must not find, then remove, the series it just added).
    std::lock_guard lock(impl_->info_mutex);
    if (m.info) impl_->model_info.Remove(m.info);
    m.info = &impl_->model_info.Add({{"model", model}, {"version", version}, {"ref", ref}}, 1.0);
  }
  m.loads->Increment();
  m.load_failed->Set(0);
}

void ServeMetrics::model_load_failed(const std::string& model) {
  ModelChildren& m = impl_->model(model);
  m.load_failures->Increment();
  m.load_failed->Set(1);
}

void ServeMetrics::registry_poll_error(const std::string& model) { impl_->model(model).poll_errors->Increment(); }

void ServeMetrics::prediction(const std::string& model, const PredictionSignals& signals) {
  impl_->prediction_counter(model, signals.label).Increment();
  ModelChildren& m = impl_->model(model);
  m.input_tokens->Observe(static_cast<double>(signals.input_tokens));
  if (signals.truncated) m.truncated->Increment();
  if (signals.score) m.score->Observe(*signals.score);
  m.seen_tokens->Increment(static_cast<double>(signals.seen_tokens));
  m.unknown_tokens->Increment(static_cast<double>(signals.unknown_tokens));
}

void ServeMetrics::prediction_log_dropped() { impl_->prediction_log_dropped.Increment(); }

std::string ServeMetrics::text() const { return prometheus::TextSerializer().Serialize(impl_->registry.Collect()); }

}  // namespace recmodel::serving
