// `recmodel preprocess`: exit codes, the error line users see, the files produced, and that a
// failed run leaves no output directory behind.
#include <doctest/doctest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support.h"

namespace t = recmodel::testing;

namespace {

struct Fixture {
  t::TempDir dir;
  std::string vocab;
  Fixture() {
    t::write_text(dir / "vocab.txt",
                  "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\nshoe\n##s\nblue\nshirt\nsize\n4\n##2\n&\n<\n");
    vocab = (dir / "vocab.txt").string();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  // Returns the names in the fixture directory, to show nothing was left behind.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : t::fs::directory_iterator(dir.path())) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::vector<nlohmann::json> read_jsonl(const t::fs::path& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(t::read_text(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("preprocess writes the dataset directory and prints a summary") {
  Fixture f;
  t::write_text(f.dir / "items.csv", "text,label\nred shoes,shoes\n<p>blue shirt</p>,shirts\nred shoes,shoes\n");
  auto result = t::run_recmodel({"preprocess", "--input", f.path("items.csv"), "--vocab", f.vocab, "--out",
                                 f.path("prepared"), "--split", "1,0,0"});
  CHECK(result.err.empty());
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == "Wrote " + f.path("prepared") +
                          " (classification, 2 labels)\n"
                          "\n"
                          "  rows read           3\n"
                          "  kept                2\n"
                          "  duplicates          1\n"
                          "  rejected            0\n"
                          "\n"
                          "  split   examples   shirts    shoes\n"
                          "  train          2        1        1\n"
                          "  dev            0        0        0\n"
                          "  test           0        0        0\n"
                          "\n"
                          "  tokens per example: p50 4, p95 5, max 5; 0.0% truncated to 128\n"
                          "  rows not used are listed in " + f.path("prepared") + "/rejected.jsonl\n");
  for (const char* name : {"manifest.json", "train.bin", "dev.bin", "test.bin", "rejected.jsonl",
                           "tokenizer/vocab.txt", "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json"})
    CHECK_MESSAGE(t::fs::exists(f.dir / "prepared" / name), name);
  auto manifest = nlohmann::json::parse(t::read_text(f.dir / "prepared" / "manifest.json"));
  CHECK(manifest["labels"] == nlohmann::json({"shirts", "shoes"}));
  CHECK(manifest["counts"]["duplicates_removed"] == 1);
  CHECK(manifest["tokenizer"]["source"] == "--vocab " + f.vocab);
  auto rejected = read_jsonl(f.dir / "prepared" / "rejected.jsonl");
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0] == nlohmann::json({{"file", f.path("items.csv")},
                                       {"line", 4},
                                       {"kind", "duplicate"},
                                       {"reason", "duplicate of " + f.path("items.csv") + ":2"},
                                       {"fields", {{"text", "red shoes"}, {"label", "shoes"}}}}));
}

TEST_CASE("preprocess --json prints the manifest as one document") {
  Fixture f;
  t::write_text(f.dir / "r.jsonl", "{\"text\": \"red shoes\", \"stars\": 4}\n{\"text\": \"blue shirt\", \"stars\": 2.5}\n");
  auto result = t::run_recmodel({"preprocess", "--json", "--input", f.path("r.jsonl"), "--vocab", f.vocab, "--out",
                                 f.path("out"), "--task", "regression", "--label-column", "stars", "--split",
                                 "0.5,0.5", "--threads", "3"});
  REQUIRE(result.exit_code == 0);
  CHECK(std::count(result.out.begin(), result.out.end(), '\n') == 1);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["out"] == f.path("out"));
  CHECK(doc["task"] == "regression");
  CHECK(doc["counts"]["kept"] == 2);
  CHECK(doc["splits"]["train"]["examples"].get<int>() + doc["splits"]["dev"]["examples"].get<int>() == 2);
  CHECK(doc["splits"]["test"]["examples"] == 0);
  CHECK(doc["split"]["ratios"]["test"] == 0);
  CHECK(!doc.contains("labels"));
}

