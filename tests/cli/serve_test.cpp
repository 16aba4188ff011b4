// `recmodel serve`: the real binary on --port 0, driven over HTTP with libcurl. Every API's answers
// equal `recmodel predict`'s (<= 1e-5), a batch of 1,000 with and without Expect: 100-continue,
// each error status, slowloris, keep-alive, SIGTERM drain with a request in flight, the access
// log, --log-predictions, refused options, a regression model and two models side by side.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <future>
#include <map>
#include <set>
#include <regex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/cli/serve_process.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr double kTolerance = 1e-5;
const std::vector<std::string> kLabels = {"refund", "billing", "shipping"};

// The models every case shares, made once with `recmodel init` on the shared uncased vocabulary:
// m1 (3 labels), m2 (2 other labels, another seed) and r1 (regression).
struct Models {
  t::TempDir dir;
  std::string m1 = (dir / "m1").string();
  std::string m2 = (dir / "m2").string();
  std::string r1 = (dir / "r1").string();
  Models() {
    auto vocab = t::shared_data("vocab/bert-base-uncased.txt");
    if (vocab.empty()) throw std::runtime_error("../shared/data/vocab/bert-base-uncased.txt is missing");
    init({"--labels", "refund,billing,shipping", "--seed", "42", "--out", m1}, vocab);
    init({"--labels", "books,toys", "--seed", "7", "--out", m2}, vocab);
    init({"--task", "regression", "--seed", "3", "--out", r1}, vocab);
  }
  static void init(std::vector<std::string> args, const t::fs::path& vocab) {
    args.insert(args.begin(), {"init", "--preset", "tiny", "--vocab", vocab.string()});
    auto r = t::run_recmodel(args);
    if (r.exit_code != 0) throw std::runtime_error("recmodel init failed: " + r.err);
  }
};

const Models& models() {
  static Models instance;
  return instance;
}

// `recmodel predict --model MODEL --probs --top-k 0` (plus `extra`) on one text (or TAB pair) per line.
std::vector<json> predict(const std::string& model, const std::vector<std::string>& lines,
                          const std::vector<std::string>& extra = {}) {
  std::string input;
  for (const auto& line : lines) input += line + "\n";
  std::vector<std::string> args{"predict", "--model", model, "--probs", "--top-k", "0", "--batch-size", "64"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = t::run_recmodel(args, input);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  std::vector<json> docs;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) docs.push_back(json::parse(line));
  REQUIRE(docs.size() == lines.size());
  for (const auto& doc : docs) REQUIRE_MESSAGE(!doc.contains("error"), doc.dump());
  return docs;
}

// Texts of every kind: short, long (> 20 words, one over the 512-token limit), unicode, punctuation.
std::vector<std::string> varied_texts() {
  std::vector<std::string> texts = {
      "refund",
      "Where is my refund?!",
      "I was charged twice for the same order, please help.",
      "my package never arrived and the tracking number says delivered",
      "Ünïcödé façade: naïve café crème brûlée",
      "日本語のテキストも送れますか",
      "Доставка задерживается уже неделю",
      "📦 package lost 😡😡",
      "He said \"hi\" \\ and left; {json: [1,2]} <html>&amp;</html>",
      "  leading and trailing spaces  ",
      "ALL CAPS BILLING QUESTION ABOUT INVOICE #12345",
      "a",
      "?",
      "shipping",
      "can I change the delivery address after the order was shipped to the warehouse in another city "
      "because I moved last week and nobody told me that it would take this long to arrive here",
      "The invoice shows a charge I do not recognise, the amount is 49.99 EUR and it was taken on the third "
      "of the month even though I cancelled my subscription in the previous billing period as the agent said",
      "refund refund refund refund refund refund refund refund refund refund refund refund refund refund "
      "refund refund refund refund refund refund refund refund refund refund",
      "mixed 中文 and English with émojis 🚚 and numbers 123 456.78",
      "tab-free, comma, separated, values, here",
      "O'Reilly's book — an em-dash – an en-dash … ellipsis",
      "price: $100 (incl. VAT) / 20% off!!!",
      "what's the status of order 998877",
      "Zahlung fehlgeschlagen, bitte erneut versuchen",
      "¿Dónde está mi paquete?",
      "wrong item received, need return label",
      "subscription renewal billed without notice",
      "courier left the parcel at the wrong door",
      "ok",
  };
  std::string long_text;
  for (int i = 0; i < 700; ++i) long_text += (i ? " " : "") + std::string(i % 2 ? "shipping" : "delay");
  texts.push_back(long_text);  // over 512 tokens: truncated by both (truncate is the default)
  std::string words;
  for (int i = 0; i < 60; ++i) words += "word" + std::to_string(i) + (i % 7 == 0 ? ", " : " ");
  texts.push_back(words);
  return texts;
}

