#include "tokenizer/vocab_builder.h"

#include <algorithm>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_set>
#include <utility>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace recmodel::tokenizer {

namespace {

using WordMap = std::unordered_map<std::string, uint64_t>;

constexpr size_t kChunkBytes = 1 << 20;  // large enough to amortise queue hand-offs
constexpr std::string_view kContinuation = "##";

// Returns the byte length of the UTF-8 character starting with `lead` (input already valid).
size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Calls `visit(character)` for each character of valid UTF-8 `text`; stops early when it
// returns false. Returns whether it ran to the end.
template <typename Visit>
bool for_each_char(std::string_view text, Visit&& visit) {
  for (size_t i = 0; i < text.size();) {
    size_t length = std::min(utf8_length(static_cast<unsigned char>(text[i])), text.size() - i);
    if (!visit(text.substr(i, length))) return false;
    i += length;
  }
  return true;
}

size_t char_count(std::string_view text) {
  size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

// Counts the words of each non-empty line of `chunk` into `counts`; returns the occurrences.
uint64_t count_chunk(const BertTokenizer& splitter, std::string_view chunk, WordMap& counts,
                     std::vector<std::string>& scratch) {
  uint64_t words = 0;
  size_t start = 0;
  while (start < chunk.size()) {
    size_t end = chunk.find('\n', start);
    if (end == std::string_view::npos) end = chunk.size();
    std::string_view line = chunk.substr(start, end - start);
    if (!line.empty()) {
      scratch.clear();
      splitter.split_words(line, scratch);
      words += scratch.size();
      for (std::string& word : scratch) ++counts[std::move(word)];
    }
    start = end + 1;
  }
  return words;
}

// Adds the counts of `from` into `into`, moving map nodes where the word is new.
void merge_counts(WordMap& into, WordMap& from) {
  into.merge(from);  // leaves in `from` only the words `into` already had
  for (auto& [word, count] : from) into[word] += count;
  from.clear();
}

// Hands chunks of lines from the reading thread to the counting workers; bounded so
// memory does not grow with the input.
class ChunkQueue {
 public:
  explicit ChunkQueue(size_t capacity) : capacity_(capacity) {}

  // Blocks while full; returns false once the queue was aborted.
  bool push(std::string chunk) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return aborted_ || items_.size() < capacity_; });
    if (aborted_) return false;
    items_.push_back(std::move(chunk));
    not_empty_.notify_one();
    return true;
  }
  // Blocks while empty; returns false when closed and drained, or aborted.
  bool pop(std::string& chunk) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return aborted_ || closed_ || !items_.empty(); });
    if (aborted_ || items_.empty()) return false;
    chunk = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  // Tells the workers no more chunks come.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }
  // Stops everyone now (an error on either side).
  void abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::string> items_;
  size_t capacity_;
  bool closed_ = false;
  bool aborted_ = false;
};

// Counting workers, each with its own map so they never contend on the counts.
class CountingPool {
 public:
  CountingPool(const BertTokenizer& splitter, int threads)
      : queue_(static_cast<size_t>(threads) * 2), slots_(static_cast<size_t>(threads)) {
    for (auto& slot : slots_) {
      workers_.emplace_back([this, &splitter, &slot] {
        try {
          std::vector<std::string> scratch;
          std::string chunk;
          while (queue_.pop(chunk)) slot.words += count_chunk(splitter, chunk, slot.counts, scratch);
        } catch (...) {
          slot.error = std::current_exception();
          queue_.abort();
        }
      });
    }
  }
  ~CountingPool() {
    queue_.abort();
    join();
  }

  // Queues a chunk; returns false when a worker failed (finish() then rethrows).
  bool submit(std::string chunk) { return queue_.push(std::move(chunk)); }

  // Waits for the workers and adds their counts to `counts`; rethrows a worker's error.
  uint64_t finish(WordMap& counts) {
    queue_.close();
    join();
    for (auto& slot : slots_) {
      if (slot.error) std::rethrow_exception(slot.error);
    }
    uint64_t words = 0;
    for (auto& slot : slots_) {
      merge_counts(counts, slot.counts);
      words += slot.words;
    }
    return words;
  }

 private:
  struct Slot {
    WordMap counts;
    uint64_t words = 0;
    std::exception_ptr error;
  };
  void join() {
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
  }

  ChunkQueue queue_;
  std::vector<Slot> slots_;
  std::vector<std::thread> workers_;
};

// Closes a FILE* opened by fopen (never stdin).
struct FileCloser {
  void operator()(std::FILE* file) const {
    if (file && file != stdin) std::fclose(file);
  }
};

