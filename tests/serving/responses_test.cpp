// The JSON answers of each API: every body parses as JSON, holds the predictions' values exactly
// (predict's float format reads back as the same float), ranks labels best first, and escapes
// labels, ids and messages it did not choose.
#include "serving/responses.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "tests/converters/model_fixture.h"

namespace t = recmodel::testing;
using namespace recmodel;
using json = nlohmann::json;
using serving::ParsedRequest;
using serving::RequestError;
using serving::ScoreFunction;

namespace {

// Labels a JSON writer has to escape: a quote, a backslash and a tab, and non-ASCII text.
const std::vector<std::string> kLabels = {"books", "say \"hi\"", "caf\xc3\xa9 \xe2\x98\x95", "back\\slash\ttab"};

model::VersionPtr classifier(int64_t version = 7, const std::string& name = "intent") {
  auto m = t::fixture_model("tiny", kLabels, /*seed=*/5);
  model::VersionIdentity identity;
  identity.name = name;
  identity.version = version;
  identity.ref = version ? "models:/" + name + "@production" : "./model";
  identity.uri = version ? "models:/" + name + "/" + std::to_string(version) : "./model";
  return std::make_shared<const model::LoadedVersion>(
      identity, std::make_unique<model::BatchPredictor>(m, t::fixture_tokenizer(), model::BatchPredictorOptions{}));
}

model::VersionPtr regressor() {
  model::BertConfig config = model::preset_config("tiny");
  config.vocab_size = static_cast<int64_t>(t::fixture_tokenizer().vocab().size());
  config.max_position_embeddings = 128;
  config.labels = {"LABEL_0"};
  config.problem_type = model::ProblemType::regression;
  torch::manual_seed(3);
  model::BertForSequenceClassification m(config);
  m->initialize_weights();
  model::VersionIdentity identity;
  identity.name = "price";
  identity.version = 3;
  return std::make_shared<const model::LoadedVersion>(
      identity, std::make_unique<model::BatchPredictor>(m, t::fixture_tokenizer(), model::BatchPredictorOptions{}));
}

model::Prediction classified(std::vector<float> logits) {
  model::Prediction p;
  p.logits = logits;
  float max = *std::max_element(logits.begin(), logits.end());
  float sum = 0;
  for (float l : logits) sum += std::exp(l - max);
  for (float l : logits) p.scores.push_back(std::exp(l - max) / sum);
  p.tokens = 5;
  return p;
}

model::Prediction valued(float v) {
  model::Prediction p;
  p.logits = {v};
  return p;
}

// Four inputs: distinct scores in every order, a tie between labels 1 and 3, and floats whose
// shortest text is long.
std::vector<model::Prediction> predictions() {
  return {classified({0.1f, 2.5f, -1.0f, 0.7f}), classified({3.0f, -2.0f, 1.0f / 3.0f, 0.0f}),
          classified({-1.0f, 1.5f, -7.25f, 1.5f}), classified({1e-7f, -3.4e2f, 12.345678f, 0.3f})};
}

json parsed(const std::string& body) {
  CAPTURE(body);
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(body));
  return doc;
}

std::vector<size_t> ranking(const std::vector<float>& values) {
  std::vector<size_t> order;
  model::rank_labels(values, order);
  return order;
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Checks a [{"label", "score"}, ...] list against `values` ranked best first, `k` of them.
void check_ranked(const json& list, const std::vector<float>& values, size_t k) {
  REQUIRE(list.is_array());
  const auto order = ranking(values);
  REQUIRE(list.size() == std::min(k, values.size()));
  for (size_t r = 0; r < list.size(); ++r) {
    CAPTURE(r);
    REQUIRE(list[r].is_object());
    CHECK(list[r].size() == 2);
    CHECK(list[r]["label"].get<std::string>() == kLabels[order[r]]);
    CHECK(list[r]["score"].get<float>() == values[order[r]]);
    if (r) CHECK(list[r]["score"].get<float>() <= list[r - 1]["score"].get<float>());
  }
}

ParsedRequest request(bool batch) {
  ParsedRequest r;
  r.batch = batch;
  return r;
}

}  // namespace

TEST_CASE("responses: error_body escapes the message and the type") {
  auto doc = parsed(serving::error_body("validation", "inputs[3] must be \"a string\"\nor\\ a list"));
  CHECK(doc.size() == 2);
  CHECK(doc["error"] == "inputs[3] must be \"a string\"\nor\\ a list");
  CHECK(doc["error_type"] == "validation");
  // A stray byte from a request cannot break the body.
  doc = parsed(serving::error_body("tokenizer", "input 0: bad \xff byte"));
  CHECK(doc["error"] == "input 0: bad \xef\xbf\xbd byte");
  CHECK(serving::error_body("empty", "inputs is empty") == R"({"error":"inputs is empty","error_type":"empty"})");
}

