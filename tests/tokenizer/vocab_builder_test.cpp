#include "tokenizer/vocab_builder.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

#include "common/error.h"
#include "tests/support.h"

using recmodel::tokenizer::BertTokenizer;
using recmodel::tokenizer::TokenizerConfig;
using recmodel::tokenizer::TrainedVocab;
using recmodel::tokenizer::Vocab;
using recmodel::tokenizer::WordCounter;
using recmodel::tokenizer::WordPieceTrainer;
using recmodel::tokenizer::WordPieceTrainerOptions;
namespace t = recmodel::testing;

namespace {

using Counts = std::unordered_map<std::string, uint64_t>;
using Tokens = std::vector<std::string>;

TokenizerConfig config_for(bool lowercase) {
  TokenizerConfig config;
  config.do_lower_case = lowercase;
  return config;
}

Counts count_text(const std::string& text, bool lowercase) {
  WordCounter counter(config_for(lowercase));
  counter.add_text(text);
  return counter.counts();
}

TrainedVocab train(const Counts& counts, size_t size, uint64_t min_frequency = 2) {
  WordPieceTrainerOptions options;
  options.vocab_size = size;
  options.min_frequency = min_frequency;
  return WordPieceTrainer(counts, options).train();
}

// BPE the slow, obvious way — every pair recounted after every merge — to check the
// incremental bookkeeping against. ASCII words only; min_frequency 1.
Tokens naive_wordpiece(const Counts& counts, size_t size) {
  Tokens tokens;
  std::map<std::string, uint32_t> ids;
  auto add = [&](const std::string& token) {
    if (ids.count(token)) return ids[token];
    ids[token] = static_cast<uint32_t>(tokens.size());
    tokens.push_back(token);
    return ids[token];
  };
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) add(special);
  std::map<char, bool> alphabet;
  for (const auto& entry : counts)
    for (char c : entry.first) alphabet[c] = true;
  for (const auto& entry : alphabet) add(std::string(1, entry.first));
  for (const auto& entry : alphabet) add("##" + std::string(1, entry.first));
  std::vector<std::vector<uint32_t>> words;
  std::vector<uint64_t> word_counts;
  for (const auto& [word, count] : counts) {
    std::vector<uint32_t> symbols;
    for (size_t i = 0; i < word.size(); ++i) symbols.push_back(ids[(i ? "##" : "") + word.substr(i, 1)]);
    words.push_back(symbols);
    word_counts.push_back(count);
  }
  while (tokens.size() < size) {
    std::map<std::pair<uint32_t, uint32_t>, uint64_t> pairs;
    for (size_t w = 0; w < words.size(); ++w)
      for (size_t i = 0; i + 1 < words[w].size(); ++i) pairs[{words[w][i], words[w][i + 1]}] += word_counts[w];
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;  // strict: ties keep the lowest pair
    auto [left, right] = best->first;
    std::string right_text = tokens[right].rfind("##", 0) == 0 ? tokens[right].substr(2) : tokens[right];
    uint32_t merged = add(tokens[left] + right_text);
    for (auto& symbols : words) {
      std::vector<uint32_t> out;
      for (size_t i = 0; i < symbols.size();) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          out.push_back(merged);
          i += 2;
        } else {
          out.push_back(symbols[i++]);
        }
      }
      symbols = out;
    }
  }
  return tokens;
}

}  // namespace

TEST_CASE("a tiny corpus gives the vocabulary worked out by hand") {
  // hug x3 (one upper-cased), pug x2; b, n and s occur once, so bun and hugs are left out.
  Counts counts = count_text("Hug hug HUG pug pug bun hugs", /*lowercase=*/true);
  TrainedVocab vocab = train(counts, 30522);
  CHECK(vocab.tokens == Tokens{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "g", "h", "p", "u", "##g", "##h",
                               "##p", "##u", "##ug", "hug", "pug"});
  CHECK(vocab.special_tokens == 5);
  CHECK(vocab.alphabet == 4);
  CHECK(vocab.merges == 3);
  CHECK(vocab.dropped_characters == 3);
  CHECK(vocab.rare_character_words == 2);
  CHECK(vocab.trained_words == 2);
  CHECK_FALSE(vocab.reached_size);  // (p, ##ug) was the last pair seen twice
}

TEST_CASE("the size cap stops training at exactly --size tokens") {
  Counts counts = count_text("Hug hug HUG pug pug bun hugs", true);
  TrainedVocab vocab = train(counts, 14);
  CHECK(vocab.tokens.size() == 14);
  CHECK(vocab.tokens.back() == "##ug");
  CHECK(vocab.reached_size);

  // Exactly the alphabet: no merges at all, still a complete vocabulary.
  TrainedVocab bare = train(counts, 13);
  CHECK(bare.tokens.size() == 13);
  CHECK(bare.merges == 0);
  CHECK(bare.reached_size);
}

