#include "training/batching.h"

#include <algorithm>
#include <numeric>

namespace recmodel::training {

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::below(uint64_t bound) {
  // Rejection sampling: values in the incomplete last block are drawn again.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t value;
  do value = next();
  while (value >= limit);
  return value % bound;
}

void shuffle(std::vector<size_t>& items, SplitMix64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

namespace {

// Sorts `indices[begin, end)` by example length, longest first; ties keep index order.
void sort_by_length(const data::DatasetSplit& split, std::vector<size_t>& indices, size_t begin, size_t end) {
  std::stable_sort(indices.begin() + static_cast<std::ptrdiff_t>(begin),
                   indices.begin() + static_cast<std::ptrdiff_t>(end),
                   [&](size_t a, size_t b) { return split.length(a) > split.length(b); });
}

BatchPlan chunk(const std::vector<size_t>& indices, size_t batch_size) {
  BatchPlan plan;
  for (size_t begin = 0; begin < indices.size(); begin += batch_size) {
    size_t end = std::min(indices.size(), begin + batch_size);
    plan.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(begin),
                      indices.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return plan;
}

}  // namespace

BatchPlan plan_training_epoch(const data::DatasetSplit& split, size_t batch_size, uint64_t seed, uint64_t epoch,
                              size_t window_batches) {
  std::vector<size_t> indices(split.size());
  std::iota(indices.begin(), indices.end(), size_t{0});
  SplitMix64 rng(seed * 0x100000001B3ull + epoch + 1);
  shuffle(indices, rng);
  const size_t window = batch_size * std::max<size_t>(1, window_batches);
  for (size_t begin = 0; begin < indices.size(); begin += window)
    sort_by_length(split, indices, begin, std::min(indices.size(), begin + window));
  BatchPlan plan = chunk(indices, batch_size);
  // Shuffle whole batches so long and short batches alternate (rng continues the same stream).
  std::vector<size_t> order(plan.size());
  std::iota(order.begin(), order.end(), size_t{0});
  shuffle(order, rng);
  BatchPlan shuffled;
  shuffled.reserve(plan.size());
  for (size_t i : order) shuffled.push_back(std::move(plan[i]));
  return shuffled;
}

BatchPlan plan_evaluation(const data::DatasetSplit& split, size_t batch_size) {
  std::vector<size_t> indices(split.size());
  std::iota(indices.begin(), indices.end(), size_t{0});
  sort_by_length(split, indices, 0, indices.size());
  return chunk(indices, batch_size);
}

Batch make_batch(const data::DatasetSplit& split, const std::vector<size_t>& indices, int64_t pad_id) {
  const int64_t rows = static_cast<int64_t>(indices.size());
  int64_t length = 0;
  for (size_t i : indices) length = std::max<int64_t>(length, static_cast<int64_t>(split.length(i)));
  Batch batch;
  batch.input_ids = torch::full({rows, length}, pad_id, torch::kLong);
  batch.token_type_ids = torch::zeros({rows, length}, torch::kLong);
  batch.attention_mask = torch::zeros({rows, length}, torch::kLong);
  const bool regression = split.task() == data::Task::regression;
  batch.labels = torch::empty({rows}, regression ? torch::kFloat : torch::kLong);
  auto* ids = batch.input_ids.data_ptr<int64_t>();
  auto* types = batch.token_type_ids.data_ptr<int64_t>();
  auto* mask = batch.attention_mask.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const size_t example = indices[static_cast<size_t>(r)];
    const size_t n = split.length(example);
    const size_t segment_a = split.segment_a(example);
    int64_t* row_ids = ids + r * length;
    int64_t* row_types = types + r * length;
    int64_t* row_mask = mask + r * length;
    for (size_t j = 0; j < n; ++j) {
      row_ids[j] = split.token(example, j);
      row_types[j] = j < segment_a ? 0 : 1;
      row_mask[j] = 1;
    }
    batch.tokens += static_cast<int64_t>(n);
    if (regression) batch.labels.data_ptr<float>()[r] = split.target(example);
    else batch.labels.data_ptr<int64_t>()[r] = split.label(example);
  }
  return batch;
}

}  // namespace recmodel::training