TEST_CASE("responses: TEI answers one input with every label, best first") {
  const auto version = classifier();
  const auto p = predictions();
  for (size_t i = 0; i < p.size(); ++i) {
    CAPTURE(i);
    const auto doc = parsed(serving::tei_response(*version, request(false), {p[i]}));
    check_ranked(doc, p[i].scores, SIZE_MAX);
  }
}

TEST_CASE("responses: TEI ranks ties in label order") {
  const auto version = classifier();
  const auto doc = parsed(serving::tei_response(*version, request(false), {predictions()[2]}));
  REQUIRE(doc.size() == 4);
  CHECK(doc[0]["label"] == kLabels[1]);
  CHECK(doc[1]["label"] == kLabels[3]);
  CHECK(doc[0]["score"] == doc[1]["score"]);
}

TEST_CASE("responses: TEI answers a batch with a list of lists, even of one") {
  const auto version = classifier();
  const auto p = predictions();
  auto doc = parsed(serving::tei_response(*version, request(true), p));
  REQUIRE(doc.is_array());
  REQUIRE(doc.size() == p.size());
  for (size_t i = 0; i < p.size(); ++i) check_ranked(doc[i], p[i].scores, SIZE_MAX);
  doc = parsed(serving::tei_response(*version, request(true), {p[1]}));
  REQUIRE(doc.size() == 1);
  check_ranked(doc[0], p[1].scores, SIZE_MAX);
}

TEST_CASE("responses: TEI raw_scores shows the logits, ranked by them") {
  const auto version = classifier();
  const auto p = predictions();
  ParsedRequest r = request(true);
  r.raw_scores = true;
  const auto doc = parsed(serving::tei_response(*version, r, p));
  for (size_t i = 0; i < p.size(); ++i) check_ranked(doc[i], p[i].logits, SIZE_MAX);
  CHECK(doc[3][3]["score"].get<float>() == -3.4e2f);
}

TEST_CASE("responses: TEI answers a regression model with its value as label \"value\"") {
  const auto version = regressor();
  auto doc = parsed(serving::tei_response(*version, request(false), {valued(3.25f)}));
  CHECK(doc == json::parse(R"([{"label":"value","score":3.25}])"));
  doc = parsed(serving::tei_response(*version, request(true), {valued(-0.1f), valued(1e30f)}));
  REQUIRE(doc.size() == 2);
  CHECK(doc[0][0]["label"] == "value");
  CHECK(doc[0][0]["score"].get<float>() == -0.1f);
  CHECK(doc[1][0]["score"].get<float>() == 1e30f);
}

TEST_CASE("responses: the endpoint always answers a list per input") {
  const auto version = classifier();
  const auto p = predictions();
  auto doc = parsed(serving::endpoint_response(*version, request(false), {p[0]}));
  REQUIRE(doc.is_array());
  REQUIRE(doc.size() == 1);
  check_ranked(doc[0], p[0].scores, SIZE_MAX);
  doc = parsed(serving::endpoint_response(*version, request(true), p));
  REQUIRE(doc.size() == p.size());
  for (size_t i = 0; i < p.size(); ++i) check_ranked(doc[i], p[i].scores, SIZE_MAX);
}

TEST_CASE("responses: the endpoint's top_k keeps the best K after ranking") {
  const auto version = classifier();
  const auto p = predictions();
  for (size_t k : {1, 2, 4, 100}) {
    CAPTURE(k);
    ParsedRequest r = request(true);
    r.top_k = k;
    const auto doc = parsed(serving::endpoint_response(*version, r, p));
    for (size_t i = 0; i < p.size(); ++i) check_ranked(doc[i], p[i].scores, k);
  }
}

TEST_CASE("responses: the endpoint applies sigmoid or none instead of softmax") {
  const auto version = classifier();
  const auto p = predictions();
  ParsedRequest r = request(true);
  r.function = ScoreFunction::none;
  auto doc = parsed(serving::endpoint_response(*version, r, p));
  for (size_t i = 0; i < p.size(); ++i) check_ranked(doc[i], p[i].logits, SIZE_MAX);

  r.function = ScoreFunction::sigmoid;
  r.top_k = 3;
  doc = parsed(serving::endpoint_response(*version, r, p));
  for (size_t i = 0; i < p.size(); ++i) {
    CAPTURE(i);
    const auto order = ranking(p[i].logits);
    REQUIRE(doc[i].size() == 3);
    for (size_t k = 0; k < 3; ++k) {
      CHECK(doc[i][k]["label"] == kLabels[order[k]]);
      CHECK(doc[i][k]["score"].get<float>() == doctest::Approx(sigmoid(p[i].logits[order[k]])).epsilon(1e-6));
      CHECK(doc[i][k]["score"].get<float>() > 0.0f);
      CHECK(doc[i][k]["score"].get<float>() <= 1.0f);
    }
  }
  // Sigmoid scores need not sum to 1 (they do not here).
  float sum = 0;
  ParsedRequest all = request(false);
  all.function = ScoreFunction::sigmoid;
  const auto one = parsed(serving::endpoint_response(*version, all, {p[0]}));
  REQUIRE(one[0].size() == 4);
  for (const auto& entry : one[0]) sum += entry["score"].get<float>();
  CHECK(sum > 1.5f);
}

