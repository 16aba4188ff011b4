// Reads a text file or stdin ("-") line by line in large blocks, counting lines.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace recmodel {

// Returns the offset just past the first "\n" at or after `from` in `text`, or text.size().
inline size_t end_of_line(std::string_view text, size_t from) {
  const size_t newline = text.find('\n', from);
  return newline == std::string_view::npos ? text.size() : newline + 1;
}

class LineReader {
 public:
  // Opens `path`, or stdin for "-"; throws NotFoundError naming a missing file.
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Reads the next line without its "\n" (and a "\r" before it); false at end of input.
  bool next(std::string& line);
  // Sets `block` to the next whole lines, "\n" included (the last may lack it at end of input):
  // about `bytes` of them (a line is never cut, so a block may be longer or a little shorter);
  // false at end of input. The view stays valid
  // until the call after next, so one block can be worked on while the next is read. A regular
  // file is memory-mapped (no copy); a pipe is read into two alternating buffers. For callers that
  // split and parse lines in parallel and count lines themselves (line_number() stays put). Do not
  // mix with next().
  bool next_block(std::string_view& block, size_t bytes);
  // Returns the 1-based number of the line last returned.
  size_t line_number() const { return line_number_; }
  // Returns the name used in messages ("<stdin>" or the path).
  const std::string& name() const { return name_; }
  // Returns the size of the input in bytes, 0 when unknown (a pipe).
  size_t size_bytes() const { return size_; }
  // Returns the bytes consumed so far.
  size_t bytes_read() const { return bytes_read_; }

 private:
  std::FILE* file_;
  char* buffer_ = nullptr;  // getline's buffer, reused across lines
  size_t capacity_ = 0;
  bool owns_;
  std::string name_;
  size_t line_number_ = 0;
  size_t size_ = 0;
  size_t bytes_read_ = 0;
  // next_block on a regular file: the mapping and the offset of the next block.
  const char* mapped_ = nullptr;
  size_t mapped_at_ = 0;
  // next_block on a pipe: alternating buffers, and the start of a line the last read cut.
  std::unique_ptr<char[]> blocks_[2];
  size_t block_capacity_[2] = {0, 0};
  int turn_ = 0;
  std::string carry_;
};

}  // namespace recmodel
