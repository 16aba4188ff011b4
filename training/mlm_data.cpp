#include "training/mlm_data.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/line_reader.h"
#include "tokenizer/unicode.h"

namespace recmodel::training {

namespace {

uint64_t line_hash(uint64_t seed, uint64_t line) {
  SplitMix64 mix(seed ^ (line * 0xD6E8FEB86659FD93ULL));
  return mix.next();
}

bool is_special_token(const std::string& token) {
  return token.size() >= 3 && token.front() == '[' && token.back() == ']' &&
         (token == "[CLS]" || token == "[SEP]" || token == "[PAD]" || token == "[MASK]" || token == "[UNK]");
}

// Packs lines into blocks: [CLS] a [SEP] b [SEP] ... of at most max_length tokens.
class Packer {
 public:
  Packer(int64_t max_length, int32_t cls, int32_t sep, const std::vector<uint8_t>& continuation,
         const std::vector<uint8_t>& special, const std::function<void(const TokenBlock&)>& emit)
      : room_(static_cast<size_t>(max_length)), cls_(cls), sep_(sep), continuation_(continuation), special_(special),
        emit_(emit) {
    start();
  }
  // Returns whether the line was cut over several blocks.
  bool add(const std::vector<int32_t>& ids) {
    const size_t piece = room_ - 2;  // [CLS] and one [SEP]
    if (ids.size() > piece) {
      flush();
      for (size_t at = 0; at < ids.size(); at += piece) {
        append(ids, at, std::min(ids.size(), at + piece));
        flush();
      }
      return true;
    }
    if (block_.ids.size() + ids.size() + 1 > room_) flush();
    append(ids, 0, ids.size());
    return false;
  }
  void flush() {
    if (block_.ids.size() > 1) emit_(block_);
    start();
  }

 private:
  void start() {
    block_.ids.assign(1, cls_);
    block_.word_start.assign(1, 0);
    block_.special.assign(1, 1);
  }
  void append(const std::vector<int32_t>& ids, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      const int32_t id = ids[i];
      const bool is_special = special_[static_cast<size_t>(id)] != 0;
      block_.ids.push_back(id);
      block_.special.push_back(is_special);
      // A piece cut from its word's start (a long line split mid-word) starts a word of its own.
      block_.word_start.push_back(!is_special && (i == from || !continuation_[static_cast<size_t>(id)]));
    }
    block_.ids.push_back(sep_);
    block_.word_start.push_back(0);
    block_.special.push_back(1);
  }

  size_t room_;
  int32_t cls_, sep_;
  const std::vector<uint8_t>& continuation_;
  const std::vector<uint8_t>& special_;
  const std::function<void(const TokenBlock&)>& emit_;
  TokenBlock block_;
};

}  // namespace

MlmCorpus::MlmCorpus(std::vector<std::string> files, const tokenizer::BertTokenizer& tokenizer, int64_t max_length,
                     double eval_fraction, uint64_t seed)
    : files_(std::move(files)), tokenizer_(tokenizer), max_length_(max_length), seed_(seed) {
  if (files_.empty()) fail<UsageError>("give the text to pretrain on with --corpus FILE (one text per line)");
  for (const std::string& file : files_)
    if (file == "-")
      fail<UsageError>("--corpus -: the corpus is read again at every epoch, so it must be a file, not standard input");
  if (max_length_ < 8) fail<UsageError>("--max-length {} is too short to pack lines into (8 at least)", max_length_);
  if (!(eval_fraction >= 0 && eval_fraction < 1))
    fail<UsageError>("--eval-fraction {} must be at least 0 and below 1", eval_fraction);
  // A line is held out when a 64-bit hash of it falls below fraction * 2^64.
  eval_threshold_ = eval_fraction <= 0 ? 0 : static_cast<uint64_t>(std::ldexp(eval_fraction, 64));
  const tokenizer::Vocab& vocab = tokenizer_.vocab();
  mask_id_ = vocab.find("[MASK]");
  if (mask_id_ < 0) fail<DataError>("the vocabulary has no [MASK] token, which masked-LM pretraining needs");
  if (tokenizer_.cls_id() < 0 || tokenizer_.sep_id() < 0)
    fail<DataError>("the vocabulary lacks [CLS] or [SEP], which masked-LM pretraining needs");
  continuation_.resize(vocab.size());
  special_.resize(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    const std::string& token = vocab.token(static_cast<int32_t>(id));
    continuation_[id] = token.rfind("##", 0) == 0;
    special_[id] = is_special_token(token);
  }
}

