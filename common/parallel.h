// Data parallelism without a framework: split [0, n) over threads and wait.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace recmodel {

// Calls `body(begin, end)` on contiguous slices of [0, n) from up to `threads` threads
// and rethrows the first exception any of them raised.
inline void parallel_ranges(size_t n, int threads, const std::function<void(size_t, size_t)>& body) {
  size_t workers = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), n));
  if (workers <= 1) {
    if (n) body(0, n);
    return;
  }
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    size_t begin = n * w / workers, end = n * (w + 1) / workers;
    pool.emplace_back([&, w, begin, end] {
      try {
        body(begin, end);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& thread : pool) thread.join();
  for (auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace recmodel
