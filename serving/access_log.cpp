#include "serving/access_log.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

namespace recmodel::serving {

namespace {

constexpr size_t kMaxQueued = 65536;
// A request target longer than this is cut (with "..."): the log is read by people.
constexpr size_t kMaxPathBytes = 256;

// Returns `text` with bytes a terminal acts on (C0 controls, DEL) as '?' and cut to `max_bytes`:
// the method and path come from the client.
std::string sanitized(const std::string& text, size_t max_bytes) {
  std::string out;
  const bool cut = text.size() > max_bytes;
  const size_t n = cut ? max_bytes : text.size();
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c < 0x20 || c == 0x7f || c == ' ') ? '?' : static_cast<char>(c);
  }
  if (cut) out += "...";
  if (out.empty()) out = "-";
  return out;
}

std::string format_line(const AccessRecord& r) {
  return fmt::format("serve: {} {} {} {} {} tokens={} {:.1f}ms\n", r.remote.empty() ? "-" : r.remote,
                     sanitized(r.method, 32), sanitized(r.path, kMaxPathBytes), r.status,
                     r.version.empty() ? "-" : r.version, r.tokens, static_cast<double>(r.duration.count()) / 1000.0);
}

}  // namespace

struct AccessLog::Impl {
  std::FILE* out = nullptr;
  std::mutex mutex;
  std::condition_variable work;     // the writer waits for lines or stop
  std::condition_variable space;    // message() waits for room
  std::condition_variable written;  // flush() waits for the writer
  std::deque<std::string> queue;
  uint64_t queued_total = 0;
  uint64_t written_total = 0;
  uint64_t dropped = 0;  // access lines dropped since the last notice
  bool stop = false;
  std::thread writer;

  void run() {
    std::deque<std::string> batch;
    std::string text;
    std::unique_lock lock(mutex);
    for (;;) {
      work.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty() && dropped == 0) return;  // stop, and everything written
      batch.swap(queue);
      // Drops happen only while the queue is full, so the lines taken here were all queued before
      // them: the notice follows them, once the queue has drained.
      const uint64_t lost = dropped;
      dropped = 0;
      lock.unlock();
      space.notify_all();
      text.clear();
      for (const auto& line : batch) text += line;
      if (lost) text += fmt::format("serve: {} access-log lines dropped\n", lost);
      std::fwrite(text.data(), 1, text.size(), out);
      std::fflush(out);
      const size_t n = batch.size();
      batch.clear();
      lock.lock();
      written_total += n;
      written.notify_all();
    }
  }

  // Queues `line`; returns whether the writer may be asleep and must be woken.
  bool push(std::string line) {
    const bool wake = queue.empty();
    queue.push_back(std::move(line));
    ++queued_total;
    return wake;
  }
};

AccessLog::AccessLog(std::FILE* out) : impl_(std::make_unique<Impl>()) {
  impl_->out = out;
  impl_->writer = std::thread([impl = impl_.get()] { impl->run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->work.notify_one();
  impl_->writer.join();
}

void AccessLog::record(AccessRecord record) {
  std::string line = format_line(record);  // outside the lock
  bool wake = false;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->queue.size() >= kMaxQueued) {
      ++impl_->dropped;
      return;
    }
    wake = impl_->push(std::move(line));
  }
  if (wake) impl_->work.notify_one();
}

void AccessLog::message(std::string line) {
  if (line.empty() || line.back() != '\n') line += '\n';
  bool wake = false;
  {
    // Never dropped: serve's own lines say what happened to the models.
    std::unique_lock lock(impl_->mutex);
    impl_->space.wait(lock, [&] { return impl_->queue.size() < kMaxQueued; });
    wake = impl_->push(std::move(line));
  }
  if (wake) impl_->work.notify_one();
}

void AccessLog::flush() {
  std::unique_lock lock(impl_->mutex);
  const uint64_t target = impl_->queued_total;
  impl_->work.notify_one();
  impl_->written.wait(lock, [&] { return impl_->written_total >= target; });
}

}  // namespace recmodel::serving