TEST_CASE("responses: the endpoint answers regression as [[{label value, score}]]") {
  const auto version = regressor();
  ParsedRequest r = request(false);
  r.function = ScoreFunction::sigmoid;  // a regression value is shown as it is
  r.top_k = 1;
  auto doc = parsed(serving::endpoint_response(*version, r, {valued(-2.5f)}));
  CHECK(doc == json::parse(R"([[{"label":"value","score":-2.5}]])"));
  doc = parsed(serving::endpoint_response(*version, request(true), {valued(1.0f), valued(2.0f)}));
  CHECK(doc == json::parse(R"([[{"label":"value","score":1}],[{"label":"value","score":2}]])"));
}

TEST_CASE("responses: invocations answers the top label and its score per input") {
  const auto version = classifier();
  const auto p = predictions();
  const auto doc = parsed(serving::invocations_response(*version, request(true), p));
  REQUIRE(doc.is_object());
  CHECK(doc.size() == 1);
  const json& list = doc["predictions"];
  REQUIRE(list.size() == p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    CAPTURE(i);
    const size_t top = ranking(p[i].scores)[0];
    CHECK(list[i].size() == 2);
    CHECK(list[i]["label"] == kLabels[top]);
    CHECK(list[i]["score"].get<float>() == p[i].scores[top]);
  }
  CHECK(list[2]["label"] == kLabels[1]);  // the tie goes to the lower index
}

TEST_CASE("responses: invocations answers regression with value") {
  const auto version = regressor();
  const auto doc = parsed(serving::invocations_response(*version, request(true), {valued(4.5f), valued(-1e-20f)}));
  CHECK(doc == json::parse(R"({"predictions":[{"value":4.5},{"value":-1e-20}]})"));
  CHECK(doc["predictions"][1]["value"].get<float>() == -1e-20f);
}

TEST_CASE("responses: KServe answers label, score and row-major probabilities") {
  const auto version = classifier();
  const auto p = predictions();
  ParsedRequest r = request(true);
  r.id = "42";
  const auto doc = parsed(serving::kserve_infer_response(*version, r, p));
  CHECK(doc["model_name"] == "intent");
  CHECK(doc["model_version"] == "7");
  CHECK(doc["id"] == "42");
  const json& outputs = doc["outputs"];
  REQUIRE(outputs.size() == 3);
  CHECK(outputs[0]["name"] == "label");
  CHECK(outputs[0]["datatype"] == "BYTES");
  CHECK(outputs[0]["shape"] == json::array({4}));
  CHECK(outputs[1]["name"] == "score");
  CHECK(outputs[1]["datatype"] == "FP32");
  CHECK(outputs[1]["shape"] == json::array({4}));
  CHECK(outputs[2]["name"] == "probabilities");
  CHECK(outputs[2]["datatype"] == "FP32");
  CHECK(outputs[2]["shape"] == json::array({4, 4}));
  REQUIRE(outputs[0]["data"].size() == 4);
  REQUIRE(outputs[1]["data"].size() == 4);
  REQUIRE(outputs[2]["data"].size() == 16);
  for (size_t i = 0; i < p.size(); ++i) {
    CAPTURE(i);
    const size_t top = ranking(p[i].scores)[0];
    CHECK(outputs[0]["data"][i] == kLabels[top]);
    CHECK(outputs[1]["data"][i].get<float>() == p[i].scores[top]);
    for (size_t c = 0; c < 4; ++c) CHECK(outputs[2]["data"][i * 4 + c].get<float>() == p[i].scores[c]);
  }
}

TEST_CASE("responses: KServe returns only the outputs asked for, in the order asked") {
  const auto version = classifier();
  const auto p = predictions();
  ParsedRequest r = request(true);
  r.outputs = {"probabilities", "label"};
  auto doc = parsed(serving::kserve_infer_response(*version, r, p));
  REQUIRE(doc["outputs"].size() == 2);
  CHECK(doc["outputs"][0]["name"] == "probabilities");
  CHECK(doc["outputs"][1]["name"] == "label");
  CHECK_FALSE(doc.contains("id"));  // none was sent

  r.outputs = {"value"};
  try {
    serving::kserve_infer_response(*version, r, p);
    FAIL("value was answered for a classifier");
  } catch (const RequestError& e) {
    CHECK(e.status() == 400);
    CHECK(e.type() == "validation");
    CHECK(std::string(e.what()) == "output 'value' is not an output of this classification model (it has label, score, probabilities)");
  }
}

