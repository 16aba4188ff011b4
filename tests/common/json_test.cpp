#include "common/json.h"

#include <doctest/doctest.h>

#include <string>

#include "common/error.h"

using namespace recmodel;

TEST_CASE("regression: JSON nested 100k arrays deep is refused by the bounded parser, not a stack overflow") {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  try {
    parse_json(deep, "tokenizer.json");
    FAIL("accepted");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()) == "tokenizer.json: JSON nested deeper than 64 levels");
  }
  CHECK_THROWS_AS(parse_ordered_json(deep, "x"), DataError);
}

TEST_CASE("the bounded JSON parser accepts nesting up to its limit and reports syntax errors with the source") {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  CHECK(parse_json(ok, "a").is_array());
  std::string too_deep = std::string(65, '[') + std::string(65, ']');
  CHECK_THROWS_AS(parse_json(too_deep, "a"), DataError);
  try {
    parse_json("{\"a\": \x01}", "config.json");
    FAIL("accepted");
  } catch (const DataError& e) {
    std::string message = e.what();
    CHECK(message.rfind("config.json: not valid JSON: ", 0) == 0);
    CHECK(message.find('\x01') == std::string::npos);
  }
}

TEST_CASE("json_excerpt is short, escapes control characters and does not descend into deep values") {
  nlohmann::json value = parse_json(R"({"a": "line1\nline2\u001b[31m", "b": [[[[[[1]]]]]], "c": ")" +
                                        std::string(500, 'x') + "\"}",
                                    "v");
  std::string text = json_excerpt(value, 60);
  CHECK(text.find('\n') == std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.size() <= 64);  // 60 bytes and the ellipsis
  CHECK(json_excerpt(nlohmann::json(3)) == "3");
  CHECK(json_excerpt(value["b"], 100) == "[[[[…]]]]");
  CHECK(json_type_name(value["a"]) == "string");
  CHECK(json_type_name(nlohmann::json(2.5)) == "number");
}