// `count` texts of 1-40 words, different from each other, deterministic.
std::vector<std::string> many_texts(size_t count, size_t min_words = 1, size_t max_words = 40) {
  static const std::vector<std::string> words = {
      "order", "refund", "late", "package", "invoice", "charge", "card", "return", "label", "courier",
      "address", "box", "broken", "money", "back", "please", "help", "where", "is", "my", "the", "a",
      "billing", "shipping", "week", "today", "never", "arrived", "twice", "cancel"};
  std::vector<std::string> texts;
  uint64_t state = 12345;
  auto next = [&](uint64_t bound) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % bound;
  };
  for (size_t i = 0; i < count; ++i) {
    size_t n = min_words + next(max_words - min_words + 1);
    std::string text = "text" + std::to_string(i);
    for (size_t w = 0; w < n; ++w) text += " " + words[next(words.size())];
    texts.push_back(text);
  }
  return texts;
}

json batch_of(const std::vector<std::string>& texts) {
  json inputs = json::array();
  for (const auto& text : texts) inputs.push_back(json::array({text}));
  return inputs;
}

json parse_json(const t::HttpReply& reply) {
  INFO("body: " << reply.body.substr(0, 500));
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(reply.body));
  return doc;
}

// A TEI ranked list [{"label", "score"}, ...]: every label once, best first, each score within
// kTolerance of predict's probability.
void check_ranked(const json& ranked, const json& expected) {
  INFO("server: " << ranked.dump() << " predict: " << expected.dump());
  REQUIRE(ranked.is_array());
  const json& probs = expected["probs"];
  REQUIRE(ranked.size() == probs.size());
  std::set<std::string> seen;
  for (size_t i = 0; i < ranked.size(); ++i) {
    std::string label = ranked[i]["label"].get<std::string>();
    REQUIRE(probs.contains(label));
    seen.insert(label);
    CHECK(std::abs(ranked[i]["score"].get<double>() - probs[label].get<double>()) <= kTolerance);
    if (i > 0) CHECK(ranked[i - 1]["score"].get<double>() >= ranked[i]["score"].get<double>());
  }
  CHECK(seen.size() == probs.size());
  CHECK(ranked[0]["label"] == expected["label"]);
}

// The KServe v2 infer answer for `count` inputs against predict's docs.
void check_v2(const json& doc, const std::vector<json>& expected, const std::vector<std::string>& labels) {
  REQUIRE(doc["outputs"].is_array());
  std::map<std::string, json> outputs;
  for (const auto& output : doc["outputs"]) outputs[output["name"].get<std::string>()] = output;
  REQUIRE(outputs.count("label"));
  REQUIRE(outputs.count("score"));
  REQUIRE(outputs.count("probabilities"));
  size_t n = expected.size();
  CHECK(outputs["label"]["datatype"] == "BYTES");
  CHECK(outputs["label"]["shape"] == json::array({n}));
  CHECK(outputs["score"]["datatype"] == "FP32");
  CHECK(outputs["probabilities"]["datatype"] == "FP32");
  CHECK(outputs["probabilities"]["shape"] == json::array({n, labels.size()}));
  REQUIRE(outputs["label"]["data"].size() == n);
  REQUIRE(outputs["score"]["data"].size() == n);
  REQUIRE(outputs["probabilities"]["data"].size() == n * labels.size());
  for (size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(outputs["label"]["data"][i] == expected[i]["label"]);
    CHECK(std::abs(outputs["score"]["data"][i].get<double>() - expected[i]["score"].get<double>()) <= kTolerance);
    for (size_t l = 0; l < labels.size(); ++l) {
      double got = outputs["probabilities"]["data"][i * labels.size() + l].get<double>();
      CHECK(std::abs(got - expected[i]["probs"][labels[l]].get<double>()) <= kTolerance);
    }
  }
}

json v2_request(const std::vector<std::string>& texts, const std::vector<std::string>& pairs = {}) {
  json inputs = json::array({{{"name", "text"}, {"shape", {texts.size()}}, {"datatype", "BYTES"}, {"data", texts}}});
  if (!pairs.empty())
    inputs.push_back({{"name", "text_pair"}, {"shape", {pairs.size()}}, {"datatype", "BYTES"}, {"data", pairs}});
  return {{"id", "42"}, {"inputs", inputs}};
}

// A JSON error answer: {"error": one line, "error_type": `type`}.
void check_error(const t::HttpReply& reply, long status, const std::string& type, const std::string& mentions = "") {
  INFO("status " << reply.status << " body: " << reply.body.substr(0, 500) << " " << reply.error);
  CHECK(reply.status == status);
  CHECK(reply.header("content-type").rfind("application/json", 0) == 0);
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(reply.body));
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("error"));
  REQUIRE(doc["error"].is_string());
  CHECK_FALSE(doc["error"].get<std::string>().empty());
  CHECK(doc["error"].get<std::string>().find('\n') == std::string::npos);
  CHECK(doc["error_type"] == type);
  if (!mentions.empty()) CHECK(doc["error"].get<std::string>().find(mentions) != std::string::npos);
}

