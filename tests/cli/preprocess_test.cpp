// `recmodel preprocess`: exit codes, the error line users see, the files produced, and that a
// failed run leaves no output directory behind.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/hostile.h"
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
                          "  duplicates          1 dropped\n"
                          "  conflicts           0\n"
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
                          ":3: expected 2 fields as in the header, found 3 (a quoted field takes this record over lines 3 to "
                          "4); " + file + ":5: empty text; " + file +
                          ":6: expected 2 fields as in the header, found 1; " + file +
                          ":8: unterminated quoted field: the quote that opens field 1 is never closed. Fix the "
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
                                       {"reason", "expected 2 fields as in the header, found 3 (a quoted field "
                                                  "takes this record over lines 3 to 4)"},
                                       {"fields", {"blue\nshirt", "shirts", "extra"}}}));
  CHECK(rejected[1]["fields"] == nlohmann::json({{"text", ""}, {"label", "shoes"}}));
  CHECK(rejected[3]["line"] == 8);
  CHECK(rejected[3]["fields"] == "\"open quote,shoes");
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
                          ":1: no column 'text' in the header (columns: 'review', 'label'); name the right one with the "
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

TEST_CASE("preprocess: a broken quote is one rejected row with its line, and the rows after it are kept") {
  // Regression: 10 physical lines became 5 examples with wrong labels, exit 0, nothing rejected.
  Fixture f;
  t::write_text(f.dir / "merge.csv",
                "text,label\n"
                "red shoes,shoes\n"
                "\"broken quote,shirts\n"
                "blue shirt,shirts\n"
                "blue shoes,shoes\n"
                "\"red, size 42\",shoes\n"
                "\"closed\" trailing,shirts\n"
                "red shirt,shirts\n"
                "size 4,shoes\n"
                "blue,shirts\n");
  auto strict = t::run_recmodel({"preprocess", "--input", f.path("merge.csv"), "--vocab", f.vocab, "--out",
                                 f.path("out")});
  CHECK(strict.exit_code == 3);
  const std::string file = f.path("merge.csv");
  CHECK(strict.err == "recmodel: error: 2 of 9 rows are unusable, more than --max-rejected 0 allows: " + file +
                          ":3: the quote that opens field 1 closes on line 6 and text follows it; the lines after "
                          "this one are read as rows of their own; " + file +
                          ":7: text after the closing quote of field 1; inside a quoted field a quote is written "
                          "twice (\"\"). Fix the input, or raise --max-rejected to skip such rows (they are then "
                          "listed in rejected.jsonl)\n");

  auto allowed = t::run_recmodel({"preprocess", "--json", "--input", f.path("merge.csv"), "--vocab", f.vocab,
                                  "--out", f.path("out"), "--max-rejected", "2", "--split", "1,0,0"});
  REQUIRE(allowed.exit_code == 0);
  auto doc = nlohmann::json::parse(allowed.out);
  CHECK(doc["counts"]["rows_read"] == 9);
  CHECK(doc["counts"]["kept"] == 7);
  CHECK(doc["splits"]["train"]["labels"] == nlohmann::json({{"shirts", 3}, {"shoes", 4}}));
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[0] == nlohmann::json({{"file", file},
                                       {"line", 3},
                                       {"kind", "invalid"},
                                       {"reason", "the quote that opens field 1 closes on line 6 and text follows it; "
                                                  "the lines after this one are read as rows of their own"},
                                       {"fields", "\"broken quote,shirts"}}));
  CHECK(rejected[1]["line"] == 7);
  CHECK(rejected[1]["fields"] == "\"closed\" trailing,shirts");
}

