// serve's route table: each API's paths, the model and version they name, 404 for unknown paths
// and 405 with Allow for a known path with the wrong method, and metric templates that never
// carry a client's raw path.
#include "serving/routes.h"

#include <doctest/doctest.h>

using namespace recmodel::serving;

TEST_CASE("routes: every API's paths reach their endpoint") {
  CHECK(match_route("POST", "/predict").endpoint == Endpoint::tei_predict);
  CHECK(match_route("POST", "/").endpoint == Endpoint::hf_endpoint);
  CHECK(match_route("POST", "/invocations").endpoint == Endpoint::invocations);
  CHECK(match_route("GET", "/health").endpoint == Endpoint::health);
  CHECK(match_route("HEAD", "/health").endpoint == Endpoint::health);
  CHECK(match_route("GET", "/ping").endpoint == Endpoint::ping);
  CHECK(match_route("GET", "/info").endpoint == Endpoint::info);
  CHECK(match_route("GET", "/metrics").endpoint == Endpoint::metrics);
  CHECK(match_route("GET", "/v2").endpoint == Endpoint::kserve_server);
  CHECK(match_route("GET", "/v2/health/live").endpoint == Endpoint::kserve_live);
  CHECK(match_route("GET", "/v2/health/ready").endpoint == Endpoint::kserve_ready);

  Route named = match_route("POST", "/models/stars/predict");
  CHECK(named.endpoint == Endpoint::tei_predict);
  CHECK(named.model == "stars");
  CHECK(named.pattern == "/models/{name}/predict");

  Route infer = match_route("POST", "/v2/models/intent/infer");
  CHECK(infer.endpoint == Endpoint::kserve_infer);
  CHECK(infer.model == "intent");
  CHECK(infer.version.empty());
  CHECK(infer.pattern == "/v2/models/{name}/infer");

  Route versioned = match_route("POST", "/v2/models/intent/versions/7/infer");
  CHECK(versioned.endpoint == Endpoint::kserve_infer);
  CHECK(versioned.version == "7");
  CHECK(versioned.pattern == "/v2/models/{name}/versions/{version}/infer");

  CHECK(match_route("GET", "/v2/models/intent").endpoint == Endpoint::kserve_model);
  CHECK(match_route("GET", "/v2/models/intent/versions/3").endpoint == Endpoint::kserve_model);
  CHECK(match_route("GET", "/v2/models/intent/ready").endpoint == Endpoint::kserve_model_ready);
  CHECK(match_route("GET", "/v2/models/intent/versions/3/ready").version == "3");
}

TEST_CASE("routes: a known path with the wrong method is 405 with Allow, an unknown one 404 as \"other\"") {
  Route get_predict = match_route("GET", "/predict");
  CHECK(get_predict.endpoint == Endpoint::method_not_allowed);
  CHECK(get_predict.allow == "POST");
  CHECK(get_predict.pattern == "/predict");
  Route post_health = match_route("POST", "/health");
  CHECK(post_health.endpoint == Endpoint::method_not_allowed);
  CHECK(post_health.allow == "GET, HEAD");
  CHECK(match_route("DELETE", "/v2/models/x/infer").endpoint == Endpoint::method_not_allowed);

  for (const char* path : {"/predict/", "//predict", "/nope", "/v2/models", "/v2/models/", "/v2/models/x/explain",
                           "/v2/models/x/versions", "/v2/health", "/models/x", "/models/x/predict/more", "",
                           "predict", "/v2/models/x/versions/1/infer/more"}) {
    CAPTURE(path);
    Route route = match_route("POST", path);
    CHECK(route.endpoint == Endpoint::not_found);
    CHECK(route.pattern == "other");
  }
}