TEST_CASE("a size below the special tokens plus the alphabet is refused with the numbers") {
  Counts counts = count_text("Hug hug HUG pug pug", true);
  WordPieceTrainerOptions options;
  options.vocab_size = 12;
  WordPieceTrainer trainer(counts, options);
  CHECK(trainer.minimum_size() == 13);
  CHECK_THROWS_WITH_AS(trainer.train(),
                       "a vocabulary of 12 tokens cannot hold the 5 special and unused tokens plus the 4 "
                       "characters of the corpus, each as word start and \"##\" continuation; ask for at least "
                       "13 tokens or limit the alphabet",
                       recmodel::UsageError);
}

TEST_CASE("equally frequent pairs are merged in id order, whatever the input order") {
  TrainedVocab forward = train(count_text("cd ab", false), 100, /*min_frequency=*/1);
  TrainedVocab backward = train(count_text("ab cd", false), 100, 1);
  CHECK(forward.tokens == backward.tokens);
  REQUIRE(forward.tokens.size() == 15);
  CHECK(Tokens(forward.tokens.end() - 2, forward.tokens.end()) == Tokens{"ab", "cd"});
}

TEST_CASE("words are split and normalized exactly as BertTokenizer does") {
  TrainedVocab uncased = train(count_text("Café, café!", true), 100, 1);
  CHECK(std::count(uncased.tokens.begin(), uncased.tokens.end(), "cafe") == 1);
  CHECK(std::count(uncased.tokens.begin(), uncased.tokens.end(), ",") == 1);
  CHECK(std::count(uncased.tokens.begin(), uncased.tokens.end(), "é") == 0);
  CHECK(std::count(uncased.tokens.begin(), uncased.tokens.end(), "cafe,") == 0);  // punctuation is its own word

  TrainedVocab cased = train(count_text("Café, café!", false), 100, 1);
  CHECK(std::count(cased.tokens.begin(), cased.tokens.end(), "Café") == 1);
  CHECK(std::count(cased.tokens.begin(), cased.tokens.end(), "##é") == 1);
}

TEST_CASE("unused slots follow the special tokens") {
  WordPieceTrainerOptions options;
  options.unused_tokens = 3;
  options.vocab_size = 100;
  Counts counts = count_text("ab ab", false);
  TrainedVocab vocab = WordPieceTrainer(counts, options).train();
  CHECK(Tokens(vocab.tokens.begin(), vocab.tokens.begin() + 9) ==
        Tokens{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "[unused2]", "a"});
  CHECK(vocab.special_tokens == 8);
}

TEST_CASE("--limit-alphabet keeps the most frequent characters") {
  WordPieceTrainerOptions options;
  options.limit_alphabet = 2;
  options.min_frequency = 1;
  options.vocab_size = 100;
  Counts counts = count_text("aaa bb c", false);
  TrainedVocab vocab = WordPieceTrainer(counts, options).train();
  CHECK(Tokens(vocab.tokens.begin() + 5, vocab.tokens.begin() + 9) == Tokens{"a", "b", "##a", "##b"});
  CHECK(vocab.dropped_characters == 1);
  CHECK(vocab.rare_character_words == 1);
}

TEST_CASE("words longer than 100 characters teach nothing: BERT maps them to [UNK]") {
  Counts counts = {{std::string(101, 'x'), 5}, {"xy", 2}};
  TrainedVocab vocab = train(counts, 100, 1);
  CHECK(vocab.long_words == 1);
  CHECK(vocab.tokens == Tokens{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "x", "y", "##x", "##y", "xy"});
}

TEST_CASE("incremental pair counts give the same vocabulary as recounting every pair") {
  // Few letters and repeats make the same token reachable by different merges ("##ab"+"##a",
  // "##a"+"##ba") and runs like "aaaa": the cases incremental bookkeeping gets wrong.
  const char* syllables[] = {"a", "b", "ab", "ba", "aa", "c", "abc", "ca"};
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::mt19937 random(seed);
    Counts counts;
    for (int i = 0; i < 600; ++i) {
      std::string word;
      int parts = 1 + static_cast<int>(random() % 5);
      for (int p = 0; p < parts; ++p) word += syllables[random() % 8];
      ++counts[word];
    }
    CAPTURE(seed);
    CHECK(train(counts, 400, 1).tokens == naive_wordpiece(counts, 400));
  }
}

