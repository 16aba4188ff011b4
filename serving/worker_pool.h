// A fixed set of threads running posted jobs in order of arrival (serve tokenizes and formats
// on it, off the I/O and inference threads). The queue is bounded by the caller: serve admits at
// most --max-concurrent-requests requests.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace recmodel::serving {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads);
  // Runs what is queued, then joins.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; a job must not throw (its exceptions are caught and dropped, so answer errors
  // inside it).
  void post(std::function<void()> job);
  size_t threads() const { return threads_.size(); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace recmodel::serving
