// `recmodel tokenize`: JSONL per input line, pairs, truncation, errors.
#include <doctest/doctest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tests/support.h"

namespace t = recmodel::testing;

namespace {

struct Fixture {
  t::TempDir dir;
  std::string vocab;
  Fixture() {
    t::write_text(dir / "vocab.txt",
                  "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\nshoe\n##s\nsize\n4\n##2\n!\nRed\n");
    vocab = (dir / "vocab.txt").string();
  }
};

}  // namespace

TEST_CASE("tokenize prints ids and tokens per line, in input order") {
  Fixture f;
  auto result = t::run_recmodel({"tokenize", "--vocab", f.vocab}, "Red shoes!\nsize 42\n\n");
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out ==
        "{\"ids\":[2,5,6,7,11,3],\"tokens\":[\"[CLS]\",\"red\",\"shoe\",\"##s\",\"!\",\"[SEP]\"]}\n"
        "{\"ids\":[2,8,9,10,3],\"tokens\":[\"[CLS]\",\"size\",\"4\",\"##2\",\"[SEP]\"]}\n"
        "{\"ids\":[2,3],\"tokens\":[\"[CLS]\",\"[SEP]\"]}\n");
}

TEST_CASE("tokenize --cased keeps case, --no-special drops [CLS]/[SEP]") {
  Fixture f;
  auto result = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--cased", "--no-special", "--ids-only"}, "Red red\n");
  CHECK(result.exit_code == 0);
  CHECK(result.out == "{\"ids\":[12,5]}\n");
}

TEST_CASE("tokenize --pair encodes TAB-separated pairs with token types and truncation") {
  Fixture f;
  auto result = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--pair", "--max-length", "6", "--ids-only"},
                                "red shoes\tsize 42 red\n");
  CHECK(result.exit_code == 0);
  // 3 + 4 tokens into a budget of 3: both are over it, so they split it 1 + 2.
  CHECK(result.out == "{\"ids\":[2,5,3,8,9,3],\"type_ids\":[0,0,0,1,1,1],\"truncated\":4}\n");

  auto no_tab = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--pair"}, "red shoes\nno tab here\n");
  CHECK(no_tab.exit_code == 3);
  CHECK(no_tab.err == "recmodel: error: <stdin>:1: --pair expects two texts separated by a TAB; found none\n");
}

TEST_CASE("tokenize --jsonl reads texts that hold newlines") {
  Fixture f;
  auto result = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--jsonl", "--ids-only"},
                                "{\"text\": \"red\\nshoes\", \"pair\": \"size\"}\n");
  CHECK(result.exit_code == 0);
  CHECK(result.out == "{\"ids\":[2,5,6,7,3,8,3],\"type_ids\":[0,0,0,0,0,1,1]}\n");
  auto bad = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--jsonl"}, "{\"text\": 3}\n");
  CHECK(bad.exit_code == 3);
  CHECK(bad.err.rfind("recmodel: error: <stdin>:1: expected an object with a string \"text\"", 0) == 0);
}

TEST_CASE("tokenize refuses invalid UTF-8 naming the file and line") {
  Fixture f;
  t::write_text(f.dir / "input.txt", "red\nbad \xff byte\n");
  std::string input = (f.dir / "input.txt").string();
  auto result = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--input", input});
  CHECK(result.exit_code == 3);
  CHECK(result.err == "recmodel: error: " + input + ":2: invalid UTF-8 at byte 5; re-encode the input as UTF-8\n");
}

TEST_CASE("tokenize reports missing files and conflicting options with their exit codes") {
  Fixture f;
  auto missing_vocab = t::run_recmodel({"tokenize", "--vocab", (f.dir / "nope.txt").string()}, "x\n");
  CHECK(missing_vocab.exit_code == 4);
  CHECK(missing_vocab.err == "recmodel: error: " + (f.dir / "nope.txt").string() + ": no such file\n");

  auto no_vocab = t::run_recmodel({"tokenize"}, "x\n");
  CHECK(no_vocab.exit_code == 2);
  CHECK(no_vocab.err == "recmodel: error: give a vocabulary with --vocab FILE or --model DIR\n");

  auto both = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--model", f.dir.path().string()});
  CHECK(both.exit_code == 2);

  auto too_short = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--max-length", "2"}, "x\n");
  CHECK(too_short.exit_code == 2);
  CHECK(too_short.err.find("--max-length 2 leaves no room") != std::string::npos);
}

TEST_CASE("tokenize --write-tokenizer writes a loadable Hugging Face tokenizer folder") {
  Fixture f;
  auto result = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--write-tokenizer", (f.dir / "tok").string(), "--json"});
  CHECK(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["vocab_size"] == 13);
  for (const char* name : {"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    CHECK(std::filesystem::exists(f.dir / "tok" / name));
  // The written folder works as --model and gives the same ids.
  auto via_model = t::run_recmodel({"tokenize", "--model", (f.dir / "tok").string(), "--ids-only"}, "Red shoes\n");
  CHECK(via_model.exit_code == 0);
  CHECK(via_model.out == "{\"ids\":[2,5,6,7,3]}\n");
}

TEST_CASE("tokenize gives the same output with one thread and with many") {
  Fixture f;
  std::string input;
  for (int i = 0; i < 3000; ++i) input += (i % 3 ? "red shoes size 42\n" : "Red!\tshoe\n");
  auto one = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--threads", "1"}, input);
  auto many = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--threads", "4"}, input);
  CHECK(one.exit_code == 0);
  CHECK(one.out == many.out);
  CHECK(std::count(one.out.begin(), one.out.end(), '\n') == 3000);
}

TEST_CASE("tokenize reads a file of many blocks as it reads a pipe, and names a bad line deep in it") {
  Fixture f;
  std::string text;
  for (int i = 0; text.size() < (9u << 20); ++i)
    text += (i % 5 ? "red shoes size 42 and more words\n" : "Red!\tshoe\r\n");
  t::write_text(f.dir / "big.txt", text);
  const std::string big = (f.dir / "big.txt").string();
  auto from_file = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--input", big, "--ids-only", "--threads", "2"});
  auto from_pipe = t::run_recmodel({"tokenize", "--vocab", f.vocab, "--ids-only", "--threads", "1"}, text);
  REQUIRE(from_file.exit_code == 0);
  CHECK(from_file.out == from_pipe.out);
  CHECK(std::count(from_file.out.begin(), from_file.out.end(), '\n') == std::count(text.begin(), text.end(), '\n'));

  // A bad byte on a line in the third 4 MiB block: the error names that line, whatever the threads.
  const size_t bad_at = text.find('\n', 17u << 19) + 1;  // the first line starting past 8.5 MiB
  const size_t line = static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(bad_at), '\n')) + 1;
  text.insert(bad_at, "\xff");
  t::write_text(f.dir / "bad.txt", text);
  for (const char* threads : {"1", "2"}) {
    auto bad = t::run_recmodel(
        {"tokenize", "--vocab", f.vocab, "--input", (f.dir / "bad.txt").string(), "--threads", threads, "--ids-only"});
    CHECK(bad.exit_code == 3);
    CHECK(bad.err == "recmodel: error: " + (f.dir / "bad.txt").string() + ":" + std::to_string(line) +
                         ": invalid UTF-8 at byte 1; re-encode the input as UTF-8\n");
  }
}
