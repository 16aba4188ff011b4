// recmodel pretrain end to end: a masked-LM folder in Hugging Face's layout that train and
// init --from fine-tune with a new head, resume after an interruption, and the errors.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "common/files.h"
#include "tests/cli/train_fixture.h"
#include "tests/support.h"

using namespace recmodel::testing::train;
namespace t = recmodel::testing;

namespace {

// The tensor names in a safetensors file's header (8 bytes of length, then JSON).
std::set<std::string> tensor_names(const t::fs::path& file) {
  const std::string bytes = t::read_text(file);
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
  std::set<std::string> names;
  for (const auto& item : header.items())
    if (item.key() != "__metadata__") names.insert(item.key());
  return names;
}

// Unlabelled titles of the fixture's kind: its CSV without ids and labels.
std::string corpus_text(int rows) {
  std::string csv = category_csv(rows, 29), text;
  size_t at = csv.find('\n') + 1;
  while (at < csv.size()) {
    size_t end = csv.find('\n', at);
    std::string line = csv.substr(at, end - at);
    size_t first = line.find(','), last = line.rfind(',');
    text += line.substr(first + 1, last - first - 1) + "\n";
    at = end + 1;
  }
  return text;
}

std::vector<std::string> pretrain_args(const Fixture& f, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"pretrain", "--corpus", f.path("corpus.txt"), "--out", out, "--threads", "1"};
  const std::pair<const char*, const char*> defaults[] = {{"--batch-size", "16"}, {"--lr", "2e-3"},
                                                          {"--max-length", "32"}, {"--eval-fraction", "0.1"}};
  for (const auto& [option, value] : defaults)
    if (std::find(extra.begin(), extra.end(), option) == extra.end()) args.insert(args.end(), {option, value});
  if (std::find(extra.begin(), extra.end(), "--model") == extra.end())
    args.insert(args.end(), {"--preset", "tiny", "--vocab", f.vocab});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

TEST_CASE("pretrain writes a BertForMaskedLM folder that learned the corpus, and train fine-tunes it with a new head") {
  Fixture f;
  t::write_text(f.dir / "corpus.txt", corpus_text(1500) + "\n\n");
  auto run = t::run_recmodel(pretrain_args(f, f.path("mlm"), {"--epochs", "3", "--json"}));
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto summary = nlohmann::json::parse(run.out);
  CHECK(summary["epochs_completed"] == 3);
  CHECK(summary["corpus"]["lines"] == 1500);
  CHECK(summary["corpus"]["empty_lines"] == 2);
  // Titles are random filler words and a noun last: about 1 in 10 can be told; chance over the
  // 25 tokens would be a perplexity of 25.
  INFO("held out: " << summary["held_out"].dump());
  CHECK(summary["held_out"]["masked_accuracy"].get<double>() > 0.1);
  CHECK(summary["held_out"]["perplexity"].get<double>() < 20);
  auto config = nlohmann::json::parse(t::read_text(f.dir / "mlm" / "config.json"));
  CHECK(config["architectures"] == nlohmann::json::array({"BertForMaskedLM"}));
  CHECK(config["id2label"] == nlohmann::json({{"0", "LABEL_0"}, {"1", "LABEL_1"}}));  // Hugging Face's default
  const std::set<std::string> names = tensor_names(f.dir / "mlm" / "model.safetensors");
  CHECK(names.count("cls.predictions.transform.dense.weight"));
  CHECK_FALSE(names.count("bert.pooler.dense.weight"));
  for (const char* file : {"vocab.txt", "tokenizer.json", "tokenizer_config.json", "recmodel.json", "pretrain_log.jsonl"})
    CHECK_MESSAGE(t::fs::exists(f.dir / "mlm" / file), file);
  CHECK_FALSE(t::fs::exists(f.dir / "mlm.pretrain"));
  auto lineage = nlohmann::json::parse(t::read_text(f.dir / "mlm" / "recmodel.json"));
  CHECK(lineage["created_by"] == "pretrain");
  CHECK(lineage["corpus"][0]["sha256"] == recmodel::sha256_file(f.dir / "corpus.txt"));

  // train --model on it: no --reset-head needed, one line names what was dropped and added.
  auto trained = t::run_recmodel({"train", "--model", f.path("mlm"), "--data", f.data, "--out", f.path("tuned"),
                                  "--batch-size", "16", "--lr", "2e-3", "--seed", "5", "--threads", "1", "--epochs",
                                  "2", "--json"});
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
  INFO("train's stderr: " << trained.err);
  CHECK(trained.err.find(f.path("mlm") + " is a pretrained encoder (BertForMaskedLM): dropped cls.predictions.* (5); "
                         "added a new head for labels [\"clothing\", \"grocery\", \"home\"]: bert.pooler.* (2), "
                         "classifier.bias (1), classifier.weight (1)") != std::string::npos);
  CHECK(nlohmann::json::parse(trained.out)["best"].get<double>() >= 0.9);

  // init --from: the same head on the same encoder, as a folder to train later.
  auto made = t::run_recmodel({"init", "--from", f.path("mlm"), "--data", f.data, "--out", f.path("headed"), "--json"});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  auto document = nlohmann::json::parse(made.out);
  CHECK(document["labels"] == nlohmann::json::array({"clothing", "grocery", "home"}));
  CHECK(document["initialized"].size() == 4);
  auto headed = nlohmann::json::parse(t::read_text(f.dir / "headed" / "config.json"));
  CHECK(headed["architectures"] == nlohmann::json::array({"BertForSequenceClassification"}));

  // Continued pretraining of the folder: nothing to add, the tokenizer kept.
  auto more = t::run_recmodel(pretrain_args(f, f.path("mlm2"), {"--model", f.path("mlm"), "--max-steps", "3"}));
  REQUIRE_MESSAGE(more.exit_code == 0, more.err);
  CHECK(more.err.find("added") == std::string::npos);
  CHECK(t::read_text(f.dir / "mlm2" / "vocab.txt") == t::read_text(f.dir / "mlm" / "vocab.txt"));
}

TEST_CASE("pretrain: --stop-after then --resume ends with the weights of the uninterrupted run") {
  Fixture f(60);
  t::write_text(f.dir / "corpus.txt", corpus_text(400));
  auto straight = t::run_recmodel(pretrain_args(f, f.path("a"), {"--max-steps", "30", "--checkpoint-every", "7"}));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.err);
  auto stopped = t::run_recmodel(pretrain_args(f, f.path("b"), {"--max-steps", "30", "--checkpoint-every", "7",
                                                                 "--stop-after", "12"}));
  CHECK(stopped.exit_code == 130);
  CHECK(t::error_line_count(stopped.err) == 1);
  CHECK_FALSE(t::fs::exists(f.dir / "b"));
  CHECK(t::fs::exists(f.dir / "b.pretrain" / "checkpoint" / "state.json"));
  // Without --resume the checkpoint is not thrown away silently.
  auto again = t::run_recmodel(pretrain_args(f, f.path("b"), {"--max-steps", "30", "--checkpoint-every", "7"}));
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("--resume") != std::string::npos);
  // Another setting than the interrupted run's is named.
  auto changed = t::run_recmodel(pretrain_args(f, f.path("b"), {"--max-steps", "30", "--checkpoint-every", "7",
                                                                 "--resume", "--lr", "1e-3"}));
  CHECK(changed.exit_code == 2);
  CHECK(changed.err.find("lr was 0.002, now 0.001") != std::string::npos);
  auto resumed = t::run_recmodel(pretrain_args(f, f.path("b"), {"--max-steps", "30", "--checkpoint-every", "7",
                                                                 "--resume", "--json"}));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  CHECK(nlohmann::json::parse(resumed.out)["resumed_from_step"] == 12);
  CHECK(t::read_text(f.dir / "a" / "model.safetensors") == t::read_text(f.dir / "b" / "model.safetensors"));
}