void check_timing_headers(const t::HttpReply& reply) {
  for (const char* name : {"x-total-time", "x-queue-time", "x-inference-time"}) {
    CAPTURE(name);
    REQUIRE(reply.has_header(name));
    CHECK(std::regex_match(reply.header(name), std::regex("[0-9]+")));
  }
}

// The value of a gauge or counter line `name value` in Prometheus text, or -1.
double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

// Polls /metrics until recmodel_requests_in_flight is `value`; false after `timeout`.
bool wait_in_flight(const t::ServeProcess& server, double value, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto reply = t::http_get(server.url("/metrics"));
    if (reply.status == 200 && metric(reply.body, "recmodel_requests_in_flight") == value) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// The "serve: 127.0.0.1 ..." access-log lines of stderr.
std::vector<std::string> access_lines(const std::string& err) {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("serve: 127.0.0.1 ", 0) == 0) lines.push_back(line);
  }
  return lines;
}

}  // namespace

TEST_CASE("serve on --port 0 prints one listening line and answers health, info and KServe metadata") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1});
  CHECK(server.port() > 0);

  auto health = t::http_get(server.url("/health"));
  CHECK(health.status == 200);
  CHECK(parse_json(health) == json{{"status", "ok"}});
  CHECK(health.header("content-type").rfind("application/json", 0) == 0);

  auto info = t::http_get(server.url("/info"));
  REQUIRE(info.status == 200);
  json doc = parse_json(info);
  REQUIRE(doc["models"].size() == 1);
  CHECK(doc["models"][0]["name"] == "m1");
  CHECK(doc["models"][0]["labels"] == json(kLabels));
  CHECK(doc["models"][0]["max_input_length"] == 512);
  CHECK(doc["models"][0]["problem_type"] == "single_label_classification");
  CHECK(doc["batching"]["max_batch_tokens"] == 16384);
  CHECK(doc["batching"]["max_batch_requests"] == 64);
  CHECK(doc["batching"]["max_concurrent_requests"] == 512);
  CHECK(doc["batching"]["payload_limit"] == 2000000);
  CHECK(doc["model_type"]["classifier"]["id2label"]["1"] == "billing");
  CHECK(doc.contains("recmodel_version"));

  auto live = t::http_get(server.url("/v2/health/live"));
  CHECK(live.status == 200);
  CHECK(parse_json(live) == json{{"live", true}});
  auto ready = t::http_get(server.url("/v2/health/ready"));
  CHECK(ready.status == 200);
  CHECK(parse_json(ready) == json{{"ready", true}});
  auto meta = t::http_get(server.url("/v2/models/m1"));
  REQUIRE(meta.status == 200);
  json metadata = parse_json(meta);
  CHECK(metadata["name"] == "m1");
  CHECK(metadata["platform"] == "recmodel_bert");
  CHECK(metadata["inputs"][0]["name"] == "text");
  CHECK(metadata["inputs"][0]["datatype"] == "BYTES");
  bool has_probabilities = false;
  for (const auto& output : metadata["outputs"]) {
    if (output["name"] == "probabilities") {
      has_probabilities = true;
      CHECK(output["shape"] == json::array({-1, 3}));
    }
  }
  CHECK(has_probabilities);
  auto model_ready = t::http_get(server.url("/v2/models/m1/ready"));
  CHECK(model_ready.status == 200);
  CHECK(parse_json(model_ready) == json{{"name", "m1"}, {"ready", true}});

  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
  CHECK(server.stdout_text() == "listening on http://127.0.0.1:" + std::to_string(server.port()) + "\n");
}

