// Batches inputs from many requests into forward passes on one inference thread (`recmodel
// serve`): per model version, inputs are bucketed by length and a batch is filled from the bucket
// whose first input has waited longest, up to max_batch_requests inputs and max_batch_tokens
// padded tokens (and topped up from longer buckets when mixing lengths is cheap: the model runs
// unpadded, or its predictor cuts a batch into passes of similar lengths). An idle thread takes what is queued at once; it waits (up to max_queue_delay)
// only while requests it was told about are still being tokenized, so a lone request is never
// delayed and a busy server fills its batches during the previous forward pass.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/loaded_version.h"

namespace recmodel::model {

struct BatcherOptions {
  size_t max_batch_tokens = 16384;   // padded tokens per forward pass (inputs x longest input)
  size_t max_batch_requests = 64;    // inputs per forward pass
  std::chrono::microseconds max_queue_delay{2000};
  int threads = 0;                   // torch intra-op threads on the inference thread; 0 = leave as is
};

// How one request's inputs went through the batcher.
struct RequestTiming {
  std::chrono::microseconds queue{0};      // from submit to the start of its first forward pass
  std::chrono::microseconds inference{0};  // from there to the end of its last forward pass
};

// One forward pass, for metrics.
struct BatchStats {
  const LoadedVersion* version = nullptr;
  size_t inputs = 0;
  size_t tokens = 0;         // real tokens
  size_t padded_tokens = 0;  // what the forward passes computed (Predictor::padded_tokens)
  double seconds = 0;
  bool failed = false;
};

class DynamicBatcher {
 public:
  // Called once per request, on the inference thread: predictions in input order, or `error`
  // set (the forward pass failed, or a score was NaN) and `predictions` empty.
  using Done = std::function<void(std::vector<Prediction> predictions, RequestTiming timing, std::string error)>;

  // Starts the inference thread. `on_batch` (may be empty) is called after each forward pass.
  DynamicBatcher(BatcherOptions options, std::function<void(const BatchStats&)> on_batch);
  // Stops: finishes everything queued, then joins the thread.
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues the inputs of one request (all encoded without error, none longer than
  // version->max_length()); `done` runs once they are all scored. An empty request completes
  // at once (`done` runs on the calling thread). Throws UsageError, before queuing any input,
  // naming an input that cannot be scored or has more tokens than max_batch_tokens allows,
  // and once the batcher is stopping ("the server is shutting down").
  void submit(VersionPtr version, std::vector<EncodedInput> inputs, Done done);
  // Runs `task` on the inference thread between forward passes (warm-ups, so that two forward
  // passes never overlap) and waits for it; rethrows what it throws. Called on the inference
  // thread (from a task or `done`), runs it there at once. Throws UsageError once stopping.
  void run(const std::function<void()>& task);
  // Tells the batcher that `delta` requests are on their way (positive: being tokenized;
  // negative: submitted or abandoned), for the delay rule above.
  void expect(int delta);
  // Returns the inputs queued and not yet in a forward pass.
  size_t queued_inputs() const;
  // Returns the tasks queued by run() and not yet started.
  size_t queued_tasks() const;
  // Finishes what is queued and stops the thread; later submits throw. Idempotent.
  void stop();

  const BatcherOptions& options() const { return options_; }

 private:
  struct Request;
  struct Item;
  struct Task;
  struct VersionQueue;
  struct Plan;
  void loop();
  // Waits for work and does one piece of it (a task or a forward pass); false once stopped.
  bool step();
  // Scores `batch` (one version's items) and completes the requests it finishes or fails.
  void forward(std::vector<Item>& batch);

  BatcherOptions options_;
  std::function<void(const BatchStats&)> on_batch_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // The implementation's queues (buckets per version, tasks) live behind this pointer.
  struct Queues;
  std::unique_ptr<Queues> queues_;
  int expected_ = 0;
  bool stopping_ = false;
  std::mutex join_mutex_;  // stop() from two threads joins once
  std::thread thread_;
  std::thread::id thread_id_;  // the inference thread's, fixed at construction
};

}  // namespace recmodel::model
