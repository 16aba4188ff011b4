#include "serving/routes.h"

#include <vector>

namespace recmodel::serving {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path.front() != '/') return parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

Route make(Endpoint endpoint, std::string pattern, std::string_view method, std::string_view wanted) {
  Route route;
  route.pattern = std::move(pattern);
  const bool get_like = method == "GET" || method == "HEAD";
  if (wanted == "GET" ? get_like : method == wanted) {
    route.endpoint = endpoint;
  } else {
    route.endpoint = Endpoint::method_not_allowed;
    route.allow = wanted == "GET" ? "GET, HEAD" : std::string(wanted);
  }
  return route;
}

}  // namespace

Route match_route(std::string_view method, std::string_view path) {
  const auto parts = split_path(path);
  Route none;
  none.pattern = "other";
  if (parts.empty()) return none;
  for (const auto& part : parts) {
    // An empty segment (//, a trailing /) names nothing, except the root itself.
    if (part.empty() && !(parts.size() == 1 && path == "/")) return none;
  }
  const size_t n = parts.size();
  if (n == 1) {
    const auto p = parts[0];
    if (p.empty()) return make(Endpoint::hf_endpoint, "/", method, "POST");
    if (p == "predict") return make(Endpoint::tei_predict, "/predict", method, "POST");
    if (p == "invocations") return make(Endpoint::invocations, "/invocations", method, "POST");
    if (p == "health") return make(Endpoint::health, "/health", method, "GET");
    if (p == "ping") return make(Endpoint::ping, "/ping", method, "GET");
    if (p == "info") return make(Endpoint::info, "/info", method, "GET");
    if (p == "metrics") return make(Endpoint::metrics, "/metrics", method, "GET");
    if (p == "v2") return make(Endpoint::kserve_server, "/v2", method, "GET");
    return none;
  }
  if (parts[0] == "models" && n == 3 && parts[2] == "predict") {
    Route route = make(Endpoint::tei_predict, "/models/{name}/predict", method, "POST");
    route.model = std::string(parts[1]);
    return route;
  }
  if (parts[0] != "v2") return none;
  if (n == 3 && parts[1] == "health") {
    if (parts[2] == "live") return make(Endpoint::kserve_live, "/v2/health/live", method, "GET");
    if (parts[2] == "ready") return make(Endpoint::kserve_ready, "/v2/health/ready", method, "GET");
    return none;
  }
  if (parts[1] != "models" || n < 3) return none;
  // /v2/models/{name}[/versions/{version}][/ready | /infer]
  std::string model(parts[2]);
  std::string version;
  size_t rest = 3;
  std::string base = "/v2/models/{name}";
  if (n >= 5 && parts[3] == "versions") {
    version = std::string(parts[4]);
    rest = 5;
    base += "/versions/{version}";
  }
  Route route;
  if (rest == n) {
    route = make(Endpoint::kserve_model, base, method, "GET");
  } else if (rest + 1 == n && parts[rest] == "ready") {
    route = make(Endpoint::kserve_model_ready, base + "/ready", method, "GET");
  } else if (rest + 1 == n && parts[rest] == "infer") {
    route = make(Endpoint::kserve_infer, base + "/infer", method, "POST");
  } else {
    return none;
  }
  route.model = std::move(model);
  route.version = std::move(version);
  return route;
}

}  // namespace recmodel::serving
