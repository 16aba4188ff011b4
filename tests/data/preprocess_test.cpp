#include "data/preprocess.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "data/dataset_file.h"
#include "tests/support.h"

using namespace recmodel::data;
using recmodel::tokenizer::BertTokenizer;
using recmodel::tokenizer::TokenizerConfig;
namespace t = recmodel::testing;

namespace {

bool have_vocab() {
  if (!t::shared_data("vocab/bert-base-uncased.txt").empty()) return true;
  MESSAGE("../shared/data/vocab/bert-base-uncased.txt is missing");
  return false;
}

const BertTokenizer& uncased() {
  static const BertTokenizer tokenizer =
      BertTokenizer::from_vocab_file(t::shared_data("vocab/bert-base-uncased.txt"), TokenizerConfig());
  return tokenizer;
}

PreprocessConfig config_for(const t::fs::path& input, const t::fs::path& out) {
  PreprocessConfig config;
  config.inputs.push_back({input, *format_from_extension(input), -1});
  config.out = out;
  config.tokenizer_source = "--vocab test";
  return config;
}

std::vector<nlohmann::json> read_jsonl(const t::fs::path& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(t::read_text(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string error_of(const PreprocessConfig& config) {
  try {
    preprocess(config, uncased());
  } catch (const recmodel::Error& e) {
    return e.what();
  }
  return "";
}

// A product-category set: `per_label` rows for each of three labels, all distinct.
std::string category_csv(int per_label) {
  std::string csv = "title,category\n";
  const char* labels[] = {"electronics", "books", "toys"};
  for (int i = 0; i < per_label; ++i)
    for (int l = 0; l < 3; ++l) csv += fmt::format("<b>item</b> {} of {} &amp; more,{}\n", i, labels[l], labels[l]);
  return csv;
}

}  // namespace

TEST_CASE("preprocess: cleans, de-duplicates, rejects, splits and tokenizes a small CSV") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "reviews.csv",
                "text,label\n"
                "\"<p>Great   phone</p>\",pos\n"      // 2
                "Great phone,pos\n"                    // 3: same text after cleaning → duplicate
                "Great phone,neg\n"                    // 4: same text, other label → conflict
                ",pos\n"                               // 5: empty text
                "Bad battery,\n"                       // 6: missing label
                "a,b,c\n"                              // 7: wrong field count
                "Works fine &amp; fast,neu\n"          // 8
                "Terrible,neg\n");                     // 9
  PreprocessConfig config = config_for(dir / "reviews.csv", dir / "out");
  config.max_rejected = RejectLimit::parse("4");
  config.ratios = SplitRatios::parse("1,0,0");
  PreprocessResult result = preprocess(config, uncased());
  const auto& m = result.manifest;

  CHECK(m["format"] == "recmodel-dataset");
  CHECK(m["format_version"] == 1);
  CHECK(m["task"] == "classification");
  CHECK(m["labels"] == nlohmann::ordered_json({"neg", "neu", "pos"}));
  CHECK(m["label_order"] == "lexicographic");
  CHECK(m["counts"]["rows_read"] == 8);
  CHECK(m["counts"]["kept"] == 3);
  CHECK(m["counts"]["duplicates_removed"] == 1);
  CHECK(m["counts"]["rejected"] == 4);
  CHECK(m["counts"]["label_conflicts"] == 1);
  CHECK(m["splits"]["train"]["examples"] == 3);
  CHECK(m["splits"]["train"]["labels"] == nlohmann::ordered_json({{"neg", 1}, {"neu", 1}, {"pos", 1}}));
  CHECK(m["splits"]["dev"]["examples"] == 0);
  CHECK(m["inputs"][0]["sha256"] == recmodel::sha256_hex(t::read_text(dir / "reviews.csv")));
  CHECK(m["tokenizer"]["vocab_sha256"] ==
        recmodel::sha256_hex(t::read_text(t::shared_data("vocab/bert-base-uncased.txt"))));
  CHECK(m["tokenizer"]["settings"]["do_lower_case"] == true);

  auto rejected = read_jsonl(dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 5);
  const std::string file = (dir / "reviews.csv").string();
  CHECK(rejected[0] == nlohmann::json({{"file", file},
                                       {"line", 3},
                                       {"kind", "duplicate"},
                                       {"reason", "duplicate of " + file + ":2"},
                                       {"fields", {{"text", "Great phone"}, {"label", "pos"}}}}));
  CHECK(rejected[1]["kind"] == "conflict");
  CHECK(rejected[1]["reason"] == "same text as " + file + ":2 but a different label: 'pos' there, 'neg' here");
  CHECK(rejected[2]["line"] == 5);
  CHECK(rejected[2]["reason"] == "empty text");
  CHECK(rejected[3]["reason"] == "missing label");
  CHECK(rejected[4]["line"] == 7);
  CHECK(rejected[4]["reason"] == "expected 2 fields as in the header, found 3");
  CHECK(rejected[4]["fields"] == nlohmann::json({"a", "b", "c"}));

  DatasetSplit train = DatasetSplit::open(dir / "out" / "train.bin");
  REQUIRE(train.size() == 3);
  std::vector<int32_t> expected = uncased().encode("Great phone", std::nullopt, 128).ids;
  CHECK(train.example(0).ids == expected);
  CHECK(train.example(0).label == 2);  // pos
  CHECK(train.example(1).ids == uncased().encode("Works fine & fast", std::nullopt, 128).ids);
  CHECK(train.example(1).label == 1);  // neu
  CHECK(train.example(2).label == 0);  // neg
  CHECK(train.origin_line(2) == 9);
  CHECK(t::fs::exists(dir / "out" / "tokenizer" / "vocab.txt"));
  CHECK(nlohmann::json::parse(t::read_text(dir / "out" / "manifest.json"))["counts"]["kept"] == 3);
}

TEST_CASE("preprocess: too many rejected rows fail with the first reasons and leave nothing") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "d.csv", "text,label\nok,pos\n,pos\nfine,\nalso fine,neg\n");
  PreprocessConfig config = config_for(dir / "d.csv", dir / "out");
  const std::string file = (dir / "d.csv").string();
  CHECK(error_of(config) == "2 of 4 rows are unusable, more than --max-rejected 0 allows: " + file + ":3: empty text; " +
                                file + ":4: missing label. Fix the input, or raise --max-rejected to skip such rows "
                                       "(they are then listed in rejected.jsonl)");
  CHECK_FALSE(t::fs::exists(dir / "out"));
  for (const auto& entry : t::fs::directory_iterator(dir.path()))
    CHECK(entry.path().filename() == "d.csv");  // no staging directory left either
  config.max_rejected = RejectLimit::parse("50%");
  CHECK(error_of(config).empty());
  config.max_rejected = RejectLimit::parse("49.9%");
  config.force = true;
  CHECK(error_of(config).rfind("2 of 4 rows are unusable, more than --max-rejected 49.9% allows", 0) == 0);
  CHECK(t::fs::exists(dir / "out" / "manifest.json"));  // the earlier result stays in place
}

