#include "model/dynamic_batcher.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <future>
#include <limits>
#include <unordered_map>

#include <torch/torch.h>

#include "common/error.h"

namespace recmodel::model {

namespace {

using Clock = std::chrono::steady_clock;

// Inputs are bucketed by length, so a batch pads short inputs to a short width: up to 16
// tokens, 32, 64, 128, 256, 512, and longer.
constexpr std::array<size_t, 6> kBucketLimits = {16, 32, 64, 128, 256, 512};
constexpr size_t kBuckets = kBucketLimits.size() + 1;

size_t bucket_of(size_t tokens) {
  for (size_t b = 0; b < kBucketLimits.size(); ++b)
    if (tokens <= kBucketLimits[b]) return b;
  return kBucketLimits.size();
}

bool finite(const Prediction& p) {
  for (float v : p.logits)
    if (!std::isfinite(v)) return false;
  for (float v : p.scores)
    if (!std::isfinite(v)) return false;
  return true;
}

std::chrono::microseconds micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

}  // namespace

// One submitted request. Its inputs stay here; queue items point into them. Everything but
// the fields set by submit is touched only by the inference thread.
struct DynamicBatcher::Request {
  VersionPtr version;
  std::vector<EncodedInput> inputs;
  Done done;
  std::vector<Prediction> predictions;
  size_t remaining = 0;  // inputs not yet scored
  Clock::time_point submitted, started, finished;
  bool has_started = false;
  bool completed = false;  // done has been (or is about to be) called
  std::string error;
};

struct DynamicBatcher::Item {
  std::shared_ptr<Request> request;
  size_t index = 0;   // into request->inputs
  size_t tokens = 0;
  uint64_t sequence = 0;  // submission order across all versions
};

struct DynamicBatcher::Task {
  const std::function<void()>* run = nullptr;  // run() waits, so the caller's function outlives the task
  std::promise<void> promise;
};

struct DynamicBatcher::VersionQueue {
  VersionPtr version;
  std::array<std::deque<Item>, kBuckets> buckets;
  size_t items = 0;
};

// What the next batch would take: a prefix of some buckets of one version.
struct DynamicBatcher::Plan {
  const LoadedVersion* version = nullptr;  // null: nothing queued
  std::array<size_t, kBuckets> take{};
  size_t count = 0;
  size_t width = 0;  // the longest input taken
  bool full = false;  // no more inputs would fit: waiting cannot make it bigger
  Clock::time_point oldest;  // when the oldest input taken was submitted
};

struct DynamicBatcher::Queues {
  std::unordered_map<const LoadedVersion*, VersionQueue> versions;
  std::deque<Task> tasks;
  size_t inputs = 0;
  uint64_t next_sequence = 0;

  // Plans a batch from the bucket whose first input has waited longest, topped up from the
  // same version's shorter buckets (which do not widen the batch). When mixing lengths is
  // cheap (the model runs unpadded, or its predictor cuts passes by length), longer buckets
  // top it up too instead of waiting for the next batch.
  Plan plan(const BatcherOptions& options) const {
    Plan plan;
    const VersionQueue* chosen = nullptr;
    size_t bucket = 0;
    uint64_t oldest = std::numeric_limits<uint64_t>::max();
    for (const auto& [key, queue] : versions) {
      for (size_t b = 0; b < kBuckets; ++b) {
        if (!queue.buckets[b].empty() && queue.buckets[b].front().sequence < oldest) {
          oldest = queue.buckets[b].front().sequence;
          chosen = &queue;
          bucket = b;
        }
      }
    }
    if (!chosen) return plan;
    plan.version = chosen->version.get();
    plan.oldest = chosen->buckets[bucket].front().request->submitted;
    const auto fits = [&](size_t width) {
      return plan.count < options.max_batch_requests && (plan.count + 1) * width <= options.max_batch_tokens;
    };
    // Takes bucket b's inputs, oldest first, while they fit (a shorter bucket's never widen the batch).
    const auto fill = [&](size_t b) {
      for (const Item& item : chosen->buckets[b]) {
        const size_t width = std::max(plan.width, item.tokens);
        if (!fits(width)) {
          plan.full = true;
          return;
        }
        plan.width = width;
        ++plan.take[b];
        ++plan.count;
      }
    };
    fill(bucket);
    for (size_t b = bucket; b-- > 0 && !plan.full;) fill(b);
    if (chosen->version->predictor().mixes_lengths())
      for (size_t b = bucket + 1; b < kBuckets && !plan.full; ++b) fill(b);
    plan.full = plan.full || !fits(plan.width);
    return plan;
  }