TEST_CASE("serve answers /predict, /, /invocations and v2 infer as recmodel predict does, texts and pairs") {
  const auto& m = models();
  auto texts = varied_texts();
  auto expected = predict(m.m1, texts);
  t::ServeProcess server({"--model", m.m1});

  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    CAPTURE(texts[i].substr(0, 80));
    auto single = t::http_post(server.url("/predict"), json{{"inputs", texts[i]}}.dump());
    REQUIRE(single.status == 200);
    check_ranked(parse_json(single), expected[i]);
    CHECK(single.header("x-model-version") == "m1");
    check_timing_headers(single);

    auto hf = t::http_post(server.url("/"), json{{"inputs", texts[i]}}.dump());
    REQUIRE(hf.status == 200);
    json hf_doc = parse_json(hf);
    REQUIRE(hf_doc.is_array());
    REQUIRE(hf_doc.size() == 1);
    check_ranked(hf_doc[0], expected[i]);
    CHECK(hf.header("x-model-version") == "m1");
  }

  auto batch = t::http_post(server.url("/predict"), json{{"inputs", batch_of(texts)}}.dump());
  REQUIRE(batch.status == 200);
  json batch_doc = parse_json(batch);
  REQUIRE(batch_doc.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    check_ranked(batch_doc[i], expected[i]);
  }
  CHECK(batch.header("x-model-version") == "m1");
  check_timing_headers(batch);

  auto hf_batch = t::http_post(server.url("/"), json{{"inputs", batch_of(texts)}}.dump());
  REQUIRE(hf_batch.status == 200);
  json hf_batch_doc = parse_json(hf_batch);
  REQUIRE(hf_batch_doc.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) check_ranked(hf_batch_doc[i], expected[i]);

  for (const char* key : {"inputs", "instances"}) {
    CAPTURE(key);
    auto invocations = t::http_post(server.url("/invocations"), json{{key, texts}}.dump());
    REQUIRE(invocations.status == 200);
    json predictions = parse_json(invocations)["predictions"];
    REQUIRE(predictions.size() == texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      CAPTURE(i);
      CHECK(predictions[i]["label"] == expected[i]["label"]);
      CHECK(std::abs(predictions[i]["score"].get<double>() - expected[i]["score"].get<double>()) <= kTolerance);
    }
    CHECK(invocations.header("x-model-version") == "m1");
    check_timing_headers(invocations);
  }

  auto v2 = t::http_post(server.url("/v2/models/m1/infer"), v2_request(texts).dump());
  REQUIRE(v2.status == 200);
  json v2_doc = parse_json(v2);
  CHECK(v2_doc["model_name"] == "m1");
  CHECK(v2_doc["id"] == "42");
  check_v2(v2_doc, expected, kLabels);
  CHECK(v2.header("x-model-version") == "m1");
  check_timing_headers(v2);

  // Pairs: [query, title] against predict --pair on "query\ttitle".
  std::vector<std::pair<std::string, std::string>> pairs = {
      {"red shoes", "Nike Air Max running shoes for men"},
      {"refund status", "How to track your refund after a return"},
      {"café", "Crème brûlée recipe — naïve version 🍮"},
      {"a", "b"},
      {"billing address change", "Update the address on your invoices and the card you pay with, any time"}};
  std::vector<std::string> lines, queries, titles;
  for (const auto& [query, title] : pairs) {
    lines.push_back(query + "\t" + title);
    queries.push_back(query);
    titles.push_back(title);
  }
  auto expected_pairs = predict(m.m1, lines, {"--pair"});
  json pair_batch = json::array();
  json pair_instances = json::array();
  for (size_t i = 0; i < pairs.size(); ++i) {
    CAPTURE(i);
    auto reply = t::http_post(server.url("/predict"), json{{"inputs", json::array({queries[i], titles[i]})}}.dump());
    REQUIRE(reply.status == 200);
    check_ranked(parse_json(reply), expected_pairs[i]);
    pair_batch.push_back(json::array({queries[i], titles[i]}));
    pair_instances.push_back(json{{"text", queries[i]}, {"text_pair", titles[i]}});
  }
  auto pair_reply = t::http_post(server.url("/predict"), json{{"inputs", pair_batch}}.dump());
  REQUIRE(pair_reply.status == 200);
  json pair_doc = parse_json(pair_reply);
  REQUIRE(pair_doc.size() == pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) check_ranked(pair_doc[i], expected_pairs[i]);
  auto pair_invocations = t::http_post(server.url("/invocations"), json{{"instances", pair_instances}}.dump());
  REQUIRE(pair_invocations.status == 200);
  json pair_predictions = parse_json(pair_invocations)["predictions"];
  REQUIRE(pair_predictions.size() == pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    CHECK(pair_predictions[i]["label"] == expected_pairs[i]["label"]);
    CHECK(std::abs(pair_predictions[i]["score"].get<double>() - expected_pairs[i]["score"].get<double>()) <=
          kTolerance);
  }
  auto pair_v2 = t::http_post(server.url("/v2/models/m1/infer"), v2_request(queries, titles).dump());
  REQUIRE(pair_v2.status == 200);
  check_v2(parse_json(pair_v2), expected_pairs, kLabels);
}

TEST_CASE("serve answers a batch of 1,000 texts in one request in order, with and without Expect: 100-continue") {
  const auto& m = models();
  auto texts = many_texts(1000);
  auto expected = predict(m.m1, texts);
  t::ServeProcess server({"--model", m.m1});
  std::string body = json{{"inputs", batch_of(texts)}}.dump();
  REQUIRE(body.size() > 100000);

  for (bool expect : {true, false}) {
    CAPTURE(expect);
    auto reply = t::http_post(server.url("/predict"), body, {expect ? "Expect: 100-continue" : "Expect:"});
    REQUIRE(reply.status == 200);
    // curl waits up to 30 s for the 100 Continue (CURLOPT_EXPECT_100_TIMEOUT_MS): answered at once.
    if (expect) CHECK(reply.interim == std::vector<long>{100});
    if (!expect) CHECK(reply.interim.empty());
    CHECK(reply.seconds < 5.0);
    json doc = parse_json(reply);
    REQUIRE(doc.size() == texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      CAPTURE(i);
      check_ranked(doc[i], expected[i]);
    }
  }
}