TEST_CASE("preprocess: stratified split is exact per label and the output is deterministic across threads") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "items.csv", category_csv(100));
  PreprocessConfig config = config_for(dir / "items.csv", dir / "one");
  config.text_column = "title";
  config.label_column = "category";
  config.threads = 1;
  auto one = preprocess(config, uncased()).manifest;
  config.out = dir / "four";
  config.threads = 4;
  auto four = preprocess(config, uncased()).manifest;
  for (const char* name : {"train", "dev", "test"}) {
    CAPTURE(name);
    CHECK(t::read_text(dir / "one" / (std::string(name) + ".bin")) ==
          t::read_text(dir / "four" / (std::string(name) + ".bin")));
  }
  CHECK(t::read_text(dir / "one" / "manifest.json") == t::read_text(dir / "four" / "manifest.json"));
  CHECK(one["splits"]["train"]["labels"] == nlohmann::ordered_json({{"books", 80}, {"electronics", 80}, {"toys", 80}}));
  CHECK(one["splits"]["dev"]["labels"] == nlohmann::ordered_json({{"books", 10}, {"electronics", 10}, {"toys", 10}}));
  CHECK(one["splits"]["test"]["examples"] == 30);

  config.out = dir / "seed7";
  config.seed = 7;
  preprocess(config, uncased());
  CHECK(t::read_text(dir / "one" / "dev.bin") != t::read_text(dir / "seed7" / "dev.bin"));
}