TEST_CASE("preprocess fails with exit 3 naming the bad lines, and leaves no directory behind") {
  Fixture f;
  t::write_text(f.dir / "bad.csv",
                "text,label\n"
                "red shoes,shoes\n"
                "\"blue\nshirt\",shirts,extra\n"
                ",shoes\n"
                "size 42\n"
                "blue shirt,shirts\n"
                "\"open quote,shoes\n");
  auto result = t::run_recmodel({"preprocess", "--input", f.path("bad.csv"), "--vocab", f.vocab, "--out",
                                 f.path("out"), "--max-rejected", "3"});
  CHECK(result.exit_code == 3);
  const std::string file = f.path("bad.csv");
  CHECK(result.err == "recmodel: error: 4 of 6 rows are unusable, more than --max-rejected 3 allows: " + file +
                          ":3: expected 2 fields as in the header, found 3; " + file + ":5: empty text; " + file +
                          ":6: expected 2 fields as in the header, found 1; " + file +
                          ":8: unterminated quoted field: the quote opened in this record is never closed. Fix the "
                          "input, or raise --max-rejected to skip such rows (they are then listed in "
                          "rejected.jsonl)\n");
  CHECK(result.out.empty());
  CHECK(f.entries() == std::vector<std::string>{"bad.csv", "vocab.txt"});

  auto allowed = t::run_recmodel({"preprocess", "--input", f.path("bad.csv"), "--vocab", f.vocab, "--out",
                                  f.path("out"), "--max-rejected", "70%", "--split", "1,0,0"});
  REQUIRE(allowed.exit_code == 0);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 4);
  CHECK(rejected[0] == nlohmann::json({{"file", file},
                                       {"line", 3},
                                       {"kind", "invalid"},
                                       {"reason", "expected 2 fields as in the header, found 3"},
                                       {"fields", {"blue\nshirt", "shirts", "extra"}}}));
  CHECK(rejected[1]["fields"] == nlohmann::json({{"text", ""}, {"label", "shoes"}}));
  CHECK(rejected[3]["line"] == 8);
  CHECK(rejected[3]["fields"] == nlohmann::json({"open quote,shoes\n"}));
}

TEST_CASE("preprocess refuses bad option combinations with exit 2 before any work") {
  Fixture f;
  t::write_text(f.dir / "a.csv", "text,label\nred,x\n");
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "preprocess");
    return t::run_recmodel(args);
  };
  auto both = run({"--input", f.path("a.csv"), "--train", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o")});
  CHECK(both.exit_code == 2);
  CHECK(both.err == "recmodel: error: --input splits by --split; --train/--dev/--test are splits already made. Use "
                    "one or the other\n");

  auto split = run({"--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o"), "--split", "0.8,0.3"});
  CHECK(split.exit_code == 2);
  CHECK(split.err == "recmodel: error: --split 0.8,0.3: the ratios add up to 1.1, not 1\n");

  auto given_split = run({"--train", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o"), "--split", "1,0,0"});
  CHECK(given_split.exit_code == 2);
  CHECK(given_split.err == "recmodel: error: --split does not apply to given --train/--dev/--test files, which are "
                           "kept as they are\n");

  t::write_text(f.dir / "a.txt", "text,label\nred,x\n");
  auto extension = run({"--input", f.path("a.txt"), "--vocab", f.vocab, "--out", f.path("o")});
  CHECK(extension.exit_code == 2);
  CHECK(extension.err == "recmodel: error: " + f.path("a.txt") +
                             ": cannot tell the format from the file name; pass --format csv, tsv or jsonl\n");

  auto rejected_spec = run({"--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o"), "--max-rejected", "ten"});
  CHECK(rejected_spec.exit_code == 2);
  CHECK(rejected_spec.err == "recmodel: error: --max-rejected ten: expected a row count (10) or a percentage of the "
                             "rows read (2.5%)\n");

  auto format = run({"--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o"), "--format", "cvs"});
  CHECK(format.exit_code == 2);
  CHECK(format.err.find("csv") != std::string::npos);

  auto seed = run({"--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o"), "--seed", "-1"});
  CHECK(seed.exit_code == 2);
  CHECK(seed.err == "recmodel: error: --seed: expected a whole number of 0 or more, such as 42; got -1; see "
                    "'recmodel preprocess --help'\n");

  auto no_vocab = run({"--input", f.path("a.csv"), "--out", f.path("o")});
  CHECK(no_vocab.exit_code == 2);
  CHECK(no_vocab.err == "recmodel: error: give a vocabulary with --vocab FILE or --model DIR\n");

  auto labels = run({"--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o"), "--task", "regression",
                     "--labels", "a,b"});
  CHECK(labels.exit_code == 2);
  CHECK(labels.err == "recmodel: error: --labels applies to --task classification; regression targets are numbers\n");

  CHECK(f.entries() == std::vector<std::string>{"a.csv", "a.txt", "vocab.txt"});
}

