// serve's Prometheus metrics on prometheus-cpp (the metric types and the text exposition format
// that `promtool check metrics` accepts). Children are created once and cached, so recording a
// request costs a few atomic adds. Names and labels: man/recmodel-serve.1.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace recmodel::serving {

// What one scored input tells the metrics.
struct PredictionSignals {
  std::string label;            // the predicted label ("value" for regression)
  std::optional<double> score;  // its probability (classification)
  size_t input_tokens = 0;      // length before truncation
  bool truncated = false;
  size_t seen_tokens = 0;       // tokens the model saw
  size_t unknown_tokens = 0;    // [UNK] among them
};

class ServeMetrics {
 public:
  // Histogram buckets follow the batching limits.
  ServeMetrics(size_t max_batch_requests, size_t max_batch_tokens);
  ~ServeMetrics();
  ServeMetrics(const ServeMetrics&) = delete;
  ServeMetrics& operator=(const ServeMetrics&) = delete;

  // One answered request: route is the route's template (/predict, /v2/models/{name}/infer,
  // "other" for unknown paths), never the raw path. A method other than GET, POST, HEAD, PUT,
  // DELETE, OPTIONS and PATCH is counted as "other" (clients choose it: no unbounded series).
  void request(const std::string& route, const std::string& method, int status, double seconds);
  void queue_time(const std::string& model, double seconds);
  // One forward pass.
  void batch(const std::string& model, size_t inputs, size_t padded_tokens, double seconds);
  void set_queue_inputs(size_t inputs);
  void set_in_flight(size_t requests);
  // A version is now served: recmodel_model_info{model,version,ref} moves to it (the old series
  // is removed), loads counted, the load-failed gauge cleared.
  void model_loaded(const std::string& model, const std::string& version, const std::string& ref);
  void model_load_failed(const std::string& model);
  void registry_poll_error(const std::string& model);
  // One scored input, with the signals drift monitoring follows (share/prometheus/).
  void prediction(const std::string& model, const PredictionSignals& signals);
  void prediction_log_dropped();

  // Returns every metric in the Prometheus text format (version 0.0.4).
  std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recmodel::serving