// Throws DataError naming the line and column of the invalid byte at `offset` in `chunk`,
// whose first line is line `first_line` of `name`.
[[noreturn]] void fail_invalid_utf8(const std::string& name, std::string_view chunk, size_t offset,
                                    uint64_t first_line) {
  std::string_view before = chunk.substr(0, offset);
  uint64_t line = first_line + static_cast<uint64_t>(std::count(before.begin(), before.end(), '\n'));
  size_t line_start = before.rfind('\n');
  size_t column = offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
  fail<DataError>("{}:{}: invalid UTF-8 (byte 0x{:02x} at byte column {}); the corpus must be "
                  "UTF-8 text, convert it first (e.g. iconv -f latin1 -t utf-8)",
                  name, line, static_cast<unsigned char>(chunk[offset]), column);
}

Vocab special_vocab(const TokenizerConfig& config) {
  // The splitter needs only the special tokens: split_words never looks words up.
  return Vocab::from_tokens({config.pad_token, config.unk_token, config.cls_token, config.sep_token,
                             config.mask_token});
}

}  // namespace

WordCounter::WordCounter(const TokenizerConfig& config)
    : splitter_(special_vocab(config), config) {}

void WordCounter::add_text(std::string_view text) {
  std::vector<std::string> scratch;
  total_words_ += count_chunk(splitter_, text, counts_, scratch);
}

CorpusFileStats WordCounter::add_file(const fs::path& path, int threads,
                                      const std::function<void(uint64_t)>& on_progress) {
  const bool from_stdin = path == "-";
  CorpusFileStats stats;
  stats.path = from_stdin ? "<stdin>" : path.string();
  std::unique_ptr<std::FILE, FileCloser> file;
  if (from_stdin) {
    file.reset(stdin);
  } else {
    std::error_code ec;
    if (!fs::exists(path, ec)) fail<NotFoundError>("{}: no such file", stats.path);
    if (fs::is_directory(path, ec))
      fail<DataError>("{}: is a directory, expected a text file with one document per line", stats.path);
    file.reset(std::fopen(path.c_str(), "rb"));
    if (!file) fail<DataError>("{}: cannot open: {}", stats.path, std::strerror(errno));
  }

  std::unique_ptr<CountingPool> pool;
  if (threads > 1) pool = std::make_unique<CountingPool>(splitter_, threads);
  std::vector<std::string> scratch;
  uint64_t words = 0;
  uint64_t next_line = 1;
  bool last_byte_newline = true;
  // Validation happens here, in reading order, so the reported line is always the first bad one.
  auto dispatch = [&](std::string chunk) {
    size_t bad = unicode::find_invalid_utf8(chunk);
    if (bad != std::string_view::npos) fail_invalid_utf8(stats.path, chunk, bad, next_line);
    next_line += static_cast<uint64_t>(std::count(chunk.begin(), chunk.end(), '\n'));
    last_byte_newline = chunk.back() == '\n';
    if (!pool) {
      words += count_chunk(splitter_, chunk, counts_, scratch);
    } else if (!pool->submit(std::move(chunk))) {
      pool->finish(counts_);  // rethrows the error that stopped the workers
      throw Error(ExitCode::internal, fmt::format("{}: word counting stopped without an error", stats.path));
    }
  };

  std::string pending;  // a line cut by the end of the previous read
  std::vector<char> buffer(kChunkBytes);
  uint64_t bytes_read = 0;
  while (true) {
    size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
    if (n == 0) break;
    bytes_read += n;
    if (on_progress) on_progress(bytes_read);
    // Only the new bytes are searched, so a line longer than many reads costs linear time.
    std::string_view fresh(buffer.data(), n);
    size_t last_newline = fresh.rfind('\n');
    if (last_newline == std::string_view::npos) {
      pending.append(fresh);
      continue;
    }
    std::string chunk = std::move(pending);
    chunk.append(fresh.substr(0, last_newline + 1));
    pending.assign(fresh.substr(last_newline + 1));
    dispatch(std::move(chunk));
  }
  if (std::ferror(file.get())) fail<DataError>("{}: read error: {}", stats.path, std::strerror(errno));
  if (!pending.empty()) dispatch(std::move(pending));
  if (pool) words += pool->finish(counts_);

  stats.lines = next_line - (last_byte_newline ? 1 : 0);
  stats.words = words;
  total_words_ += words;
  return stats;
}

