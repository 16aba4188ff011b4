#include "tokenizer/bert_tokenizer.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "tests/support.h"

using recmodel::tokenizer::BertTokenizer;
using recmodel::tokenizer::Encoding;
using recmodel::tokenizer::TokenizerConfig;
using recmodel::tokenizer::Vocab;
namespace t = recmodel::testing;

namespace {

BertTokenizer shared_tokenizer(const std::string& vocab_name, bool lowercase) {
  TokenizerConfig config;
  config.do_lower_case = lowercase;
  return BertTokenizer::from_vocab_file(t::shared_data("vocab/" + vocab_name), config);
}

bool have_shared_data() {
  if (!t::shared_data("vocab").empty()) return true;
  MESSAGE("../shared/data is missing (the Hugging Face vocabularies and cases live there)");
  return false;
}

// A small vocabulary for cases that need exact control over entries.
BertTokenizer tiny_tokenizer(bool lowercase = true) {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
                                     "runn", "##ing", ",", "hello", "world", "!", "σοφος", "οδος", "ς",
                                     "a", "b", "c", "d", "e", "f", "g", "h", "x", "##x", "生", "𠀀"};
  TokenizerConfig config;
  config.do_lower_case = lowercase;
  return BertTokenizer(Vocab::from_tokens(tokens), config);
}

std::vector<int32_t> ids_of(const BertTokenizer& tokenizer, const std::string& text) {
  std::vector<int32_t> ids;
  tokenizer.tokenize_ids(text, ids);
  return ids;
}

}  // namespace

TEST_CASE("every Hugging Face case in bert-expected.json gives the same ids") {
  REQUIRE(have_shared_data());
  auto cases = nlohmann::json::parse(t::read_text(t::shared_data("tokenizer-cases/bert-expected.json")));
  struct Model {
    const char* key;
    const char* vocab;
    bool lowercase;
  };
  for (const Model& model : {Model{"bert-base-uncased", "bert-base-uncased.txt", true},
                             Model{"google-bert/bert-base-uncased", "bert-base-uncased.txt", true},
                             Model{"distilbert/distilbert-base-multilingual-cased", "bert-base-multilingual-cased.txt",
                                   false}}) {
    BertTokenizer tokenizer = shared_tokenizer(model.vocab, model.lowercase);
    REQUIRE(cases.contains(model.key));
    for (const auto& item : cases[model.key]) {
      std::string input = item["input"].get<std::string>();
      CAPTURE(model.key);
      CAPTURE(input);
      Encoding encoding = tokenizer.encode(input, std::nullopt, 512);
      CHECK(encoding.ids == item["encoded"]["input_ids"].get<std::vector<int32_t>>());
      CHECK(encoding.attention_mask == item["encoded"]["attention_mask"].get<std::vector<int32_t>>());
      if (item["encoded"].contains("token_type_ids"))
        CHECK(encoding.type_ids == item["encoded"]["token_type_ids"].get<std::vector<int32_t>>());
    }
  }
}

TEST_CASE("the long French paragraphs give Hugging Face's tokens and ids") {
  REQUIRE(have_shared_data());
  struct Case {
    const char* file;
    const char* vocab;
    bool lowercase;
  };
  for (const Case& c : {Case{"bert-uncased-long-paragraph.json", "bert-base-uncased.txt", true},
                        Case{"bert-cased-long-paragraph.json", "bert-base-multilingual-cased.txt", false}}) {
    CAPTURE(c.file);
    auto expected = nlohmann::json::parse(t::read_text(t::shared_data(std::string("tokenizer-cases/") + c.file)));
    BertTokenizer tokenizer = shared_tokenizer(c.vocab, c.lowercase);
    std::string text = expected["text"].get<std::string>();
    CHECK(tokenizer.tokenize(text) == expected["bpe_tokens"].get<std::vector<std::string>>());
    Encoding encoding = tokenizer.encode(text, std::nullopt, 0);
    CHECK(encoding.ids == expected["token_ids"].get<std::vector<int32_t>>());
  }
}

