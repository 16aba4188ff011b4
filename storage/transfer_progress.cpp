#include "storage/transfer_progress.h"

#include <cstdio>

#include <fmt/format.h>

#include "cli/progress.h"

namespace recmodel::storage {

TransferProgress::TransferProgress(const Console& console, std::string label)
    : console_(console),
      enabled_(console.progress_enabled()),
      label_(std::move(label)),
      start_(std::chrono::steady_clock::now()),
      file_start_(start_),
      last_draw_(start_) {}

TransferProgress::~TransferProgress() {
  if (enabled_ && !finished_ && done_ > 0) std::fputs(two_lines_ ? "\n\n" : "\n", stderr);
}

TransferObserver TransferProgress::observer() {
  TransferObserver observer;
  observer.start = [this](uint64_t total) {
    total_ = total;
    done_ = 0;
  };
  observer.file_start = [this](const std::string& path, uint64_t size) {
    file_ = path;
    file_size_ = size;
    file_done_ = 0;
    file_start_ = std::chrono::steady_clock::now();
    two_lines_ = true;
  };
  // Several large files can be in flight: the bar follows the one started last.
  observer.file_advance = [this](const std::string& path, uint64_t bytes) {
    if (path == file_) file_done_ = bytes;
  };
  observer.file_done = [this](const std::string& path) {
    if (path == file_) file_done_ = file_size_;
  };
  observer.advance = [this](uint64_t bytes) {
    done_ = bytes;
    draw(false);
  };
  observer.warn = [this](const std::string& message) { console_.warn("{}", message); };
  return observer;
}

void TransferProgress::draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  int width = 79;
  double seconds = std::chrono::duration<double>(now - start_).count();
  std::string total = ProgressBar::render(label_, done_, total_, seconds, "B", width);
  if (!two_lines_) {
    fmt::print(stderr, "\r{}\x1b[K", total);
  } else {
    double file_seconds = std::chrono::duration<double>(now - file_start_).count();
    std::string name = file_.size() > 24 ? "..." + file_.substr(file_.size() - 21) : file_;
    std::string file = ProgressBar::render(name, file_done_, file_size_, file_seconds, "B", width);
    // The file bar on this line, the total below it, then back up to redraw both next time.
    fmt::print(stderr, "\r{}\x1b[K\n{}\x1b[K\x1b[1A\r", file, total);
  }
  std::fflush(stderr);
}

void TransferProgress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (done_ == 0 && total_ == 0) return;
  draw(true);
  std::fputs(two_lines_ ? "\n\n" : "\n", stderr);
}

}  // namespace recmodel::storage
