// Progress of a transfer on stderr: a bar for the large file in flight and one for the total,
// drawn only when the console allows progress bars (a terminal, no CI, no --no-progress).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/context.h"
#include "storage/transfer.h"

namespace recmodel::storage {

class TransferProgress {
 public:
  TransferProgress(const Console& console, std::string label);
  ~TransferProgress();
  TransferProgress(const TransferProgress&) = delete;
  TransferProgress& operator=(const TransferProgress&) = delete;

  // Returns the observer to hand to a transfer; it draws into this object.
  TransferObserver observer();
  // Draws the final state and leaves the cursor below the bars.
  void finish();

 private:
  void draw(bool force);

  const Console& console_;
  bool enabled_;
  bool two_lines_ = false;
  bool finished_ = false;
  std::string label_;
  uint64_t total_ = 0, done_ = 0;
  std::string file_;
  uint64_t file_size_ = 0, file_done_ = 0;
  std::chrono::steady_clock::time_point start_, file_start_, last_draw_;
};

}  // namespace recmodel::storage