TEST_CASE("WordPiece splits greedily with ## continuations and gives [UNK] for unknown words") {
  BertTokenizer tokenizer = tiny_tokenizer();
  CHECK(tokenizer.tokenize("unaffable running") == std::vector<std::string>{"un", "##aff", "##able", "runn", "##ing"});
  CHECK(tokenizer.tokenize("Hello, WORLD!") == std::vector<std::string>{"hello", ",", "world", "!"});
  // One unmatched piece makes the whole word unknown, not a partial match.
  CHECK(tokenizer.tokenize("unaffablez") == std::vector<std::string>{"[UNK]"});
}

TEST_CASE("words longer than 100 characters become a single [UNK]") {
  BertTokenizer tokenizer = tiny_tokenizer();
  CHECK(ids_of(tokenizer, std::string(100, 'x')).size() == 100);
  CHECK(tokenizer.tokenize(std::string(101, 'x')) == std::vector<std::string>{"[UNK]"});
  // The limit counts characters, not bytes: 60 two-byte characters are not too long.
  std::string sixty_sigmas;
  for (int i = 0; i < 60; ++i) sixty_sigmas += "ς";
  CHECK(tokenizer.tokenize(sixty_sigmas).size() == 1);
  CHECK(tokenizer.tokenize(sixty_sigmas)[0] == "[UNK]");  // no ##ς entry
}

TEST_CASE("text cleaning drops control characters and U+FFFD and maps Unicode spaces") {
  BertTokenizer tokenizer = tiny_tokenizer();
  CHECK(tokenizer.tokenize("hel\x01lo\x7f") == std::vector<std::string>{"hello"});
  CHECK(tokenizer.tokenize("hel\xEF\xBF\xBDlo") == std::vector<std::string>{"hello"});    // U+FFFD
  CHECK(tokenizer.tokenize("hel\xE2\x80\x8Blo") == std::vector<std::string>{"hello"});    // U+200B (Cf)
  CHECK(tokenizer.tokenize("hello\xE3\x80\x80world") == std::vector<std::string>{"hello", "world"});  // U+3000
  CHECK(tokenizer.tokenize("hello\xE2\x80\xA8world") == std::vector<std::string>{"hello", "world"});  // U+2028
  CHECK(tokenizer.tokenize("hello\xC2\x85world") == std::vector<std::string>{"[UNK]"});  // U+0085 is Cc: dropped, words join
}

TEST_CASE("CJK ideographs are split into single tokens, astral planes included") {
  BertTokenizer tokenizer = tiny_tokenizer();
  CHECK(tokenizer.tokenize("生生") == std::vector<std::string>{"生", "生"});
  CHECK(tokenizer.tokenize("𠀀生") == std::vector<std::string>{"𠀀", "生"});  // U+20000, extension B
}

TEST_CASE("lower-casing follows Hugging Face tokenizers: per character, no final-sigma rule") {
  BertTokenizer tokenizer = tiny_tokenizer();
  // ΟΔΟΣ lower-cases to οδοσ per character (Rust's char::to_lowercase), which is not in the vocab.
  CHECK(tokenizer.tokenize("ΟΔΟΣ") == std::vector<std::string>{"[UNK]"});
  CHECK(tokenizer.tokenize("οδος") == std::vector<std::string>{"οδος"});
}

TEST_CASE("accents are stripped when uncased and kept when cased") {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "café", "Café"};
  TokenizerConfig uncased;
  BertTokenizer lower(Vocab::from_tokens(tokens), uncased);
  CHECK(lower.tokenize("Café") == std::vector<std::string>{"cafe"});
  CHECK(lower.tokenize("Cafe\xCC\x81") == std::vector<std::string>{"cafe"});  // decomposed input
  TokenizerConfig cased;
  cased.do_lower_case = false;
  BertTokenizer keep(Vocab::from_tokens(tokens), cased);
  CHECK(keep.tokenize("Café") == std::vector<std::string>{"Café"});
  TokenizerConfig lower_keep_accents;
  lower_keep_accents.strip_accents = false;
  BertTokenizer lower_accented(Vocab::from_tokens(tokens), lower_keep_accents);
  CHECK(lower_accented.tokenize("CAFÉ") == std::vector<std::string>{"café"});
}

