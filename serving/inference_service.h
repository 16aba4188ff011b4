// What serve does with each HTTP request: routes it, answers health, info, metrics and KServe
// metadata at once, and for the inference routes admits it (429 beyond the concurrency limit),
// parses and tokenizes it on the worker pool with the version serving at arrival, queues it on
// the dynamic batcher and answers in the route's API shape with the model version and TEI's
// timing headers. A bad request is answered alone; nothing it sends reaches another request.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "model/dynamic_batcher.h"
#include "serving/http_server.h"
#include "serving/metrics.h"
#include "serving/model_set.h"
#include "serving/prediction_log.h"
#include "serving/request_parsing.h"
#include "serving/routes.h"
#include "serving/worker_pool.h"

namespace recmodel::serving {

struct ServiceOptions {
  size_t max_concurrent_requests = 512;
  size_t payload_limit = 2000000;
  size_t worker_threads = 1;   // tokenizing and formatting
  std::string device = "cpu";  // x-compute-type and /info
  int threads = 1;             // torch threads, for /info
};

class InferenceService {
 public:
  // `predictions` may be null (no --log-predictions).
  InferenceService(ModelSet& models, model::DynamicBatcher& batcher, ServeMetrics& metrics,
                   PredictionLog* predictions, ServiceOptions options);
  // Finishes the jobs queued on the worker pool.
  ~InferenceService();

  // The HttpServer handler.
  void handle(HttpRequest request, Responder responder);
  // Readiness: /health, /ping and /v2/health/ready answer 503 while false (before the models
  // are warm, and while draining).
  void set_ready(bool ready) { ready_ = ready; }
  bool ready() const { return ready_; }
  // Returns the inference requests admitted and not answered yet.
  size_t in_flight() const { return in_flight_; }
  // Adds x-model-version, the default model's, to a response that names none (routes that score
  // nothing, the HTTP server's own 413/431/400).
  void name_version(HttpResponse& response) const;

 private:
  struct Call;
  void infer(const Route& route, HttpRequest request, Responder responder);
  void run_inference(std::shared_ptr<Call> call);
  void finish(std::shared_ptr<Call> call, std::vector<model::Prediction> predictions, model::RequestTiming timing,
              std::string error);
  void reply_error(Call& call, int status, const std::string& type, const std::string& message);
  void send(Call& call, int status, std::string body);
  // Every answer's common headers: the version it names and x-total-time since `received`.
  void stamp(HttpResponse& response, std::chrono::steady_clock::time_point received) const;
  HttpResponse info() const;
  size_t slot_for(const Route& route) const;  // RequestError 404 for an unknown model or version

  ModelSet& models_;
  model::DynamicBatcher& batcher_;
  ServeMetrics& metrics_;
  PredictionLog* predictions_;
  ServiceOptions options_;
  std::atomic<bool> ready_{false};
  std::atomic<size_t> in_flight_{0};
  WorkerPool pool_;
};

}  // namespace recmodel::serving
