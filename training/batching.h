// Batches from a memory-mapped split: length-bucketed so little padding is computed, shuffled
// deterministically by (seed, epoch), padded per batch (never to max_length).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "data/dataset_file.h"

namespace recmodel::training {

// A 64-bit generator with a fixed, platform-independent sequence (SplitMix64), so the same
// seed gives the same data order with every compiler and standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Returns a value in [0, bound) without modulo bias.
  uint64_t below(uint64_t bound);

 private:
  uint64_t state_;
};

// Shuffles `items` in place (Fisher-Yates) with `rng`.
void shuffle(std::vector<size_t>& items, SplitMix64& rng);

using BatchPlan = std::vector<std::vector<size_t>>;

// Returns the batches of one training epoch: examples shuffled by (seed, epoch), grouped into
// windows of `window_batches` batches whose examples are sorted by length (so each batch holds
// similar lengths), then the batch order shuffled. The last batch may be smaller.
BatchPlan plan_training_epoch(const data::DatasetSplit& split, size_t batch_size, uint64_t seed, uint64_t epoch,
                              size_t window_batches = 64);

// Returns batches covering every example once, sorted by length (for evaluation; order of the
// results is restored by the indices).
BatchPlan plan_evaluation(const data::DatasetSplit& split, size_t batch_size);

struct Batch {
  torch::Tensor input_ids;       // int64 (batch, length), padded with pad_id
  torch::Tensor token_type_ids;  // int64 (batch, length)
  torch::Tensor attention_mask;  // int64 (batch, length): 1 token, 0 padding
  torch::Tensor labels;          // int64 (batch) class ids, or float32 (batch) targets
  int64_t tokens = 0;            // real (unpadded) tokens
};

// Builds the tensors of the examples `indices` of `split`, padded to the longest of them.
Batch make_batch(const data::DatasetSplit& split, const std::vector<size_t>& indices, int64_t pad_id);

}  // namespace recmodel::training
