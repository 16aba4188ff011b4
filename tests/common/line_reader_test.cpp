// LineReader's block mode: whole lines of about the asked size, nothing lost or repeated, from a
// mapped regular file and from a pipe (a FIFO here), including a line longer than a block and a
// last line without a newline; views stay valid while the next block is read.
#include "common/line_reader.h"

#include <sys/stat.h>

#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include "tests/support.h"

using namespace recmodel;
namespace t = recmodel::testing;

namespace {

std::string sample_text() {
  std::string text;
  for (int i = 0; i < 20000; ++i)
    text += "line " + std::to_string(i) + (i % 7 ? " short\n" : " a bit longer than most\r\n");
  text += std::string(70000, 'x') + "\n";  // longer than a block
  text += "last line without a newline";
  return text;
}

// Reads `path` in blocks of `min_bytes`, checking each block, and returns their concatenation.
std::string read_in_blocks(const std::string& path, size_t min_bytes, size_t total) {
  LineReader reader(path);
  std::string joined;
  std::string_view block, previous;
  std::string previous_copy;
  while (reader.next_block(block, min_bytes)) {
    // The previous view still holds what it held when it was returned.
    CHECK(previous == previous_copy);
    const bool last = joined.size() + block.size() == total;
    CHECK(!block.empty());
    if (!last) CHECK(block.back() == '\n');
    // About the asked size: a buffer grown for the longest line (70 kB) holds at most twice that.
    CHECK(block.size() <= 2 * (min_bytes + 70001));
    joined += block;
    previous = block;
    previous_copy = std::string(block);
  }
  CHECK(reader.bytes_read() == joined.size());
  return joined;
}

}  // namespace

TEST_CASE("next_block on a regular file returns every byte once, in whole lines") {
  t::TempDir dir;
  const std::string text = sample_text();
  t::write_text(dir / "input.txt", text);
  for (size_t min_bytes : {1, 4096, 65536, 1 << 22})
    CHECK(read_in_blocks((dir / "input.txt").string(), min_bytes, text.size()) == text);
}

TEST_CASE("next_block on a pipe returns every byte once, in whole lines") {
  t::TempDir dir;
  const std::string text = sample_text();
  const std::string fifo = (dir / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (size_t min_bytes : {1, 4096, 65536}) {
    std::thread writer([&] {
      std::ofstream out(fifo, std::ios::binary);
      out << text;
    });
    CHECK(read_in_blocks(fifo, min_bytes, text.size()) == text);
    writer.join();
  }
}

TEST_CASE("next_block on an empty file returns nothing") {
  t::TempDir dir;
  t::write_text(dir / "empty.txt", "");
  LineReader reader((dir / "empty.txt").string());
  std::string_view block;
  CHECK_FALSE(reader.next_block(block, 4096));
}
