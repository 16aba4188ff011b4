#include "tokenizer/bert_tokenizer.h"

#include <algorithm>
#include <array>

#include "common/error.h"
#include "common/files.h"
#include "common/json.h"
#include "tokenizer/unicode.h"

namespace recmodel::tokenizer {

namespace {

// Hugging Face's WordPiece limit: longer words become [UNK] whole.
constexpr size_t kMaxInputCharsPerWord = 100;
constexpr std::string_view kContinuationPrefix = "##";

struct AsciiTable {
  std::array<uint8_t, 128> kind{};  // 0 letter/digit, 1 whitespace, 2 punctuation, 3 removed
  AsciiTable() {
    for (char32_t c = 0; c < 128; ++c) {
      if (unicode::is_whitespace(c) && !unicode::is_removed_control(c)) kind[c] = 1;
      else if (unicode::is_removed_control(c)) kind[c] = 3;
      else if (unicode::is_punctuation(c)) kind[c] = 2;
    }
  }
};
const AsciiTable kAscii;

// The member `key` of the object `doc`, or nullptr when it is absent or null. A pointer, not a
// copy: a crafted file's subtrees are never copied.
const nlohmann::json* member(const nlohmann::json& doc, const char* key) {
  if (!doc.is_object()) return nullptr;
  auto it = doc.find(key);
  return it == doc.end() || it->is_null() ? nullptr : &*it;
}

// A string from the file fit for a message: control characters escaped, cut to 60 bytes.
std::string printable(const std::string& text) {
  std::string out;
  size_t end = std::min<size_t>(text.size(), 60);
  while (end < text.size() && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  for (size_t i = 0; i < end; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  if (end < text.size()) out += "…";
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// TokenizerConfig

TokenizerConfig TokenizerConfig::from_json_file(const fs::path& path) {
  const nlohmann::json doc = read_json_file(path);
  const std::string origin = path.string();
  if (!doc.is_object()) fail<DataError>("{}: expected a JSON object, found {}", origin, json_type_name(doc));
  TokenizerConfig config;
  auto read_bool = [&](const char* key, bool& target) {
    const nlohmann::json* value = member(doc, key);
    if (!value) return;
    if (!value->is_boolean())
      fail<DataError>("{}: \"{}\" must be true or false, found {}", origin, key, json_excerpt(*value));
    target = value->get<bool>();
  };
  read_bool("do_lower_case", config.do_lower_case);
  read_bool("tokenize_chinese_chars", config.tokenize_chinese_chars);
  if (const nlohmann::json* value = member(doc, "strip_accents")) {
    if (!value->is_boolean())
      fail<DataError>("{}: \"strip_accents\" must be true, false or null, found {}", origin, json_excerpt(*value));
    config.strip_accents = value->get<bool>();
  }
  if (const nlohmann::json* value = member(doc, "model_max_length")) {
    if (!value->is_number())
      fail<DataError>("{}: \"model_max_length\" must be a number, found {}", origin, json_excerpt(*value));
    // Hugging Face writes a huge sentinel (1e30) when a model has no limit.
    double limit = value->get<double>();
    config.model_max_length = limit > 0 && limit < 1e9 ? static_cast<size_t>(limit) : 0;
  }
  auto read_token = [&](const char* key, std::string& target) {
    const nlohmann::json* value = member(doc, key);
    if (!value) return;
    const nlohmann::json* content = value->is_object() ? member(*value, "content") : value;
    if (!content || !content->is_string())
      fail<DataError>("{}: \"{}\" must be a token (a string or {{\"content\": string}}), found {}", origin, key,
                      json_excerpt(*value));
    target = content->get<std::string>();
  };
  read_token("unk_token", config.unk_token);
  read_token("sep_token", config.sep_token);
  read_token("pad_token", config.pad_token);
  read_token("cls_token", config.cls_token);
  read_token("mask_token", config.mask_token);
  return config;
}

nlohmann::json TokenizerConfig::to_json() const {
  nlohmann::json doc = {
      {"tokenizer_class", "BertTokenizer"},
      {"do_lower_case", do_lower_case},
      {"tokenize_chinese_chars", tokenize_chinese_chars},
      {"strip_accents", strip_accents ? nlohmann::json(*strip_accents) : nlohmann::json(nullptr)},
      {"model_max_length", model_max_length ? model_max_length : 512},
      {"unk_token", unk_token},
      {"sep_token", sep_token},
      {"pad_token", pad_token},
      {"cls_token", cls_token},
      {"mask_token", mask_token},
      {"clean_up_tokenization_spaces", true},
  };
  return doc;
}

// ---------------------------------------------------------------------------------------
// Vocab

uint64_t Vocab::hash(std::string_view token) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a: tokens are short, so byte-wise is fast enough
  for (unsigned char c : token) h = (h ^ c) * 1099511628211ull;
  return h;
}

void Vocab::index() {
  size_t capacity = 16;
  while (capacity < tokens_.size() * 2) capacity *= 2;
  slots_.assign(capacity, Slot());
  max_token_bytes_ = 0;
  const size_t mask = capacity - 1;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const uint64_t h = hash(tokens_[i]);
    size_t at = h & mask;
    // A repeated token takes the later id, as in Hugging Face.
    while (slots_[at].id >= 0 && !(slots_[at].hash == h && tokens_[static_cast<size_t>(slots_[at].id)] == tokens_[i]))
      at = (at + 1) & mask;
    slots_[at] = {h, static_cast<int32_t>(i)};
    max_token_bytes_ = std::max(max_token_bytes_, tokens_[i].size());
  }
}

Vocab Vocab::from_tokens(std::vector<std::string> tokens) {
  Vocab vocab;
  vocab.tokens_ = std::move(tokens);
  vocab.index();
  return vocab;
}

Vocab Vocab::load(const fs::path& path) {
  std::string contents = read_file(path);
  std::vector<std::string> tokens;
  size_t start = 0;
  size_t line = 1;
  while (start < contents.size()) {
    size_t end = contents.find('\n', start);
    if (end == std::string::npos) end = contents.size();
    std::string_view token(contents.data() + start, end - start);
    if (!token.empty() && token.back() == '\r') token.remove_suffix(1);
    if (unicode::find_invalid_utf8(token) != std::string_view::npos)
      fail<DataError>("{}:{}: invalid UTF-8 in vocabulary entry", path.string(), line);
    // Hugging Face strips trailing whitespace of each entry (a token is never empty).
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    tokens.emplace_back(token);
    start = end + 1;
    ++line;
  }
  if (tokens.empty()) fail<DataError>("{}: empty vocabulary", path.string());
  return from_tokens(std::move(tokens));
}

std::string Vocab::sha256() const {
  std::string text;
  for (const auto& token : tokens_) {
    text += token;
    text += '\n';
  }
  return sha256_hex(text);
}

int32_t Vocab::find(std::string_view token) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash(token);
  const size_t mask = slots_.size() - 1;
  for (size_t at = h & mask;; at = (at + 1) & mask) {
    const Slot& slot = slots_[at];
    if (slot.id < 0) return -1;
    if (slot.hash == h && tokens_[static_cast<size_t>(slot.id)] == token) return slot.id;
  }
}

// ---------------------------------------------------------------------------------------
// BertTokenizer

BertTokenizer::BertTokenizer(Vocab vocab, TokenizerConfig config)
    : vocab_(std::move(vocab)), config_(std::move(config)) {
  auto require = [&](const std::string& token, const char* role) {
    int32_t id = vocab_.find(token);
    if (id < 0)
      fail<DataError>("the vocabulary has no {} token \"{}\"; a BERT vocab.txt lists [PAD], [UNK], [CLS], [SEP] and [MASK]",
                      role, token);
    return id;
  };
  unk_id_ = require(config_.unk_token, "unknown");
  cls_id_ = require(config_.cls_token, "classifier");
  sep_id_ = require(config_.sep_token, "separator");
  pad_id_ = require(config_.pad_token, "padding");
  mask_id_ = vocab_.find(config_.mask_token);
  for (const std::string* token : {&config_.pad_token, &config_.unk_token, &config_.cls_token,
                                   &config_.sep_token, &config_.mask_token}) {
    int32_t id = vocab_.find(*token);
    if (id >= 0) special_tokens_.emplace_back(*token, id);
  }
  // Longest first, so leftmost-longest matching picks "[SEP]x" over a prefix token.
  std::sort(special_tokens_.begin(), special_tokens_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

BertTokenizer BertTokenizer::from_vocab_file(const fs::path& vocab_path, TokenizerConfig config) {
  return BertTokenizer(Vocab::load(vocab_path), std::move(config));
}

BertTokenizer BertTokenizer::from_model_dir(const fs::path& dir) {
  const fs::path vocab = dir / "vocab.txt", tokenizer_json = dir / "tokenizer.json";
  std::error_code ec;
  TokenizerConfig config;
  if (fs::exists(dir / "tokenizer_config.json", ec))
    config = TokenizerConfig::from_json_file(dir / "tokenizer_config.json");
  if (fs::exists(vocab, ec)) return from_vocab_file(vocab, std::move(config));
  if (fs::exists(tokenizer_json, ec)) return from_tokenizer_json(tokenizer_json, std::move(config));
  fail<NotFoundError>("{}: no vocab.txt or tokenizer.json in the model directory", dir.string());
}

BertTokenizer BertTokenizer::from_tokenizer_json(const fs::path& path, TokenizerConfig config) {
  const nlohmann::json doc = read_json_file(path);
  const std::string origin = path.string();
  if (!doc.is_object()) fail<DataError>("{}: expected a JSON object, found {}", origin, json_type_name(doc));
  auto type_of = [](const nlohmann::json* node) -> std::string {
    if (!node) return "none";
    const nlohmann::json* type = member(*node, "type");
    if (type && type->is_string()) return printable(type->get<std::string>());
    return node->is_object() ? "unknown" : "a JSON " + json_type_name(*node);
  };
  auto typed = [&](const nlohmann::json* node, const char* key, bool (nlohmann::json::*is)() const noexcept,
                   const char* expected) -> const nlohmann::json* {
    const nlohmann::json* value = member(*node, key);
    if (value && !(value->*is)())
      fail<DataError>("{}: {} must be {}, found {}", origin, key, expected, json_excerpt(*value));
    return value;
  };
  const nlohmann::json* model = member(doc, "model");
  if (type_of(model) != "WordPiece")
    fail<DataError>("{}: the tokenizer model is {}; recmodel reads BERT WordPiece tokenizers", origin, type_of(model));
  if (const auto* prefix = typed(model, "continuing_subword_prefix", &nlohmann::json::is_string, "a string"))
    if (prefix->get_ref<const std::string&>() != kContinuationPrefix)
      fail<DataError>("{}: continuing_subword_prefix is {}; BERT's WordPiece uses \"##\"", origin,
                      json_excerpt(*prefix));
  if (const auto* chars = typed(model, "max_input_chars_per_word", &nlohmann::json::is_number_integer, "an integer"))
    if (!chars->is_number_unsigned() || chars->get<uint64_t>() != kMaxInputCharsPerWord)
      fail<DataError>("{}: max_input_chars_per_word is {}; recmodel's WordPiece uses BERT's {}", origin,
                      json_excerpt(*chars), kMaxInputCharsPerWord);
  if (const auto* unk = typed(model, "unk_token", &nlohmann::json::is_string, "a string")) config.unk_token = *unk;

  const nlohmann::json* normalizer = member(doc, "normalizer");
  if (type_of(normalizer) != "BertNormalizer")
    fail<DataError>("{}: the normalizer is {}; recmodel reads BERT tokenizers (BertNormalizer)", origin,
                    type_of(normalizer));
  auto flag = [&](const char* key, bool fallback) {
    const auto* value = typed(normalizer, key, &nlohmann::json::is_boolean, "true or false");
    return value ? value->get<bool>() : fallback;
  };
  if (!flag("clean_text", true)) fail<DataError>("{}: BertNormalizer with clean_text false is not supported", origin);
  config.do_lower_case = flag("lowercase", true);
  config.tokenize_chinese_chars = flag("handle_chinese_chars", true);
  if (const auto* strip = typed(normalizer, "strip_accents", &nlohmann::json::is_boolean, "true, false or null"))
    config.strip_accents = strip->get<bool>();
  else
    config.strip_accents.reset();
  const std::string pre_tokenizer = type_of(member(doc, "pre_tokenizer"));
  if (pre_tokenizer != "BertPreTokenizer")
    fail<DataError>("{}: the pre-tokenizer is {}; recmodel reads BERT tokenizers (BertPreTokenizer)", origin,
                    pre_tokenizer);

  const nlohmann::json* entries = member(*model, "vocab");
  if (!entries || !entries->is_object() || entries->empty())
    fail<DataError>("{}: model.vocab is not a token-to-id object{}", origin,
                    entries ? ", found " + json_excerpt(*entries) : std::string());
  std::vector<std::string> tokens(entries->size());
  std::vector<bool> seen(entries->size(), false);
  for (const auto& [token, id] : entries->items()) {
    const int64_t index = id.is_number_integer() ? id.get<int64_t>() : -1;
    if (index < 0 || index >= static_cast<int64_t>(tokens.size()) || seen[static_cast<size_t>(index)])
      fail<DataError>("{}: model.vocab ids must be 0..{} once each; {} has {}", origin, tokens.size() - 1,
                      json_excerpt(nlohmann::json(token)), json_excerpt(id));
    seen[static_cast<size_t>(index)] = true;
    tokens[static_cast<size_t>(index)] = token;
  }
  return BertTokenizer(Vocab::from_tokens(std::move(tokens)), std::move(config));
}

namespace {

// Per-thread buffers so tokenization allocates nothing in steady state.
struct Scratch {
  std::vector<char32_t> chunk;
  std::vector<char32_t> normalized;
  std::vector<char32_t> decomposed;
  std::string word;
  std::string lookup;
  std::vector<int32_t> first, second;  // encode_into's two texts before truncation
};
thread_local Scratch scratch;

}  // namespace

void BertTokenizer::wordpiece(std::string_view word, std::vector<int32_t>& ids, std::string& lookup) const {
  size_t chars = 0;
  for (unsigned char c : word) chars += (c & 0xC0) != 0x80;
  if (chars > kMaxInputCharsPerWord) {
    ids.push_back(unk_id_);
    return;
  }
  size_t first_id = ids.size();
  size_t start = 0;
  // A piece longer than the longest entry cannot match ("##" included), so the search starts there:
  // linear instead of quadratic in the length of a word the vocabulary lacks.
  const size_t longest = vocab_.max_token_bytes();
  while (start < word.size()) {
    size_t end = word.size();
    if (end - start > longest) {
      end = start + longest;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;  // a whole character
    }
    int32_t found = -1;
    while (end > start) {
      std::string_view piece = word.substr(start, end - start);
      if (start > 0) {
        lookup.assign(kContinuationPrefix);
        lookup.append(piece);
        found = vocab_.find(lookup);
      } else {
        found = vocab_.find(piece);
      }
      if (found >= 0) break;
      // Step back one whole UTF-8 character.
      do --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (found < 0) {
      ids.resize(first_id);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

void BertTokenizer::split_words(std::string_view text, std::vector<std::string>& words) const {
  // Reuses the id pipeline's normalization by collecting words instead of ids.
  Scratch& s = scratch;
  auto emit = [&](const std::vector<char32_t>& cps) {
    std::string word;
    for (char32_t cp : cps) unicode::append_utf8(word, cp);
    words.push_back(std::move(word));
  };
  auto flush = [&]() {
    if (s.chunk.empty()) return;
    if (config_.strips_accents()) {
      unicode::decompose_nfd(s.chunk, s.decomposed);
      s.chunk.erase(std::remove_if(s.chunk.begin(), s.chunk.end(), unicode::is_nonspacing_mark), s.chunk.end());
    }
    s.normalized.clear();
    for (char32_t cp : s.chunk) {
      if (config_.do_lower_case) unicode::append_lowercase(s.normalized, cp);
      else s.normalized.push_back(cp);
    }
    std::vector<char32_t> current;
    for (char32_t cp : s.normalized) {
      if (unicode::is_punctuation(cp)) {
        if (!current.empty()) emit(current), current.clear();
        emit({cp});
      } else {
        current.push_back(cp);
      }
    }
    if (!current.empty()) emit(current);
    s.chunk.clear();
  };
  size_t pos = 0;
  s.chunk.clear();
  while (pos < text.size()) {
    char32_t cp = unicode::decode_next(text, pos);
    if (unicode::is_removed_control(cp)) continue;
    if (unicode::is_whitespace(cp)) {
      flush();
    } else if (config_.tokenize_chinese_chars && unicode::is_chinese_char(cp)) {
      flush();
      emit({cp});
    } else {
      s.chunk.push_back(cp);
    }
  }
  flush();
}

void BertTokenizer::tokenize_plain(std::string_view text, std::vector<int32_t>& ids) const {
  Scratch& s = scratch;
  const bool lower = config_.do_lower_case;
  const bool strip = config_.strips_accents();

  // Whitespace-separated chunks are normalized on their own: whitespace and CJK
  // ideographs are NFD starters, so chunk-wise NFD equals whole-text NFD.
  auto flush_chunk = [&]() {
    if (s.chunk.empty()) return;
    bool ascii = std::all_of(s.chunk.begin(), s.chunk.end(), [](char32_t c) { return c < 0x80; });
    if (strip && !ascii) {
      unicode::decompose_nfd(s.chunk, s.decomposed);
      s.chunk.erase(std::remove_if(s.chunk.begin(), s.chunk.end(), unicode::is_nonspacing_mark), s.chunk.end());
    }
    s.word.clear();
    auto end_word = [&]() {
      if (!s.word.empty()) {
        wordpiece(s.word, ids, s.lookup);
        s.word.clear();
      }
    };
    for (char32_t cp : s.chunk) {
      if (ascii) {
        if (kAscii.kind[cp] == 2) {
          end_word();
          s.word.push_back(static_cast<char>(cp));
          end_word();
        } else {
          s.word.push_back(static_cast<char>(lower && cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
        }
        continue;
      }
      s.normalized.clear();
      if (lower) unicode::append_lowercase(s.normalized, cp);
      else s.normalized.push_back(cp);
      for (char32_t out : s.normalized) {
        if (unicode::is_punctuation(out)) {
          end_word();
          unicode::append_utf8(s.word, out);
          end_word();
        } else {
          unicode::append_utf8(s.word, out);
        }
      }
    }
    end_word();
    s.chunk.clear();
  };

  s.chunk.clear();
  size_t pos = 0;
  const size_t size = text.size();
  while (pos < size) {
    unsigned char byte = static_cast<unsigned char>(text[pos]);
    char32_t cp;
    if (byte < 0x80) {
      ++pos;
      uint8_t kind = kAscii.kind[byte];
      if (kind == 3) continue;
      if (kind == 1) {
        flush_chunk();
        continue;
      }
      s.chunk.push_back(byte);
      continue;
    }
    cp = unicode::decode_next(text, pos);
    if (unicode::is_removed_control(cp)) continue;
    if (unicode::is_whitespace(cp)) {
      flush_chunk();
    } else if (config_.tokenize_chinese_chars && unicode::is_chinese_char(cp)) {
      flush_chunk();
      s.chunk.push_back(cp);
      flush_chunk();
    } else {
      s.chunk.push_back(cp);
    }
  }
  flush_chunk();
}

void BertTokenizer::tokenize_ids(std::string_view text, std::vector<int32_t>& ids) const {
  // Special tokens written in the text are matched on the raw text first (Hugging Face's
  // added tokens with normalized=false), leftmost and then longest.
  size_t start = 0;
  while (start < text.size()) {
    size_t best_pos = std::string_view::npos;
    int32_t best_id = -1;
    size_t best_len = 0;
    for (const auto& [token, id] : special_tokens_) {
      size_t found = text.find(token, start);
      if (found < best_pos || (found == best_pos && found != std::string_view::npos && token.size() > best_len)) {
        best_pos = found;
        best_id = id;
        best_len = token.size();
      }
    }
    if (best_pos == std::string_view::npos) {
      tokenize_plain(text.substr(start), ids);
      return;
    }
    tokenize_plain(text.substr(start, best_pos - start), ids);
    ids.push_back(best_id);
    start = best_pos + best_len;
  }
}

std::vector<std::string> BertTokenizer::tokenize(std::string_view text) const {
  std::vector<int32_t> ids;
  tokenize_ids(text, ids);
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) tokens.push_back(vocab_.token(id));
  return tokens;
}

Encoding BertTokenizer::encode(std::string_view text, std::optional<std::string_view> pair, size_t max_length,
                               bool add_special_tokens, bool with_tokens) const {
  Encoding encoding;
  encode_into(text, pair, max_length, add_special_tokens, with_tokens, encoding);
  return encoding;
}

void BertTokenizer::encode_into(std::string_view text, std::optional<std::string_view> pair, size_t max_length,
                                bool add_special_tokens, bool with_tokens, Encoding& encoding) const {
  std::vector<int32_t>& first = scratch.first;
  std::vector<int32_t>& second = scratch.second;
  first.clear();
  second.clear();
  tokenize_ids(text, first);
  if (pair) tokenize_ids(*pair, second);

  encoding.truncated = 0;
  const size_t specials = add_special_tokens ? (pair ? 3 : 2) : 0;
  if (max_length > 0) {
    if (max_length < specials + 1)
      fail<UsageError>("max length {} leaves no room for text after {} special tokens", max_length, specials);
    const size_t budget = max_length - specials;
    size_t total = first.size() + second.size();
    if (total > budget) {
      encoding.truncated = total - budget;
      if (!pair) {
        first.resize(budget);
      } else {
        // Hugging Face tokenizers' longest-first: the shorter sequence keeps what it can,
        // the rest is split evenly with the odd token going to the longer one.
        size_t n1 = first.size(), n2 = second.size();
        bool swapped = n1 > n2;
        if (swapped) std::swap(n1, n2);
        n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
        if (n1 + n2 > budget) {
          n1 = budget / 2;
          n2 = n1 + budget % 2;
        }
        if (swapped) std::swap(n1, n2);
        first.resize(std::min(first.size(), n1));
        second.resize(std::min(second.size(), n2));
      }
    }
  }

  auto& ids = encoding.ids;
  auto& types = encoding.type_ids;
  ids.clear();
  ids.reserve(first.size() + second.size() + specials);
  if (add_special_tokens) ids.push_back(cls_id_);
  ids.insert(ids.end(), first.begin(), first.end());
  if (add_special_tokens) ids.push_back(sep_id_);
  types.assign(ids.size(), 0);
  if (pair) {
    ids.insert(ids.end(), second.begin(), second.end());
    if (add_special_tokens) ids.push_back(sep_id_);
    types.resize(ids.size(), 1);
  }
  encoding.attention_mask.assign(ids.size(), 1);
  encoding.tokens.clear();
  if (with_tokens) {
    encoding.tokens.reserve(ids.size());
    for (int32_t id : ids) encoding.tokens.push_back(vocab_.token(id));
  }
}

nlohmann::json BertTokenizer::tokenizer_json() const {
  using json = nlohmann::json;
  json added = json::array();
  std::vector<std::pair<std::string, int32_t>> by_id = special_tokens_;
  std::sort(by_id.begin(), by_id.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [token, id] : by_id) {
    added.push_back({{"id", id}, {"content", token}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  auto special = [](const std::string& token, int type_id) {
    return json{{"SpecialToken", {{"id", token}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* id, int type_id) {
    return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  json vocab = json::object();
  for (size_t i = 0; i < vocab_.size(); ++i) {
    // A duplicated entry keeps its last id, as Hugging Face's vocab loading does.
    vocab[vocab_.token(static_cast<int32_t>(i))] = i;
  }
  return json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "BertNormalizer"},
        {"clean_text", true},
        {"handle_chinese_chars", config_.tokenize_chinese_chars},
        {"strip_accents", config_.strip_accents ? json(*config_.strip_accents) : json(nullptr)},
        {"lowercase", config_.do_lower_case}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {special(config_.cls_token, 0), sequence("A", 0), special(config_.sep_token, 0)}},
        {"pair",
         {special(config_.cls_token, 0), sequence("A", 0), special(config_.sep_token, 0), sequence("B", 1),
          special(config_.sep_token, 1)}},
        {"special_tokens",
         {{config_.cls_token, {{"id", config_.cls_token}, {"ids", {cls_id_}}, {"tokens", {config_.cls_token}}}},
          {config_.sep_token, {{"id", config_.sep_token}, {"ids", {sep_id_}}, {"tokens", {config_.sep_token}}}}}}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
      {"model",
       {{"type", "WordPiece"},
        {"unk_token", config_.unk_token},
        {"continuing_subword_prefix", "##"},
        {"max_input_chars_per_word", kMaxInputCharsPerWord},
        {"vocab", vocab}}},
  };
}

void BertTokenizer::save(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail<DataError>("{}: cannot create directory: {}", dir.string(), ec.message());
  std::string vocab_text;
  for (const auto& token : vocab_.tokens()) vocab_text += token + "\n";
  write_file_atomic(dir / "vocab.txt", vocab_text);
  write_file_atomic(dir / "tokenizer_config.json", config_.to_json().dump(2) + "\n");
  nlohmann::json special_map = {{"unk_token", config_.unk_token}, {"sep_token", config_.sep_token},
                                {"pad_token", config_.pad_token}, {"cls_token", config_.cls_token},
                                {"mask_token", config_.mask_token}};
  write_file_atomic(dir / "special_tokens_map.json", special_map.dump(2) + "\n");
  write_file_atomic(dir / "tokenizer.json", tokenizer_json().dump(2) + "\n");
}

}  // namespace recmodel::tokenizer