WordPieceTrainer::WordPieceTrainer(const std::unordered_map<std::string, uint64_t>& word_counts,
                                   WordPieceTrainerOptions options)
    : options_(std::move(options)) {
  std::unordered_map<std::string_view, uint64_t> char_counts;
  std::vector<std::pair<std::string_view, uint64_t>> candidates;
  candidates.reserve(word_counts.size());
  for (const auto& [word, count] : word_counts) {
    if (word.empty() || count == 0) continue;
    if (char_count(word) > options_.max_word_chars) {
      ++long_words_;
      continue;
    }
    candidates.emplace_back(word, count);
    for_each_char(word, [&](std::string_view c) {
      char_counts[c] += count;
      return true;
    });
  }

  // As in Hugging Face's trainer, the alphabet may be capped to the most frequent characters;
  // here rare ones are dropped too, so noise (a stray symbol seen once) does not take two slots.
  std::vector<std::pair<std::string_view, uint64_t>> kept;
  for (const auto& entry : char_counts) {
    if (entry.second >= options_.min_frequency) kept.push_back(entry);
  }
  if (options_.limit_alphabet > 0 && kept.size() > options_.limit_alphabet) {
    std::sort(kept.begin(), kept.end(), [](const auto& x, const auto& y) {
      return x.second != y.second ? x.second > y.second : x.first < y.first;
    });
    kept.resize(options_.limit_alphabet);
  }
  // Byte order of UTF-8 is code point order, so ids do not depend on hashing.
  std::sort(kept.begin(), kept.end());
  dropped_characters_ = char_counts.size() - kept.size();
  alphabet_.reserve(kept.size());
  for (const auto& entry : kept) alphabet_.emplace_back(entry.first);

  // A word with a character outside the alphabet becomes [UNK] whole in WordPiece, so merging
  // its pieces would only learn tokens that can never be produced.
  std::unordered_set<std::string_view> in_alphabet(alphabet_.begin(), alphabet_.end());
  for (const auto& candidate : candidates) {
    bool ok = for_each_char(candidate.first, [&](std::string_view c) { return in_alphabet.count(c) > 0; });
    if (ok) {
      words_.push_back(candidate);
    } else {
      ++rare_character_words_;
    }
  }
}

size_t WordPieceTrainer::minimum_size() const {
  std::vector<std::string> specials = options_.special_tokens;
  std::sort(specials.begin(), specials.end());
  size_t unique_specials = static_cast<size_t>(std::unique(specials.begin(), specials.end()) - specials.begin());
  return unique_specials + options_.unused_tokens + 2 * alphabet_.size();
}

namespace {

using Pair = uint64_t;  // (left id << 32) | right id

Pair make_pair_key(uint32_t left, uint32_t right) { return (static_cast<uint64_t>(left) << 32) | right; }

struct QueueEntry {
  uint64_t count;
  Pair pair;
};

// Orders the max-heap: the most frequent pair first, ties to the lower ids (as Hugging Face).
struct LowerPriority {
  bool operator()(const QueueEntry& x, const QueueEntry& y) const {
    return x.count != y.count ? x.count < y.count : x.pair > y.pair;
  }
};

// Replaces every non-overlapping (left, right) in `symbols`, scanning left to right, by
// `merged`, and reports each neighbouring pair that disappears (-1) or appears (+1).
template <typename Report>
void merge_word(std::vector<uint32_t>& symbols, uint32_t left, uint32_t right, uint32_t merged,
                Report&& report) {
  const size_t size = symbols.size();
  size_t out = 0;
  size_t i = 0;
  while (i < size) {
    if (i + 1 < size && symbols[i] == left && symbols[i + 1] == right) {
      if (out > 0) {
        report(make_pair_key(symbols[out - 1], left), -1);
        report(make_pair_key(symbols[out - 1], merged), +1);
      }
      if (i + 2 < size) {
        report(make_pair_key(right, symbols[i + 2]), -1);
        report(make_pair_key(merged, symbols[i + 2]), +1);
      }
      symbols[out++] = merged;
      i += 2;
    } else {
      symbols[out++] = symbols[i++];
    }
  }
  symbols.resize(out);
}

}  // namespace

