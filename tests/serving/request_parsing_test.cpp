// The request bodies serve reads: every accepted shape of TEI's /predict, the Hugging Face
// endpoint's POST /, MLflow/SageMaker's /invocations and KServe v2 infer, and every refusal with
// its status, error_type and the field or input index it names.
#include "serving/request_parsing.h"

#include <doctest/doctest.h>

#include <functional>
#include <string>

using namespace recmodel;
using serving::ParsedRequest;
using serving::RequestError;
using serving::ScoreFunction;

namespace {

using Parser = std::function<ParsedRequest(std::string_view)>;
const Parser tei = serving::parse_tei_request;
const Parser endpoint = serving::parse_endpoint_request;
const Parser invocations = serving::parse_invocations_request;
const Parser kserve = serving::parse_kserve_request;

// Returns the refusal of `body`; fails the test when it is accepted or refused otherwise.
RequestError refusal(const Parser& parse, const std::string& body) {
  try {
    parse(body);
  } catch (const RequestError& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL("refused with something other than RequestError: " << e.what());
  }
  FAIL("accepted: " << body);
  return RequestError(0, "", "");
}

#define CHECK_REFUSED(parse, body, status_, type_, fragment)                                    \
  do {                                                                                          \
    const std::string body_ = (body);                                                           \
    CAPTURE(body_);                                                                             \
    const RequestError e_ = refusal(parse, body_);                                              \
    const std::string what_ = e_.what();                                                        \
    CAPTURE(what_);                                                                             \
    CHECK(e_.status() == (status_));                                                            \
    CHECK(e_.type() == (type_));                                                                \
    CHECK_MESSAGE(what_.find(fragment) != std::string::npos, "expected '" << (fragment) << "'"); \
  } while (0)

void check_inputs(const ParsedRequest& request, const std::vector<model::TextInput>& expected) {
  REQUIRE(request.inputs.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(request.inputs[i].text == expected[i].text);
    CHECK(request.inputs[i].pair == expected[i].pair);
  }
}

model::TextInput one(const std::string& text) { return {text, std::nullopt}; }
model::TextInput pair(const std::string& text, const std::string& p) { return {text, p}; }

std::string nested(size_t levels, const std::string& inner) {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

}  // namespace

// ---- TEI /predict ----

TEST_CASE("request_parsing: TEI accepts a string, one [text, pair] and a batch of lists") {
  auto r = serving::parse_tei_request(R"({"inputs": "red shoe"})");
  check_inputs(r, {one("red shoe")});
  CHECK_FALSE(r.batch);
  CHECK(r.truncate);  // recmodel's default; TEI's is false
  CHECK_FALSE(r.raw_scores);
  CHECK(r.function == ScoreFunction::softmax);
  CHECK_FALSE(r.top_k);
  CHECK(r.id.empty());
  CHECK(r.outputs.empty());

  r = serving::parse_tei_request(R"({"inputs": ["query", "title"]})");
  check_inputs(r, {pair("query", "title")});
  CHECK_FALSE(r.batch);

  r = serving::parse_tei_request(R"({"inputs": ["alone"]})");
  check_inputs(r, {one("alone")});
  CHECK_FALSE(r.batch);

  r = serving::parse_tei_request(R"({"inputs": [["a"], ["b", "c"], "d"]})");
  check_inputs(r, {one("a"), pair("b", "c"), one("d")});
  CHECK(r.batch);

  r = serving::parse_tei_request(R"({"inputs": [["a"]]})");
  check_inputs(r, {one("a")});
  CHECK(r.batch);
}

TEST_CASE("request_parsing: TEI reads truncate and raw_scores, null keeps the default") {
  auto r = serving::parse_tei_request(R"({"inputs": "a", "truncate": false, "raw_scores": true})");
  CHECK_FALSE(r.truncate);
  CHECK(r.raw_scores);
  r = serving::parse_tei_request(R"({"inputs": "a", "truncate": null, "raw_scores": null})");
  CHECK(r.truncate);
  CHECK_FALSE(r.raw_scores);
}

TEST_CASE("request_parsing: TEI ignores unknown fields and accepts right truncation only") {
  auto r = serving::parse_tei_request(
      R"({"inputs": "a", "truncation_direction": "right", "normalize": true, "prompt_name": null, "x": {"y": [1]}})");
  check_inputs(r, {one("a")});
  CHECK_NOTHROW(serving::parse_tei_request(R"({"inputs": "a", "truncation_direction": "Right"})"));
  CHECK_NOTHROW(serving::parse_tei_request(R"({"inputs": "a", "truncation_direction": null})"));
  CHECK_REFUSED(tei, R"({"inputs": "a", "truncation_direction": "left"})", 400, "validation",
                "truncation_direction \"left\" is not supported");
  CHECK_REFUSED(tei, R"({"inputs": "a", "truncation_direction": 5})", 400, "validation",
                "truncation_direction must be \"right\", not number 5");
}

TEST_CASE("request_parsing: empty and blank texts are left to the tokenizer") {
  check_inputs(serving::parse_tei_request(R"({"inputs": ""})"), {one("")});
  check_inputs(serving::parse_tei_request(R"({"inputs": [[" ", ""]]})"), {pair(" ", "")});
  check_inputs(serving::parse_invocations_request(R"({"inputs": ["", "\t"]})"), {one(""), one("\t")});
}

TEST_CASE("request_parsing: escapes and UTF-8 in texts are decoded") {
  auto r = serving::parse_tei_request(R"({"inputs": ["caf\u00e9 \"x\"\n", "☕ \ud83d\ude00"]})");
  check_inputs(r, {pair("caf\xc3\xa9 \"x\"\n", "\xe2\x98\x95 \xf0\x9f\x98\x80")});
}

