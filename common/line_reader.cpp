#include "common/line_reader.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

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
  if (mapped_) ::munmap(const_cast<char*>(mapped_), size_);
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


bool LineReader::next_block(std::string_view& block, size_t bytes) {
  if (size_ > 0 && !mapped_ && bytes_read_ == 0) {  // a regular file (pipes have no size)
    void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, ::fileno(file_), 0);
    if (map != MAP_FAILED) {
      ::madvise(map, size_, MADV_SEQUENTIAL);
      mapped_ = static_cast<const char*>(map);
    }
  }
  if (mapped_) {
    if (mapped_at_ >= size_) return false;
    const std::string_view file(mapped_, size_);
    const size_t cut = std::min(size_, mapped_at_ + bytes);
    const size_t end = file[cut - 1] == '\n' ? cut : end_of_line(file, cut);
    block = std::string_view(mapped_ + mapped_at_, end - mapped_at_);
    bytes_read_ += block.size();
    mapped_at_ = end;
    return true;
  }
  // A pipe (or a file that cannot be mapped): the cut line first, then fresh bytes, until the
  // buffer ends in a newline or the input ends.
  std::unique_ptr<char[]>& buffer = blocks_[turn_];
  size_t& capacity = block_capacity_[turn_];
  turn_ ^= 1;
  auto reserve = [&](size_t wanted, size_t keep) {
    if (wanted <= capacity) return;
    std::unique_ptr<char[]> grown(new char[wanted]);
    if (keep) std::memcpy(grown.get(), buffer.get(), keep);
    buffer = std::move(grown);
    capacity = wanted;
  };
  reserve(carry_.size() + bytes, 0);
  size_t size = carry_.size();
  if (size) std::memcpy(buffer.get(), carry_.data(), size);
  carry_.clear();
  size_t last_newline = std::string_view::npos;
  for (;;) {
    const size_t got = std::fread(buffer.get() + size, 1, capacity - size, file_);
    if (std::ferror(file_)) fail<DataError>("{}: read error after {} bytes", name_, bytes_read_ + size);
    const size_t before = size;
    size += got;
    if (size < capacity) break;  // end of input
    if (const void* newline = ::memrchr(buffer.get() + before, '\n', size - before)) {
      last_newline = static_cast<size_t>(static_cast<const char*>(newline) - buffer.get());
      break;
    }
    reserve(capacity * 2, size);  // one line longer than the buffer
  }
  if (last_newline != std::string_view::npos) {
    carry_.assign(buffer.get() + last_newline + 1, size - last_newline - 1);
    size = last_newline + 1;
  }
  if (size == 0) return false;
  block = std::string_view(buffer.get(), size);
  bytes_read_ += size;
  return true;
}

}  // namespace recmodel
