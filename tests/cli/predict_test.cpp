// `recmodel predict`: JSONL per input in input order (lines, TSV pairs, JSONL/CSV columns), the
// same answers for any batch size, error objects for bad lines (by number), truncation counts,
// --strict, and its usage errors.
#include <doctest/doctest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/converters/model_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

struct Model {
  t::TempDir dir;
  std::string path = (dir / "model").string();
  recmodel::model::BertForSequenceClassification m{nullptr};
  Model() {
    m = t::fixture_model("tiny", {"books", "electronics", "toys"}, /*seed=*/21, /*initializer_range=*/0.1);
    t::write_fixture_model(dir / "model", m);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::vector<nlohmann::json> lines_of(const std::string& out) {
  std::vector<nlohmann::json> docs;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) docs.push_back(nlohmann::json::parse(line));
  return docs;
}

}  // namespace

TEST_CASE("predict answers each line in input order, the same for every batch size") {
  Model model;
  auto texts = t::fixture_texts(40, 8);
  std::string input;
  for (const auto& text : texts) input += text + "\n";
  auto expected = t::predicted_labels(model.m, texts);

  std::vector<nlohmann::json> first;
  for (const char* batch : {"1", "5", "64"}) {
    CAPTURE(batch);
    auto r = t::run_recmodel({"predict", "--model", model.path, "--batch-size", batch, "--logits", "-q"}, input);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.err == "");
    auto docs = lines_of(r.out);
    REQUIRE(docs.size() == texts.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      CAPTURE(i);
      CHECK(docs[i]["label"] == expected[i]);
      double score = docs[i]["score"].get<double>();
      CHECK(score > 1.0 / 3 - 1e-6);
      CHECK(score <= 1.0);
      REQUIRE(docs[i]["top_k"].size() == 3);
      CHECK(docs[i]["top_k"][0][0] == docs[i]["label"]);
      CHECK(docs[i]["top_k"][0][1].get<double>() >= docs[i]["top_k"][1][1].get<double>());
      CHECK(docs[i]["top_k"][1][1].get<double>() >= docs[i]["top_k"][2][1].get<double>());
      CHECK(docs[i]["logits"].size() == 3);
      if (!first.empty()) {
        CHECK(docs[i]["label"] == first[i]["label"]);
        CHECK(docs[i]["score"].get<double>() == doctest::Approx(first[i]["score"].get<double>()).epsilon(1e-4));
      }
    }
    if (first.empty()) first = docs;
  }
  auto info = t::run_recmodel({"predict", "--model", model.path, "--top-k", "0", "--input", "-"}, "red shoe\n");
  REQUIRE(info.exit_code == 0);
  CHECK_FALSE(nlohmann::json::parse(info.out).contains("top_k"));
  CHECK(info.err.rfind("predicted 1 texts in ", 0) == 0);
}

TEST_CASE("predict reports empty lines and invalid UTF-8 by number and keeps the output aligned") {
  Model model;
  std::string input = "red shoe\n\n   \nblue \xff lamp\ngreen desk\n";
  auto r = t::run_recmodel({"predict", "--model", model.path}, input);
  REQUIRE(r.exit_code == 0);
  auto docs = lines_of(r.out);
  REQUIRE(docs.size() == 5);
  CHECK(docs[0].contains("label"));
  CHECK(docs[1] == nlohmann::json{{"line", 2}, {"error", "empty text"}});
  CHECK(docs[2] == nlohmann::json{{"line", 3}, {"error", "empty text"}});
  CHECK(docs[3] == nlohmann::json{{"line", 4}, {"error", "invalid UTF-8 at byte 6"}});
  CHECK(docs[4].contains("label"));
  CHECK(r.err.find("recmodel: warning: <stdin>:2: empty text; its output line holds the error\n") != std::string::npos);
  CHECK(r.err.find("recmodel: warning: <stdin>:4: invalid UTF-8 at byte 6; its output line holds the error\n") !=
        std::string::npos);
  CHECK(r.err.find("recmodel: warning: 3 inputs were not scored (lines 2, 3, 4): their output lines hold \"error\"\n") !=
        std::string::npos);

  auto strict = t::run_recmodel({"predict", "--model", model.path, "--strict"}, input);
  CHECK(strict.exit_code == 3);
  CHECK(strict.err == "recmodel: error: <stdin>:2: empty text (--strict stops at the first bad input)\n");
  CHECK(lines_of(strict.out).size() <= 1);
}