TEST_CASE("request_parsing: TEI refuses a list of three strings as one input") {
  CHECK_REFUSED(tei, R"({"inputs": ["a", "b", "c"]})", 400, "validation", "inputs is a list of 3 values");
  CHECK_REFUSED(tei, R"({"inputs": [["a"], ["a", "b", "c"]]})", 400, "validation",
                "inputs[1] must be a string or a [text, pair] list of 1-2 strings");
}

TEST_CASE("request_parsing: TEI refuses wrong shapes naming the field or the input index") {
  CHECK_REFUSED(tei, R"({"text": "a"})", 400, "validation", "the request has no \"inputs\"");
  CHECK_REFUSED(tei, R"({"inputs": 5})", 400, "validation", "inputs must be a string or a list, not number 5");
  CHECK_REFUSED(tei, R"({"inputs": null})", 400, "validation", "inputs must be a string or a list, not null");
  CHECK_REFUSED(tei, R"({"inputs": {"text": "a"}})", 400, "validation", "inputs must be a string or a list");
  CHECK_REFUSED(tei, R"({"inputs": ["a", 5]})", 400, "validation", "inputs[1] (the pair of inputs[0]) must be a string");
  CHECK_REFUSED(tei, R"({"inputs": [[]]})", 400, "validation", "inputs[0] must be a string or a [text, pair]");
  CHECK_REFUSED(tei, R"({"inputs": [["a"], ["b"], ["c"], 3]})", 400, "validation",
                "inputs[3] must be a string or a [text, pair] list of 1-2 strings, not number 3");
  CHECK_REFUSED(tei, R"({"inputs": [["a"], [1]]})", 400, "validation", "inputs[1] must be");
  CHECK_REFUSED(tei, R"({"inputs": [["a"], [["b"]]]})", 400, "validation", "inputs[1] must be");
  CHECK_REFUSED(tei, R"({"inputs": [["a"], {"text": "b"}]})", 400, "validation", "inputs[1] must be");
  CHECK_REFUSED(tei, R"({"inputs": "a", "truncate": "yes"})", 400, "validation",
                "truncate must be true or false, not string \"yes\"");
  CHECK_REFUSED(tei, R"({"inputs": "a", "raw_scores": 1})", 400, "validation", "raw_scores must be true or false");
}

TEST_CASE("request_parsing: an empty list of inputs is 400 empty, as in TEI") {
  CHECK_REFUSED(tei, R"({"inputs": []})", 400, "empty", "inputs is empty");
  CHECK_REFUSED(endpoint, R"({"inputs": []})", 400, "empty", "inputs is empty");
}

TEST_CASE("request_parsing: a body that is not a JSON object is 400 validation") {
  CHECK_REFUSED(tei, R"(["a"])", 400, "validation", "the request body must be a JSON object, not array");
  CHECK_REFUSED(tei, "42", 400, "validation", "must be a JSON object, not number");
  CHECK_REFUSED(tei, R"("text")", 400, "validation", "must be a JSON object, not string");
  CHECK_REFUSED(kserve, "null", 400, "validation", "must be a JSON object, not null");
}