TEST_CASE("preprocess: missing files exit 4, a missing column exits 3") {
  Fixture f;
  auto missing = t::run_recmodel({"preprocess", "--input", f.path("nope.csv"), "--vocab", f.vocab, "--out", f.path("o")});
  CHECK(missing.exit_code == 4);
  CHECK(missing.err == "recmodel: error: " + f.path("nope.csv") + ": no such file\n");

  t::write_text(f.dir / "a.csv", "review,label\nred,x\n");
  auto column = t::run_recmodel({"preprocess", "--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o")});
  CHECK(column.exit_code == 3);
  CHECK(column.err == "recmodel: error: " + f.path("a.csv") +
                          ":1: no column \"text\" in the header (columns: review, label); name the right one with the "
                          "--*-column options\n");
  CHECK_FALSE(t::fs::exists(f.dir / "o"));
}

TEST_CASE("preprocess refuses an existing output directory unless --force") {
  Fixture f;
  t::write_text(f.dir / "a.csv", "text,label\nred shoes,a\nblue shirt,b\n");
  t::write_text(f.dir / "out" / "keep.txt", "mine");
  std::vector<std::string> args = {"preprocess", "--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("out")};
  auto refused = t::run_recmodel(args);
  CHECK(refused.exit_code == 2);
  CHECK(refused.err == "recmodel: error: " + f.path("out") +
                           ": already exists; choose another --out or pass --force to replace it\n");
  CHECK(t::read_text(f.dir / "out" / "keep.txt") == "mine");
  args.push_back("--force");
  auto forced = t::run_recmodel(args);
  CHECK(forced.exit_code == 0);
  CHECK_FALSE(t::fs::exists(f.dir / "out" / "keep.txt"));
  CHECK(t::fs::exists(f.dir / "out" / "manifest.json"));
}

TEST_CASE("preprocess with the bert-base-uncased vocabulary and given splits") {
  auto vocab = t::shared_data("vocab/bert-base-uncased.txt");
  REQUIRE_MESSAGE(!vocab.empty(), "../shared/data/vocab/bert-base-uncased.txt is missing");
  Fixture f;
  t::write_text(f.dir / "train.tsv", "query\ttitle\trel\nred shoes\tNike Air Max &amp; more\t1\nblue shirt\tPolo\t0\n");
  t::write_text(f.dir / "dev.tsv", "query\ttitle\trel\nsocks\tWool socks\t1\n");
  auto result = t::run_recmodel({"preprocess", "--train", f.path("train.tsv"), "--dev", f.path("dev.tsv"), "--vocab",
                                 vocab.string(), "--out", f.path("out"), "--text-column", "query",
                                 "--text-pair-column", "title", "--label-column", "rel", "--json"});
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["split"]["mode"] == "given");
  CHECK(doc["labels"] == nlohmann::json({"0", "1"}));
  CHECK(doc["label_order"] == "numeric");
  CHECK(doc["splits"]["train"]["examples"] == 2);
  CHECK(doc["splits"]["dev"]["examples"] == 1);
  CHECK(doc["splits"]["test"]["examples"] == 0);
  CHECK(doc["inputs"][1]["split"] == "dev");
  CHECK(doc["columns"]["text_pair"] == "title");
  // The test split is empty by the user's choice: no warning about it.
  CHECK(result.err.empty());
}