TEST_CASE("serve answers each bad request with its status and error type and keeps serving") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1});
  auto post = [&](const std::string& body, const std::string& path = "/predict") {
    return t::http_post(server.url(path), body);
  };

  check_error(post("{\"inputs\": ["), 400, "invalid_json", "byte");
  check_error(post("{\"inputs\": 5}"), 400, "validation");
  check_error(post("{\"text\": \"no inputs\"}"), 400, "validation", "inputs");
  check_error(post("{\"inputs\": [\"a\", \"b\", \"c\"]}"), 400, "validation");
  check_error(post("{\"inputs\": [[\"a\"], [5]]}"), 400, "validation", "inputs[1]");
  check_error(post("{\"inputs\": []}"), 400, "empty");
  check_error(post("{\"inputs\": \"\"}"), 422, "tokenizer", "input 0");
  check_error(post("{\"inputs\": [[\"fine\"], [\"ok\"], [\"bad \xff\xfe bytes\"], [\"ok\"]]}"), 422, "tokenizer",
              "input 2");
  check_error(post("{\"inputs\": [[\"fine\"], [\"   \"]]}"), 422, "tokenizer", "input 1");

  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += (i ? " " : "") + std::string("word");  // 600 + [CLS] + [SEP]
  check_error(post(json{{"inputs", long_text}, {"truncate", false}}.dump()), 413, "validation", "602 tokens");
  auto truncated = post(json{{"inputs", long_text}}.dump());
  CHECK(truncated.status == 200);
  CHECK(parse_json(truncated).size() == 3);

  check_error(t::http_get(server.url("/no/such/route")), 404, "not_found");
  auto wrong_method = t::http_get(server.url("/predict"));
  check_error(wrong_method, 405, "method_not_allowed");
  CHECK(wrong_method.header("allow") == "POST");
  check_error(post("{\"inputs\": \"hello\"}", "/models/nope/predict"), 404, "not_found", "nope");
  check_error(post(v2_request({"hello"}).dump(), "/v2/models/nope/infer"), 404, "not_found");
  check_error(post(v2_request({"hello"}).dump(), "/v2/models/m1/versions/99/infer"), 404, "not_found", "99");
  check_error(t::http_get(server.url("/v2/models/m1/versions/99")), 404, "not_found");

  // Never disturbed: the next request gets the right answer.
  auto expected = predict(m.m1, {"still serving"});
  auto after = post("{\"inputs\": \"still serving\"}");
  REQUIRE(after.status == 200);
  check_ranked(parse_json(after), expected[0]);
  CHECK(t::http_get(server.url("/health")).status == 200);
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
  CHECK(server.stderr_text().find("please report") == std::string::npos);
}

TEST_CASE("serve's answers carry x-model-version and x-total-time on every route, errors included") {
  // Every inference route's answer names the model version that the route resolves to, even
  // when the request was refused before a model saw it; routes that score nothing name the
  // default model's (issue 14: "Every response carries x-model-version").
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1});
  struct Case {
    std::string path, body;
    long status;
  };
  std::vector<Case> cases = {
      {"/predict", "{\"inputs\": \"hello\"}", 200},   {"/predict", "{\"inputs\": \"\"}", 422},
      {"/predict", "{\"inputs\": 5}", 400},           {"/predict", "{\"inputs\": [", 400},
      {"/", "{\"inputs\": [", 400},                   {"/invocations", "{\"instances\": 5}", 400},
      {"/v2/models/m1/infer", "{\"inputs\": [", 400}, {"/models/m1/predict", "{\"inputs\": []}", 400},
  };
  for (const auto& c : cases) {
    CAPTURE(c.path);
    CAPTURE(c.body);
    auto reply = t::http_post(server.url(c.path), c.body);
    CHECK(reply.status == c.status);
    CHECK(reply.header("content-type").rfind("application/json", 0) == 0);
    json doc = parse_json(reply);
    if (c.status != 200) {
      CHECK(doc.contains("error"));
      CHECK(doc.contains("error_type"));
    }
    CHECK(reply.header("x-model-version") == "m1");
    CHECK(reply.has_header("x-total-time"));
  }
  for (const std::string path : {"/health", "/info", "/metrics", "/v2/health/live", "/v2", "/no-such-route", "/predict"}) {
    CAPTURE(path);
    auto reply = t::http_get(server.url(path));
    CHECK(reply.status == (path == "/no-such-route" ? 404 : path == "/predict" ? 405 : 200));
    CHECK(reply.header("x-model-version") == "m1");
    CHECK(reply.has_header("x-total-time"));
  }
}

