// BERT WordPiece tokenization, id-for-id identical to Hugging Face's fast BertTokenizer
// (tokenizers' BertNormalizer + BertPreTokenizer + WordPiece + TemplateProcessing).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace recmodel::tokenizer {

namespace fs = std::filesystem;

// The settings of tokenizer_config.json that change the ids.
struct TokenizerConfig {
  bool do_lower_case = true;
  std::optional<bool> strip_accents;  // unset: follows do_lower_case, as in Hugging Face
  bool tokenize_chinese_chars = true;
  size_t model_max_length = 512;
  std::string unk_token = "[UNK]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string cls_token = "[CLS]";
  std::string mask_token = "[MASK]";

  // Returns whether accents are stripped (NFD, then nonspacing marks removed).
  bool strips_accents() const { return strip_accents.value_or(do_lower_case); }
  // Reads tokenizer_config.json; keys it does not have keep their defaults.
  static TokenizerConfig from_json_file(const fs::path& path);
  // Returns the tokenizer_config.json document Hugging Face's BertTokenizer(Fast) loads.
  nlohmann::json to_json() const;
};

// A WordPiece vocabulary: one token per line, id = line number.
class Vocab {
 public:
  // Loads vocab.txt; throws DataError on an empty file or invalid UTF-8 (naming the line).
  static Vocab load(const fs::path& path);
  // Builds a vocabulary from tokens in id order (duplicates: the later id wins, as in HF).
  static Vocab from_tokens(std::vector<std::string> tokens);

  Vocab() = default;

  size_t size() const { return tokens_.size(); }
  // Returns the id of `token`, or -1.
  int32_t find(std::string_view token) const;
  const std::string& token(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  // SHA-256 of the vocabulary as vocab.txt holds it (tokens in id order, each ending in "\n"):
  // the file's own hash for a vocab.txt written that way, and the same value for a tokenizer.json
  // with the same tokens. Datasets and models are matched on it.
  std::string sha256() const;
  // The longest entry in bytes: no WordPiece match can be longer.
  size_t max_token_bytes() const { return max_token_bytes_; }

 private:
  void index();
  static uint64_t hash(std::string_view token);

  // token → id: open addressing with linear probing over a power-of-two table, the full hash kept
  // in each slot so a probe compares strings only on a real match (a lookup per WordPiece try is
  // the tokenizer's hottest operation; std::unordered_map's node chasing cost a third of its time).
  struct Slot {
    uint64_t hash = 0;
    int32_t id = -1;  // -1: empty
  };
  std::vector<std::string> tokens_;
  std::vector<Slot> slots_;
  size_t max_token_bytes_ = 0;
};

// One encoded input, as the model sees it.
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  std::vector<int32_t> attention_mask;
  std::vector<std::string> tokens;  // filled only when asked for (with_tokens)
  size_t truncated = 0;             // tokens dropped by truncation
};

class BertTokenizer {
 public:
  BertTokenizer(Vocab vocab, TokenizerConfig config);
  // Loads vocab.txt with the given settings.
  static BertTokenizer from_vocab_file(const fs::path& vocab_path, TokenizerConfig config);
  // Loads a model directory's tokenizer: vocab.txt with tokenizer_config.json's settings, or, in a
  // folder that has no vocab.txt, Hugging Face's tokenizer.json (its WordPiece vocabulary and
  // BertNormalizer settings; tokenizer_config.json for the rest).
  static BertTokenizer from_model_dir(const fs::path& dir);
  // Reads a tokenizer.json of a BERT WordPiece tokenizer; anything else (another model type,
  // normalizer or pre-tokenizer) is refused with DataError saying what was found.
  static BertTokenizer from_tokenizer_json(const fs::path& path, TokenizerConfig config);

  // Normalizes and pre-tokenizes `text` into words (BertNormalizer + BertPreTokenizer),
  // without special-token handling or WordPiece. Used by the vocabulary builder.
  void split_words(std::string_view text, std::vector<std::string>& words) const;

  // Appends the WordPiece ids of `text` (no [CLS]/[SEP]); special tokens written in the
  // text itself ("[SEP]") map to their ids, as Hugging Face's added tokens do.
  void tokenize_ids(std::string_view text, std::vector<int32_t>& ids) const;
  // Returns the WordPiece tokens of `text` (no [CLS]/[SEP]).
  std::vector<std::string> tokenize(std::string_view text) const;

  // Encodes one text or a pair: [CLS] a [SEP] (b [SEP]), token types, attention mask,
  // longest-first truncation to `max_length` (0: no truncation).
  Encoding encode(std::string_view text, std::optional<std::string_view> pair, size_t max_length,
                  bool add_special_tokens = true, bool with_tokens = false) const;
  // The same into `out`, reusing its buffers (no allocation per text once they have grown).
  void encode_into(std::string_view text, std::optional<std::string_view> pair, size_t max_length,
                   bool add_special_tokens, bool with_tokens, Encoding& out) const;

  const Vocab& vocab() const { return vocab_; }
  const TokenizerConfig& config() const { return config_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }

  // Returns the Hugging Face tokenizer.json document for this vocabulary and settings.
  nlohmann::json tokenizer_json() const;
  // Writes vocab.txt, tokenizer_config.json, special_tokens_map.json and tokenizer.json into `dir`.
  void save(const fs::path& dir) const;

 private:
  void wordpiece(std::string_view word, std::vector<int32_t>& ids, std::string& scratch) const;
  void tokenize_plain(std::string_view text, std::vector<int32_t>& ids) const;

  Vocab vocab_;
  TokenizerConfig config_;
  int32_t cls_id_, sep_id_, pad_id_, unk_id_, mask_id_;
  std::vector<std::pair<std::string, int32_t>> special_tokens_;  // matched in raw text
};

}  // namespace recmodel::tokenizer