TEST_CASE("preprocess: CR-only line endings give every rejected row its own line number") {
  // Regression: every row was reported as line 1.
  Fixture f;
  t::write_text(f.dir / "cr.csv", "text,label\rred shoes,shoes\r,shoes\rblue shirt,shirts\rsize 42\r");
  auto result = t::run_recmodel({"preprocess", "--input", f.path("cr.csv"), "--vocab", f.vocab, "--out",
                                 f.path("out")});
  CHECK(result.exit_code == 3);
  const std::string file = f.path("cr.csv");
  CHECK(result.err == "recmodel: error: 2 of 4 rows are unusable, more than --max-rejected 0 allows: " + file +
                          ":3: empty text; " + file +
                          ":5: expected 2 fields as in the header, found 1. Fix the input, or raise --max-rejected "
                          "to skip such rows (they are then listed in rejected.jsonl)\n");
}

TEST_CASE("preprocess: when every row is unusable the error does not suggest raising --max-rejected") {
  Fixture f;
  t::write_text(f.dir / "all.csv", "text,label\n,shoes\nred shoes,\n\"open,shoes\n");
  auto result = t::run_recmodel({"preprocess", "--input", f.path("all.csv"), "--vocab", f.vocab, "--out",
                                 f.path("out")});
  REQUIRE_REFUSED(result, 3);
  const std::string file = f.path("all.csv");
  CHECK(result.err == "recmodel: error: none of the 3 rows is usable: " + file + ":2: empty text; " + file +
                          ":3: missing label; " + file +
                          ":4: unterminated quoted field: the quote that opens field 1 is never closed. Fix the "
                          "input\n");
  auto raised = t::run_recmodel({"preprocess", "--input", f.path("all.csv"), "--vocab", f.vocab, "--out",
                                 f.path("out"), "--max-rejected", "100%"});
  CHECK(raised.exit_code == 3);
  CHECK(raised.err == result.err);
  CHECK(raised.err.find("raise") == std::string::npos);
  CHECK_FALSE(t::fs::exists(f.dir / "out"));
}

namespace {

// Ratings where one short review carries several star ratings, as on real review sites.
void write_ratings(const Fixture& f) {
  t::write_text(f.dir / "ratings.csv",
                "review,rating\n"
                "red shoes,5\n"   // 2
                "red shoes,4\n"   // 3
                "red shoes,5\n"   // 4
                "blue shirt,4\n"  // 5
                "blue shirt,4\n"  // 6
                "size 42,1\n"     // 7
                "size 42,2\n"     // 8
                "shirt,3\n");     // 9
}

std::vector<std::string> base_args(const Fixture& f, const std::string& out) {
  return {"preprocess", "--json", "--input", f.path("ratings.csv"), "--vocab", f.vocab, "--out", f.path(out),
          "--text-column", "review", "--label-column", "rating", "--split", "1,0,0"};
}

}  // namespace

TEST_CASE("preprocess --duplicates keep trains on every row as it came") {
  Fixture f;
  write_ratings(f);
  auto args = base_args(f, "out");
  for (const char* extra : {"--duplicates", "keep", "--conflicts", "keep"}) args.push_back(extra);
  auto result = t::run_recmodel(args);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["counts"]["kept"] == 8);
  CHECK(doc["counts"]["rejected"] == 0);
  CHECK(doc["splits"]["train"]["labels"] == nlohmann::json({{"1", 1}, {"2", 1}, {"3", 1}, {"4", 3}, {"5", 2}}));
  CHECK(doc["policies"]["duplicates"] == nlohmann::json({{"policy", "keep"}, {"dropped", 0}, {"kept", 2}}));
  CHECK(doc["policies"]["conflicts"] ==
        nlohmann::json({{"policy", "keep"}, {"texts", 2}, {"rejected", 0}, {"kept", 2}, {"resolved_texts", 0}}));
  CHECK(t::read_text(f.dir / "out" / "rejected.jsonl").empty());
  auto manifest = nlohmann::json::parse(t::read_text(f.dir / "out" / "manifest.json"));
  CHECK(manifest["policies"] == doc["policies"]);

  // The default drops exact repeats and rejects conflicts, counting them against --max-rejected.
  auto strict = t::run_recmodel(base_args(f, "strict"));
  CHECK(strict.exit_code == 3);
  CHECK(strict.err.rfind("recmodel: error: 2 of 8 rows are unusable, more than --max-rejected 0 allows: " +
                             f.path("ratings.csv") + ":3: same text as " + f.path("ratings.csv") +
                             ":2 but a different label: '5' there, '4' here; ",
                         0) == 0);
}