TrainedVocab WordPieceTrainer::train() {
  const size_t minimum = minimum_size();
  if (options_.vocab_size < minimum)
    fail<UsageError>("a vocabulary of {} tokens cannot hold the {} special and unused tokens plus the "
                     "{} characters of the corpus, each as word start and \"##\" continuation; ask for "
                     "at least {} tokens or limit the alphabet",
                     options_.vocab_size, minimum - 2 * alphabet_.size(), alphabet_.size(), minimum);

  TrainedVocab result;
  std::vector<std::string>& tokens = result.tokens;
  std::unordered_map<std::string, uint32_t> ids;
  auto add_token = [&](std::string token) {
    auto [it, added] = ids.try_emplace(token, static_cast<uint32_t>(tokens.size()));
    if (added) tokens.push_back(std::move(token));
    return std::make_pair(it->second, added);
  };
  for (const auto& special : options_.special_tokens) add_token(special);
  for (size_t i = 0; i < options_.unused_tokens; ++i) add_token(fmt::format("[unused{}]", i));
  result.special_tokens = tokens.size();
  // Both forms of every character, so any word spelled with the alphabet tokenizes without [UNK]
  // wherever its characters fall.
  for (const auto& c : alphabet_) add_token(c);
  for (const auto& c : alphabet_) add_token(std::string(kContinuation) + c);
  result.alphabet = alphabet_.size();

  std::vector<std::vector<uint32_t>> words(words_.size());
  std::vector<uint64_t> counts(words_.size());
  for (size_t w = 0; w < words_.size(); ++w) {
    counts[w] = words_[w].second;
    bool first = true;
    for_each_char(words_[w].first, [&](std::string_view c) {
      words[w].push_back(first ? ids.at(std::string(c)) : ids.at(std::string(kContinuation) + std::string(c)));
      first = false;
      return true;
    });
  }

  std::unordered_map<Pair, int64_t> pair_counts;
  std::unordered_map<Pair, std::vector<uint32_t>> where;  // words that may hold the pair
  for (uint32_t w = 0; w < words.size(); ++w) {
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      Pair pair = make_pair_key(words[w][i], words[w][i + 1]);
      pair_counts[pair] += static_cast<int64_t>(counts[w]);
      auto& positions = where[pair];
      if (positions.empty() || positions.back() != w) positions.push_back(w);
    }
  }
  std::priority_queue<QueueEntry, std::vector<QueueEntry>, LowerPriority> queue;
  for (const auto& [pair, count] : pair_counts) queue.push({static_cast<uint64_t>(count), pair});

  const uint64_t min_frequency = std::max<uint64_t>(options_.min_frequency, 1);
  std::vector<Pair> touched;
  while (tokens.size() < options_.vocab_size && !queue.empty()) {
    QueueEntry top = queue.top();
    queue.pop();
    auto found = pair_counts.find(top.pair);
    int64_t current = found == pair_counts.end() ? 0 : found->second;
    if (current <= 0) continue;
    // Counts only fall while an entry waits in the queue (rises come with a fresh entry), so a
    // stale entry is re-queued with its true count and the first current one is the maximum.
    if (static_cast<uint64_t>(current) != top.count) {
      queue.push({static_cast<uint64_t>(current), top.pair});
      continue;
    }
    if (top.count < min_frequency) break;

    const uint32_t left = static_cast<uint32_t>(top.pair >> 32);
    const uint32_t right = static_cast<uint32_t>(top.pair & 0xFFFFFFFFu);
    std::string_view right_text = tokens[right];
    if (right_text.substr(0, kContinuation.size()) == kContinuation) right_text.remove_prefix(kContinuation.size());
    std::string merged_text = tokens[left];
    merged_text += right_text;
    // Different merge paths can spell the same token ("##ab"+"##c", "##a"+"##bc"): one id for both.
    auto [merged, added] = add_token(std::move(merged_text));
    if (added) ++result.merges;

    std::vector<uint32_t> positions = std::move(where[top.pair]);
    where.erase(top.pair);
    touched.clear();
    for (uint32_t w : positions) {
      merge_word(words[w], left, right, merged, [&](Pair pair, int delta) {
        pair_counts[pair] += delta * static_cast<int64_t>(counts[w]);
        if (delta > 0) {
          auto& holders = where[pair];
          if (holders.empty() || holders.back() != w) holders.push_back(w);
          touched.push_back(pair);
        }
      });
    }
    pair_counts.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (Pair pair : touched) {
      int64_t count = pair_counts[pair];
      if (count > 0) queue.push({static_cast<uint64_t>(count), pair});
    }
  }

  result.reached_size = tokens.size() >= options_.vocab_size;
  result.dropped_characters = dropped_characters_;
  result.rare_character_words = rare_character_words_;
  result.long_words = long_words_;
  result.trained_words = words_.size();
  return result;
}

std::string vocab_file_contents(const std::vector<std::string>& tokens) {
  std::string out;
  size_t bytes = 0;
  for (const auto& token : tokens) bytes += token.size() + 1;
  out.reserve(bytes);
  for (const auto& token : tokens) {
    out += token;
    out += '\n';
  }
  return out;
}

}  // namespace recmodel::tokenizer
