// `recmodel vocab`: what users see — files written, summaries, exit codes and error lines.
#include <doctest/doctest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/hostile.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

const char* kCorpus =
    "Hug hug HUG pug pug bun hugs\n"
    "\n"
    "hug pug\n";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

TEST_CASE("vocab writes vocab.txt and summarizes it") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", kCorpus);
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out, "--lowercase"});
  CHECK(result.err == "");
  REQUIRE(result.exit_code == 0);
  CHECK(lines_of(t::read_text(out)) == std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "g",
                                                                "h", "p", "u", "##g", "##h", "##p", "##u", "##ug",
                                                                "hug", "pug"});
  CHECK(result.out ==
        "wrote " + out + ": 16 tokens (5 special, 2 x 4 characters, 3 learned subwords)\n"
        "learned from 9 words (4 distinct) on 3 lines of 1 file\n"
        "stopped short of --size 30522: no pair of pieces occurs --min-frequency 2 times any more; add text or "
        "lower --min-frequency\n"
        "left out 3 characters (seen fewer than --min-frequency 2 times); the 2 distinct words using them will "
        "tokenize as [UNK]\n");
}

TEST_CASE("vocab --json reports sizes and whether --size was reached") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", kCorpus);
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel(
      {"vocab", "--json", "--input", (dir / "corpus.txt").string(), "--out", out, "--size", "14", "--lowercase"});
  REQUIRE(result.exit_code == 0);
  auto document = nlohmann::json::parse(result.out);
  CHECK(document["vocab_size"] == 14);
  CHECK(document["target_size"] == 14);
  CHECK(document["reached_size"] == true);
  CHECK(document["alphabet"] == 4);
  CHECK(document["learned"] == 1);
  CHECK(document["corpus"]["words"] == 9);
  CHECK(document["corpus"]["distinct_words"] == 4);
  CHECK(document["left_out"]["characters"] == 3);
  CHECK(lines_of(t::read_text(out)).size() == 14);
}

TEST_CASE("vocab reads several inputs and stdin") {
  t::TempDir dir;
  t::write_text(dir / "a.txt", "hug hug\n");
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel(
      {"vocab", "--json", "--input", (dir / "a.txt").string(), "--input", "-", "--out", out}, "hug pug pug\n");
  REQUIRE(result.exit_code == 0);
  auto document = nlohmann::json::parse(result.out);
  CHECK(document["corpus"]["words"] == 5);
  CHECK(document["corpus"]["files"][1]["path"] == "<stdin>");
  CHECK(lines_of(t::read_text(out)).back() == "pug");
}

TEST_CASE("vocab refuses to replace --out without --force") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", kCorpus);
  std::string out = (dir / "vocab.txt").string();
  t::write_text(out, "keep me\n");
  auto refused = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out});
  CHECK(refused.exit_code == 2);
  CHECK(refused.out == "");
  CHECK(refused.err ==
        "recmodel: error: " + out + ": already exists; choose another --out or pass --force to replace it\n");
  CHECK(t::read_text(out) == "keep me\n");

  auto forced = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out, "--force"});
  CHECK(forced.exit_code == 0);
  CHECK(lines_of(t::read_text(out)).front() == "[PAD]");
}

TEST_CASE("vocab: a missing input is exit 4 and writes nothing") {
  t::TempDir dir;
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel({"vocab", "--input", (dir / "nope.txt").string(), "--out", out});
  CHECK(result.exit_code == 4);
  CHECK(result.err == "recmodel: error: " + (dir / "nope.txt").string() + ": no such file (--input)\n");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("vocab: invalid UTF-8 is exit 3 naming file and line, and writes nothing") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", "good text\nlatin-1 caf\xE9\n");
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out});
  CHECK(result.exit_code == 3);
  CHECK(result.err == "recmodel: error: " + (dir / "corpus.txt").string() +
                          ":2: invalid UTF-8 (byte 0xe9 at byte column 12); the corpus must be UTF-8 text, convert "
                          "it first (e.g. iconv -f latin1 -t utf-8)\n");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);  // no temp files left
}

TEST_CASE("vocab: an empty corpus is exit 3 naming the file") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", "\n  \n\t\n");
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out});
  CHECK(result.exit_code == 3);
  CHECK(result.err == "recmodel: error: " + (dir / "corpus.txt").string() +
                          ": no words to learn a vocabulary from (3 lines, all empty or whitespace); give a text "
                          "corpus with one document per line\n");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("vocab: a --size too small for the alphabet is a usage error saying what it needs") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", kCorpus);
  std::string out = (dir / "vocab.txt").string();
  auto result = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out, "--size", "10",
                                 "--lowercase"});
  CHECK(result.exit_code == 2);
  CHECK(result.err ==
        "recmodel: error: --size 10 is too small for this corpus: 5 special tokens and --unused slots plus its 4 "
        "characters, each as word start and \"##\" continuation, need 13; raise --size or cap the alphabet with "
        "--limit-alphabet N\n");
  CHECK_FALSE(fs::exists(out));

  auto tiny = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out, "--size", "5"});
  CHECK(tiny.exit_code == 2);
  CHECK(tiny.err ==
        "recmodel: error: --size 5 leaves no room beyond the 5 special tokens and --unused slots; ask for more "
        "(BERT's own vocabulary has 30522)\n");
}

TEST_CASE("vocab: flags are checked by the parser") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", kCorpus);
  std::string out = (dir / "vocab.txt").string();
  auto not_number =
      t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out, "--size", "lots"});
  CHECK(not_number.exit_code == 2);
  CHECK(not_number.err.rfind("recmodel: error: ", 0) == 0);
  CHECK(not_number.err.find("--size") != std::string::npos);

  auto no_out = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string()});
  CHECK(no_out.exit_code == 2);
  CHECK(no_out.err.find("--out") != std::string::npos);
}

TEST_CASE("regression: vocab --out with a trailing slash is refused before anything is created") {
  t::TempDir dir;
  t::write_text(dir / "corpus.txt", kCorpus);
  const std::string out = (dir / "v").string() + "/";
  auto result = t::run_recmodel({"vocab", "--input", (dir / "corpus.txt").string(), "--out", out});
  REQUIRE_REFUSED(result, 2);
  CHECK(result.err == "recmodel: error: --out '" + out + "': names a directory; give the vocabulary file to write "
                      "(e.g. '" + (dir / "v" / "vocab.txt").string() + "')\n");
  CHECK_FALSE(fs::exists(dir / "v"));
}