TEST_CASE("preprocess --conflicts keep keeps every labelled row and lists only exact repeats") {
  Fixture f;
  write_ratings(f);
  auto args = base_args(f, "out");
  args.erase(args.begin() + 1);  // the human summary this time
  for (const char* extra : {"--conflicts", "keep"}) args.push_back(extra);
  auto result = t::run_recmodel(args);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("  kept                6\n"
                        "  duplicates          2 dropped\n"
                        "  conflicts           2 kept, in 2 texts (--conflicts keep)\n"
                        "  rejected            0\n") != std::string::npos);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[0]["line"] == 4);
  CHECK(rejected[0]["kind"] == "duplicate");
  CHECK(rejected[0]["reason"] == "duplicate of " + f.path("ratings.csv") + ":2");
  CHECK(rejected[1]["line"] == 6);
}

TEST_CASE("preprocess --conflicts majority keeps the most frequent label and rejects ties with file:line") {
  Fixture f;
  write_ratings(f);
  auto args = base_args(f, "out");
  for (const char* extra : {"--conflicts", "majority", "--max-rejected", "3"}) args.push_back(extra);
  auto result = t::run_recmodel(args);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  // red shoes: 5 wins 2 to 1; blue shirt: no conflict; size 42: a 1-1 tie, both rows rejected.
  CHECK(doc["counts"]["kept"] == 3);
  CHECK(doc["counts"]["rejected"] == 3);
  CHECK(doc["counts"]["label_conflicts"] == 3);
  CHECK(doc["policies"]["conflicts"] ==
        nlohmann::json({{"policy", "majority"}, {"texts", 2}, {"rejected", 3}, {"kept", 0}, {"resolved_texts", 1}}));
  CHECK(doc["policies"]["duplicates"]["dropped"] == 2);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  const std::string file = f.path("ratings.csv");
  REQUIRE(rejected.size() == 5);
  CHECK(rejected[0]["line"] == 3);
  CHECK(rejected[0]["kind"] == "conflict");
  CHECK(rejected[0]["reason"] == "same text as " + file +
                                     ":2, whose label '5' is the most frequent (2 of 3 rows); '4' here "
                                     "(--conflicts majority)");
  CHECK(rejected[1]["line"] == 4);
  CHECK(rejected[1]["kind"] == "duplicate");
  CHECK(rejected[3]["line"] == 7);
  CHECK(rejected[3]["reason"] == "no label is the most frequent for this text (2 rows, the top labels have 1 each; "
                                 "the first is at " + file + ":7), so all its rows are rejected (--conflicts majority)");
  CHECK(rejected[4]["line"] == 8);
  CHECK(rejected[4]["kind"] == "conflict");
}

