// Batch plans (every example once per epoch, deterministic by seed and epoch, little padding)
// and Hugging Face's linear warmup/decay schedule.
#include "training/batching.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "tests/support.h"
#include "training/trainer.h"

using namespace recmodel;
namespace t = recmodel::testing;

namespace {

// Writes a split of `n` classification examples whose lengths cycle through 3..40.
data::DatasetSplit make_split(const t::TempDir& dir, size_t n) {
  auto path = dir.path() / "train.bin";
  {
    data::SplitWriter writer(path, data::Task::classification, 2);
    for (size_t i = 0; i < n; ++i) {
      size_t length = 3 + (i * 7) % 38;
      std::vector<int32_t> ids(length, 9);
      ids.front() = 2;
      ids.back() = 3;
      writer.add(ids, static_cast<uint32_t>(length), static_cast<uint32_t>(i % 3), i + 1);
    }
    writer.finish({});
  }
  return data::DatasetSplit::open(path);
}

}  // namespace

TEST_CASE("an epoch's plan holds every example once and depends only on seed and epoch") {
  t::TempDir dir;
  auto split = make_split(dir, 1000);
  auto plan = training::plan_training_epoch(split, 32, 7, 0);
  std::multiset<size_t> seen;
  for (const auto& batch : plan) {
    CHECK(batch.size() <= 32);
    seen.insert(batch.begin(), batch.end());
  }
  CHECK(seen.size() == 1000);
  CHECK(std::set<size_t>(seen.begin(), seen.end()).size() == 1000);
  CHECK(training::plan_training_epoch(split, 32, 7, 0) == plan);
  CHECK(training::plan_training_epoch(split, 32, 7, 1) != plan);
  CHECK(training::plan_training_epoch(split, 32, 8, 0) != plan);
}

TEST_CASE("length bucketing pads far less than random batches") {
  t::TempDir dir;
  auto split = make_split(dir, 2000);
  auto padded = [&](const training::BatchPlan& plan) {
    size_t cells = 0, tokens = 0;
    for (const auto& batch : plan) {
      size_t longest = 0;
      for (size_t i : batch) longest = std::max(longest, split.length(i)), tokens += split.length(i);
      cells += longest * batch.size();
    }
    return static_cast<double>(cells - tokens) / static_cast<double>(cells);
  };
  auto bucketed = training::plan_training_epoch(split, 32, 1, 0);
  auto random = training::plan_training_epoch(split, 32, 1, 0, /*window_batches=*/1);
  CHECK(padded(bucketed) < 0.05);
  CHECK(padded(random) > 0.25);
}

TEST_CASE("a batch pads to its longest example with masks, token types and labels") {
  t::TempDir dir;
  auto path = dir.path() / "pairs.bin";
  {
    data::SplitWriter writer(path, data::Task::classification, 2);
    writer.add({2, 10, 3, 11, 12, 3}, 3, 1, 1);
    writer.add({2, 13, 3}, 3, 0, 2);
    writer.finish({});
  }
  auto split = data::DatasetSplit::open(path);
  auto batch = training::make_batch(split, {1, 0}, 0);
  CHECK(batch.input_ids.sizes() == torch::IntArrayRef({2, 6}));
  CHECK(torch::equal(batch.input_ids[0], torch::tensor({2, 13, 3, 0, 0, 0}, torch::kLong)));
  CHECK(torch::equal(batch.token_type_ids[1], torch::tensor({0, 0, 0, 1, 1, 1}, torch::kLong)));
  CHECK(torch::equal(batch.attention_mask[0], torch::tensor({1, 1, 1, 0, 0, 0}, torch::kLong)));
  CHECK(torch::equal(batch.labels, torch::tensor({0, 1}, torch::kLong)));
  CHECK(batch.tokens == 9);
}

TEST_CASE("the schedule is Hugging Face's linear warmup then linear decay") {
  // get_linear_schedule_with_warmup(num_warmup_steps=10, num_training_steps=100)
  CHECK(training::linear_schedule(0, 10, 100) == 0.0);
  CHECK(training::linear_schedule(5, 10, 100) == doctest::Approx(0.5));
  CHECK(training::linear_schedule(10, 10, 100) == doctest::Approx(1.0));
  CHECK(training::linear_schedule(55, 10, 100) == doctest::Approx(0.5));
  CHECK(training::linear_schedule(100, 10, 100) == 0.0);
  CHECK(training::linear_schedule(0, 0, 100) == doctest::Approx(1.0));
}

TEST_CASE("SplitMix64 gives its published sequence, so data order is the same everywhere") {
  // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
  training::SplitMix64 rng(1234567);
  CHECK(rng.next() == 6457827717110365317ull);
  CHECK(rng.next() == 3203168211198807973ull);
}