TEST_CASE("preprocess: --group-column keeps each group in one split") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  std::string jsonl;
  for (int q = 0; q < 60; ++q)
    for (int p = 0; p < 5; ++p)
      jsonl += fmt::format("{{\"query\": \"query {}\", \"title\": \"product {} {}\", \"relevance\": {}}}\n", q, q, p,
                           (q + p) % 4);
  t::write_text(dir / "pairs.jsonl", jsonl);
  PreprocessConfig config = config_for(dir / "pairs.jsonl", dir / "out");
  config.text_column = "query";
  config.pair_column = "title";
  config.label_column = "relevance";
  config.group_column = "query";
  config.task = Task::regression;
  auto m = preprocess(config, uncased()).manifest;
  CHECK(m["counts"]["kept"] == 300);
  CHECK(!m.contains("labels"));
  std::map<uint64_t, std::set<int>> splits_of_group;
  for (int s = 0; s < kSplitCount; ++s) {
    DatasetSplit split = DatasetSplit::open(dir / "out" / (std::string(split_name(s)) + ".bin"));
    CHECK(split.task() == Task::regression);
    for (size_t i = 0; i < split.size(); ++i) splits_of_group[(split.origin_line(i) - 1) / 5].insert(s);
    if (split.size() > 0) {
      Example e = split.example(0);
      CHECK(e.type_ids.front() == 0);
      CHECK(e.type_ids.back() == 1);  // the pair segment
      CHECK(e.target >= 0.0f);
      CHECK(e.target <= 3.0f);
    }
  }
  CHECK(splits_of_group.size() == 60);
  for (const auto& [group, splits] : splits_of_group) CHECK(splits.size() == 1);
  CHECK(m["splits"]["train"]["examples"].get<int>() % 5 == 0);
}

TEST_CASE("preprocess: a given test split is kept whole, and rows that repeat train are counted, not removed") {
  // Regression: test rows repeating train rows were removed from the user's test file, so
  // results were not comparable with other tools on the same split.
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "train.tsv", "text\tlabel\nred shoes\tshoes\nblue shirt\tshirts\n");
  t::write_text(dir / "test.tsv", "text\tlabel\nblue shirt\tshirts\ngreen shoes\tshoes\nblue shirt\tshoes\n");
  PreprocessConfig config;
  config.inputs = {{dir / "train.tsv", Format::tsv, kTrain}, {dir / "test.tsv", Format::tsv, kTest}};
  config.out = dir / "out";
  config.labels = {"shoes", "shirts"};
  auto m = preprocess(config, uncased()).manifest;
  CHECK(m["split"]["mode"] == "given");
  CHECK(m["labels"] == nlohmann::ordered_json({"shoes", "shirts"}));
  CHECK(m["label_order"] == "given");
  CHECK(m["splits"]["train"]["examples"] == 2);
  CHECK(m["splits"]["test"]["examples"] == 3);
  CHECK(m["counts"]["duplicates_removed"] == 0);
  CHECK(m["counts"]["rejected"] == 0);
  CHECK(m["policies"]["test_overlap"] ==
        nlohmann::ordered_json({{"policy", "keep"}, {"test_rows", 3}, {"in_train", 2}, {"dropped", 0}}));
  DatasetSplit test = DatasetSplit::open(dir / "out" / "test.bin");
  CHECK(test.origin_file(0) == 1);
  CHECK(test.label(0) == 1);
  CHECK(test.origin_line(2) == 4);

  config.policy.drop_test_overlap = true;
  config.out = dir / "dropped";
  m = preprocess(config, uncased()).manifest;
  CHECK(m["splits"]["test"]["examples"] == 1);
  CHECK(m["policies"]["test_overlap"]["dropped"] == 2);
  CHECK(m["counts"]["rejected"] == 0);  // the user's choice, not bad rows
  auto rejected = read_jsonl(dir / "dropped" / "rejected.jsonl");
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[0]["kind"] == "test_overlap");
  CHECK(rejected[0]["line"] == 2);
  CHECK(rejected[0]["reason"] ==
        "also in the train split at " + (dir / "train.tsv").string() + ":3 (--drop-test-overlap)");
}

