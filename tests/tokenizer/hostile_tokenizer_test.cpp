// Crafted tokenizer files (issue 13): tokenizer.json and tokenizer_config.json nested 100k deep,
// of the wrong root type or with fields of the wrong types. Each is a DataError (exit 3) naming
// the file, never a stack overflow or an internal error.
#include <doctest/doctest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tests/hostile.h"
#include "tests/support.h"
#include "tokenizer/bert_tokenizer.h"

using namespace recmodel;
using recmodel::tokenizer::BertTokenizer;
using recmodel::tokenizer::TokenizerConfig;
using recmodel::tokenizer::Vocab;
namespace t = recmodel::testing;

namespace {

const std::string kDeep = std::string(100'000, '[') + std::string(100'000, ']');

// A well-formed tokenizer.json of a small vocabulary, as recmodel writes it.
nlohmann::json good_tokenizer_json() {
  BertTokenizer tokenizer(Vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "shoe", "##s"}),
                          TokenizerConfig());
  return tokenizer.tokenizer_json();
}

// Runs `load` and returns the message of the DataError it must throw.
std::string refusal(const std::function<void()>& load) { return t::refusal_message(load); }

// Writes `text` as tokenizer.json and returns the message of its refusal.
std::string tokenizer_json_refusal(const t::TempDir& tmp, const std::string& text) {
  const auto file = tmp / "tokenizer.json";
  t::write_text(file, text);
  const std::string message = refusal([&] { BertTokenizer::from_tokenizer_json(file, TokenizerConfig()); });
  CHECK(message.find(file.string() + ": ") == 0);
  return message;
}

}  // namespace

TEST_CASE("tokenizer.json: 100k nested arrays in the normalizer are refused as too deep, not overflowing the stack") {
  t::TempDir tmp;
  // The old reader copied the subtree (doc.value("normalizer")) recursively.
  std::string text = good_tokenizer_json().dump();
  const std::string key = "\"normalizer\":";
  const size_t at = text.find(key);
  REQUIRE(at != std::string::npos);
  text.insert(at + key.size(), "{\"deep\":" + kDeep + ",\"x\":");
  text.insert(text.find('}', text.find("BertNormalizer")) + 1, "}");
  CHECK(tokenizer_json_refusal(tmp, text) == (tmp / "tokenizer.json").string() + ": JSON nested deeper than 64 levels");
  CHECK(tokenizer_json_refusal(tmp, kDeep) == (tmp / "tokenizer.json").string() + ": JSON nested deeper than 64 levels");
}

TEST_CASE("tokenizer.json: a root that is not an object or fields of the wrong types are refused naming the field") {
  t::TempDir tmp;
  CHECK(tokenizer_json_refusal(tmp, "[1, 2, 3]").find("expected a JSON object, found array") != std::string::npos);
  CHECK(tokenizer_json_refusal(tmp, "\"WordPiece\"").find("expected a JSON object, found string") != std::string::npos);
  struct Case {
    std::function<void(nlohmann::json&)> change;
    std::string expected;
  };
  const Case cases[] = {
      {[](nlohmann::json& d) { d["model"]["vocab"] = nlohmann::json::array({"[PAD]", "[UNK]"}); },
       "model.vocab is not a token-to-id object, found [\"[PAD]\",\"[UNK]\"]"},
      {[](nlohmann::json& d) { d["model"]["vocab"] = "vocab.txt"; }, "model.vocab is not a token-to-id object"},
      {[](nlohmann::json& d) { d["model"]["vocab"]["red"] = "5"; }, "model.vocab ids must be 0..7 once each; \"red\" has \"5\""},
      {[](nlohmann::json& d) { d["model"]["vocab"]["red"] = 5.5; }, "\"red\" has 5.5"},
      {[](nlohmann::json& d) { d["model"]["vocab"]["red"] = -1; }, "\"red\" has -1"},
      {[](nlohmann::json& d) { d["model"]["vocab"]["red"] = 18446744073709551615u; }, "\"red\" has 18446744073709551615"},
      {[](nlohmann::json& d) { d["model"]["vocab"]["red"] = 6; }, "\"shoe\" has 6"},  // an id twice
      {[](nlohmann::json& d) { d["model"] = "WordPiece"; }, "the tokenizer model is a JSON string"},
      {[](nlohmann::json& d) { d["model"]["type"] = 7; }, "the tokenizer model is unknown"},
      {[](nlohmann::json& d) { d["model"]["unk_token"] = 1; }, "unk_token must be a string, found 1"},
      {[](nlohmann::json& d) { d["model"]["continuing_subword_prefix"] = nlohmann::json::array(); },
       "continuing_subword_prefix must be a string, found []"},
      {[](nlohmann::json& d) { d["model"]["max_input_chars_per_word"] = "100"; },
       "max_input_chars_per_word must be an integer, found \"100\""},
      {[](nlohmann::json& d) { d["model"]["max_input_chars_per_word"] = -100; }, "max_input_chars_per_word is -100"},
      {[](nlohmann::json& d) { d["normalizer"]["lowercase"] = "yes"; }, "lowercase must be true or false, found \"yes\""},
      {[](nlohmann::json& d) { d["normalizer"]["clean_text"] = 1; }, "clean_text must be true or false, found 1"},
      {[](nlohmann::json& d) { d["normalizer"]["strip_accents"] = "no"; },
       "strip_accents must be true, false or null, found \"no\""},
      {[](nlohmann::json& d) { d["normalizer"] = nlohmann::json::array({1}); }, "the normalizer is a JSON array"},
      {[](nlohmann::json& d) { d["pre_tokenizer"] = 3; }, "the pre-tokenizer is a JSON number"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    nlohmann::json doc = good_tokenizer_json();
    c.change(doc);
    CHECK(tokenizer_json_refusal(tmp, doc.dump()).find(c.expected) != std::string::npos);
  }
  // The unchanged file reads.
  t::write_text(tmp / "good.json", good_tokenizer_json().dump());
  CHECK(BertTokenizer::from_tokenizer_json(tmp / "good.json", TokenizerConfig()).vocab().size() == 8);
}

TEST_CASE("tokenizer_config.json: 100k nested arrays or fields of the wrong types are refused naming the field") {
  t::TempDir tmp;
  const auto file = tmp / "tokenizer_config.json";
  auto config_refusal = [&](const std::string& text) {
    t::write_text(file, text);
    const std::string message = refusal([&] { TokenizerConfig::from_json_file(file); });
    CHECK(message.find(file.string() + ": ") == 0);
    return message;
  };
  CHECK(config_refusal(kDeep) == file.string() + ": JSON nested deeper than 64 levels");
  CHECK(config_refusal("{\"added_tokens_decoder\": " + kDeep + "}") == file.string() + ": JSON nested deeper than 64 levels");
  CHECK(config_refusal("[]").find("expected a JSON object, found array") != std::string::npos);
  CHECK(config_refusal(R"({"do_lower_case": "yes"})").find("\"do_lower_case\" must be true or false, found \"yes\"") !=
        std::string::npos);
  CHECK(config_refusal(R"({"model_max_length": "512"})").find("\"model_max_length\" must be a number, found \"512\"") !=
        std::string::npos);
  CHECK(config_refusal(R"({"unk_token": 3})").find("\"unk_token\" must be a token") != std::string::npos);
  CHECK(config_refusal(R"({"sep_token": {"content": [1]}})").find("\"sep_token\" must be a token") != std::string::npos);
}
