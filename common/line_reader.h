// Reads a text file or stdin ("-") line by line in large blocks, counting lines.
#pragma once

#include <cstdio>
#include <string>

namespace recmodel {

class LineReader {
 public:
  // Opens `path`, or stdin for "-"; throws NotFoundError naming a missing file.
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Reads the next line without its "\n" (and a "\r" before it); false at end of input.
  bool next(std::string& line);
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
};

}  // namespace recmodel