TEST_CASE("preprocess: with --duplicates keep, repeats of a text share the split of its first row") {
  // Otherwise keeping duplicates would put the same text in train and in test.
  REQUIRE(have_vocab());
  t::TempDir dir;
  std::string csv = "text,label\n";
  for (int i = 0; i < 50; ++i)
    for (int r = 0; r < 4; ++r) csv += fmt::format("query {},{}\n", i, r == 3 ? (i + 1) % 3 : i % 3);
  t::write_text(dir / "q.csv", csv);
  PreprocessConfig config = config_for(dir / "q.csv", dir / "out");
  config.policy.duplicates = DuplicatePolicy::keep;
  config.policy.conflicts = ConflictPolicy::keep;
  auto m = preprocess(config, uncased()).manifest;
  CHECK(m["counts"]["kept"] == 200);
  CHECK(m["policies"]["duplicates"] == nlohmann::ordered_json({{"policy", "keep"}, {"dropped", 0}, {"kept", 100}}));
  CHECK(m["policies"]["conflicts"]["kept"] == 50);
  CHECK(m["policies"]["conflicts"]["texts"] == 50);
  std::map<uint64_t, std::set<int>> splits_of_text;
  for (int s = 0; s < kSplitCount; ++s) {
    DatasetSplit split = DatasetSplit::open(dir / "out" / (std::string(split_name(s)) + ".bin"));
    for (size_t i = 0; i < split.size(); ++i) splits_of_text[(split.origin_line(i) - 2) / 4].insert(s);
  }
  REQUIRE(splits_of_text.size() == 50);
  size_t in_one = 0;
  for (const auto& [text, splits] : splits_of_text) in_one += splits.size() == 1;
  CHECK(in_one == 50);
}

TEST_CASE("preprocess: fixed labels reject unknown ones, regression rejects non-numbers") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "c.csv", "text,label\na,pos\nb,meh\n");
  PreprocessConfig config = config_for(dir / "c.csv", dir / "out");
  config.labels = {"neg", "pos"};
  CHECK(error_of(config).find((dir / "c.csv").string() + ":3: unknown label 'meh'; --labels allows neg, pos") !=
        std::string::npos);

  t::write_text(dir / "r.csv", "text,label\na,4.5\nb,five\nc,nan\nd,3\n");
  config = config_for(dir / "r.csv", dir / "out");
  config.task = Task::regression;
  config.max_rejected = RejectLimit::parse("2");
  auto m = preprocess(config, uncased()).manifest;
  CHECK(m["counts"]["rejected"] == 2);
  auto rejected = read_jsonl(dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[0]["reason"] == "target 'five' is not a number");
  CHECK(rejected[1]["reason"] == "target 'nan' is not a number");
}

