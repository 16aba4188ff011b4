// data::check_compatible: the one dataset-model fit check of train, evaluate and quantize.
#include "data/compatibility.h"

#include <doctest/doctest.h>

#include "common/error.h"

using namespace recmodel::data;

namespace {

PreparedDataset dataset(std::vector<std::string> labels = {"a", "b", "c"}) {
  PreparedDataset d;
  d.dir = "/data/intent";
  d.task = labels.empty() ? Task::regression : Task::classification;
  d.labels = std::move(labels);
  d.vocab_sha256 = std::string(64, 'a');
  d.vocab_size = 30;
  d.max_length = 64;
  return d;
}

ModelSummary model(std::vector<std::string> labels = {"a", "b", "c"}) {
  ModelSummary m;
  m.name = "models:/intent@production";
  m.regression = labels.empty();
  m.labels = std::move(labels);
  m.vocab_sha256 = std::string(64, 'a');
  m.vocab_size = 30;
  m.max_positions = 128;
  return m;
}

}  // namespace

TEST_CASE("check_compatible maps the dataset's labels to the model's by name") {
  CHECK(check_compatible(dataset(), model()).label_map == std::vector<int32_t>{0, 1, 2});
  CHECK(check_compatible(dataset(), model()).identity());
  Fit shuffled = check_compatible(dataset({"c", "a", "b"}), model());
  CHECK(shuffled.label_map == std::vector<int32_t>{2, 0, 1});
  CHECK_FALSE(shuffled.identity());
  CHECK(shuffled.model_label(0, "/data/intent/test.bin", 4) == 2);
  CHECK_THROWS_WITH_AS(shuffled.model_label(3, "/data/intent/test.bin", 4),
                       "/data/intent/test.bin: example 4 has class id 3, outside the manifest's 3 labels",
                       recmodel::DataError);
  // A dataset with fewer classes than the model is scored on the model's classes.
  CHECK(check_compatible(dataset({"b"}), model()).label_map == std::vector<int32_t>{1});
  CHECK(check_compatible(dataset({}), model({})).label_map.empty());
}

TEST_CASE("check_compatible refuses each mismatch with one message naming dataset and model") {
  CHECK_THROWS_WITH_AS(check_compatible(dataset({"a", "z"}), model()),
                       "/data/intent: label \"z\" of the dataset is not a label of models:/intent@production (its "
                       "labels: \"a\", \"b\", \"c\")",
                       recmodel::DataError);
  ModelSummary other_vocab = model();
  other_vocab.vocab_sha256 = std::string(64, 'b');
  other_vocab.vocab_size = 31;
  CHECK_THROWS_WITH_AS(check_compatible(dataset(), other_vocab),
                       "/data/intent was tokenized with another vocabulary than models:/intent@production (vocabulary "
                       "sha256 aaaaaaaaaaaa… vs bbbbbbbbbbbb…, 30 vs 31 tokens); prepare the data again with 'recmodel "
                       "preprocess --model models:/intent@production'",
                       recmodel::DataError);
  ModelSummary cased = model();
  cased.tokenizer_settings.lowercase = false;
  cased.tokenizer_settings.strip_accents = false;
  CHECK_THROWS_WITH_AS(check_compatible(dataset(), cased),
                       doctest::Contains("/data/intent was tokenized with other settings (lowercase true, strip "
                                         "accents true, split CJK characters true) than models:/intent@production "
                                         "(lowercase false, strip accents false"),
                       recmodel::DataError);
  CHECK_THROWS_WITH_AS(check_compatible(dataset({}), model()),
                       "models:/intent@production is a classification model but /data/intent is a regression dataset",
                       recmodel::DataError);
  ModelSummary short_model = model();
  short_model.max_positions = 32;
  CHECK_THROWS_WITH_AS(check_compatible(dataset(), short_model),
                       "/data/intent: examples of up to 64 tokens, but the model models:/intent@production has 32 "
                       "positions; preprocess with --max-length 32",
                       recmodel::DataError);
}

TEST_CASE("a label shown in a message is escaped and cut short") {
  ModelSummary m = model();
  CHECK_THROWS_WITH_AS(check_compatible(dataset({"a", "bad\x1b[2Jlabel"}), m),
                       doctest::Contains("label \"bad\\u001b[2Jlabel\" of the dataset"), recmodel::DataError);
  m.labels.clear();
  for (int i = 0; i < 50; ++i) m.labels.push_back("class" + std::to_string(i));
  CHECK_THROWS_WITH_AS(check_compatible(dataset({"x"}), m), doctest::Contains("\"class7\", … (50 in all))"),
                       recmodel::DataError);
}

TEST_CASE("same_head: the same task and label names, in any order") {
  CHECK(same_head(dataset(), model()));
  CHECK(same_head(dataset({"c", "b", "a"}), model()));
  CHECK_FALSE(same_head(dataset({"a", "b"}), model()));
  CHECK_FALSE(same_head(dataset({"a", "b", "c", "d"}), model()));
  CHECK_FALSE(same_head(dataset({}), model()));
  CHECK(same_head(dataset({}), model({})));
}

TEST_CASE("check_compatible appends train's remedy to the refusals a new head cures, and only to those") {
  const std::string remedy = "pass --reset-head to train a new head";
  CHECK_THROWS_WITH_AS(check_compatible(dataset({"a", "z"}), model(), remedy),
                       "/data/intent: label \"z\" of the dataset is not a label of models:/intent@production (its "
                       "labels: \"a\", \"b\", \"c\"); pass --reset-head to train a new head",
                       recmodel::DataError);
  CHECK_THROWS_WITH_AS(check_compatible(dataset({}), model(), remedy),
                       "models:/intent@production is a classification model but /data/intent is a regression "
                       "dataset; pass --reset-head to train a new head",
                       recmodel::DataError);
  ModelSummary other_vocab = model();
  other_vocab.vocab_sha256 = std::string(64, 'b');
  CHECK_THROWS_WITH_AS(check_compatible(dataset(), other_vocab, remedy),
                       doctest::Contains("prepare the data again with 'recmodel preprocess --model "
                                         "models:/intent@production'"),
                       recmodel::DataError);
  ModelSummary short_model = model();
  short_model.max_positions = 32;
  CHECK_THROWS_WITH_AS(check_compatible(dataset(), short_model, remedy),
                       doctest::Contains("positions; preprocess with --max-length 32"), recmodel::DataError);
  CHECK(label_list({"a", "b"}) == "\"a\", \"b\"");
}