TEST_CASE("request_parsing: malformed JSON is 400 invalid_json with the byte offset") {
  CHECK_REFUSED(tei, R"({"inputs": x})", 400, "invalid_json", "invalid JSON at byte 12: ");
  CHECK_REFUSED(tei, R"({"inputs": "a")", 400, "invalid_json", "invalid JSON at byte 15: ");
  CHECK_REFUSED(tei, "", 400, "invalid_json", "invalid JSON at byte ");
  CHECK_REFUSED(tei, R"({"inputs": "a"} trailing)", 400, "invalid_json", "invalid JSON at byte ");
  // A raw control character in a string is malformed JSON, not an input's problem.
  CHECK_REFUSED(tei, "{\"inputs\": \"a\nb\"}", 400, "invalid_json", "control character U+000A");
  // The message carries no nlohmann tag or line/column prefix.
  const RequestError e = refusal(tei, R"({"inputs": x})");
  CHECK(std::string(e.what()).find("json.exception") == std::string::npos);
  CHECK(std::string(e.what()).find("line 1") == std::string::npos);
}

TEST_CASE("request_parsing: a 10,000-deep bracket bomb is 400 invalid_json, not a crash") {
  for (const Parser* parse : {&tei, &endpoint, &invocations, &kserve}) {
    CHECK_REFUSED(*parse, std::string(10000, '['), 400, "invalid_json", "invalid JSON at byte 65: nested deeper than 64 levels");
    CHECK_REFUSED(*parse, "{\"inputs\": " + nested(10000, "\"a\""), 400, "invalid_json", "nested deeper than 64 levels");
    CHECK_REFUSED(*parse, std::string(10000, '{'), 400, "invalid_json", "invalid JSON at byte");
  }
}

TEST_CASE("request_parsing: 64 levels parse, the 65th is refused at its byte") {
  // The body object is level 1, so 63 arrays under "inputs" make 64 levels: a shape error.
  CHECK_REFUSED(tei, "{\"inputs\":" + nested(63, "\"a\"") + "}", 400, "validation", "inputs[0] must be");
  // 64 arrays: the 64th '[' (byte 10 + 64) is one level too deep.
  CHECK_REFUSED(tei, "{\"inputs\":" + nested(64, "\"a\"") + "}", 400, "invalid_json",
                "invalid JSON at byte 74: nested deeper than 64 levels");
  // Brackets inside strings do not count.
  const std::string body = "{\"inputs\":\"" + std::string(100, '[') + "\", \"x\":" + nested(64, "1") + "}";
  const size_t at = body.find("\"x\":") + 4 + 64;  // 1-based byte of the 64th '[' under "x"
  CHECK_REFUSED(tei, body, 400, "invalid_json", "invalid JSON at byte " + std::to_string(at) + ":");
}

TEST_CASE("request_parsing: invalid UTF-8 is 422 tokenizer naming the input and the byte") {
  // {"inputs":"ab = 13 bytes; the bad byte is the 14th.
  CHECK_REFUSED(tei, "{\"inputs\":\"ab\xff\"}", 422, "tokenizer", "input 0: invalid UTF-8 at byte 14 of the body");
  CHECK_REFUSED(tei, "{\"inputs\":[\"a\",\"b\xc3\"]}", 422, "tokenizer", "input 0: invalid UTF-8");
  // A lone surrogate escape cannot be UTF-8 either.
  CHECK_REFUSED(tei, R"({"inputs":[["a"],["\ud800"]]})", 422, "tokenizer", "input 1: invalid UTF-8");
  CHECK_REFUSED(tei, R"({"inputs":[["a"],["b","\udc00x"]]})", 422, "tokenizer", "input 1: invalid UTF-8");
}

