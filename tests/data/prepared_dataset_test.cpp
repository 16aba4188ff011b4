// PreparedDataset::open: the one dataset opener (format version, bounded manifest, splits).
#include "data/prepared_dataset.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tests/support.h"

using namespace recmodel::data;
namespace t = recmodel::testing;

namespace {

nlohmann::json manifest() {
  return {{"format", "recmodel-dataset"},
          {"format_version", 1},
          {"task", "classification"},
          {"labels", {"neg", "pos"}},
          {"tokenizer",
           {{"directory", "tokenizer"},
            {"vocab_sha256", std::string(64, 'a')},
            {"vocab_size", 30},
            {"settings", {{"do_lower_case", false}, {"strip_accents", nullptr}}}}},
          {"max_length", 64},
          {"splits", {{"train", {{"file", "train.bin"}, {"examples", 10}}}, {"test", {{"examples", 0}}}}}};
}

}  // namespace

TEST_CASE("PreparedDataset::open reads what train, evaluate and quantize need") {
  t::TempDir dir;
  t::write_text(dir / "manifest.json", manifest().dump());
  t::write_text(dir / "train.bin", "");
  PreparedDataset d = PreparedDataset::open(dir.path());
  CHECK(d.task == Task::classification);
  CHECK(d.labels == std::vector<std::string>{"neg", "pos"});
  CHECK(d.vocab_sha256 == std::string(64, 'a'));
  CHECK(d.vocab_size == 30);
  CHECK(d.max_length == 64);
  CHECK_FALSE(d.tokenizer_settings.lowercase);
  CHECK_FALSE(d.tokenizer_settings.strip_accents);  // unset: follows do_lower_case
  CHECK(d.split_examples.at("train") == 10);
  CHECK(d.has_split("train"));
  CHECK_FALSE(d.has_split("test"));
  CHECK_FALSE(d.has_split("dev"));
}

TEST_CASE("PreparedDataset::open refuses a dataset from a newer recmodel, saying so") {
  t::TempDir dir;
  auto m = manifest();
  m["format_version"] = 2;
  t::write_text(dir / "manifest.json", m.dump());
  CHECK_THROWS_WITH_AS(PreparedDataset::open(dir.path()),
                       ((dir / "manifest.json").string() +
                        ": dataset format version 2 is newer than this recmodel reads (1); upgrade recmodel")
                           .c_str(),
                       recmodel::DataError);
}

TEST_CASE("PreparedDataset::open refuses malformed manifests as bad input, not a crash") {
  t::TempDir dir;
  const std::string path = (dir / "manifest.json").string();
  auto refused = [&](const nlohmann::json& m, const std::string& message) {
    t::write_text(dir / "manifest.json", m.dump());
    CHECK_THROWS_WITH_AS(PreparedDataset::open(dir.path()), (path + ": " + message).c_str(), recmodel::DataError);
  };
  auto m = manifest();
  m["labels"] = {"neg", 3};
  refused(m, "labels[1] is 3, expected a string");
  m["labels"] = {"neg", "neg"};
  refused(m, "label \"neg\" is listed twice");
  m = manifest();
  m["task"] = "ranking";
  refused(m, "\"task\" is \"ranking\", expected \"classification\" or \"regression\"");
  m = manifest();
  m["tokenizer"] = "x";
  refused(m, "incomplete manifest: no tokenizer.vocab_sha256");
  m = manifest();
  m["max_length"] = -1;
  refused(m, "incomplete manifest: no max_length (a whole number)");
  m = manifest();
  m["format_version"] = "1";
  refused(m, "missing or invalid format_version");
  m = manifest();
  m["splits"] = {1, 2};  // not an object: no splits, rather than a type error
  t::write_text(dir / "manifest.json", m.dump());
  CHECK_FALSE(PreparedDataset::open(dir.path()).has_split("train"));

  t::write_text(dir / "manifest.json", std::string(100000, '[') + std::string(100000, ']'));
  CHECK_THROWS_AS(PreparedDataset::open(dir.path()), recmodel::DataError);
}