  // Removes the items of `plan` from the queues and returns them.
  std::vector<Item> take(const Plan& plan) {
    std::vector<Item> batch;
    auto it = versions.find(plan.version);
    if (it == versions.end()) return batch;
    VersionQueue& queue = it->second;
    batch.reserve(plan.count);
    for (size_t b = kBuckets; b-- > 0;) {
      auto& bucket = queue.buckets[b];
      const auto end = bucket.begin() + static_cast<std::ptrdiff_t>(plan.take[b]);
      std::move(bucket.begin(), end, std::back_inserter(batch));
      bucket.erase(bucket.begin(), end);
    }
    queue.items -= batch.size();
    inputs -= batch.size();
    if (queue.items == 0) versions.erase(it);
    return batch;
  }

  // Removes every queued item of `request` (it failed).
  void remove(const Request* request) {
    auto it = versions.find(request->version.get());
    if (it == versions.end()) return;
    VersionQueue& queue = it->second;
    for (auto& bucket : queue.buckets) {
      const auto end =
          std::remove_if(bucket.begin(), bucket.end(), [&](const Item& item) { return item.request.get() == request; });
      const size_t removed = static_cast<size_t>(bucket.end() - end);
      bucket.erase(end, bucket.end());
      queue.items -= removed;
      inputs -= removed;
    }
    if (queue.items == 0) versions.erase(it);
  }
};

DynamicBatcher::DynamicBatcher(BatcherOptions options, std::function<void(const BatchStats&)> on_batch)
    : options_(options), on_batch_(std::move(on_batch)), queues_(std::make_unique<Queues>()) {
  if (options_.max_batch_requests == 0) fail<UsageError>("--max-batch-requests must be 1 or more");
  if (options_.max_batch_tokens == 0) fail<UsageError>("--max-batch-tokens must be 1 or more");
  thread_ = std::thread([this] { loop(); });
  thread_id_ = thread_.get_id();
}

DynamicBatcher::~DynamicBatcher() { stop(); }

void DynamicBatcher::submit(VersionPtr version, std::vector<EncodedInput> inputs, Done done) {
  if (!version) fail<UsageError>("no model version to score the request with");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const EncodedInput& input = inputs[i];
    if (!input.ok()) fail<UsageError>("input {} cannot be scored: {}", i, input.error);
    if (input.tokens() == 0) fail<UsageError>("input {} has no tokens", i);
    if (input.tokens() > version->max_length())
      fail<UsageError>("input {} has {} tokens, more than the model's max_length ({})", i, input.tokens(),
                       version->max_length());
    if (input.tokens() > options_.max_batch_tokens)
      fail<UsageError>("input {} has {} tokens, more than --max-batch-tokens ({}) allows in a forward pass", i,
                       input.tokens(), options_.max_batch_tokens);
  }
  if (inputs.empty()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) fail<UsageError>("the server is shutting down");
    }
    done({}, RequestTiming{}, std::string());
    return;
  }
  auto request = std::make_shared<Request>();
  request->version = version;
  request->inputs = std::move(inputs);
  request->done = std::move(done);
  request->predictions.resize(request->inputs.size());
  request->remaining = request->inputs.size();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) fail<UsageError>("the server is shutting down");
    request->submitted = Clock::now();
    VersionQueue& queue = queues_->versions[version.get()];
    if (!queue.version) queue.version = version;
    for (size_t i = 0; i < request->inputs.size(); ++i) {
      const size_t tokens = request->inputs[i].tokens();
      queue.buckets[bucket_of(tokens)].push_back(Item{request, i, tokens, queues_->next_sequence++});
    }
    queue.items += request->inputs.size();
    queues_->inputs += request->inputs.size();
  }
  wake_.notify_all();
}

void DynamicBatcher::run(const std::function<void()>& task) {
  if (std::this_thread::get_id() == thread_id_) {
    task();
    return;
  }
  std::future<void> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) fail<UsageError>("the server is shutting down");
    Task queued;
    queued.run = &task;
    finished = queued.promise.get_future();
    queues_->tasks.push_back(std::move(queued));
  }
  wake_.notify_all();
  finished.get();
}

void DynamicBatcher::expect(int delta) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    expected_ += delta;
  }
  // Fewer requests on their way may end a wait.
  if (delta < 0) wake_.notify_all();
}

size_t DynamicBatcher::queued_inputs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queues_->inputs;
}

size_t DynamicBatcher::queued_tasks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queues_->tasks.size();
}

void DynamicBatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  // From a task or a `done` the loop cannot be joined; it ends once the queue is drained.
  if (std::this_thread::get_id() == thread_id_) return;
  std::lock_guard<std::mutex> join(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

void DynamicBatcher::loop() {
  // ATen's intra-op thread count is per thread: set it where the forward passes run.
  if (options_.threads > 0) torch::set_num_threads(options_.threads);
  torch::InferenceMode inference;
  for (;;) {
    try {
      if (!step()) return;
    } catch (...) {
      // Only an allocation failure outside a forward pass lands here; the thread goes on.
    }
  }
}

bool DynamicBatcher::step() {
  std::unique_lock<std::mutex> lock(mutex_);
  Queues& q = *queues_;
  wake_.wait(lock, [&] { return stopping_ || !q.tasks.empty() || q.inputs > 0; });
  if (!q.tasks.empty()) {
    Task task = std::move(q.tasks.front());
    q.tasks.pop_front();
    lock.unlock();
    try {
      (*task.run)();
      task.promise.set_value();
    } catch (...) {
      task.promise.set_exception(std::current_exception());
    }
    return true;
  }
  if (q.inputs == 0) return !stopping_;
  Plan plan = q.plan(options_);
  if (expected_ > 0 && !stopping_ && !plan.full) {
    // Requests are still being tokenized: give them until the batch is full or the oldest
    // input has waited max_queue_delay.
    wake_.wait_until(lock, plan.oldest + options_.max_queue_delay,
                     [&] { return stopping_ || expected_ <= 0 || !q.tasks.empty() || q.plan(options_).full; });
    if (!q.tasks.empty()) return true;
    plan = q.plan(options_);
  }
  std::vector<Item> batch = q.take(plan);
  lock.unlock();
  if (!batch.empty()) forward(batch);
  return true;
}

void DynamicBatcher::forward(std::vector<Item>& batch) {
  const LoadedVersion& version = *batch.front().request->version;
  const Clock::time_point start = Clock::now();
  BatchStats stats;
  stats.version = &version;
  stats.inputs = batch.size();
  size_t width = 0;  // the widest the forward passes can be
  for (const Item& item : batch) {
    Request& request = *item.request;
    if (!request.has_started) {
      request.has_started = true;
      request.started = start;
    }
    stats.tokens += item.tokens;
    width = std::max(width, item.tokens);
  }
  stats.padded_tokens = width * batch.size();

  std::string error;
  std::vector<Prediction> predictions;
  const size_t padded_before = version.predictor().padded_tokens();
  try {
    std::vector<const EncodedInput*> pointers;
    pointers.reserve(batch.size());
    for (const Item& item : batch) pointers.push_back(&item.request->inputs[item.index]);
    predictions = version.predictor().predict(pointers);
    if (predictions.size() != batch.size())
      error = fmt::format("inference failed: {} results for {} inputs", predictions.size(), batch.size());
  } catch (const std::exception& e) {
    error = std::string("inference failed: ") + e.what();
  } catch (...) {
    error = "inference failed: an unknown error";
  }
  const Clock::time_point end = Clock::now();
  // The predictor may cut the batch into passes of similar lengths, or run it unpadded: count what it computed.
  if (version.predictor().padded_tokens() > padded_before)
    stats.padded_tokens = version.predictor().padded_tokens() - padded_before;
  stats.seconds = std::chrono::duration<double>(end - start).count();
  stats.failed = !error.empty();

  std::vector<std::shared_ptr<Request>> finished;  // to complete, in the order they finished
  std::vector<const Request*> failed;              // whose queued items must go
  const auto fail_request = [&](const std::shared_ptr<Request>& request, std::string message) {
    request->completed = true;
    request->error = std::move(message);
    request->finished = end;
    failed.push_back(request.get());
    finished.push_back(request);
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::shared_ptr<Request>& request = batch[i].request;
    if (request->completed) continue;
    if (!error.empty()) {
      fail_request(request, error);
      continue;
    }
    Prediction& prediction = predictions[i];
    if (!finite(prediction)) {
      fail_request(request, fmt::format("the model's score for input {} is not a number", batch[i].index));
      continue;
    }
    request->predictions[batch[i].index] = std::move(prediction);
    if (--request->remaining == 0) {
      request->completed = true;
      request->finished = end;
      finished.push_back(request);
    }
  }
  if (!failed.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Request* request : failed) queues_->remove(request);
  }
  batch.clear();  // a failed request's inputs are freed with its last reference

  if (on_batch_) {
    try {
      on_batch_(stats);
    } catch (...) {
      // Metrics must not take inference down.
    }
  }
  for (const std::shared_ptr<Request>& request : finished) {
    RequestTiming timing{micros(request->started - request->submitted), micros(request->finished - request->started)};
    std::vector<Prediction> predictions_out;
    if (request->error.empty()) predictions_out = std::move(request->predictions);
    Done done = std::move(request->done);
    try {
      done(std::move(predictions_out), timing, std::move(request->error));
    } catch (...) {
      // A callback that throws fails only its own request's answer.
    }
  }
}

}  // namespace recmodel::model