TEST_CASE("request_parsing: invalid UTF-8 in a batch names the right input") {
  CHECK_REFUSED(tei, "{\"inputs\":[[\"ok\"],[\"fine\",\"pair\"],[\"x\xff\"]]}", 422, "tokenizer",
                "input 2: invalid UTF-8");
  CHECK_REFUSED(tei, "{\"inputs\":[[\"a\"],[\"b\",\"c\xfe\"],[\"d\"]]}", 422, "tokenizer", "input 1: invalid UTF-8");
  CHECK_REFUSED(tei, "{\"inputs\":[[\"a\"],\"b\",\"\xff\"]}", 422, "tokenizer", "input 2: invalid UTF-8");
  CHECK_REFUSED(tei, "{\"truncate\":true,\"inputs\":[[\"a\"],[\"b\"],[\"c\"],[\"\xe2\x82\"]]}", 422, "tokenizer",
                "input 3: invalid UTF-8");
  // The byte is the body's: 1-based offset of the bad byte.
  const std::string body = "{\"inputs\":[[\"a\"],[\"b\xff\"]]}";
  const size_t bad = body.find('\xff') + 1;
  CHECK_REFUSED(tei, body, 422, "tokenizer", "input 1: invalid UTF-8 at byte " + std::to_string(bad) + " of the body");
}

TEST_CASE("request_parsing: invalid UTF-8 outside an input's text is 400 invalid_json") {
  CHECK_REFUSED(tei, "{\"inputs\":\"a\",\"truncation_direction\":\"\xff\"}", 400, "invalid_json", "ill-formed UTF-8");
  CHECK_REFUSED(tei, "{\"\xff\":\"a\"}", 400, "invalid_json", "invalid JSON at byte 3:");
  CHECK_REFUSED(tei, "{\"inputs\":{\"\xff\":1}}", 400, "invalid_json", "invalid JSON");
  CHECK_REFUSED(tei, "{\"inputs\":\xff}", 400, "invalid_json", "invalid JSON at byte 11:");
  CHECK_REFUSED(tei, "\"\xff\"", 400, "invalid_json", "invalid JSON");
}

// ---- Hugging Face endpoint POST / ----

TEST_CASE("request_parsing: the endpoint accepts TEI's inputs and {text, text_pair} objects") {
  auto r = serving::parse_endpoint_request(R"({"inputs": "a"})");
  check_inputs(r, {one("a")});
  CHECK_FALSE(r.batch);
  r = serving::parse_endpoint_request(R"({"inputs": ["a", "b"]})");
  check_inputs(r, {pair("a", "b")});
  r = serving::parse_endpoint_request(R"({"inputs": {"text": "a", "text_pair": "b"}})");
  check_inputs(r, {pair("a", "b")});
  CHECK_FALSE(r.batch);
  r = serving::parse_endpoint_request(R"({"inputs": {"text": "a", "text_pair": null}})");
  check_inputs(r, {one("a")});
  r = serving::parse_endpoint_request(R"({"inputs": [{"text": "a"}, {"text": "b", "text_pair": "c"}, ["d"], "e"]})");
  check_inputs(r, {one("a"), pair("b", "c"), one("d"), one("e")});
  CHECK(r.batch);
}

TEST_CASE("request_parsing: the endpoint reads top_k, function_to_apply and truncation") {
  auto r = serving::parse_endpoint_request(
      R"({"inputs": "a", "parameters": {"top_k": 2, "function_to_apply": "sigmoid", "truncation": false, "padding": true}})");
  REQUIRE(r.top_k);
  CHECK(*r.top_k == 2);
  CHECK(r.function == ScoreFunction::sigmoid);
  CHECK_FALSE(r.truncate);
  CHECK(serving::parse_endpoint_request(R"({"inputs": "a", "parameters": {"function_to_apply": "none"}})").function ==
        ScoreFunction::none);
  CHECK(serving::parse_endpoint_request(R"({"inputs": "a", "parameters": {"function_to_apply": "softmax"}})").function ==
        ScoreFunction::softmax);
  r = serving::parse_endpoint_request(R"({"inputs": "a", "parameters": null})");
  CHECK_FALSE(r.top_k);
  CHECK(r.function == ScoreFunction::softmax);
  CHECK(r.truncate);
  r = serving::parse_endpoint_request(R"({"inputs": "a", "parameters": {"top_k": null}})");
  CHECK_FALSE(r.top_k);
  // TEI's raw_scores on the endpoint means logits.
  r = serving::parse_endpoint_request(R"({"inputs": "a", "raw_scores": true, "truncate": false})");
  CHECK(r.function == ScoreFunction::none);
  CHECK_FALSE(r.truncate);
}

