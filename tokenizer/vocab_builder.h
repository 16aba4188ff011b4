// Learning a BERT WordPiece vocabulary from a corpus, the way Hugging Face tokenizers'
// WordPieceTrainer does it: words split exactly as BertTokenizer splits them, then BPE
// merges over the word counts, with "##" marking pieces that continue a word.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bert_tokenizer.h"

namespace recmodel::tokenizer {

namespace fs = std::filesystem;

// What counting one input found.
struct CorpusFileStats {
  std::string path;
  uint64_t lines = 0;  // all lines, blank ones included
  uint64_t words = 0;  // word occurrences
};

// Word frequencies of a corpus, as BERT's normalizer and pre-tokenizer split it.
class WordCounter {
 public:
  // Splits words with the settings of `config` (lower-casing, accent stripping, CJK).
  explicit WordCounter(const TokenizerConfig& config);

  // Counts the words of every line of `path` ("-": stdin) on `threads` worker threads,
  // calling `on_progress(bytes read so far)` as it goes. Throws NotFoundError for a missing
  // file and DataError naming file:line for invalid UTF-8; after a throw the counts are partial.
  CorpusFileStats add_file(const fs::path& path, int threads = 1,
                           const std::function<void(uint64_t)>& on_progress = {});
  // Counts the words of `text` (lines separated by '\n'; must be valid UTF-8).
  void add_text(std::string_view text);

  const std::unordered_map<std::string, uint64_t>& counts() const { return counts_; }
  // Returns the number of word occurrences counted so far.
  uint64_t total_words() const { return total_words_; }

 private:
  BertTokenizer splitter_;
  std::unordered_map<std::string, uint64_t> counts_;
  uint64_t total_words_ = 0;
};

// Settings of the vocabulary; the defaults are those of `recmodel vocab`.
struct WordPieceTrainerOptions {
  size_t vocab_size = 30522;
  // Characters seen fewer times stay out of the alphabet; merges rarer than this stop training.
  // 0 and 1 both keep everything.
  uint64_t min_frequency = 2;
  size_t limit_alphabet = 0;  // keep only the N most frequent characters; 0: no limit
  size_t unused_tokens = 0;   // "[unused0]".. slots after the special tokens, for later additions
  // Longer words become [UNK] in BERT's WordPiece whatever the vocabulary, so they teach nothing.
  size_t max_word_chars = 100;
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
};

// The learned vocabulary (tokens in id order) and how it came about.
struct TrainedVocab {
  std::vector<std::string> tokens;
  size_t special_tokens = 0;  // the special tokens and [unusedN] slots, ids 0..
  size_t alphabet = 0;        // characters, each present as "c" and "##c"
  size_t merges = 0;          // tokens learned by merging
  bool reached_size = false;  // false: training ran out of pairs frequent enough
  size_t dropped_characters = 0;    // characters left out by min_frequency or limit_alphabet
  uint64_t rare_character_words = 0;  // distinct words holding a dropped character (they stay [UNK])
  uint64_t long_words = 0;            // distinct words over max_word_chars (always [UNK])
  uint64_t trained_words = 0;         // distinct words the merges were learned from
};

// BPE training with a "##" continuing-subword prefix over word counts.
class WordPieceTrainer {
 public:
  // Selects the alphabet and the trainable words of `word_counts` under `options`;
  // `word_counts` must outlive the trainer (its words are viewed, not copied).
  WordPieceTrainer(const std::unordered_map<std::string, uint64_t>& word_counts,
                   WordPieceTrainerOptions options);

  // Returns the smallest vocabulary these options and words allow: the special tokens,
  // the unused slots and every alphabet character twice (word start and "##" continuation).
  size_t minimum_size() const;
  size_t alphabet_size() const { return alphabet_.size(); }

  // Learns merges until the vocabulary has options.vocab_size tokens or no pair of pieces
  // occurs min_frequency times. Throws UsageError when vocab_size < minimum_size().
  // Deterministic: ties go to the pair with the lower ids.
  TrainedVocab train();

 private:
  WordPieceTrainerOptions options_;
  std::vector<std::string> alphabet_;  // single characters, in code point order
  std::vector<std::pair<std::string_view, uint64_t>> words_;  // trainable words, views into the counts
  size_t dropped_characters_ = 0;
  uint64_t rare_character_words_ = 0;
  uint64_t long_words_ = 0;
};

// Returns `tokens` as vocab.txt contents: one token per line, id = line number.
std::string vocab_file_contents(const std::vector<std::string>& tokens);

}  // namespace recmodel::tokenizer