TEST_CASE("pretrain refuses what it cannot use with one line and its exit code, leaving nothing behind") {
  Fixture f(60);
  t::write_text(f.dir / "corpus.txt", corpus_text(50));
  t::write_text(f.dir / "bad.txt", "red shoe\nblue \xfe lamp\n");
  t::write_text(f.dir / "nomask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nred\nshoe\n");
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"pretrain", "--corpus", f.path("corpus.txt"), "--out", f.path("o")}, 2, "--model REF"},
      {{"pretrain", "--corpus", f.path("corpus.txt"), "--preset", "tiny", "--vocab", f.vocab, "--model", f.model,
        "--out", f.path("o")},
       2, "not both"},
      {{"pretrain", "--corpus", f.path("missing.txt"), "--preset", "tiny", "--vocab", f.vocab, "--out", f.path("o")}, 4,
       "missing.txt"},
      {{"pretrain", "--corpus", f.path("bad.txt"), "--preset", "tiny", "--vocab", f.vocab, "--out", f.path("o")}, 3,
       "bad.txt:2: not UTF-8 text"},
      {{"pretrain", "--corpus", f.path("corpus.txt"), "--preset", "tiny", "--vocab", f.path("nomask.txt"), "--out",
        f.path("o")},
       3, "[MASK]"},
      {{"pretrain", "--corpus", f.path("corpus.txt"), "--preset", "tiny", "--vocab", f.vocab, "--max-length", "4096",
        "--out", f.path("o")},
       2, "--max-length 4096 is more than the model's 512 positions"},
      {{"pretrain", "--corpus", f.path("corpus.txt"), "--preset", "tiny", "--vocab", f.vocab, "--resume", "--out",
        f.path("o")},
       4, "no checkpoint to resume from"},
      {{"pretrain", "--corpus", f.path("corpus.txt"), "--model", f.path("nowhere"), "--out", f.path("o")}, 4, "nowhere"},
      {{"pretrain", "--corpus", "-", "--preset", "tiny", "--vocab", f.vocab, "--out", f.path("o")}, 2,
       "must be a file, not standard input"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    auto result = t::run_recmodel(c.args);
    CHECK(result.exit_code == c.code);
    CHECK(t::error_line_count(result.err) == 1);
    CHECK(result.err.find(c.message) != std::string::npos);
    CHECK_FALSE(t::fs::exists(f.dir / "o"));
  }
}
