// serve's routes: which endpoint a method and path ask for, with the model (and version) named in
// the path. Metrics and the access log use the route's template (/v2/models/{name}/infer), never
// the raw path, so a client cannot grow the metric's label set.
#pragma once

#include <string>
#include <string_view>

namespace recmodel::serving {

enum class Endpoint {
  tei_predict,        // POST /predict, POST /models/{name}/predict
  hf_endpoint,        // POST /
  invocations,        // POST /invocations
  kserve_infer,       // POST /v2/models/{name}[/versions/{version}]/infer
  kserve_server,      // GET /v2
  kserve_live,        // GET /v2/health/live
  kserve_ready,       // GET /v2/health/ready
  kserve_model,       // GET /v2/models/{name}[/versions/{version}]
  kserve_model_ready, // GET /v2/models/{name}[/versions/{version}]/ready
  health,             // GET /health
  ping,               // GET /ping (SageMaker's health check)
  info,               // GET /info
  metrics,            // GET /metrics
  not_found,          // no such path
  method_not_allowed, // the path exists with other methods (`allow` lists them)
};

struct Route {
  Endpoint endpoint = Endpoint::not_found;
  std::string model;       // from the path; empty: the default (first) model
  std::string version;     // from /versions/{version}; empty: the one serving now
  std::string pattern;     // the template for metrics: /predict, /v2/models/{name}/infer, other
  std::string allow;       // method_not_allowed: "POST" or "GET, HEAD"
};

// Returns the route of `method` (GET, HEAD, POST, ...) on `path` (no query). A trailing slash
// is not stripped: /predict/ is not /predict.
Route match_route(std::string_view method, std::string_view path);

}  // namespace recmodel::serving
