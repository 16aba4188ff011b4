// serve's Prometheus metrics on prometheus-cpp (the metric types and the text exposition format
// that `promtool check metrics` accepts). Children are created once and cached, so recording a
// request costs a few atomic adds. Names and labels: man/recmodel-serve.1.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace recmodel::serving {

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
  // One scored input: its predicted label ("value" for regression), its length before
  // truncation, and whether it was truncated.
  void prediction(const std::string& model, const std::string& label, size_t input_tokens, bool truncated);
  void prediction_log_dropped();

  // Returns every metric in the Prometheus text format (version 0.0.4).
  std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recmodel::serving