TEST_CASE("regression: PreparedDataset::open reads manifests with fields it does not know") {
  t::TempDir dir;
  auto m = manifest();
  // What a newer preprocess records (policy counts, train-test overlap) within format version 1.
  m["policy"] = {{"duplicates", "keep"}, {"conflicts", {{"mode", "majority"}, {"resolved", 4}}}};
  m["test_overlap"] = {{"rows", 615}, {"of", 3532}, {"dropped", false}};
  m["splits"]["train"]["overlap"] = 3;
  m["tokenizer"]["source"] = "--vocab v.txt";
  t::write_text(dir / "manifest.json", m.dump());
  t::write_text(dir / "train.bin", "");
  PreparedDataset d = PreparedDataset::open(dir.path());
  CHECK(d.labels == std::vector<std::string>{"neg", "pos"});
  CHECK(d.split_examples.at("train") == 10);
  CHECK(d.manifest.at("test_overlap").at("rows") == 615);
}

TEST_CASE("PreparedDataset::open refuses a vocabulary hash that is not one, before it reaches a message") {
  t::TempDir dir;
  auto m = manifest();
  m["tokenizer"]["vocab_sha256"] = "\x1b[2Jnot a hash";
  t::write_text(dir / "manifest.json", m.dump());
  CHECK_THROWS_WITH_AS(PreparedDataset::open(dir.path()),
                       doctest::Contains("tokenizer.vocab_sha256 is \"\\u001b[2Jnot a hash\", expected 64 "
                                         "hexadecimal digits"),
                       recmodel::DataError);
}

TEST_CASE("PreparedDataset::require_split names the splits that have examples") {
  t::TempDir dir;
  t::write_text(dir / "manifest.json", manifest().dump());
  t::write_text(dir / "train.bin", "");
  t::write_text(dir / "test.bin", "");
  PreparedDataset d = PreparedDataset::open(dir.path());
  CHECK_THROWS_WITH_AS(d.require_split("test"),
                       (dir.path().string() +
                        ": the dataset has no examples in split 'test' (--split); it has examples in train")
                           .c_str(),
                       recmodel::NotFoundError);
  CHECK_THROWS_WITH_AS(d.require_split("dev"), doctest::Contains("no examples in split 'dev'"),
                       recmodel::NotFoundError);
  CHECK_THROWS_AS(d.require_split("../train"), recmodel::UsageError);
}

TEST_CASE("PreparedDataset::load_tokenizer checks the tokenizer folder against the manifest") {
  t::TempDir dir;
  std::filesystem::create_directories(dir / "tokenizer");
  t::write_text(dir / "tokenizer" / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\n");
  const std::string sha =
      recmodel::tokenizer::BertTokenizer::from_model_dir(dir / "tokenizer").vocab().sha256();
  auto m = manifest();
  m["tokenizer"]["vocab_sha256"] = sha;
  m["tokenizer"].erase("settings");  // from the folder's tokenizer_config.json (none: the defaults)
  t::write_text(dir / "manifest.json", m.dump());
  CHECK(PreparedDataset::open(dir.path()).load_tokenizer().vocab().size() == 6);

  m["tokenizer"]["settings"] = {{"do_lower_case", false}};
  t::write_text(dir / "manifest.json", m.dump());
  CHECK_THROWS_WITH_AS(PreparedDataset::open(dir.path()).load_tokenizer(),
                       doctest::Contains("/tokenizer: its settings are not the ones"), recmodel::IntegrityError);

  m["tokenizer"].erase("settings");
  m["tokenizer"]["vocab_sha256"] = std::string(64, 'a');
  t::write_text(dir / "manifest.json", m.dump());
  CHECK_THROWS_WITH_AS(PreparedDataset::open(dir.path()).load_tokenizer(),
                       ((dir / "tokenizer").string() + ": its vocabulary (sha256 " + sha.substr(0, 12) +
                        "…) is not the one " + dir.path().string() +
                        "/manifest.json names (aaaaaaaaaaaa…); the dataset was changed after 'recmodel preprocess' "
                        "wrote it: prepare it again")
                           .c_str(),
                       recmodel::IntegrityError);
}