TEST_CASE("serve refuses a body over --payload-limit with 413 and closes a slowloris connection") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1, "--payload-limit", "1000", "--request-timeout", "1"});
  std::string big = json{{"inputs", std::string(1200, 'a')}}.dump();
  const auto over = t::http_post(server.url("/predict"), big);
  check_error(over, 413, "payload_too_large");
  CHECK(over.header("x-model-version") == "m1");  // the HTTP layer's own answer names it too
  // With Expect: 100-continue the refusal comes before the body is sent.
  auto expect = t::http_post(server.url("/predict"), big, {"Expect: 100-continue"});
  check_error(expect, 413, "payload_too_large");
  CHECK(expect.interim.empty());
  CHECK(expect.seconds < 5.0);
  CHECK(t::http_post(server.url("/predict"), "{\"inputs\": \"small\"}").status == 200);

  // Slowloris: half a header, then a byte every 200 ms.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  std::string head = "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  REQUIRE(send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  int others_answered = 0;
  while (std::chrono::steady_clock::now() - start < 5s) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) > 0) {
      char buffer[4096];
      ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      continue;  // e.g. a 408 answer before the close
    }
    if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    // Meanwhile another client is answered.
    if (t::http_post(server.url("/predict"), "{\"inputs\": \"meanwhile\"}").status == 200) ++others_answered;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  CHECK(closed);
  CHECK(seconds < 2.5);
  CHECK(others_answered >= 2);
  CHECK(t::http_get(server.url("/health")).status == 200);
}

TEST_CASE("serve answers 50 requests on one keep-alive connection") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1});
  t::HttpClient client;
  long connections = 0;
  for (int i = 0; i < 50; ++i) {
    CAPTURE(i);
    auto reply = client.request("POST", server.url("/predict"), json{{"inputs", "request " + std::to_string(i)}}.dump());
    REQUIRE(reply.status == 200);
    CHECK(parse_json(reply).size() == 3);
    CHECK(reply.header("connection") != "close");
    connections += reply.new_connections;
  }
  auto health = client.request("GET", server.url("/health"));
  CHECK(health.status == 200);
  connections += health.new_connections;
  CHECK(connections == 1);
}

TEST_CASE("serve answers 429 beyond --max-concurrent-requests while a request is in flight") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1, "--max-concurrent-requests", "1", "--payload-limit", "50000000"});
  auto texts = many_texts(1500, 35, 40);
  std::string body = json{{"inputs", batch_of(texts)}}.dump();
  auto big = std::async(std::launch::async, [&] { return t::http_post(server.url("/predict"), body); });
  REQUIRE(wait_in_flight(server, 1, 20s));
  auto refused = t::http_post(server.url("/predict"), "{\"inputs\": \"one more\"}");
  check_error(refused, 429, "overloaded");
  // Health and metrics are not inference: answered meanwhile.
  CHECK(t::http_get(server.url("/health")).status == 200);
  auto done = big.get();
  REQUIRE(done.status == 200);
  CHECK(parse_json(done).size() == texts.size());
  CHECK(t::http_post(server.url("/predict"), "{\"inputs\": \"one more\"}").status == 200);
}

TEST_CASE("serve drains on SIGTERM: the request in flight gets all its results, new connections are refused") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1, "--payload-limit", "50000000"});
  auto texts = many_texts(2000, 35, 40);
  std::string body = json{{"inputs", batch_of(texts)}}.dump();
  std::atomic<bool> big_done{false};
  auto big = std::async(std::launch::async, [&] {
    auto reply = t::http_post(server.url("/predict"), body);
    big_done = true;
    return reply;
  });
  REQUIRE(wait_in_flight(server, 1, 20s));
  server.signal(SIGTERM);

  // Readiness goes at once: /health is 503 or the connection is refused (acceptor closed).
  auto deadline = std::chrono::steady_clock::now() + 3s;
  t::HttpReply health;
  while (std::chrono::steady_clock::now() < deadline) {
    health = t::http_get(server.url("/health"));
    if (health.status != 200) break;
    std::this_thread::sleep_for(5ms);
  }
  bool refused_while_in_flight = !big_done;
  CAPTURE(health.status);
  CAPTURE(health.error);
  CHECK((health.status == 503 || health.status == 0));
  if (health.status == 503) check_error(health, 503, "unhealthy");
  CHECK(refused_while_in_flight);
  if (!big_done) {
    auto late = t::http_post(server.url("/predict"), "{\"inputs\": \"late\"}");
    CHECK((late.status == 0 || late.status == 503));
  }

  auto reply = big.get();
  REQUIRE(reply.status == 200);
  json doc = parse_json(reply);
  REQUIRE(doc.size() == texts.size());
  CHECK(server.wait(30s) == 0);
  CHECK(server.stderr_text().find("draining") != std::string::npos);
  // The last result is the last text's.
  auto expected = predict(m.m1, {texts.back()});
  check_ranked(doc.back(), expected[0]);
}