TEST_CASE("preprocess keeps a given test split whole and reports how much of it is in train") {
  Fixture f;
  t::write_text(f.dir / "train.csv", "text,label\nred shoes,shoes\nblue shirt,shirts\nsize 42,shoes\n");
  t::write_text(f.dir / "test.csv",
                "text,label\nred shoes,shoes\nblue shirt,shoes\nred shirt,shirts\nred shirt,shirts\n");
  std::vector<std::string> args = {"preprocess", "--train", f.path("train.csv"), "--test", f.path("test.csv"),
                                   "--vocab", f.vocab, "--out", f.path("out")};
  auto result = t::run_recmodel(args);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("  test overlap: 2 of 4 test rows also appear in train; kept (--drop-test-overlap drops "
                        "them)\n") != std::string::npos);
  CHECK(result.out.find("  test           4") != std::string::npos);
  auto manifest = nlohmann::json::parse(t::read_text(f.dir / "out" / "manifest.json"));
  CHECK(manifest["splits"]["test"]["examples"] == 4);
  CHECK(manifest["policies"]["test_overlap"] ==
        nlohmann::json({{"policy", "keep"}, {"test_rows", 4}, {"in_train", 2}, {"dropped", 0}}));
  CHECK(t::read_text(f.dir / "out" / "rejected.jsonl").empty());

  args.push_back("--drop-test-overlap");
  args.push_back("--force");
  auto dropped = t::run_recmodel(args);
  REQUIRE(dropped.exit_code == 0);
  CHECK(dropped.out.find("  test overlap: 2 of 4 test rows also appear in train; dropped (--drop-test-overlap)\n") !=
        std::string::npos);
  manifest = nlohmann::json::parse(t::read_text(f.dir / "out" / "manifest.json"));
  CHECK(manifest["splits"]["test"]["examples"] == 2);
  CHECK(manifest["policies"]["test_overlap"]["dropped"] == 2);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[0] == nlohmann::json({{"file", f.path("test.csv")},
                                       {"line", 2},
                                       {"kind", "test_overlap"},
                                       {"reason", "also in the train split at " + f.path("train.csv") +
                                                      ":2 (--drop-test-overlap)"},
                                       {"fields", {{"text", "red shoes"}, {"label", "shoes"}}}}));
  CHECK(rejected[1]["line"] == 3);
}

TEST_CASE("preprocess: bad --duplicates and --conflicts values and a stray --drop-test-overlap exit 2") {
  Fixture f;
  t::write_text(f.dir / "a.csv", "text,label\nred,x\n");
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"preprocess", "--input", f.path("a.csv"), "--vocab", f.vocab, "--out", f.path("o")};
    args.insert(args.end(), extra.begin(), extra.end());
    return t::run_recmodel(args);
  };
  auto duplicates = run({"--duplicates", "remove"});
  CHECK(duplicates.exit_code == 2);
  CHECK(duplicates.err == "recmodel: error: --duplicates: 'remove' is not one of drop, keep; see 'recmodel "
                          "preprocess --help'\n");
  auto conflicts = run({"--conflicts", "majorty"});
  CHECK(conflicts.exit_code == 2);
  CHECK(conflicts.err == "recmodel: error: --conflicts: 'majorty' is not one of reject, keep, majority; did you mean "
                         "'majority'?; see 'recmodel preprocess --help'\n");
  auto overlap = run({"--drop-test-overlap"});
  CHECK(overlap.exit_code == 2);
  CHECK(overlap.err == "recmodel: error: --drop-test-overlap applies to a given --test split; give --train and --test "
                       "files\n");
  CHECK_FALSE(t::fs::exists(f.dir / "o"));
}

TEST_CASE("preprocess: a JSONL line nested 200k deep is a rejected row, not a crash") {
  // Regression: writing it to rejected.jsonl recursed once per level (exit 139).
  Fixture f;
  t::write_text(f.dir / "deep.jsonl", "{\"text\": \"red shoes\", \"label\": \"a\"}\n{\"text\": \"blue\", "
                                      "\"label\": \"b\"}\n" +
                                          std::string(200000, '[') + std::string(200000, ']') + "\n");
  auto refused = t::run_recmodel_limited({"preprocess", "--input", f.path("deep.jsonl"), "--vocab", f.vocab, "--out",
                                          f.path("out")});
  REQUIRE_REFUSED(refused, 3);
  CHECK(refused.err.find(":3: JSON nested deeper than 64 levels") != std::string::npos);
  auto allowed = t::run_recmodel_limited({"preprocess", "--input", f.path("deep.jsonl"), "--vocab", f.vocab, "--out",
                                          f.path("out"), "--max-rejected", "1", "--split", "1,0,0"});
  INFO(allowed.err);
  REQUIRE(allowed.exit_code == 0);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0]["fields"].is_string());
}

