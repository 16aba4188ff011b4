// `recmodel serve` assembled: loads every model, starts the batcher, the HTTP server and the
// alias watcher, prints the `listening on` line, then waits for signals — SIGHUP checks the
// followed references at once, SIGTERM/SIGINT drain (readiness 503, no new connections, requests
// in flight finish up to the drain timeout) and return; a second one exits at once.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "model/dynamic_batcher.h"
#include "serving/http_server.h"
#include "serving/inference_service.h"
#include "serving/version_loader.h"

namespace recmodel::serving {

// One --model value: REF or NAME=REF.
struct ModelSpec {
  std::string name;
  std::string ref;
  bool registry = false;  // a models:/ reference
  bool follows = false;   // an alias or latest: watched for moves
};

// Parses --model values. The name defaults to the registry model's name, else the folder's
// name. Throws UsageError for a bad reference, an invalid or repeated name.
std::vector<ModelSpec> parse_model_specs(const std::vector<std::string>& values);

struct ServerConfig {
  HttpServerOptions http;
  model::BatcherOptions batching;
  LoaderOptions loader;
  ServiceOptions service;
  std::chrono::milliseconds poll{5000};            // 0: only on SIGHUP
  std::chrono::milliseconds drain_timeout{30000};
  std::string log_predictions;                     // empty: none
  double log_sample = 1.0;
};

struct ServerHooks {
  FetchVersion fetch;                              // empty: no --from
  model::Warn warn;                                // warnings while loading
  std::function<void(const std::string&)> info;    // progress lines on stderr
};

// Serves until SIGTERM or SIGINT and returns once drained. Throws what loading a model throws
// (before anything listens) and RemoteError when the address cannot be bound.
void run_server(const std::vector<ModelSpec>& specs, const ServerConfig& config, const ServerHooks& hooks);

}  // namespace recmodel::serving