TEST_CASE("responses: KServe answers regression with value FP32 [N]") {
  const auto version = regressor();
  ParsedRequest r = request(true);
  auto doc = parsed(serving::kserve_infer_response(*version, r, {valued(1.5f), valued(-0.25f)}));
  CHECK(doc == json::parse(R"({"model_name":"price","model_version":"3",
      "outputs":[{"name":"value","datatype":"FP32","shape":[2],"data":[1.5,-0.25]}]})"));
  r.outputs = {"label"};
  try {
    serving::kserve_infer_response(*version, r, {valued(1.5f)});
    FAIL("label was answered for a regression model");
  } catch (const RequestError& e) {
    CHECK(e.status() == 400);
    CHECK(e.type() == "validation");
    CHECK(std::string(e.what()).find("(it has value)") != std::string::npos);
  }
}

TEST_CASE("responses: KServe escapes the id and leaves out the version of a folder model") {
  const auto version = classifier(/*version=*/0, "my \"model\"");
  ParsedRequest r = request(true);
  r.id = "a\"b\\c\n\xc3\xa9";
  r.outputs = {"score"};
  const auto doc = parsed(serving::kserve_infer_response(*version, r, {predictions()[0]}));
  CHECK(doc["model_name"] == "my \"model\"");
  CHECK_FALSE(doc.contains("model_version"));
  CHECK(doc["id"] == r.id);
  CHECK(doc["outputs"].size() == 1);
}

TEST_CASE("responses: KServe metadata lists the inputs and the outputs with their shapes") {
  auto doc = parsed(serving::kserve_model_metadata(*classifier()));
  CHECK(doc == json::parse(R"({"name":"intent","versions":["7"],"platform":"recmodel_bert",
      "inputs":[{"name":"text","datatype":"BYTES","shape":[-1]},{"name":"text_pair","datatype":"BYTES","shape":[-1]}],
      "outputs":[{"name":"label","datatype":"BYTES","shape":[-1]},{"name":"score","datatype":"FP32","shape":[-1]},
                 {"name":"probabilities","datatype":"FP32","shape":[-1,4]}]})"));
  doc = parsed(serving::kserve_model_metadata(*regressor()));
  CHECK(doc["name"] == "price");
  CHECK(doc["versions"] == json::array({"3"}));
  CHECK(doc["outputs"] == json::parse(R"([{"name":"value","datatype":"FP32","shape":[-1]}])"));
  doc = parsed(serving::kserve_model_metadata(*classifier(0, "folder")));
  CHECK_FALSE(doc.contains("versions"));
}

TEST_CASE("responses: labels with quotes, backslashes, tabs and non-ASCII come back as they are") {
  const auto version = classifier();
  model::Prediction p = classified({0.0f, 1.0f, 2.0f, 3.0f});  // best first: 3, 2, 1, 0
  const std::string body = serving::tei_response(*version, request(false), {p});
  CHECK(body.find('\t') == std::string::npos);  // escaped, not raw
  const auto doc = parsed(body);
  CHECK(doc[0]["label"] == "back\\slash\ttab");
  CHECK(doc[1]["label"] == "caf\xc3\xa9 \xe2\x98\x95");
  CHECK(doc[2]["label"] == "say \"hi\"");
  CHECK(doc[3]["label"] == "books");
}

TEST_CASE("responses: scores keep every float exactly, tiny and huge ones too") {
  const auto version = regressor();
  const std::vector<float> values = {0.1f, 1.0f / 3.0f, -0.0f, std::numeric_limits<float>::denorm_min(),
                                     std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                     std::numeric_limits<float>::min(), 123456789.0f, 1e-38f};
  std::vector<model::Prediction> p;
  for (float v : values) p.push_back(valued(v));
  ParsedRequest r = request(true);
  const std::string body = serving::kserve_infer_response(*version, r, p);
  CHECK(body.find("-0,") != std::string::npos);  // the sign of -0 is written (JSON readers may drop it)
  const auto doc = parsed(body);
  const json& data = doc["outputs"][0]["data"];
  REQUIRE(data.size() == values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    CAPTURE(i);
    CHECK(data[i].get<float>() == values[i]);
  }
  const auto tei = parsed(serving::tei_response(*version, r, p));
  for (size_t i = 0; i < values.size(); ++i) CHECK(tei[i][0]["score"].get<float>() == values[i]);
}
