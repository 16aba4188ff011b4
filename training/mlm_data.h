// The data of masked-LM pretraining: unlabelled text files streamed line by line, tokenized,
// packed into blocks of at most max_length tokens ([CLS] line [SEP] line [SEP] ...), a held-out
// share of lines for evaluation, and BERT's dynamic masking (whole words by default).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tokenizer/bert_tokenizer.h"
#include "training/batching.h"

namespace recmodel::training {

// One packed sequence: token ids with [CLS]/[SEP], and which positions start a word (a token
// that is not a "##" continuation; special tokens are never words).
struct TokenBlock {
  std::vector<int32_t> ids;
  std::vector<uint8_t> word_start;
  std::vector<uint8_t> special;
};

struct CorpusCounts {
  uint64_t lines = 0;        // non-empty lines read
  uint64_t empty_lines = 0;  // skipped (nothing to learn from)
  uint64_t train_blocks = 0, eval_blocks = 0;
  uint64_t train_tokens = 0, eval_tokens = 0;
  uint64_t cut_lines = 0;  // lines longer than a block, split over several
};

// The corpus files, read again at every pass: memory stays flat whatever their size.
class MlmCorpus {
 public:
  // `eval_fraction` of the lines (drawn by a hash of the line number and `seed`, so the same lines
  // every pass) go to the held-out set. Throws NotFoundError for a missing file, DataError for a
  // line that is not UTF-8 (file:line) or a tokenizer without [MASK].
  MlmCorpus(std::vector<std::string> files, const tokenizer::BertTokenizer& tokenizer, int64_t max_length,
            double eval_fraction, uint64_t seed);

  // Calls `on_block` with every block of the held-out (`held_out`) or training lines, in file
  // order, until it returns false.
  void for_each_block(bool held_out, const std::function<bool(const TokenBlock&)>& on_block) const;
  // One pass over everything; checks every line.
  CorpusCounts count() const;

  const tokenizer::BertTokenizer& tokenizer() const { return tokenizer_; }
  int32_t mask_id() const { return mask_id_; }
  const std::vector<std::string>& files() const { return files_; }

 private:
  // Calls `on_line` with each non-empty line's WordPiece ids and whether it is held out, until it
  // returns false; counts the empty ones in `empty_lines`.
  void for_each_line(const std::function<bool(const std::vector<int32_t>&, bool)>& on_line,
                     uint64_t* empty_lines = nullptr) const;

  std::vector<std::string> files_;
  const tokenizer::BertTokenizer& tokenizer_;
  int64_t max_length_;
  uint64_t eval_threshold_;  // a line is held out when its hash is below this
  uint64_t seed_;
  int32_t mask_id_;
  std::vector<uint8_t> continuation_;  // per vocabulary id: a "##" piece
  std::vector<uint8_t> special_;       // per vocabulary id: [CLS], [SEP], [PAD], [MASK], [UNK]...
};

struct MaskingOptions {
  double probability = 0.15;
  bool whole_word = true;
  int32_t mask_id = 0;
  int32_t vocab_size = 0;
};

// BERT's masking of one block: about `probability` of the tokens (at least one) are chosen
// (whole words with `whole_word`: every piece of a chosen word), and of those 80% become
// [MASK], 10% a random token and 10% stay. Writes the inputs to `input_ids` and the targets to
// `labels` (-100 where nothing is predicted).
void mask_block(const TokenBlock& block, const MaskingOptions& options, SplitMix64& rng,
                std::vector<int32_t>& input_ids, std::vector<int32_t>& labels);

// Draws blocks through a shuffle buffer of `capacity` (bounded memory, a new order each epoch).
class ShuffleBuffer {
 public:
  ShuffleBuffer(size_t capacity, uint64_t seed) : capacity_(capacity), rng_(seed) {}
  // Adds `block`; returns a block to emit in `out` once the buffer is full.
  bool push(TokenBlock block, TokenBlock& out);
  // Takes one remaining block in random order; false when empty.
  bool drain(TokenBlock& out);

 private:
  size_t capacity_;
  SplitMix64 rng_;
  std::vector<TokenBlock> items_;
};

}  // namespace recmodel::training