TEST_CASE("request_parsing: the endpoint refuses bad parameters and objects naming them") {
  for (const char* bad : {"0", "-1", "1.5", "\"2\"", "true"})
    CHECK_REFUSED(endpoint, std::string(R"({"inputs": "a", "parameters": {"top_k": )") + bad + "}}", 400, "validation",
                  "parameters.top_k must be a positive integer");
  CHECK_REFUSED(endpoint, R"({"inputs": "a", "parameters": {"function_to_apply": "relu"}})", 400, "validation",
                "parameters.function_to_apply must be \"softmax\", \"sigmoid\" or \"none\", not string \"relu\"");
  CHECK_REFUSED(endpoint, R"({"inputs": "a", "parameters": {"truncation": "no"}})", 400, "validation",
                "parameters.truncation must be true or false");
  CHECK_REFUSED(endpoint, R"({"inputs": "a", "parameters": [1]})", 400, "validation", "parameters must be an object");
  CHECK_REFUSED(endpoint, R"({"inputs": {"text_pair": "b"}})", 400, "validation", "inputs has no \"text\"");
  CHECK_REFUSED(endpoint, R"({"inputs": [{"text": "a"}, {"txt": "b"}]})", 400, "validation",
                "inputs[1] has an unknown field 'txt' (expected text, text_pair)");
  CHECK_REFUSED(endpoint, R"({"inputs": [{"text": 5}]})", 400, "validation", "inputs[0].text must be a string, not number 5");
  CHECK_REFUSED(endpoint, R"({"inputs": [{"text": "a", "text_pair": ["b"]}]})", 400, "validation",
                "inputs[0].text_pair must be a string");
  CHECK_REFUSED(endpoint, R"({"inputs": [{"text": "a"}, 7]})", 400, "validation",
                "inputs[1] must be a string, a [text, pair] list of 1-2 strings or a {\"text\", \"text_pair\"} object");
  CHECK_REFUSED(endpoint, R"({"inputs": ["a", "b", "c"]})", 400, "validation", "inputs is a list of 3 values");
}

TEST_CASE("request_parsing: the endpoint names the input with invalid UTF-8 in objects") {
  CHECK_REFUSED(endpoint, "{\"inputs\":[{\"text\":\"a\"},{\"text\":\"b\",\"text_pair\":\"\xff\"}]}", 422, "tokenizer",
                "input 1: invalid UTF-8");
  CHECK_REFUSED(endpoint, "{\"inputs\":{\"text\":\"\xff\"}}", 422, "tokenizer", "input 0: invalid UTF-8");
  CHECK_REFUSED(endpoint, "{\"parameters\":{},\"inputs\":[[\"a\"],[\"b\"],[\"\xff\"]]}", 422, "tokenizer",
                "input 2: invalid UTF-8");
}

// ---- MLflow / SageMaker /invocations ----

TEST_CASE("request_parsing: invocations reads a list of strings as a batch, not a pair") {
  auto r = serving::parse_invocations_request(R"({"inputs": ["a", "b"]})");
  check_inputs(r, {one("a"), one("b")});
  CHECK(r.batch);
  r = serving::parse_invocations_request(R"({"instances": ["a", ["b", "c"], {"text": "d", "text_pair": "e"}, ["f"]]})");
  check_inputs(r, {one("a"), pair("b", "c"), pair("d", "e"), one("f")});
  r = serving::parse_invocations_request(R"({"inputs": "t"})");
  check_inputs(r, {one("t")});
  CHECK_FALSE(r.batch);
  r = serving::parse_invocations_request(R"({"inputs": {"text": "a", "text_pair": "b"}})");
  check_inputs(r, {pair("a", "b")});
  CHECK_FALSE(r.batch);
  CHECK(r.truncate);
}

TEST_CASE("request_parsing: invocations reads columns, dataframe_split and dataframe_records") {
  auto r = serving::parse_invocations_request(R"({"inputs": {"text": ["a", "b"], "text_pair": ["x", "y"]}})");
  check_inputs(r, {pair("a", "x"), pair("b", "y")});
  CHECK(r.batch);
  r = serving::parse_invocations_request(R"({"inputs": {"text": ["a", "b"]}})");
  check_inputs(r, {one("a"), one("b")});

  r = serving::parse_invocations_request(
      R"({"dataframe_split": {"index": [0, 1], "columns": ["id", "text", "text_pair"], "data": [[1, "a", "b"], [2, "c", null]]}})");
  check_inputs(r, {pair("a", "b"), one("c")});
  CHECK(r.batch);
  r = serving::parse_invocations_request(R"({"dataframe_split": {"columns": ["text"], "data": [["a"], ["b"]]}})");
  check_inputs(r, {one("a"), one("b")});

  r = serving::parse_invocations_request(
      R"({"dataframe_records": [{"text": "a", "id": 3}, {"text": "b", "text_pair": "c"}]})");
  check_inputs(r, {one("a"), pair("b", "c")});

  r = serving::parse_invocations_request(R"({"inputs": ["a"], "params": {"truncate": false}})");
  CHECK_FALSE(r.truncate);
}