TEST_CASE("preprocess: a quote that never closes in a large file rejects one row, under the memory limit") {
  Fixture f;
  std::string csv = "text,label\n\"red shoes,shoes\n";
  for (int i = 0; i < 200000; ++i) csv += "blue shirt " + std::to_string(i) + ",shirts\n";
  t::write_text(f.dir / "open.csv", csv);
  auto result = t::run_recmodel_limited({"preprocess", "--json", "--input", f.path("open.csv"), "--vocab", f.vocab,
                                         "--out", f.path("out"), "--max-rejected", "1"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["counts"]["rows_read"] == 200001);
  CHECK(doc["counts"]["kept"] == 200000);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0]["line"] == 2);
}

TEST_CASE("preprocess: control characters in labels are escaped in the error line, the reasons and the summary") {
  // Regression: a label's raw ESC reached the terminal through the conflict error, the human
  // summary table and the warnings. rejected.jsonl keeps the row as read (JSON escapes it).
  Fixture f;
  const std::string esc_label = "\x1b[31mb", bidi_label = "\xe2\x80\xaex";  // ESC [31m b; U+202E x
  t::write_text(f.dir / "e.csv", "text,label\nred shoes,a\nred shoes," + esc_label + "\nsize 4," + esc_label +
                                     "\nblue shirt," + bidi_label + "\n");
  auto refused = t::run_recmodel_limited({"preprocess", "--input", f.path("e.csv"), "--vocab", f.vocab, "--out",
                                          f.path("out")});
  REQUIRE_REFUSED(refused, 3);
  CHECK(refused.err.find(f.path("e.csv") + ":3: same text as " + f.path("e.csv") +
                         ":2 but a different label: 'a' there, '\\x1b[31mb' here") != std::string::npos);
  CHECK(refused.err.find('\x1b') == std::string::npos);

  auto allowed = t::run_recmodel_limited({"preprocess", "--input", f.path("e.csv"), "--vocab", f.vocab, "--out",
                                          f.path("out"), "--max-rejected", "1", "--split", "1,0,0"});
  INFO(allowed.out);
  REQUIRE(allowed.exit_code == 0);
  CHECK(allowed.out.find('\x1b') == std::string::npos);
  CHECK(allowed.out.find("\xe2\x80\xae") == std::string::npos);
  CHECK(allowed.out.find("  split   examples \\x1b[31mb         a   \\u202ex\n") != std::string::npos);
  CHECK(allowed.out.find("  train          3         1         1         1\n") != std::string::npos);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0]["reason"] == "same text as " + f.path("e.csv") + ":2 but a different label: 'a' there, "
                                                                     "'\\x1b[31mb' here");
  CHECK(rejected[0]["fields"] == nlohmann::json({{"text", "red shoes"}, {"label", esc_label}}));

  // More labels than the table has columns: the list of names is escaped too; and so are the
  // label in the one-label warning and a regression target that is not a number.
  std::string many = "text,label\n";
  for (int i = 0; i < 8; ++i) many += "red " + std::to_string(i) + "," + esc_label + std::to_string(i) + "\n";
  t::write_text(f.dir / "many.csv", many);
  auto listed = t::run_recmodel_limited({"preprocess", "--input", f.path("many.csv"), "--vocab", f.vocab, "--out",
                                         f.path("many"), "--split", "1,0,0"});
  REQUIRE(listed.exit_code == 0);
  CHECK(listed.out.find("  labels: \\x1b[31mb0, \\x1b[31mb1,") != std::string::npos);
  CHECK(listed.out.find('\x1b') == std::string::npos);

  t::write_text(f.dir / "one.csv", "text,label\nred,\x1b[2Jz\nblue,\x1b[2Jz\n");
  auto one = t::run_recmodel_limited({"preprocess", "--input", f.path("one.csv"), "--vocab", f.vocab, "--out",
                                      f.path("one"), "--split", "1,0,0"});
  REQUIRE(one.exit_code == 0);
  CHECK(one.err.find("only one label ('\\x1b[2Jz') in the data") != std::string::npos);
  CHECK(one.err.find('\x1b') == std::string::npos);
  CHECK(one.out.find('\x1b') == std::string::npos);

  t::write_text(f.dir / "target.csv", "text,label\nred,\x1b]0;owned\x07\n");
  auto target = t::run_recmodel_limited({"preprocess", "--input", f.path("target.csv"), "--vocab", f.vocab, "--out",
                                         f.path("target"), "--task", "regression"});
  REQUIRE_REFUSED(target, 3);
  CHECK(target.err.find(":2: target '\\x1b]0;owned\\x07' is not a number") != std::string::npos);
  CHECK(target.err.find('\x1b') == std::string::npos);
}

