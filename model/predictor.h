// Batched inference with a loaded model: sequences are grouped by length (longest first) into
// batches padded to their own longest member, never to max_length, and the results come back
// in input order. Used by `recmodel predict` and `recmodel evaluate --model`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/bert.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::model {

// Parses --device: auto (the first CUDA device when there is one, else the CPU), cpu, cuda or
// cuda:N. Throws UsageError naming what is available.
torch::Device parse_device(const std::string& name);

// One sequence to score: ids and token types of `length` tokens (all attended).
struct SequenceView {
  const int32_t* ids = nullptr;
  const int32_t* type_ids = nullptr;
  size_t length = 0;
};

struct PredictorOptions {
  size_t batch_size = 32;            // sequences per forward pass, at most
  torch::Device device = torch::kCPU;
  // 0: the sequences, sorted by length, are cut into passes of batch_size. Otherwise what one
  // more forward pass costs, in padded tokens: the sorted sequences are cut where that
  // minimises padded tokens plus this per pass, so a mixed batch from `recmodel serve` does
  // not pad every short query to the longest review. Only for a model that runs padded (int8):
  // an fp32 one runs unpadded (BertModel::forward), where a pass costs its real tokens whatever
  // their lengths, so its passes are always batch_size.
  size_t pass_cost_tokens = 0;
};

// Returns where each forward pass starts in `lengths` (sorted longest first), by the rule of
// PredictorOptions: fixed passes of batch_size when pass_cost_tokens is 0, else the cuts that
// minimise padded tokens plus pass_cost_tokens per pass, no pass over batch_size.
std::vector<size_t> pass_starts(const std::vector<size_t>& lengths, size_t batch_size, size_t pass_cost_tokens);

class Predictor {
 public:
  // Takes the model to `options.device` in eval mode. `pad_id` fills padded positions.
  Predictor(BertForSequenceClassification model, int64_t pad_id, PredictorOptions options);

  // Returns the logits (sequences.size(), num_labels) as float32 on the CPU, row i for
  // sequences[i], computed in forward passes cut as PredictorOptions says. Throws DataError for an empty sequence, one longer than the model's
  // max_position_embeddings, or an id outside the vocabulary.
  torch::Tensor logits(const std::vector<SequenceView>& sequences);
  // Returns the logits of tokenizer encodings (see above).
  torch::Tensor logits(const std::vector<tokenizer::Encoding>& encodings);

  int64_t num_labels() const { return model_->config.num_labels(); }
  const BertConfig& config() const { return model_->config; }
  const PredictorOptions& options() const { return options_; }
  // Whether the forward passes run unpadded (an fp32 model; see BertModel::forward).
  bool runs_unpadded() const { return unpadded_; }
  // Whether predict() cuts its sequences into passes of similar lengths (pass_cost_tokens, padded models).
  bool cuts_passes_by_length() const { return !unpadded_ && options_.pass_cost_tokens > 0; }
  // Returns the real token count and the computed one so far: each sequence padded to its
  // pass's longest, or the real tokens again when the model runs unpadded.
  uint64_t tokens() const { return tokens_; }
  uint64_t padded_tokens() const { return padded_tokens_; }

 private:
  BertForSequenceClassification model_;
  int64_t pad_id_;
  PredictorOptions options_;
  bool unpadded_ = false;
  uint64_t tokens_ = 0;
  uint64_t padded_tokens_ = 0;
};

}  // namespace recmodel::model