TEST_CASE("request_parsing: invocations needs exactly one of its input forms") {
  CHECK_REFUSED(invocations, R"({})", 400, "validation",
                "needs one of \"inputs\", \"instances\", \"dataframe_split\" or \"dataframe_records\"");
  CHECK_REFUSED(invocations, R"({"inputs": ["a"], "instances": ["b"]})", 400, "validation",
                "holds both \"inputs\" and \"instances\": send exactly one");
  CHECK_REFUSED(invocations, R"({"inputs": ["a"], "dataframe_records": []})", 400, "validation", "holds both");
}

TEST_CASE("request_parsing: invocations refuses wrong shapes naming the field and index") {
  CHECK_REFUSED(invocations, R"({"inputs": []})", 400, "empty", "inputs is empty");
  CHECK_REFUSED(invocations, R"({"instances": []})", 400, "empty", "instances is empty");
  CHECK_REFUSED(invocations, R"({"instances": ["a", 5]})", 400, "validation", "instances[1] must be a string, a [text, pair]");
  CHECK_REFUSED(invocations, R"({"inputs": [["a", "b", "c"]]})", 400, "validation", "inputs[0] must be");
  CHECK_REFUSED(invocations, R"({"inputs": 5})", 400, "validation", "inputs must be a list of inputs");
  CHECK_REFUSED(invocations, R"({"inputs": {"text": ["a"], "label": ["x"]}})", 400, "validation",
                "inputs has an unknown column 'label'");
  CHECK_REFUSED(invocations, R"({"inputs": {"text": ["a", "b"], "text_pair": ["x"]}})", 400, "validation",
                "inputs.text_pair must be a list of 2 strings");
  CHECK_REFUSED(invocations, R"({"inputs": {"text": ["a", 3]}})", 400, "validation", "inputs.text[1] must be a string");
  CHECK_REFUSED(invocations, R"({"inputs": {"text": []}})", 400, "empty", "inputs is empty");
  CHECK_REFUSED(invocations, R"({"dataframe_split": {"columns": ["query", "title"], "data": [["a", "b"]]}})", 400,
                "validation", "dataframe_split.columns has no \"text\" column");
  CHECK_REFUSED(invocations, R"({"dataframe_split": {"columns": ["text", "text_pair"], "data": [["a", "b"], ["c"]]}})",
                400, "validation", "dataframe_split.data[1] must be a row of 2 values");
  CHECK_REFUSED(invocations, R"({"dataframe_split": {"columns": ["text"], "data": [[5]]}})", 400, "validation",
                "dataframe_split.data[0][0] (text) must be a string");
  CHECK_REFUSED(invocations, R"({"dataframe_split": {"columns": ["text"], "data": []}})", 400, "empty",
                "dataframe_split.data is empty");
  CHECK_REFUSED(invocations, R"({"dataframe_split": {"data": [["a"]]}})", 400, "validation", "needs \"columns\"");
  CHECK_REFUSED(invocations, R"({"dataframe_split": ["a"]})", 400, "validation", "dataframe_split must be an object");
  CHECK_REFUSED(invocations, R"({"dataframe_records": [{"text": "a"}, {"title": "b"}]})", 400, "validation",
                "dataframe_records[1] has no \"text\"");
  CHECK_REFUSED(invocations, R"({"dataframe_records": [{"text": "a"}, "b"]})", 400, "validation",
                "dataframe_records[1] must be an object");
  CHECK_REFUSED(invocations, R"({"dataframe_records": {"text": "a"}})", 400, "validation",
                "dataframe_records must be a list of records");
  CHECK_REFUSED(invocations, R"({"dataframe_records": []})", 400, "empty", "dataframe_records is empty");
  CHECK_REFUSED(invocations, R"({"inputs": ["a"], "params": {"truncate": 0}})", 400, "validation",
                "params.truncate must be true or false");
}