TEST_CASE("predict truncates over-long texts and says how many") {
  Model model;
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "red ";
  auto r = t::run_recmodel({"predict", "--model", model.path, "--max-length", "16"}, "blue lamp\n" + long_text + "\n");
  REQUIRE(r.exit_code == 0);
  auto docs = lines_of(r.out);
  REQUIRE(docs.size() == 2);
  CHECK_FALSE(docs[0].contains("truncated"));
  CHECK(docs[1]["truncated"] == 300 - 14);
  CHECK(r.err.find("recmodel: warning: 1 of 2 texts were longer than 16 tokens and truncated") != std::string::npos);
  // Without --max-length the model's limit (128 positions here) applies.
  auto limit = t::run_recmodel({"predict", "--model", model.path, "-q"}, long_text + "\n");
  REQUIRE(limit.exit_code == 0);
  CHECK(lines_of(limit.out)[0]["truncated"] == 300 - 126);
  auto too_long = t::run_recmodel({"predict", "--model", model.path, "--max-length", "4096"}, "red\n");
  CHECK(too_long.exit_code == 2);
  CHECK(too_long.err == "recmodel: error: --max-length 4096 is more than the model takes (128 positions)\n");
}

TEST_CASE("a tokenizer without a length limit (model_max_length 1e30) leaves the limit to the positions") {
  Model model;
  // Hugging Face writes int(1e30) for checkpoints whose tokenizer sets no limit.
  const auto config_path = fs::path(model.path) / "tokenizer_config.json";
  auto config = nlohmann::json::parse(t::read_text(config_path));
  config["model_max_length"] = 1e30;
  t::write_text(config_path, config.dump());
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "red ";
  auto r = t::run_recmodel({"predict", "--model", model.path, "-q"}, "blue lamp\n" + long_text + "\n");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto docs = lines_of(r.out);
  REQUIRE(docs.size() == 2);
  CHECK_FALSE(docs[0].contains("truncated"));
  CHECK(docs[1]["truncated"] == 300 - 126);
}

TEST_CASE("a Hugging Face folder with tokenizer.json and no vocab.txt predicts as the full folder does") {
  Model model;
  auto texts = t::fixture_texts(20, 5);
  std::string input;
  for (const auto& text : texts) input += text + "\n";
  auto full = t::run_recmodel({"predict", "--model", model.path, "-q"}, input);
  REQUIRE_MESSAGE(full.exit_code == 0, full.err);
  auto full_ids = t::run_recmodel({"tokenize", "--model", model.path, "--ids-only"}, input);
  fs::remove(fs::path(model.path) / "vocab.txt");
  auto json_only = t::run_recmodel({"predict", "--model", model.path, "-q"}, input);
  REQUIRE_MESSAGE(json_only.exit_code == 0, json_only.err);
  // The same ids exactly; scores agree to float rounding (multi-threaded BLAS may add in another
  // order from one process to the next).
  CHECK(t::run_recmodel({"tokenize", "--model", model.path, "--ids-only"}, input).out == full_ids.out);
  auto with_vocab = lines_of(full.out), without = lines_of(json_only.out);
  REQUIRE(with_vocab.size() == without.size());
  for (size_t i = 0; i < with_vocab.size(); ++i) {
    CHECK(without[i]["label"] == with_vocab[i]["label"]);
    CHECK(without[i]["score"].get<double>() == doctest::Approx(with_vocab[i]["score"].get<double>()).epsilon(1e-5));
  }
  fs::remove(fs::path(model.path) / "tokenizer.json");
  auto none = t::run_recmodel({"predict", "--model", model.path, "-q"}, input);
  CHECK(none.exit_code == 4);
  CHECK(none.err == "recmodel: error: " + model.path + ": no vocab.txt or tokenizer.json in the model directory\n");
}

