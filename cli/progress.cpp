#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace recmodel {

namespace {

int terminal_width() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col;
  return 80;
}

// Formats a quantity with a k/M/G suffix; bytes ("B") use powers of 1024 style labels MB.
std::string humanize(double value, const std::string& unit) {
  const char* suffixes[] = {"", "k", "M", "G", "T"};
  int index = 0;
  while (std::fabs(value) >= 1000.0 && index < 4) {
    value /= 1000.0;
    ++index;
  }
  std::string number = index == 0 && value == std::floor(value) ? fmt::format("{:.0f}", value)
                                                                  : fmt::format("{:.1f}", value);
  return number + (unit.empty() ? std::string(suffixes[index]) : fmt::format(" {}{}", suffixes[index], unit));
}

std::string clock_text(double seconds) {
  auto total = static_cast<long>(std::llround(std::max(0.0, seconds)));
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

}  // namespace

ProgressBar::ProgressBar(const Console& console, std::string label, uint64_t total, std::string unit)
    : enabled_(console.progress_enabled()),
      label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && !finished_) std::fputs("\n", stderr);
}

std::string ProgressBar::render(const std::string& label, uint64_t done, uint64_t total, double seconds,
                                const std::string& unit, int width) {
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  std::string rate_text = humanize(rate, unit) + (unit.empty() ? "/s" : "/s");
  if (total == 0) return fmt::format("{} {} {}", label, humanize(static_cast<double>(done), unit), rate_text);
  double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  std::string eta = rate > 0 ? clock_text(static_cast<double>(total - std::min(done, total)) / rate) : "?";
  std::string tail = fmt::format(" {:3.0f}% {} ETA {}", fraction * 100.0, rate_text, eta);
  int bar_width = std::max(10, width - static_cast<int>(label.size() + tail.size()) - 4);
  int filled = static_cast<int>(fraction * bar_width);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < bar_width) bar += '>';
  bar.resize(static_cast<size_t>(bar_width), ' ');
  return fmt::format("{} [{}]{}", label, bar, tail);
}

void ProgressBar::update(uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw();
}

void ProgressBar::draw() {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = render(label_, done_, total_, seconds, unit_, terminal_width() - 1);
  fmt::print(stderr, "\r{}\x1b[K", line);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw();
  std::fputs("\n", stderr);
}

}  // namespace recmodel