TEST_CASE("request_parsing: invocations names the input with invalid UTF-8 in every form") {
  // A list of strings is a batch here, so the third string is input 2 (TEI would call it one pair).
  CHECK_REFUSED(invocations, "{\"inputs\":[\"a\",\"b\",\"\xff\"]}", 422, "tokenizer", "input 2: invalid UTF-8");
  CHECK_REFUSED(invocations, "{\"instances\":[{\"text\":\"a\"},{\"text\":\"\xff\"}]}", 422, "tokenizer",
                "input 1: invalid UTF-8");
  CHECK_REFUSED(invocations, "{\"inputs\":\"\xff\"}", 422, "tokenizer", "input 0: invalid UTF-8");
  CHECK_REFUSED(invocations, "{\"inputs\":{\"text\":[\"a\",\"b\",\"c\xff\"]}}", 422, "tokenizer", "input 2: invalid UTF-8");
  CHECK_REFUSED(invocations,
                "{\"dataframe_split\":{\"columns\":[\"text\",\"text_pair\"],\"data\":[[\"a\",\"b\"],[\"c\",\"\xff\"]]}}",
                422, "tokenizer", "input 1: invalid UTF-8");
  CHECK_REFUSED(invocations, "{\"dataframe_records\":[{\"text\":\"a\"},{\"text\":\"b\"},{\"text\":\"\xff\"}]}", 422,
                "tokenizer", "input 2: invalid UTF-8");
  CHECK_REFUSED(invocations, "{\"dataframe_split\":{\"columns\":[\"te\xffxt\"],\"data\":[]}}", 400, "invalid_json",
                "invalid JSON");
}

// ---- KServe v2 infer ----

TEST_CASE("request_parsing: KServe reads the text tensor, id, outputs and parameters") {
  auto r = serving::parse_kserve_request(
      R"({"id": "42", "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}],
          "outputs": [{"name": "label"}, {"name": "score", "parameters": {"binary_data": false}}],
          "parameters": {"truncate": false}})");
  check_inputs(r, {one("a"), one("b")});
  CHECK(r.batch);
  CHECK(r.id == "42");
  CHECK(r.outputs == std::vector<std::string>{"label", "score"});
  CHECK_FALSE(r.truncate);

  r = serving::parse_kserve_request(R"({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}]})");
  check_inputs(r, {one("a")});
  CHECK(r.id.empty());
  CHECK(r.outputs.empty());
  CHECK(r.truncate);
}

TEST_CASE("request_parsing: KServe accepts shape [N] or [N, 1] with flat or nested data") {
  for (const char* tensor : {R"({"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]})",
                             R"({"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]})",
                             R"({"name": "text", "shape": [2], "datatype": "BYTES", "data": [["a"], ["b"]]})",
                             R"({"name": "input_text", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]})"}) {
    CAPTURE(tensor);
    check_inputs(serving::parse_kserve_request(std::string("{\"inputs\": [") + tensor + "]}"), {one("a"), one("b")});
  }
}

TEST_CASE("request_parsing: KServe pairs text with text_pair in any order") {
  auto r = serving::parse_kserve_request(
      R"({"inputs": [{"name": "text_pair", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
                     {"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]}]})");
  check_inputs(r, {pair("a", "x"), pair("b", "y")});
  r = serving::parse_kserve_request(
      R"({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
          "outputs": [{"name": "probabilities"}, {"name": "probabilities"}, {"name": "value"}]})");
  CHECK(r.outputs == std::vector<std::string>{"probabilities", "value"});
}

