#include "serving/prediction_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json.h"
#include "model/prediction_io.h"
#include "registry/registry.h"

namespace recmodel::serving {

namespace {

// Records waiting for the writer (about 10 MB at worst); past this a record is dropped.
constexpr size_t kMaxQueued = 65536;

void append_number(std::string& out, float v) {
  if (std::isfinite(v))
    model::append_float(out, v);
  else
    out += "null";  // NaN and infinities are not JSON
}

void append_line(std::string& out, const PredictionRecord& r) {
  out += "{\"time\":\"";
  out += registry::format_time(r.time_ms);
  out += "\",\"model\":";
  out += json_quoted(r.model);
  out += ",\"version\":" + std::to_string(r.version);
  out += ",\"tokens\":" + std::to_string(r.tokens);
  out += ",\"truncated\":" + std::to_string(r.truncated);
  out += ",\"unk_tokens\":" + std::to_string(r.unk_tokens);
  if (r.regression) {
    out += ",\"value\":";
    append_number(out, r.score);
  } else {
    out += ",\"label\":";
    out += json_quoted(r.label);
    out += ",\"score\":";
    append_number(out, r.score);
  }
  out += "}\n";
}

// Writes all of `data`; returns false (errno set) on an error other than EINTR.
bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

struct PredictionLog::Impl {
  int fd = -1;
  double sample = 1;
  std::function<void()> on_drop;

  std::mutex mutex;
  std::condition_variable work;     // the writer waits for records or stop
  std::condition_variable written;  // flush() waits for the writer
  std::mt19937_64 random;
  std::vector<PredictionRecord> queue;
  uint64_t queued_total = 0;   // records ever queued
  uint64_t written_total = 0;  // records the writer has finished with (written or lost)
  bool stop = false;
  std::thread writer;

  void run() {
    std::vector<PredictionRecord> batch;
    std::string text;
    std::unique_lock lock(mutex);
    for (;;) {
      work.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stop, and everything written
      batch.swap(queue);
      lock.unlock();
      text.clear();
      for (const auto& r : batch) append_line(text, r);
      // A failed write (disk full, I/O error) loses the batch; it is counted as dropped rather
      // than stopping the server. Lines are not fdatasync'ed: the log is monitoring data, and a
      // crash of the machine may lose the last seconds of it.
      bool ok = write_all(fd, text);
      if (!ok && on_drop)
        for (size_t i = 0; i < batch.size(); ++i) on_drop();
      const size_t n = batch.size();
      batch.clear();
      lock.lock();
      written_total += n;
      written.notify_all();
    }
  }
};

PredictionLog::PredictionLog(const std::string& path, double sample, uint64_t seed, std::function<void()> on_drop)
    : impl_(std::make_unique<Impl>()) {
  if (!(sample > 0 && sample <= 1)) fail<UsageError>("--log-sample must be in (0, 1], got {}", sample);
  // O_NONBLOCK: a FIFO nobody reads is refused (ENXIO) instead of hanging the start; cleared
  // below so writes to a pipe wait rather than fail.
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) fail<DataError>("cannot open prediction log {}: {}", path, std::strerror(errno));
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  impl_->fd = fd;
  impl_->sample = sample;
  impl_->random.seed(seed);
  impl_->on_drop = std::move(on_drop);
  impl_->queue.reserve(1024);
  impl_->writer = std::thread([impl = impl_.get()] { impl->run(); });
}

PredictionLog::~PredictionLog() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->work.notify_one();
  impl_->writer.join();
  ::close(impl_->fd);
}

void PredictionLog::record(PredictionRecord record) {
  bool dropped = false;
  bool wake = false;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->sample < 1) {
      // 53 random bits as a double in [0, 1): the same draws for the same seed everywhere.
      const double draw = static_cast<double>(impl_->random() >> 11) * 0x1.0p-53;
      if (draw >= impl_->sample) return;
    }
    if (impl_->queue.size() >= kMaxQueued) {
      dropped = true;
    } else {
      wake = impl_->queue.empty();  // else the writer is awake or already woken
      impl_->queue.push_back(std::move(record));
      ++impl_->queued_total;
    }
  }
  if (dropped && impl_->on_drop) impl_->on_drop();
  if (wake) impl_->work.notify_one();
}

void PredictionLog::flush() {
  std::unique_lock lock(impl_->mutex);
  const uint64_t target = impl_->queued_total;
  impl_->work.notify_one();
  impl_->written.wait(lock, [&] { return impl_->written_total >= target; });
}

}  // namespace recmodel::serving