TEST_CASE("serve writes one access-log line per request with method, path, status, version, tokens and time") {
  const auto& m = models();
  t::ServeProcess server({"--model", m.m1});
  auto health = t::http_get(server.url("/health"));
  auto single = t::http_post(server.url("/predict"), "{\"inputs\": \"hello world\"}");
  auto batch = t::http_post(server.url("/predict"), "{\"inputs\": [[\"hello\"], [\"where is my refund\"]]}");
  auto bad = t::http_post(server.url("/predict"), "{\"inputs\": \"\"}");
  auto missing = t::http_get(server.url("/nope"));
  REQUIRE(single.status == 200);
  REQUIRE(batch.status == 200);
  REQUIRE(bad.status == 422);
  REQUIRE(missing.status == 404);
  server.signal(SIGTERM);
  REQUIRE(server.wait() == 0);

  auto lines = access_lines(server.stderr_text());
  INFO("stderr: " << server.stderr_text());
  REQUIRE(lines.size() == 5);
  static const std::regex format("serve: 127\\.0\\.0\\.1 (GET|POST) (\\S+) ([0-9]{3}) (\\S+) tokens=([0-9]+) "
                                 "[0-9]+\\.[0-9]ms");
  struct Expected {
    std::string method, path, status, version, tokens;
  };
  // The version is the one the answer names: the default model's on routes that score nothing.
  std::vector<Expected> expected = {{"GET", "/health", "200", "m1", "0"},
                                    {"POST", "/predict", "200", "m1", single.header("x-compute-tokens")},
                                    {"POST", "/predict", "200", "m1", batch.header("x-compute-tokens")},
                                    {"POST", "/predict", "422", "m1", "0"},
                                    {"GET", "/nope", "404", "m1", "0"}};
  CHECK(std::stoi(single.header("x-compute-tokens")) == 4);  // [CLS] hello world [SEP]
  for (size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(lines[i]);
    std::smatch match;
    REQUIRE(std::regex_match(lines[i], match, format));
    CHECK(match[1] == expected[i].method);
    CHECK(match[2] == expected[i].path);
    CHECK(match[3] == expected[i].status);
    CHECK(match[4] == expected[i].version);
    CHECK(match[5] == expected[i].tokens);
  }
}

TEST_CASE("serve --log-predictions writes one JSONL line per scored input") {
  const auto& m = models();
  t::TempDir dir;
  auto log = dir / "predictions.jsonl";
  t::ServeProcess server({"--model", m.m1, "--log-predictions", log.string()});
  std::vector<std::string> texts = {"one", "where is my refund", "invoice charged twice", "parcel", "hello there"};
  std::vector<json> answers;
  std::vector<std::string> tokens;
  for (const auto& text : texts) {
    auto reply = t::http_post(server.url("/predict"), json{{"inputs", text}}.dump());
    REQUIRE(reply.status == 200);
    answers.push_back(parse_json(reply));
    tokens.push_back(reply.header("x-compute-tokens"));
  }
  CHECK(t::http_post(server.url("/predict"), "{\"inputs\": \"\"}").status == 422);  // not scored: not logged
  server.signal(SIGTERM);
  REQUIRE(server.wait() == 0);

  std::istringstream in(t::read_text(log));
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  REQUIRE(lines.size() == texts.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(lines[i].dump());
    CHECK(lines[i]["time"].is_string());
    CHECK(lines[i]["model"] == "m1");
    CHECK(lines[i].contains("version"));
    CHECK(std::to_string(lines[i]["tokens"].get<int>()) == tokens[i]);
    CHECK(lines[i]["label"] == answers[i][0]["label"]);
    CHECK(std::abs(lines[i]["score"].get<double>() - answers[i][0]["score"].get<double>()) <= kTolerance);
  }
}

TEST_CASE("serve refuses bad options with exit 2, a missing model with 4 and a port in use with 5") {
  const auto& m = models();
  auto sample = t::ServeProcess::run_to_exit({"--model", m.m1, "--port", "0", "--log-sample", "0.5"});
  CHECK(sample.exit_code == 2);
  CHECK(sample.err.find("--log-predictions") != std::string::npos);
  CHECK(sample.out.empty());
  auto port = t::ServeProcess::run_to_exit({"--model", m.m1, "--port", "70000"});
  CHECK(port.exit_code == 2);
  auto same_name = t::ServeProcess::run_to_exit({"--model", "a=" + m.m1, "--model", "a=" + m.m2, "--port", "0"});
  CHECK(same_name.exit_code == 2);
  auto same_default = t::ServeProcess::run_to_exit({"--model", m.m1, "--model", m.m1, "--port", "0"});
  CHECK(same_default.exit_code == 2);

  t::TempDir dir;
  auto missing = t::ServeProcess::run_to_exit({"--model", (dir / "absent").string(), "--port", "0"});
  INFO("stderr: " << missing.err);
  CHECK(missing.exit_code == 4);
  CHECK(t::error_line_count(missing.err) == 1);
  CHECK(missing.err.find("absent") != std::string::npos);
  CHECK(missing.out.empty());

  t::ServeProcess server({"--model", m.m1});
  auto busy = t::ServeProcess::run_to_exit({"--model", m.m1, "--port", std::to_string(server.port())});
  INFO("stderr: " << busy.err);
  CHECK(busy.exit_code == 5);
  CHECK(t::error_line_count(busy.err) == 1);
  CHECK(busy.out.empty());
  CHECK(t::http_get(server.url("/health")).status == 200);

  // A server that cannot listen leaves no prediction log behind.
  t::TempDir log_dir;
  auto logged = t::ServeProcess::run_to_exit({"--model", m.m1, "--port", std::to_string(server.port()),
                                              "--log-predictions", (log_dir / "predictions.jsonl").string()});
  CHECK(logged.exit_code == 5);
  CHECK_FALSE(t::fs::exists(log_dir / "predictions.jsonl"));
}

