#include "common/line_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace recmodel {

LineReader::LineReader(const std::string& path) {
  if (path == "-") {
    file_ = stdin;
    owns_ = false;
    name_ = "<stdin>";
  } else {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) fail<NotFoundError>("{}: no such file", path);
    if (S_ISDIR(info.st_mode)) fail<DataError>("{}: is a directory, expected a text file", path);
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail<DataError>("{}: cannot open: {}", path, std::strerror(errno));
    owns_ = true;
    name_ = path;
    size_ = S_ISREG(info.st_mode) ? static_cast<size_t>(info.st_size) : 0;
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  }
}

LineReader::~LineReader() {
  std::free(buffer_);
  if (owns_) std::fclose(file_);
}

bool LineReader::next(std::string& line) {
  line.clear();
  ssize_t n = ::getline(&buffer_, &capacity_, file_);
  if (n < 0) {
    if (std::ferror(file_)) fail<DataError>("{}: read error after line {}", name_, line_number_);
    return false;
  }
  bytes_read_ += static_cast<size_t>(n);
  size_t length = static_cast<size_t>(n);
  if (length && buffer_[length - 1] == '\n') --length;
  if (length && buffer_[length - 1] == '\r') --length;
  line.assign(buffer_, length);
  ++line_number_;
  return true;
}

}  // namespace recmodel
