// `recmodel init` and `recmodel train`: the model layout written, learning on a small task,
// bit-identical resume after --stop-after and after SIGINT, and the refusals users hit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <sys/wait.h>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "tests/hostile.h"
#include "tests/support.h"
#include "tests/cli/train_fixture.h"

namespace t = recmodel::testing;

using namespace recmodel::testing::train;

TEST_CASE("init writes a Hugging Face model directory with the dataset's labels") {
  Fixture f(60);
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                           "special_tokens_map.json", "tokenizer.json", "recmodel.json"})
    CHECK_MESSAGE(t::fs::exists(f.dir / "init" / file), file);
  auto config = nlohmann::json::parse(t::read_text(f.dir / "init" / "config.json"));
  CHECK(config["model_type"] == "bert");
  CHECK(config["num_hidden_layers"] == 2);
  CHECK(config["hidden_size"] == 128);
  CHECK(config["vocab_size"] == 25);
  CHECK(config["id2label"] == nlohmann::json({{"0", "clothing"}, {"1", "grocery"}, {"2", "home"}}));

  auto json = t::run_recmodel({"init", "--preset", "mini", "--vocab", f.vocab, "--labels", "neg,pos", "--out",
                               f.path("mini"), "--json"});
  REQUIRE(json.exit_code == 0);
  auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["layers"] == 4);
  CHECK(doc["labels"] == nlohmann::json({"neg", "pos"}));
  // The same seed gives the same weights.
  auto again = t::run_recmodel({"init", "--preset", "tiny", "--data", f.data, "--out", f.path("init2"), "--seed", "3"});
  REQUIRE(again.exit_code == 0);
  CHECK(recmodel::sha256_file(f.dir / "init" / "model.safetensors") ==
        recmodel::sha256_file(f.dir / "init2" / "model.safetensors"));
}

TEST_CASE("init refuses what it cannot build") {
  Fixture f(60);
  auto no_labels = t::run_recmodel({"init", "--vocab", f.vocab, "--out", f.path("x")});
  CHECK(no_labels.exit_code == 2);
  CHECK(no_labels.err ==
        "recmodel: error: a classifier needs its labels: --labels neg,pos or --data DIR of a prepared dataset\n");
  auto bad_preset = t::run_recmodel({"init", "--preset", "smal", "--vocab", f.vocab, "--labels", "a,b", "--out", f.path("x")});
  CHECK(bad_preset.exit_code == 2);
  CHECK(bad_preset.err.find("did you mean 'small'") != std::string::npos);
  auto exists = t::run_recmodel({"init", "--data", f.data, "--out", f.model});
  CHECK(exists.exit_code == 2);
  CHECK(exists.err.find("already exists") != std::string::npos);
  auto missing = t::run_recmodel({"init", "--vocab", f.path("nope.txt"), "--labels", "a,b", "--out", f.path("x")});
  CHECK(missing.exit_code == 4);
  CHECK_FALSE(t::fs::exists(f.dir / "x"));
}