TEST_CASE("special tokens written in the text map to their ids, case-sensitively") {
  BertTokenizer tokenizer = tiny_tokenizer();
  CHECK(tokenizer.tokenize("hello[SEP]world") == std::vector<std::string>{"hello", "[SEP]", "world"});
  // Lower-case "[sep]" is ordinary text: punctuation and an unknown word.
  CHECK(tokenizer.tokenize("[sep]").front() == "[UNK]");
}

TEST_CASE("pairs get [CLS] a [SEP] b [SEP] with token types and longest-first truncation") {
  BertTokenizer tokenizer = tiny_tokenizer();
  Encoding encoding = tokenizer.encode("a b", std::string_view("c"), 0);
  CHECK(encoding.ids == std::vector<int32_t>{2, 17, 18, 3, 19, 3});
  CHECK(encoding.type_ids == std::vector<int32_t>{0, 0, 0, 0, 1, 1});
  CHECK(encoding.attention_mask == std::vector<int32_t>(6, 1));

  // 8 + 3 tokens, budget 8 - 3 = 5: the shorter keeps what it can... both long: split evenly.
  Encoding both_long = tokenizer.encode("a b c d e f g h", std::string_view("a b c d e f g"), 8);
  CHECK(both_long.ids.size() == 8);
  // budget 5: first (longer) keeps 3, second keeps 2 (the odd token goes to the longer).
  CHECK(both_long.ids == std::vector<int32_t>{2, 17, 18, 19, 3, 17, 18, 3});
  CHECK(both_long.truncated == 10);

  Encoding short_pair = tokenizer.encode("a b c d e f g h", std::string_view("a"), 8);
  CHECK(short_pair.ids == std::vector<int32_t>{2, 17, 18, 19, 20, 3, 17, 3});

  Encoding single = tokenizer.encode("a b c d e", std::nullopt, 4);
  CHECK(single.ids == std::vector<int32_t>{2, 17, 18, 3});
  CHECK(single.truncated == 3);
  Encoding plain = tokenizer.encode("a b", std::nullopt, 0, /*add_special_tokens=*/false);
  CHECK(plain.ids == std::vector<int32_t>{17, 18});
}

TEST_CASE("a vocabulary without the BERT special tokens is refused with the missing token named") {
  CHECK_THROWS_WITH_AS(BertTokenizer(Vocab::from_tokens({"[PAD]", "a"}), TokenizerConfig{}),
                       doctest::Contains("no unknown token \"[UNK]\""), recmodel::DataError);
}

TEST_CASE("tokenizer_config.json settings are read, the HF no-limit sentinel included") {
  t::TempDir dir;
  t::write_text(dir / "tokenizer_config.json",
                R"({"do_lower_case": false, "strip_accents": null, "tokenize_chinese_chars": false,
                    "model_max_length": 1000000000000000019884624838656, "unk_token": {"content": "[UNK]"}})");
  TokenizerConfig config = TokenizerConfig::from_json_file(dir / "tokenizer_config.json");
  CHECK_FALSE(config.do_lower_case);
  CHECK_FALSE(config.strips_accents());
  CHECK_FALSE(config.tokenize_chinese_chars);
  CHECK(config.model_max_length == 0);
  t::write_text(dir / "bad.json", "{\"do_lower_case\": \"yes\"}");
  CHECK_THROWS_AS(TokenizerConfig::from_json_file(dir / "bad.json"), recmodel::DataError);
}