TEST_CASE("request_parsing: KServe refuses wrong tensors naming inputs[i] and the field") {
  const auto body = [](const std::string& tensor) { return "{\"inputs\": [" + tensor + "]}"; };
  CHECK_REFUSED(kserve, R"({"id": "1"})", 400, "validation", "the request has no \"inputs\"");
  CHECK_REFUSED(kserve, R"({"inputs": []})", 400, "validation", "inputs holds no tensor");
  CHECK_REFUSED(kserve, R"({"inputs": "a"})", 400, "validation", "inputs must be a list of tensors");
  CHECK_REFUSED(kserve, body("5"), 400, "validation", "inputs[0] must be a tensor object");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]})"), 400, "validation",
                "inputs[0].datatype must be \"BYTES\" (texts), not string \"FP32\"");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [1], "data": ["a"]})"), 400, "validation",
                "inputs[0] has no \"datatype\"");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "datatype": "BYTES", "data": ["a"]})"), 400, "validation",
                "inputs[0] has no \"shape\"");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [1], "datatype": "BYTES"})"), 400, "validation",
                "inputs[0] has no \"data\"");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]})"), 400,
                "validation", "inputs[0].shape [3] does not match 2 data elements");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [3, 1], "datatype": "BYTES", "data": [["a"], ["b"]]})"), 400,
                "validation", "inputs[0].shape [3,1] does not match 2 data elements");
  for (const char* shape : {"[2, 2]", "[-1]", "\"2\"", "[]", "[1, 1, 1]", "[1.5]"})
    CHECK_REFUSED(kserve, body(std::string(R"({"name": "text", "datatype": "BYTES", "data": ["a", "b"], "shape": )") +
                               shape + "}"),
                  400, "validation", "inputs[0].shape must be [N] or [N, 1]");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", 5]})"), 400,
                "validation", "inputs[0].data[1] must be a string, not number 5");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [2], "datatype": "BYTES", "data": "ab"})"), 400, "validation",
                "inputs[0].data must be a list of strings");
  CHECK_REFUSED(kserve, body(R"({"name": "text", "shape": [0], "datatype": "BYTES", "data": []})"), 400, "empty",
                "inputs[0] is empty");
  CHECK_REFUSED(kserve,
                body(R"({"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
                        {"name": "text_pair", "shape": [1], "datatype": "BYTES", "data": ["x"]})"),
                400, "validation", "inputs[1] (text_pair) has 1 elements; text has 2");
  CHECK_REFUSED(kserve,
                body(R"({"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                        {"name": "query", "shape": [1], "datatype": "BYTES", "data": ["x"]})"),
                400, "validation", "inputs[1] is named string \"query\": the model's inputs are \"text\" and \"text_pair\"");
  CHECK_REFUSED(kserve,
                body(R"({"name": "text_pair", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                        {"name": "text_pair", "shape": [1], "datatype": "BYTES", "data": ["y"]})"),
                400, "validation", "inputs[1] is named");
  const std::string text = R"({"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]})";
  CHECK_REFUSED(kserve, "{\"inputs\": [" + text + "], \"outputs\": [{\"name\": \"logits\"}]}", 400, "validation",
                "outputs[0].name 'logits' is not an output of the model");
  CHECK_REFUSED(kserve, "{\"inputs\": [" + text + "], \"outputs\": [{\"name\": \"label\"}, {}]}", 400, "validation",
                "outputs[1] has no \"name\"");
  CHECK_REFUSED(kserve, "{\"inputs\": [" + text + "], \"outputs\": {\"name\": \"label\"}}", 400, "validation",
                "outputs must be a list");
  CHECK_REFUSED(kserve, "{\"inputs\": [" + text + "], \"outputs\": [\"label\"]}", 400, "validation",
                "outputs[0] must be an object with a \"name\"");
  CHECK_REFUSED(kserve, "{\"id\": 42, \"inputs\": [" + text + "]}", 400, "validation", "id must be a string, not number 42");
  CHECK_REFUSED(kserve, "{\"inputs\": [" + text + "], \"parameters\": {\"truncate\": \"x\"}}", 400, "validation",
                "parameters.truncate must be true or false");
}

TEST_CASE("request_parsing: KServe names the element with invalid UTF-8") {
  CHECK_REFUSED(kserve, "{\"inputs\":[{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[3],\"data\":[\"a\",\"b\",\"\xff\"]}]}",
                422, "tokenizer", "input 2: invalid UTF-8");
  CHECK_REFUSED(kserve,
                "{\"inputs\":[{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[3,1],\"data\":[[\"a\"],[\"\xff\"],[\"c\"]]}]}",
                422, "tokenizer", "input 1: invalid UTF-8");
  CHECK_REFUSED(kserve,
                "{\"inputs\":[{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\",\"b\"]},"
                "{\"name\":\"text_pair\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"x\",\"\xc0\"]}]}",
                422, "tokenizer", "input 1: invalid UTF-8");
  CHECK_REFUSED(kserve, "{\"inputs\":[{\"name\":\"te\xffxt\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]}]}", 400,
                "invalid_json", "invalid JSON");
  CHECK_REFUSED(kserve, "{\"id\":\"\xff\",\"inputs\":[]}", 400, "invalid_json", "invalid JSON");
}
