// A progress bar on stderr with rate and ETA — drawn only when Console allows it
// (stderr is a terminal, CI is unset, no --no-progress or --quiet).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/context.h"

namespace recmodel {

class ProgressBar {
 public:
  // `total` 0 means unknown: the bar shows the count and rate without a percentage.
  ProgressBar(const Console& console, std::string label, uint64_t total, std::string unit = "");
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Sets the amount done so far; redraws at most ten times a second. Thread-compatible, not thread-safe.
  void update(uint64_t done);
  // Adds to the amount done.
  void advance(uint64_t amount) { update(done_ + amount); }
  // Replaces the text before the bar (e.g. to show the current loss).
  void set_label(std::string label) { label_ = std::move(label); }
  // Draws the final state and ends the line.
  void finish();

  bool enabled() const { return enabled_; }

  // Returns the text of one bar, e.g. "tokenize [=====>    ] 52% 1.2 MB/s ETA 0:03" (exposed for tests).
  static std::string render(const std::string& label, uint64_t done, uint64_t total, double seconds,
                            const std::string& unit, int width);

 private:
  void draw();

  bool enabled_;
  bool finished_ = false;
  std::string label_;
  std::string unit_;
  uint64_t total_;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace recmodel