TEST_CASE("preprocess: a NUL in a CSV header does not cut the missing-column error short") {
  // Regression: the message stopped at the NUL: `no column "text" in the header (columns: te`.
  Fixture f;
  t::write_text(f.dir / "nul.csv", std::string("te\0xt,label\nred,a\n", 18));
  auto result = t::run_recmodel_limited({"preprocess", "--input", f.path("nul.csv"), "--vocab", f.vocab, "--out",
                                         f.path("out")});
  REQUIRE_REFUSED(result, 3);
  CHECK(result.err == "recmodel: error: " + f.path("nul.csv") +
                          ":1: no column 'text' in the header (columns: 'te\\x00xt', 'label'); name the right one "
                          "with the --*-column options\n");
  CHECK_FALSE(t::fs::exists(f.dir / "out"));
}

TEST_CASE("preprocess: an unclosed quote followed by more than 64 MiB is one rejected row, not exit 3") {
  // Regression: the record the open quote started grew past 64 MiB and the whole run stopped
  // with exit 3 even with --max-rejected 100. Now it is one rejected row naming its line, and
  // reading resumes at the line after it, with memory bounded (the limited run has 4 GiB).
  Fixture f;
  const int rows = 1100;  // 1100 rows of 64 KiB: 68.75 MiB after the quote
  {
    std::ofstream out(f.dir / "open.csv", std::ios::binary);
    out << "text,label,pad\nred shoes,shoes,x\n\"unclosed,shirts,x\n";
    const std::string pad(64 << 10, 'x');
    for (int i = 0; i < rows; ++i) out << "blue shirt " << i << (i % 2 ? ",shirts," : ",shoes,") << pad << '\n';
  }
  auto start = std::chrono::steady_clock::now();
  auto result = t::run_recmodel_limited({"preprocess", "--json", "--input", f.path("open.csv"), "--vocab", f.vocab,
                                         "--out", f.path("out"), "--max-rejected", "100", "--split", "1,0,0"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["counts"]["rows_read"] == rows + 2);
  CHECK(doc["counts"]["kept"] == rows + 1);
  CHECK(doc["counts"]["rejected"] == 1);
  auto rejected = read_jsonl(f.dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0]["line"] == 3);
  CHECK(rejected[0]["fields"] == "\"unclosed,shirts,x");
  const std::string reason = rejected[0]["reason"].get<std::string>();
  CHECK(reason.rfind("unterminated quoted field: the quote that opens field 1 is not closed within 64 MiB (by line ",
                     0) == 0);
  CHECK(reason.find("; the lines after it are read as rows of their own") != std::string::npos);
  CHECK(seconds < 20);
}

TEST_CASE("regression: preprocess refuses a pipe as --input instead of hanging on its second read") {
  Fixture f;
  const std::string fifo = f.path("rows.csv");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // No writer is needed: the refusal comes before the pipe is opened (a read would block forever).
  auto result = t::run_recmodel_limited({"preprocess", "--input", fifo, "--vocab", f.vocab, "--out", f.path("out")});
  REQUIRE_REFUSED(result, 2);
  CHECK(result.err.find(fifo + ": is not a regular file (a pipe or device)") != std::string::npos);
  CHECK_FALSE(t::fs::exists(f.dir / "out"));
}