TEST_CASE("serve answers a regression model's value as predict does") {
  const auto& m = models();
  std::vector<std::string> texts = {"refund please", "a much longer text about an invoice that was wrong", "ok"};
  auto expected = predict(m.r1, texts);
  t::ServeProcess server({"--model", m.r1});
  std::string name = t::fs::path(m.r1).filename().string();
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    double value = expected[i]["value"].get<double>();
    auto reply = t::http_post(server.url("/predict"), json{{"inputs", texts[i]}}.dump());
    REQUIRE(reply.status == 200);
    json doc = parse_json(reply);
    REQUIRE(doc.size() == 1);
    CHECK(doc[0]["label"] == "value");
    CHECK(std::abs(doc[0]["score"].get<double>() - value) <= kTolerance);
    CHECK(reply.header("x-model-version") == name);
  }
  auto invocations = t::http_post(server.url("/invocations"), json{{"inputs", texts}}.dump());
  REQUIRE(invocations.status == 200);
  json predictions = parse_json(invocations)["predictions"];
  REQUIRE(predictions.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    CHECK(predictions[i].size() == 1);
    CHECK(std::abs(predictions[i]["value"].get<double>() - expected[i]["value"].get<double>()) <= kTolerance);
  }
  auto v2 = t::http_post(server.url("/v2/models/" + name + "/infer"), v2_request(texts).dump());
  REQUIRE(v2.status == 200);
  json outputs = parse_json(v2)["outputs"];
  bool found = false;
  for (const auto& output : outputs) {
    if (output["name"] != "value") continue;
    found = true;
    CHECK(output["datatype"] == "FP32");
    REQUIRE(output["data"].size() == texts.size());
    for (size_t i = 0; i < texts.size(); ++i)
      CHECK(std::abs(output["data"][i].get<double>() - expected[i]["value"].get<double>()) <= kTolerance);
  }
  CHECK(found);
}

TEST_CASE("serve with two models answers /predict with the first and the others by name") {
  const auto& m = models();
  std::vector<std::string> texts = {"where is my refund", "a book for kids"};
  auto expected_a = predict(m.m1, texts);
  auto expected_b = predict(m.m2, texts);
  t::ServeProcess server({"--model", "a=" + m.m1, "--model", "b=" + m.m2});

  auto info = parse_json(t::http_get(server.url("/info")));
  REQUIRE(info["models"].size() == 2);
  CHECK(info["models"][0]["name"] == "a");
  CHECK(info["models"][0]["labels"] == json(kLabels));
  CHECK(info["models"][1]["name"] == "b");
  CHECK(info["models"][1]["labels"] == json::array({"books", "toys"}));

  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    std::string body = json{{"inputs", texts[i]}}.dump();
    auto first = t::http_post(server.url("/predict"), body);
    REQUIRE(first.status == 200);
    CHECK(first.header("x-model-version") == "a");
    check_ranked(parse_json(first), expected_a[i]);
    auto by_name_a = t::http_post(server.url("/models/a/predict"), body);
    REQUIRE(by_name_a.status == 200);
    check_ranked(parse_json(by_name_a), expected_a[i]);
    auto by_name = t::http_post(server.url("/models/b/predict"), body);
    REQUIRE(by_name.status == 200);
    CHECK(by_name.header("x-model-version") == "b");
    check_ranked(parse_json(by_name), expected_b[i]);
  }
  auto invocations = t::http_post(server.url("/invocations"), json{{"inputs", texts}}.dump());
  REQUIRE(invocations.status == 200);
  CHECK(invocations.header("x-model-version") == "a");
  CHECK(parse_json(invocations)["predictions"][0]["label"] == expected_a[0]["label"]);
  auto v2 = t::http_post(server.url("/v2/models/b/infer"), v2_request(texts).dump());
  REQUIRE(v2.status == 200);
  CHECK(v2.header("x-model-version") == "b");
  json v2_doc = parse_json(v2);
  CHECK(v2_doc["model_name"] == "b");
  check_v2(v2_doc, expected_b, {"books", "toys"});
  auto meta = t::http_get(server.url("/v2/models/b"));
  REQUIRE(meta.status == 200);
  CHECK(parse_json(meta)["name"] == "b");
}