TEST_CASE("save writes a Hugging Face tokenizer.json describing the same pipeline") {
  t::TempDir dir;
  BertTokenizer tokenizer = tiny_tokenizer(false);
  tokenizer.save(dir.path());
  auto doc = nlohmann::json::parse(t::read_text(dir / "tokenizer.json"));
  CHECK(doc["model"]["type"] == "WordPiece");
  CHECK(doc["model"]["vocab"]["##aff"] == 6);
  CHECK(doc["model"]["max_input_chars_per_word"] == 100);
  CHECK(doc["normalizer"]["lowercase"] == false);
  CHECK(doc["post_processor"]["pair"].size() == 5);
  CHECK(doc["added_tokens"].size() == 5);
  CHECK(doc["added_tokens"][0]["content"] == "[PAD]");
  // The saved directory loads back to an equivalent tokenizer.
  BertTokenizer reloaded = BertTokenizer::from_model_dir(dir.path());
  CHECK_FALSE(reloaded.config().do_lower_case);
  CHECK(reloaded.vocab().size() == tokenizer.vocab().size());
  CHECK(reloaded.tokenize("Hello") == tokenizer.tokenize("Hello"));
}

TEST_CASE("a model folder with only tokenizer.json loads the same tokenizer as its vocab.txt") {
  REQUIRE(have_shared_data());
  for (const auto& [vocab_name, lowercase] : {std::pair<std::string, bool>{"bert-base-uncased.txt", true},
                                              std::pair<std::string, bool>{"bert-base-multilingual-cased.txt", false}}) {
    t::TempDir dir;
    BertTokenizer original = shared_tokenizer(vocab_name, lowercase);
    original.save(dir.path());
    std::filesystem::remove(dir / "vocab.txt");
    std::filesystem::remove(dir / "tokenizer_config.json");  // the normalizer settings come from tokenizer.json
    BertTokenizer loaded = BertTokenizer::from_model_dir(dir.path());
    CHECK(loaded.config().do_lower_case == lowercase);
    CHECK(loaded.config().strips_accents() == original.config().strips_accents());
    CHECK(loaded.vocab().size() == original.vocab().size());
    // The vocabulary hash is the vocab.txt file's, so datasets prepared from either match.
    CHECK(loaded.vocab().sha256() == recmodel::sha256_hex(t::read_text(t::shared_data("vocab/" + vocab_name))));
    for (const char* text : {"Héllo, WORLD! naïve café", "北京大学 東京", "unaffable 42kg 3.5\" display",
                             "Ünïcödé\tspaces\u00a0and\u200bzero-width", "mañana–día “quoted” emoji 😀 ok"})
      CHECK(ids_of(loaded, text) == ids_of(original, text));
  }
}

TEST_CASE("tokenizer.json of another kind of tokenizer is refused saying what it is") {
  t::TempDir dir;
  tiny_tokenizer().save(dir.path());
  std::filesystem::remove(dir / "vocab.txt");
  const auto original = nlohmann::json::parse(t::read_text(dir / "tokenizer.json"));
  auto refused = [&](const std::function<void(nlohmann::json&)>& change, const std::string& expected) {
    nlohmann::json doc = original;
    change(doc);
    t::write_text(dir / "tokenizer.json", doc.dump());
    try {
      BertTokenizer::from_model_dir(dir.path());
      FAIL("loaded: " << expected);
    } catch (const recmodel::DataError& e) {
      CHECK(std::string(e.what()).find(expected) != std::string::npos);
    }
  };
  refused([](nlohmann::json& d) { d["model"]["type"] = "BPE"; }, "the tokenizer model is BPE");
  refused([](nlohmann::json& d) { d["normalizer"] = {{"type", "NFKC"}}; }, "the normalizer is NFKC");
  refused([](nlohmann::json& d) { d["pre_tokenizer"] = {{"type", "Whitespace"}}; }, "the pre-tokenizer is Whitespace");
  refused([](nlohmann::json& d) { d["model"]["continuing_subword_prefix"] = "@@"; }, "continuing_subword_prefix");
  refused([](nlohmann::json& d) { d["model"]["vocab"]["hello"] = 0; }, "ids must be 0..");
  t::write_text(dir / "tokenizer.json", original.dump());
  CHECK(BertTokenizer::from_model_dir(dir.path()).vocab().size() == tiny_tokenizer().vocab().size());
}