TEST_CASE("train learns a small task, keeps the best dev model and writes its log") {
  Fixture f;
  const std::string registry = f.path("registry.db");
  auto run = t::run_recmodel(
      train_args(f, f.path("out"), {"--epochs", "3", "--json", "--register", "products", "--registry", registry}));
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto summary = nlohmann::json::parse(run.out);
  CHECK(summary["registered"] == "models:/products/1");
  auto shown = t::run_recmodel({"registry", "show", "models:/products/1", "--registry", registry, "--json"});
  REQUIRE_MESSAGE(shown.exit_code == 0, shown.err);
  CHECK(shown.out.find(f.path("out")) != std::string::npos);
  CHECK(summary["metric"] == "accuracy");
  // Three balanced classes: the majority class is ~0.33; the nouns make the task easy.
  CHECK(summary["best"].get<double>() >= 0.9);
  CHECK(summary["steps"] == summary["total_steps"]);
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "recmodel.json",
                           "train_log.jsonl"})
    CHECK_MESSAGE(t::fs::exists(f.dir / "out" / file), file);
  CHECK_FALSE(t::fs::exists(f.dir / "out.train"));
  auto lineage = nlohmann::json::parse(t::read_text(f.dir / "out" / "recmodel.json"));
  CHECK(lineage["dataset"]["manifest_sha256"] ==
        recmodel::sha256_file(f.dir / "data" / "manifest.json"));
  CHECK(lineage["params"]["lr"] == 2e-3);
  CHECK(lineage["metrics"]["dev"]["accuracy"] == summary["best"]);
  auto log = read_jsonl(f.dir / "out" / "train_log.jsonl");
  int evaluations = 0, steps = 0;
  for (const auto& record : log) {
    if (record.contains("dev")) ++evaluations;
    if (record.contains("loss")) {
      ++steps;
      for (const char* key : {"lr", "grad_norm", "samples_per_second", "tokens_per_second"})
        CHECK_MESSAGE(record.contains(key), key);
    }
  }
  CHECK(evaluations == 3);  // once per epoch
  CHECK(steps > 0);
}

TEST_CASE("same seed and data give the same weights, and --stop-after then --resume ends bit-identical") {
  Fixture f(300);
  auto straight = t::run_recmodel(train_args(f, f.path("straight"), {"--eval-every", "7", "--json"}));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.err);
  const int64_t total = nlohmann::json::parse(straight.out)["total_steps"].get<int64_t>();
  REQUIRE(total > 12);
  auto twice = t::run_recmodel(train_args(f, f.path("twice"), {"--eval-every", "7"}));
  REQUIRE(twice.exit_code == 0);
  const auto expected = recmodel::sha256_file(f.dir / "straight" / "model.safetensors");
  CHECK(recmodel::sha256_file(f.dir / "twice" / "model.safetensors") == expected);

  // Stopped mid-epoch, away from an evaluation, then resumed.
  auto stopped = t::run_recmodel(train_args(f, f.path("resumed"), {"--eval-every", "7", "--stop-after", "10"}));
  CHECK(stopped.exit_code == 130);
  CHECK(stopped.err.find("training stopped at step 10 of " + std::to_string(total) + ";") != std::string::npos);
  CHECK(t::fs::exists(f.dir / "resumed.train" / "checkpoint" / "optimizer.pt"));
  CHECK_FALSE(t::fs::exists(f.dir / "resumed"));
  auto again = t::run_recmodel(train_args(f, f.path("resumed"), {"--eval-every", "7"}));
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("--resume") != std::string::npos);
  auto resumed = t::run_recmodel(train_args(f, f.path("resumed"), {"--eval-every", "7", "--resume", "--json"}));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  CHECK(nlohmann::json::parse(resumed.out)["resumed_from_step"] == 10);
  CHECK(recmodel::sha256_file(f.dir / "resumed" / "model.safetensors") == expected);
  // The log of the resumed run has each step once.
  std::vector<int64_t> logged;
  for (const auto& record : read_jsonl(f.dir / "resumed" / "train_log.jsonl"))
    if (record.contains("loss")) logged.push_back(record["step"].get<int64_t>());
  std::vector<int64_t> expected_steps;
  for (int64_t step = 10; step <= total; step += 10) expected_steps.push_back(step);
  if (total % 10) expected_steps.push_back(total);
  CHECK(logged == expected_steps);

  auto changed = t::run_recmodel(train_args(f, f.path("other"), {"--stop-after", "3"}));
  CHECK(changed.exit_code == 130);
  auto different = t::run_recmodel(train_args(f, f.path("other"), {"--resume", "--lr", "1e-3"}));
  CHECK(different.exit_code == 2);
  CHECK(different.err.find("lr was 0.002, now 0.001") != std::string::npos);
}