TEST_CASE("preprocess: numeric labels sort numerically and long texts are truncated") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  std::string csv = "text,stars\n";
  for (int i = 0; i < 20; ++i) {
    std::string text = fmt::format("review number {}", i);
    if (i == 0) text += " and many more words to push it past the limit";
    csv += fmt::format("{},{}\n", text, i % 10 + 1);
  }
  t::write_text(dir / "s.csv", csv);
  PreprocessConfig config = config_for(dir / "s.csv", dir / "out");
  config.label_column = "stars";
  config.max_length = 8;
  auto m = preprocess(config, uncased()).manifest;
  CHECK(m["labels"] == nlohmann::ordered_json({"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}));
  CHECK(m["label_order"] == "numeric");
  CHECK(m["truncated"] == 1);
  CHECK(m["token_lengths"]["max"].get<int>() > 8);
  CHECK(m["token_lengths"]["p50"] == 5);  // [CLS] review number N [SEP]
  DatasetSplit train = DatasetSplit::open(dir / "out" / "train.bin");
  for (size_t i = 0; i < train.size(); ++i) CHECK(train.length(i) <= 8);
}

TEST_CASE("validate_config: combinations that make no sense are usage errors") {
  t::TempDir dir;
  t::write_text(dir / "a.csv", "text,label\nx,y\n");
  PreprocessConfig config;
  config.out = dir / "out";
  CHECK_THROWS_WITH_AS(validate_config(config),
                       "no input: give --input FILE (repeatable), or --train FILE with optional --dev and --test",
                       recmodel::UsageError);
  config.inputs = {{dir / "a.csv", Format::csv, -1}, {dir / "a.csv", Format::csv, kTrain}};
  CHECK_THROWS_AS(validate_config(config), recmodel::UsageError);
  config.inputs = {{dir / "a.csv", Format::csv, kDev}};
  CHECK_THROWS_WITH_AS(validate_config(config), "--dev and --test need --train as well", recmodel::UsageError);
  config.inputs = {{dir / "nope.csv", Format::csv, -1}};
  CHECK_THROWS_WITH_AS(validate_config(config), ((dir / "nope.csv").string() + ": no such file").c_str(),
                       recmodel::NotFoundError);
  config.inputs = {{dir / "a.csv", Format::csv, -1}};
  config.label_column = "text";
  CHECK_THROWS_WITH_AS(validate_config(config),
                       "--text-column and --label-column both name column \"text\"; each needs its own column",
                       recmodel::UsageError);
  config.label_column = "label";
  config.task = Task::regression;
  config.labels = {"a"};
  CHECK_THROWS_AS(validate_config(config), recmodel::UsageError);
  config.labels.clear();
  config.max_length = 2;
  CHECK_THROWS_WITH_AS(validate_config(config),
                       "--max-length 2 leaves no room for text after 2 special tokens; use at least 3",
                       recmodel::UsageError);
}

TEST_CASE("RejectLimit parses counts and percentages strictly") {
  CHECK(RejectLimit::parse("0").text() == "0");
  CHECK(RejectLimit::parse("12").exceeded(13, 100));
  CHECK_FALSE(RejectLimit::parse("12").exceeded(12, 100));
  CHECK(RejectLimit::parse("2.5%").text() == "2.5%");
  CHECK_FALSE(RejectLimit::parse("2.5%").exceeded(25, 1000));
  CHECK(RejectLimit::parse("2.5%").exceeded(26, 1000));
  for (const char* bad : {"", "-1", "1.5", "abc", "101%", "%", "5 %", "1e3"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(RejectLimit::parse(bad), recmodel::UsageError);
  }
}

TEST_CASE("preprocess: a file with only a header is an error, not an empty dataset") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "h.csv", "text,label\n");
  PreprocessConfig config = config_for(dir / "h.csv", dir / "out");
  CHECK(error_of(config) == "no data rows in " + (dir / "h.csv").string() + "; only a header, or empty");
  CHECK_FALSE(t::fs::exists(dir / "out"));
}

TEST_CASE("preprocess: memory stays flat because rows are spooled, not held") {
  REQUIRE(have_vocab());
  // A regression test for the in-memory de-duplication index, which grew with every row: the
  // scratch files must be gone afterwards and the result must match a run on half the data
  // doubled (every second half row a duplicate).
  t::TempDir dir;
  std::string csv = "text,label\n";
  for (int i = 0; i < 5000; ++i) csv += fmt::format("product number {} in stock,{}\n", i % 2500, i % 2500 % 7);
  t::write_text(dir / "d.csv", csv);
  PreprocessConfig config = config_for(dir / "d.csv", dir / "out");
  config.threads = 3;
  auto m = preprocess(config, uncased()).manifest;
  CHECK(m["counts"]["kept"] == 2500);
  CHECK(m["counts"]["duplicates_removed"] == 2500);
  CHECK_FALSE(t::fs::exists(dir / "out" / ".work"));
  std::vector<std::string> names;
  for (const auto& entry : t::fs::directory_iterator(dir / "out")) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"dev.bin", "manifest.json", "rejected.jsonl", "test.bin", "tokenizer",
                                          "train.bin"});
  auto rejected = read_jsonl(dir / "out" / "rejected.jsonl");
  REQUIRE(rejected.size() == 2500);
  CHECK(rejected.front()["line"] == 2502);
  CHECK(rejected.front()["reason"] == "duplicate of " + (dir / "d.csv").string() + ":2");
  CHECK(rejected.back()["line"] == 5001);
}

TEST_CASE("preprocess: a majority tie on every text leaves nothing, and the error does not suggest --max-rejected") {
  REQUIRE(have_vocab());
  t::TempDir dir;
  t::write_text(dir / "tie.csv", "text,label\nGood,4\nGood,5\n");
  PreprocessConfig config = config_for(dir / "tie.csv", dir / "out");
  config.policy.conflicts = ConflictPolicy::majority;
  config.max_rejected = RejectLimit::parse("100%");
  const std::string file = (dir / "tie.csv").string();
  CHECK(error_of(config) == "none of the 2 rows is usable: " + file +
                                ":2: no label is the most frequent for this text (2 rows, the top labels have 1 each; "
                                "the first is at " + file + ":2), so all its rows are rejected (--conflicts majority); " +
                                file + ":3: no label is the most frequent for this text (2 rows, the top labels have 1 "
                                "each; the first is at " + file + ":2), so all its rows are rejected (--conflicts "
                                "majority). Fix the input");
  CHECK_FALSE(t::fs::exists(dir / "out"));
}