void MlmCorpus::for_each_line(const std::function<bool(const std::vector<int32_t>&, bool)>& on_line,
                              uint64_t* empty_lines) const {
  std::vector<int32_t> ids;
  std::string line;
  uint64_t index = 0;  // over all files: the held-out lines are the same whatever the pass
  for (const std::string& file : files_) {
    LineReader reader(file);
    while (reader.next(line)) {
      if (unicode::find_invalid_utf8(line) != std::string::npos)
        fail<DataError>("{}:{}: not UTF-8 text; the corpus is one UTF-8 text per line", reader.name(),
                        reader.line_number());
      ids.clear();
      tokenizer_.tokenize_ids(line, ids);
      if (ids.empty()) {
        if (empty_lines) ++*empty_lines;
        continue;
      }
      const bool held_out = eval_threshold_ > 0 && line_hash(seed_, index++) < eval_threshold_;
      if (!on_line(ids, held_out)) return;
    }
  }
}

void MlmCorpus::for_each_block(bool held_out, const std::function<bool(const TokenBlock&)>& on_block) const {
  std::vector<TokenBlock> ready;
  std::function<void(const TokenBlock&)> collect = [&](const TokenBlock& block) { ready.push_back(block); };
  Packer packer(max_length_, tokenizer_.cls_id(), tokenizer_.sep_id(), continuation_, special_, collect);
  bool going = true;
  auto hand_over = [&] {
    for (const TokenBlock& block : ready)
      if (!on_block(block)) return going = false;
    ready.clear();
    return true;
  };
  for_each_line([&](const std::vector<int32_t>& ids, bool is_held_out) {
    if (is_held_out != held_out) return true;
    packer.add(ids);
    return ready.empty() || hand_over();
  });
  if (!going) return;
  packer.flush();
  hand_over();
}

CorpusCounts MlmCorpus::count() const {
  CorpusCounts counts;
  std::function<void(const TokenBlock&)> on_train = [&](const TokenBlock& block) {
    ++counts.train_blocks;
    counts.train_tokens += block.ids.size();
  };
  std::function<void(const TokenBlock&)> on_eval = [&](const TokenBlock& block) {
    ++counts.eval_blocks;
    counts.eval_tokens += block.ids.size();
  };
  Packer train(max_length_, tokenizer_.cls_id(), tokenizer_.sep_id(), continuation_, special_, on_train);
  Packer eval(max_length_, tokenizer_.cls_id(), tokenizer_.sep_id(), continuation_, special_, on_eval);
  for_each_line(
      [&](const std::vector<int32_t>& ids, bool held_out) {
        ++counts.lines;
        counts.cut_lines += (held_out ? eval : train).add(ids);
        return true;
      },
      &counts.empty_lines);
  train.flush();
  eval.flush();
  return counts;
}

void mask_block(const TokenBlock& block, const MaskingOptions& options, SplitMix64& rng,
                std::vector<int32_t>& input_ids, std::vector<int32_t>& labels) {
  const size_t n = block.ids.size();
  input_ids = block.ids;
  labels.assign(n, -100);
  // Candidates: whole words (a start and its "##" pieces), or single tokens; never special tokens.
  std::vector<std::pair<uint32_t, uint32_t>> units;  // [begin, end)
  size_t real_tokens = 0;
  for (size_t i = 0; i < n; ++i) {
    if (block.special[i]) continue;
    ++real_tokens;
    if (!options.whole_word || block.word_start[i] || units.empty() || units.back().second != i)
      units.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1)});
    else
      units.back().second = static_cast<uint32_t>(i + 1);
  }
  if (units.empty()) return;
  // Hugging Face's number to predict: round(tokens * p), at least one.
  const size_t wanted = std::max<size_t>(1, static_cast<size_t>(std::lround(static_cast<double>(real_tokens) * options.probability)));
  for (size_t i = units.size(); i > 1; --i) std::swap(units[i - 1], units[rng.below(i)]);
  size_t chosen = 0;
  for (const auto& [begin, end] : units) {
    if (chosen >= wanted) break;
    // A word that would overshoot is skipped, as in DataCollatorForWholeWordMask.
    if (chosen + (end - begin) > wanted) continue;
    for (uint32_t i = begin; i < end; ++i) {
      labels[i] = block.ids[i];
      const uint64_t draw = rng.below(10);
      if (draw < 8) input_ids[i] = options.mask_id;
      else if (draw == 8) input_ids[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(options.vocab_size)));
    }
    chosen += end - begin;
  }
  if (chosen == 0) {  // every word longer than the share: predict the first token of one
    const uint32_t i = units.front().first;
    labels[i] = block.ids[i];
    input_ids[i] = options.mask_id;
  }
}

bool ShuffleBuffer::push(TokenBlock block, TokenBlock& out) {
  if (items_.size() < capacity_) {
    items_.push_back(std::move(block));
    return false;
  }
  const size_t pick = rng_.below(items_.size());
  out = std::move(items_[pick]);
  items_[pick] = std::move(block);
  return true;
}

bool ShuffleBuffer::drain(TokenBlock& out) {
  if (items_.empty()) return false;
  const size_t pick = rng_.below(items_.size());
  out = std::move(items_[pick]);
  items_[pick] = std::move(items_.back());
  items_.pop_back();
  return true;
}

}  // namespace recmodel::training