TEST_CASE("SIGINT saves a checkpoint, exits 130, and --resume ends with the uninterrupted weights") {
  Fixture f(400);
  auto straight = t::run_recmodel(train_args(f, f.path("straight"), {"--epochs", "4", "--log-every", "1"}));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.err);
  // Start in the background, interrupt once the log shows a few steps.
  std::string binary = RECMODEL_BINARY;
  std::string args;
  for (const auto& a : train_args(f, f.path("interrupted"), {"--epochs", "4", "--log-every", "1"})) args += " '" + a + "'";
  std::string script = "cd '" + f.dir.path().string() + "' && (CI=1 '" + binary + "'" + args +
                       " 2>err.txt & pid=$!; for i in $(seq 1 600); do "
                       "[ $(grep -c loss interrupted.train/train_log.jsonl 2>/dev/null || echo 0) -ge 3 ] && break; "
                       "sleep 0.05; done; kill -INT $pid; wait $pid; echo $? > code.txt)";
  t::write_text(f.dir / "interrupt.sh", script + "\n");
  REQUIRE(std::system(("/bin/bash " + (f.dir / "interrupt.sh").string()).c_str()) == 0);
  CHECK(t::read_text(f.dir / "code.txt") == "130\n");
  std::string err = t::read_text(f.dir / "err.txt");
  CHECK(err.find("recmodel: error: training stopped at step") != std::string::npos);
  auto resumed = t::run_recmodel(train_args(f, f.path("interrupted"), {"--epochs", "4", "--log-every", "1", "--resume"}));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  CHECK(recmodel::sha256_file(f.dir / "interrupted" / "model.safetensors") ==
        recmodel::sha256_file(f.dir / "straight" / "model.safetensors"));
}

TEST_CASE("train refuses a dataset of another vocabulary, other labels, and a missing checkpoint") {
  Fixture f(120);
  SUBCASE("another vocabulary") {
    t::write_text(f.dir / "vocab2.txt", t::read_text(f.dir / "vocab.txt") + "extra\n");
    auto other = t::run_recmodel({"preprocess", "--input", f.path("raw.csv"), "--text-column", "title",
                                  "--label-column", "category", "--vocab", f.path("vocab2.txt"), "--out", f.path("data2")});
    REQUIRE(other.exit_code == 0);
    auto run = t::run_recmodel({"train", "--model", f.model, "--data", f.path("data2"), "--out", f.path("out")});
    CHECK(run.exit_code == 3);
    CHECK(run.err.find(" was tokenized with another vocabulary than " + f.model + " (vocabulary sha256 ") !=
          std::string::npos);
    CHECK(run.err.find(", 26 vs 25 tokens); prepare the data again with 'recmodel preprocess --model " + f.model +
                       "'\n") != std::string::npos);
  }
  SUBCASE("labels that do not match the head, unless --reset-head") {
    auto other = t::run_recmodel({"init", "--preset", "tiny", "--vocab", f.vocab, "--labels", "a,b", "--out", f.path("ab")});
    REQUIRE(other.exit_code == 0);
    auto run = t::run_recmodel({"train", "--model", f.path("ab"), "--data", f.data, "--out", f.path("out")});
    CHECK(run.exit_code == 3);
    CHECK(run.err == "recmodel: error: " + f.data + ": label \"clothing\" of the dataset is not a label of " +
                         f.path("ab") + " (its labels: \"a\", \"b\"); pass --reset-head to train a new head\n");
    auto reset = t::run_recmodel({"train", "--model", f.path("ab"), "--data", f.data, "--out", f.path("out"),
                                  "--reset-head", "--epochs", "1"});
    CHECK_MESSAGE(reset.exit_code == 0, reset.err);
    CHECK(reset.err.find("has no classification head for these labels; initialized classifier.bias, "
                         "classifier.weight") != std::string::npos);
    auto config = nlohmann::json::parse(t::read_text(f.dir / "out" / "config.json"));
    CHECK(config["num_labels"] == 3);
  }
  SUBCASE("an int8 model") {
    auto quantized = t::run_recmodel({"quantize", "--model", f.model, "--out", f.path("int8")});
    REQUIRE_MESSAGE(quantized.exit_code == 0, quantized.err);
    auto run = t::run_recmodel({"train", "--model", f.path("int8"), "--data", f.data, "--out", f.path("out")});
    CHECK(run.exit_code == 3);
    CHECK(run.err == "recmodel: error: " + f.path("int8") + ": is an int8 model (recmodel quantize), which cannot be "
                         "trained; train its fp32 source and quantize again\n");
  }
  SUBCASE("--resume without a checkpoint") {
    auto run = t::run_recmodel({"train", "--model", f.model, "--data", f.data, "--out", f.path("out"), "--resume"});
    CHECK(run.exit_code == 4);
    CHECK(run.err.find("no checkpoint to resume from") != std::string::npos);
  }
  SUBCASE("bf16 on CPU, and bad numbers") {
    auto run = t::run_recmodel({"train", "--model", f.model, "--data", f.data, "--out", f.path("out"), "--device",
                                "cpu", "--precision", "bf16"});
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("--precision bf16 needs a CUDA device") != std::string::npos);
    auto lr = t::run_recmodel({"train", "--model", f.model, "--data", f.data, "--out", f.path("out"), "--lr", "abc"});
    CHECK(lr.exit_code == 2);
  }
  CHECK_FALSE(t::fs::exists(f.dir / "out.train"));
}