TEST_CASE("predict reads TSV pairs, JSONL and CSV columns, echoing ids") {
  Model model;
  auto pairs = t::run_recmodel({"predict", "--model", model.path, "--pair", "-q"}, "red shoe\tleather shoes\nno tab\n");
  REQUIRE(pairs.exit_code == 0);
  auto pdocs = lines_of(pairs.out);
  REQUIRE(pdocs.size() == 2);
  CHECK(pdocs[0].contains("label"));
  CHECK(pdocs[1]["error"] == "expected two texts separated by a TAB (--pair)");

  t::write_text(model.dir / "in.jsonl", "{\"id\": 7, \"query\": \"usb cable\", \"title\": \"charger\"}\n"
                                        "{\"id\": \"x\", \"title\": \"lamp\"}\nnot json\n");
  auto jsonl = t::run_recmodel({"predict", "--model", model.path, "--input", model.file("in.jsonl"), "--text-column",
                                "query", "--text-pair-column", "title", "--probs", "-q"});
  REQUIRE_MESSAGE(jsonl.exit_code == 0, jsonl.err);
  auto jdocs = lines_of(jsonl.out);
  REQUIRE(jdocs.size() == 3);
  CHECK(jdocs[0]["id"] == 7);
  CHECK(jdocs[0]["probs"].size() == 3);
  double sum = 0;
  for (auto& [label, p] : jdocs[0]["probs"].items()) sum += p.get<double>();
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(jdocs[1] == nlohmann::json{{"id", "x"}, {"line", 2}, {"error", "missing field \"query\""}});
  CHECK(jdocs[2] == nlohmann::json{{"line", 3}, {"error", "invalid JSON"}});

  t::write_text(model.dir / "in.csv", "sku,text\nA1,red shoe\nA2,\"wooden desk, cheap\"\n");
  auto csv = t::run_recmodel({"predict", "--model", model.path, "--input", model.file("in.csv"), "--id-column", "sku",
                              "-q"});
  REQUIRE_MESSAGE(csv.exit_code == 0, csv.err);
  auto cdocs = lines_of(csv.out);
  REQUIRE(cdocs.size() == 2);
  CHECK(cdocs[0]["id"] == "A1");
  CHECK(cdocs[1]["id"] == "A2");
  CHECK(cdocs[1]["label"] == t::predicted_labels(model.m, {"wooden desk, cheap"})[0]);

  auto stdin_columns = t::run_recmodel({"predict", "--model", model.path, "--text-column", "query"}, "{}\n");
  CHECK(stdin_columns.exit_code == 2);
  CHECK(stdin_columns.err ==
        "recmodel: error: --text-column reads CSV, TSV or JSONL; say which with --format (the input on stdin has no "
        "such extension)\n");
  auto no_column = t::run_recmodel({"predict", "--model", model.path, "--input", model.file("in.csv"),
                                    "--text-column", "title"});
  CHECK(no_column.exit_code == 3);
  auto no_model = t::run_recmodel({"predict", "--model", model.file("nope")}, "red\n");
  CHECK(no_model.exit_code == 4);
  auto pair_format = t::run_recmodel({"predict", "--model", model.path, "--pair", "--format", "jsonl"}, "");
  CHECK(pair_format.exit_code == 2);
}

TEST_CASE("regression: a JSONL line nested 200k deep is an error object, not a stack overflow") {
  Model model;
  // The id is echoed, so it was dumped: recursively, as deep as the line nested.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  t::write_text(model.dir / "in.jsonl", "{\"id\": " + deep + ", \"text\": \"red shoe\"}\n" + deep +
                                            "\n{\"id\": 2, \"text\": \"red shoe\"}\n");
  auto r = t::run_recmodel_limited({"predict", "--model", model.path, "--input", model.file("in.jsonl"),
                                    "--text-column", "text", "-q"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto docs = lines_of(r.out);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0] == nlohmann::json{{"line", 1}, {"error", "JSON nested deeper than 64 levels"}});
  CHECK(docs[1] == nlohmann::json{{"line", 2}, {"error", "JSON nested deeper than 64 levels"}});
  CHECK(docs[2]["id"] == 2);
  CHECK(docs[2].contains("label"));
}