TEST_CASE("the learned vocabulary tokenizes its training text without [UNK]") {
  std::string corpus =
      "Wireless Bluetooth Headphones, noise-cancelling (black)\n"
      "USB-C charging cable 2m — fast charge 60W\n"
      "Kinder-Fahrrad 16 Zoll, blau; Lieferung in 2–3 Tagen\n"
      "Crème hydratante visage 50ml pour peaux sèches\n"
      "跑步鞋 男款 轻便透气\n"
      "スマートフォン ケース 手帳型\n"
      "Смартфон 128 ГБ, чёрный\n"
      "هاتف ذكي بشاشة كبيرة\n"
      "I love it!!! 😍😍 would buy again\n"
      "size 10.5 US / 44 EU, width: wide\n";
  for (bool lowercase : {true, false}) {
    CAPTURE(lowercase);
    Counts counts = count_text(corpus + corpus, lowercase);
    for (size_t size : {size_t{0}, size_t{40}, size_t{30522}}) {
      CAPTURE(size);
      WordPieceTrainerOptions options;
      options.min_frequency = 1;
      WordPieceTrainer trainer(counts, options);
      options.vocab_size = size ? trainer.minimum_size() + size : trainer.minimum_size();
      TrainedVocab vocab = WordPieceTrainer(counts, options).train();
      CHECK(vocab.tokens.size() <= options.vocab_size);
      BertTokenizer tokenizer(Vocab::from_tokens(vocab.tokens), config_for(lowercase));
      std::vector<int32_t> ids;
      tokenizer.tokenize_ids(corpus, ids);
      CHECK(std::count(ids.begin(), ids.end(), tokenizer.unk_id()) == 0);
      CHECK(ids.size() > 40);
    }
  }
}

TEST_CASE("counting a file gives the same counts on one thread and on several") {
  // Enough text for several 1 MiB chunks, plus one line longer than a chunk.
  std::mt19937 random(7);
  const char* words[] = {"red", "Shoes", "size", "42", "laptop", "Ünïcödé", "日本", "x-ray", "café", "!"};
  std::string text;
  while (text.size() < 3'000'000) {
    int length = 1 + static_cast<int>(random() % 15);
    for (int i = 0; i < length; ++i) text += std::string(words[random() % 10]) + (i + 1 < length ? " " : "\n");
    if (random() % 50 == 0) text += "\n";  // blank lines count as lines, not words
  }
  for (int i = 0; i < 150'000; ++i) text += "longline ";
  text += "end";  // no final newline
  uint64_t newlines = static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));

  t::TempDir dir;
  t::write_text(dir / "corpus.txt", text);
  WordCounter single(config_for(true));
  auto single_stats = single.add_file(dir / "corpus.txt", 1);
  WordCounter threaded(config_for(true));
  auto threaded_stats = threaded.add_file(dir / "corpus.txt", 3);
  WordCounter direct(config_for(true));
  direct.add_text(text);

  CHECK(single.counts() == direct.counts());
  CHECK(threaded.counts() == direct.counts());
  CHECK(threaded.total_words() == direct.total_words());
  CHECK(single_stats.lines == newlines + 1);
  CHECK(threaded_stats.lines == newlines + 1);
  CHECK(threaded_stats.words == direct.total_words());
  CHECK(direct.counts().at("longline") == 150'000);

  WordPieceTrainerOptions options;
  options.vocab_size = 300;
  CHECK(WordPieceTrainer(single.counts(), options).train().tokens ==
        WordPieceTrainer(threaded.counts(), options).train().tokens);
}

TEST_CASE("invalid UTF-8 is reported with its file and line") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", "fine line\nalso fine\nbad \xC3\x28 byte\n");
  WordCounter counter(config_for(true));
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    CHECK_THROWS_WITH_AS(counter.add_file(dir / "corpus.txt", threads),
                         ((dir / "corpus.txt").string() +
                          ":3: invalid UTF-8 (byte 0xc3 at byte column 5); the corpus must be UTF-8 text, convert "
                          "it first (e.g. iconv -f latin1 -t utf-8)")
                             .c_str(),
                         recmodel::DataError);
  }
}

TEST_CASE("a missing corpus file is NotFound, naming it") {
  WordCounter counter(config_for(true));
  CHECK_THROWS_WITH_AS(counter.add_file("/nonexistent/corpus.txt"), "/nonexistent/corpus.txt: no such file",
                       recmodel::NotFoundError);
}

TEST_CASE("vocab.txt holds one token per line, in id order") {
  CHECK(recmodel::tokenizer::vocab_file_contents({"[PAD]", "a", "##b"}) == "[PAD]\na\n##b\n");
  t::TempDir dir;
  t::write_text(dir / "vocab.txt", recmodel::tokenizer::vocab_file_contents({"[PAD]", "[UNK]", "a", "##b"}));
  Vocab loaded = Vocab::load(dir / "vocab.txt");
  CHECK(loaded.size() == 4);
  CHECK(loaded.find("##b") == 3);
}