TEST_CASE("a diverging regression stops with exit 3 and keeps the last good checkpoint") {
  t::TempDir dir;
  t::write_text(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\nok\n");
  std::string csv = "text,stars\n";
  for (int i = 0; i < 64; ++i) csv += std::string(i % 2 ? "good" : "bad") + "," + (i % 2 ? "5" : "1") + "\n";
  csv += "ok,3e38\n";  // a target that fits a float but whose square overflows
  t::write_text(dir / "reviews.csv", csv);
  auto prepared = t::run_recmodel({"preprocess", "--input", (dir / "reviews.csv").string(), "--label-column", "stars",
                                   "--task", "regression", "--vocab", (dir / "vocab.txt").string(), "--out",
                                   (dir / "data").string(), "--split", "1,0,0"});
  REQUIRE_MESSAGE(prepared.exit_code == 0, prepared.err);
  auto made = t::run_recmodel({"init", "--preset", "tiny", "--data", (dir / "data").string(), "--out",
                               (dir / "model").string()});
  REQUIRE(made.exit_code == 0);
  auto run = t::run_recmodel({"train", "--model", (dir / "model").string(), "--data", (dir / "data").string(), "--out",
                              (dir / "out").string(), "--batch-size", "8", "--checkpoint-every", "1"});
  CHECK(run.exit_code == 3);
  CHECK(run.err.find("training diverged") != std::string::npos);
  CHECK(run.err.find("a lower --lr") != std::string::npos);
  CHECK_FALSE(t::fs::exists(dir / "out"));
}

TEST_CASE("a checkpoint that cannot be written (disk full) fails cleanly and keeps the previous one") {
  Fixture f(300);
  auto straight = t::run_recmodel(train_args(f, f.path("straight"), {"--eval-every", "7"}));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.err);
  auto stopped = t::run_recmodel(train_args(f, f.path("full"), {"--eval-every", "7", "--stop-after", "10"}));
  REQUIRE(stopped.exit_code == 130);
  const auto work = f.dir / "full.train";
  const auto saved = recmodel::sha256_file(work / "checkpoint" / "model.safetensors");
  const auto saved_state = t::read_text(work / "checkpoint" / "state.json");

  // Resumed under a file-size limit smaller than one model file: the next save (the evaluation at
  // step 14) gets EFBIG from write(2), as a full disk gives ENOSPC.
  std::string command = "trap '' XFSZ; ulimit -f 64; exec '" + std::string(RECMODEL_BINARY) + "'";
  for (const auto& arg : train_args(f, f.path("full"), {"--eval-every", "7", "--resume"})) command += " '" + arg + "'";
  command += " 2>'" + f.path("err.txt") + "' >/dev/null\n";
  t::write_text(f.dir / "limited.sh", command);
  const int status = std::system(("bash '" + f.path("limited.sh") + "'").c_str());
  REQUIRE(WIFEXITED(status));
  const std::string err = t::read_text(f.dir / "err.txt");
  CHECK_MESSAGE(WEXITSTATUS(status) == 3, err);
  CHECK(err.rfind("recmodel: error: ", 0) == 0);
  CHECK(err.find("File too large") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK_FALSE(t::fs::exists(f.dir / "full"));
  // The checkpoint of step 10 is untouched and no staging directory is left behind.
  CHECK(recmodel::sha256_file(work / "checkpoint" / "model.safetensors") == saved);
  CHECK(t::read_text(work / "checkpoint" / "state.json") == saved_state);
  for (const auto& entry : t::fs::directory_iterator(work))
    CHECK_MESSAGE(entry.path().filename().string().find(".tmp-") == std::string::npos, entry.path().string());

  // With room again, the run resumes from step 10 and ends with the uninterrupted weights.
  auto resumed = t::run_recmodel(train_args(f, f.path("full"), {"--eval-every", "7", "--resume", "--json"}));
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  CHECK(nlohmann::json::parse(resumed.out)["resumed_from_step"] == 10);
  CHECK(recmodel::sha256_file(f.dir / "full" / "model.safetensors") ==
        recmodel::sha256_file(f.dir / "straight" / "model.safetensors"));
}

TEST_CASE("regression: train and evaluate give the same message for a dataset made with another vocabulary") {
  Fixture f(60);
  // The same tokens with two swapped: same size, other ids. Train compared token lists, the others a hash.
  std::string text = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nblue\nred\n";
  for (size_t i = 2; i < sizeof(kWords) / sizeof(kWords[0]); ++i) text += std::string(kWords[i]) + "\n";
  t::write_text(f.dir / "swapped.txt", text);
  auto other = t::run_recmodel({"preprocess", "--input", f.path("raw.csv"), "--text-column", "title", "--label-column",
                                "category", "--vocab", f.path("swapped.txt"), "--out", f.path("swapped"), "-q"});
  REQUIRE_MESSAGE(other.exit_code == 0, other.err);
  const std::string data = f.path("swapped");
  auto train = t::run_recmodel_limited({"train", "--model", f.model, "--data", data, "--out", f.path("out")});
  auto evaluate = t::run_recmodel_limited({"evaluate", "--model", f.model, "--data", data});
  auto quantize = t::run_recmodel_limited({"quantize", "--model", f.model, "--data", data, "--out", f.path("int8")});
  REQUIRE_REFUSED(train, 3);
  REQUIRE_REFUSED(evaluate, 3);
  REQUIRE_REFUSED(quantize, 3);
  CHECK(train.err.rfind("recmodel: error: " + data + " was tokenized with another vocabulary than " + f.model +
                            " (vocabulary sha256 ",
                        0) == 0);
  CHECK(train.err.find(", 25 vs 25 tokens); prepare the data again with 'recmodel preprocess --model " + f.model +
                       "'\n") != std::string::npos);
  CHECK(evaluate.err == train.err);
  CHECK(quantize.err == train.err);
  CHECK_FALSE(t::fs::exists(f.dir / "out"));
  CHECK_FALSE(t::fs::exists(f.dir / "int8"));
}

TEST_CASE("regression: train keeps a head whose labels the dataset lists in another order") {
  Fixture f;
  // The model's head is [clothing, grocery, home]; this dataset numbers the classes home, clothing,
  // grocery: trained by id, every class would be learned under another one's name.
  auto reordered = t::run_recmodel({"preprocess", "--input", f.path("raw.csv"), "--text-column", "title",
                                    "--label-column", "category", "--labels", "home,clothing,grocery", "--vocab",
                                    f.vocab, "--out", f.path("reordered"), "--max-length", "16", "-q"});
  REQUIRE_MESSAGE(reordered.exit_code == 0, reordered.err);
  auto args = train_args(f, f.path("out"), {"--epochs", "3", "-q"});
  args[4] = f.path("reordered");  // --data
  auto run = t::run_recmodel(args);
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto config = nlohmann::json::parse(t::read_text(f.dir / "out" / "config.json"));
  CHECK(config["id2label"] == nlohmann::json({{"0", "clothing"}, {"1", "grocery"}, {"2", "home"}}));
  auto accuracy = [&](const std::string& data) {
    auto e = t::run_recmodel({"evaluate", "--model", f.path("out"), "--data", data, "--json", "-q"});
    REQUIRE_MESSAGE(e.exit_code == 0, e.err);
    return nlohmann::json::parse(e.out)["accuracy"].get<double>();
  };
  CHECK(accuracy(f.data) >= 0.9);
  CHECK(accuracy(f.path("reordered")) >= 0.9);
}

TEST_CASE("regression: init --data refuses a dataset whose tokenizer folder is not the one its manifest names") {
  Fixture f(60);
  // Another vocabulary put in the dataset's tokenizer folder: a model made from it would read the
  // dataset's ids as other tokens.
  t::write_text(f.dir / "data" / "tokenizer" / "vocab.txt", t::read_text(f.dir / "vocab.txt") + "extra\n");
  auto run = t::run_recmodel_limited({"init", "--preset", "tiny", "--data", f.data, "--out", f.path("made")});
  REQUIRE_REFUSED(run, 6);
  CHECK(run.err.rfind("recmodel: error: " + f.data + "/tokenizer: its vocabulary (sha256 ", 0) == 0);
  CHECK(run.err.find(") is not the one " + f.data + "/manifest.json names (") != std::string::npos);
  CHECK_FALSE(t::fs::exists(f.dir / "made"));
}

TEST_CASE("train keeps the later of tied dev evaluations, and a tie is no improvement for --patience") {
  Fixture f;
  // The nouns decide the label: dev accuracy reaches its top early and then ties.
  auto run = t::run_recmodel(
      train_args(f, f.path("out"), {"--epochs", "12", "--eval-every", "10", "--patience", "3", "--json"}));
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto summary = nlohmann::json::parse(run.out);
  std::vector<std::pair<int64_t, double>> evaluations;
  for (const auto& record : read_jsonl(f.dir / "out" / "train_log.jsonl"))
    if (record.contains("dev")) evaluations.emplace_back(record["step"].get<int64_t>(), record["dev"]["accuracy"].get<double>());
  REQUIRE(evaluations.size() >= 4);
  double top = 0;
  for (const auto& [step, accuracy] : evaluations) top = std::max(top, accuracy);
  int64_t first_top = -1, last_top = -1;
  size_t first_top_index = 0;
  for (size_t i = 0; i < evaluations.size(); ++i)
    if (evaluations[i].second == top) {
      if (first_top < 0) first_top = evaluations[i].first, first_top_index = i;
      last_top = evaluations[i].first;
    }
  REQUIRE_MESSAGE(first_top != last_top, "the dev accuracy never tied its best; the test needs a tie");
  CHECK(summary["best_step"].get<int64_t>() == last_top);
  CHECK(summary["best"].get<double>() == top);
  // Three evaluations after the first top that do not beat it stop the run, ties included.
  CHECK(summary["stopped_early"] == true);
  CHECK(evaluations.size() == first_top_index + 4);
  CHECK(summary["steps"].get<int64_t>() < summary["total_steps"].get<int64_t>());
}
