// train --autotune / --autotune-trials: a search on dev with successive halving that keeps the
// best trial's model, is deterministic with a seed, and refuses what it cannot search.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/train_fixture.h"
#include "tests/support.h"

using namespace recmodel::testing::train;
namespace t = recmodel::testing;

TEST_CASE("train --autotune-trials: the trials table, the best trial's model, the same search for the same seed") {
  Fixture f;
  auto search = [&](const std::string& out) {
    return t::run_recmodel({"train", "--model", f.model, "--data", f.data, "--out", f.path(out), "--autotune-trials",
                            "5", "--seed", "4", "--threads", "1", "--epochs", "2", "--lr", "5e-5", "--json"});
  };
  auto first = search("a");
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  auto summary = nlohmann::json::parse(first.out);
  const auto& autotune = summary["autotune"];
  REQUIRE(autotune["trials"].size() == 5);
  CHECK(autotune["metric"] == "accuracy");
  // Trial 1 is the command line's settings; the others are drawn.
  CHECK(autotune["trials"][0]["settings"]["lr"] == 5e-5);
  CHECK(autotune["trials"][0]["settings"]["epochs"] == 2);
  // Successive halving: all five trained a ninth, fewer went further, one to the end.
  int finished = 0, cut_short = 0;
  double best_seen = 0;
  for (const auto& trial : autotune["trials"]) {
    CHECK(trial["rungs"].get<int>() >= 1);
    CHECK(trial["dev_loss"].get<double>() > 0);  // the tie-breaker of equal dev metrics
    finished += trial["finished"].get<bool>();
    cut_short += trial["steps"].get<int64_t>() < trial["total_steps"].get<int64_t>();
    if (trial["finished"].get<bool>()) best_seen = std::max(best_seen, trial["metric"].get<double>());
  }
  CHECK(finished == 1);
  CHECK(cut_short == 4);
  // The model written is the chosen trial's, with its dev accuracy.
  const auto& chosen = autotune["trials"][autotune["best_trial"].get<int>() - 1];
  CHECK(chosen["finished"] == true);
  CHECK(summary["best"] == chosen["metric"]);
  CHECK(summary["best"].get<double>() >= 0.9);
  auto lineage = nlohmann::json::parse(t::read_text(f.dir / "a" / "recmodel.json"));
  CHECK(lineage["autotune"]["best_trial"] == autotune["best_trial"]);
  CHECK(lineage["params"]["lr"] == chosen["settings"]["lr"]);
  CHECK(lineage["metrics"]["dev"]["loss"] == chosen["dev_loss"]);
  CHECK(t::fs::exists(f.dir / "a" / "train_log.jsonl"));
  CHECK_FALSE(t::fs::exists(f.dir / "a.train"));
  // The table on stdout without --json.
  auto again = search("b");
  REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  auto second = nlohmann::json::parse(again.out)["autotune"];
  for (size_t i = 0; i < 5; ++i) {
    CHECK(second["trials"][i]["settings"] == autotune["trials"][i]["settings"]);
    CHECK(second["trials"][i]["metric"] == autotune["trials"][i]["metric"]);
  }
  CHECK(t::read_text(f.dir / "a" / "model.safetensors") == t::read_text(f.dir / "b" / "model.safetensors"));
  auto table = t::run_recmodel({"train", "--model", f.model, "--data", f.data, "--out", f.path("c"),
                                "--autotune-trials", "2", "--seed", "4", "--threads", "1"});
  REQUIRE_MESSAGE(table.exit_code == 0, table.err);
  CHECK(table.out.rfind("autotune: 2 trials in ", 0) == 0);
  CHECK(table.out.find("  trial        lr  epochs  batch  warmup  decay  dropout  preset   accuracy") != std::string::npos);
}

TEST_CASE("train --autotune SECONDS: a time budget, from scratch the preset searched too") {
  Fixture f;
  auto run = t::run_recmodel({"train", "--model", f.model, "--data", f.data, "--out", f.path("a"), "--autotune", "6",
                              "--seed", "2", "--threads", "1", "--json"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.err);
  auto autotune = nlohmann::json::parse(run.out)["autotune"];
  CHECK(autotune["trials"].size() >= 3);
  // The fixture's model is a random tiny one from init: the trials carry a preset.
  for (const auto& trial : autotune["trials"]) CHECK(trial["settings"].contains("preset"));
  CHECK(t::fs::exists(f.dir / "a" / "model.safetensors"));
}

TEST_CASE("train --autotune refuses --resume, several processes and a dataset without dev, in one line") {
  Fixture f;
  auto resume = t::run_recmodel(train_args(f, f.path("a"), {"--autotune", "5", "--resume"}));
  CHECK(resume.exit_code == 2);
  CHECK(t::error_line_count(resume.err) == 1);
  auto workers = t::run_recmodel(train_args(f, f.path("a"), {"--autotune-trials", "3", "--nproc-per-node", "2"}));
  CHECK(workers.exit_code == 2);
  CHECK(workers.err.find("one process") != std::string::npos);
  auto nodev = t::run_recmodel({"preprocess", "--input", f.path("raw.csv"), "--text-column", "title", "--label-column",
                                "category", "--vocab", f.vocab, "--out", f.path("nodev"), "--split", "0.9,0,0.1"});
  REQUIRE_MESSAGE(nodev.exit_code == 0, nodev.err);
  auto search = t::run_recmodel({"train", "--model", f.model, "--data", f.path("nodev"), "--out", f.path("a"),
                                 "--autotune-trials", "3"});
  CHECK(search.exit_code == 2);
  CHECK(search.err.find("dev split") != std::string::npos);
  CHECK_FALSE(t::fs::exists(f.dir / "a"));
}
