// serve's inference thread: inputs of many requests batched by padded tokens and length bucket,
// oldest first across versions, no wait unless requests are still being tokenized, results equal
// to BatchPredictor::predict and handed back once per request in input order, failures confined
// to the requests of the failing batch.
#include "model/dynamic_batcher.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "converters/quantization.h"
#include "tests/converters/model_fixture.h"

namespace t = recmodel::testing;
using namespace recmodel;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::vector<std::string> kLabels = {"books", "electronics", "toys"};

model::BertForSequenceClassification make_model(const std::vector<std::string>& labels, uint64_t seed) {
  return t::fixture_model("tiny", labels, seed, /*initializer_range=*/0.1);
}

// An int8 model runs padded (BertModel::runs_unpadded), so the cost of mixing lengths shows.
model::BertForSequenceClassification make_int8_model(const std::vector<std::string>& labels, uint64_t seed) {
  auto m = make_model(labels, seed);
  converters::quantize_model(*m, {});
  return m;
}

model::VersionPtr make_version(model::BertForSequenceClassification m, const std::string& name, size_t batch_size,
                               size_t pass_cost_tokens = 0) {
  model::BatchPredictorOptions options;
  options.batch_size = batch_size;
  options.pass_cost_tokens = pass_cost_tokens;
  model::VersionIdentity identity;
  identity.name = name;
  identity.version = 1;
  identity.ref = name;
  return std::make_shared<const model::LoadedVersion>(
      identity, std::make_unique<model::BatchPredictor>(std::move(m), t::fixture_tokenizer(), options));
}

model::VersionPtr make_version(const std::string& name = "m", size_t batch_size = 64,
                               const std::vector<std::string>& labels = kLabels, uint64_t seed = 5) {
  return make_version(make_model(labels, seed), name, batch_size);
}

// The reference: the same weights scored offline.
model::BatchPredictor make_reference(model::BertForSequenceClassification m, size_t pass_cost_tokens = 0) {
  model::BatchPredictorOptions options;
  options.batch_size = 64;
  options.pass_cost_tokens = pass_cost_tokens;
  return model::BatchPredictor(std::move(m), t::fixture_tokenizer(), options);
}

model::BatchPredictor make_reference(const std::vector<std::string>& labels = kLabels, uint64_t seed = 5) {
  return make_reference(make_model(labels, seed));
}

std::vector<model::EncodedInput> encode(const model::LoadedVersion& version, const std::vector<model::TextInput>& in) {
  std::vector<model::EncodedInput> out;
  for (const auto& input : in)
    out.push_back(version.encoder().encode(
        input.text, input.pair ? std::optional<std::string_view>(*input.pair) : std::nullopt));
  return out;
}

std::vector<model::TextInput> texts_of(const std::vector<std::string>& texts) {
  std::vector<model::TextInput> out;
  for (const auto& text : texts) out.push_back({text, std::nullopt});
  return out;
}

// A text of `words` fixture words: words + 2 tokens.
std::string text_of_words(size_t words, size_t offset = 0) {
  std::string text;
  for (size_t i = 0; i < words; ++i) text += (i ? " w" : "w") + std::to_string((i + offset) % 200);
  return text;
}

void check_close(const model::Prediction& a, const model::Prediction& b) {
  REQUIRE(a.logits.size() == b.logits.size());
  REQUIRE(a.scores.size() == b.scores.size());
  for (size_t c = 0; c < a.logits.size(); ++c) CHECK(std::abs(a.logits[c] - b.logits[c]) <= 1e-5);
  for (size_t c = 0; c < a.scores.size(); ++c) CHECK(std::abs(a.scores[c] - b.scores[c]) <= 1e-5);
  CHECK(a.tokens == b.tokens);
  CHECK(a.truncated == b.truncated);
}

struct Outcome {
  std::vector<model::Prediction> predictions;
  model::RequestTiming timing;
  std::string error;
  int calls = 0;
  Clock::time_point at;
};

// Collects each request's Done, by request id.
class Collector {
 public:
  model::DynamicBatcher::Done done_for(int id) {
    return [this, id](std::vector<model::Prediction> predictions, model::RequestTiming timing, std::string error) {
      std::lock_guard<std::mutex> lock(mutex_);
      Outcome& o = outcomes_[id];
      if (++o.calls == 1) {
        o.predictions = std::move(predictions);
        o.timing = timing;
        o.error = std::move(error);
        o.at = Clock::now();
      }
      ++calls_;
      changed_.notify_all();
    };
  }
  // Waits until `count` Done calls have come (at most 30 s).
  bool wait_for(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, 30s, [&] { return calls_ >= count; });
  }
  Outcome get(int id) {
    std::lock_guard<std::mutex> lock(mutex_);
    return outcomes_[id];
  }
  size_t calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int, Outcome> outcomes_;
  size_t calls_ = 0;
};

// Records every forward pass.
class Batches {
 public:
  std::function<void(const model::BatchStats&)> hook() {
    return [this](const model::BatchStats& stats) {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.push_back(stats);
      threads_.push_back(std::this_thread::get_id());
    };
  }
  std::vector<model::BatchStats> stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  std::vector<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

 private:
  std::mutex mutex_;
  std::vector<model::BatchStats> stats_;
  std::vector<std::thread::id> threads_;
};

// Holds the inference thread in a task until open(), so that what is submitted meanwhile is
// queued together.
class Blocker {
 public:
  explicit Blocker(model::DynamicBatcher& batcher) {
    std::future<void> started = started_.get_future();
    std::shared_future<void> release = release_.get_future().share();
    thread_ = std::thread([this, &batcher, release] {
      batcher.run([&] {
        started_.set_value();
        release.wait();
      });
    });
    started.wait();
  }
  ~Blocker() { open(); }
  void open() {
    if (!thread_.joinable()) return;
    release_.set_value();
    thread_.join();
  }

 private:
  std::promise<void> started_, release_;
  std::thread thread_;
};

model::BatcherOptions options_of(size_t requests, size_t tokens, std::chrono::microseconds delay = 2000us) {
  model::BatcherOptions options;
  options.max_batch_requests = requests;
  options.max_batch_tokens = tokens;
  options.max_queue_delay = delay;
  return options;
}

}  // namespace

TEST_CASE("DynamicBatcher: requests from 8 threads score as BatchPredictor::predict, each answered once in order") {
  auto version = make_version();
  auto reference = make_reference();
  // 8 threads x 4 requests of 1-9 inputs: texts of 1-12 words and pairs, in no order of length.
  const auto pool = t::fixture_texts(80, 3);
  std::vector<std::vector<model::TextInput>> requests;
  for (size_t r = 0; r < 32; ++r) {
    std::vector<model::TextInput> inputs;
    for (size_t i = 0; i < 1 + (r * 7) % 9; ++i) {
      const std::string& text = pool[(r * 5 + i * 3) % pool.size()];
      if ((r + i) % 4 == 0) inputs.push_back({text, pool[(r + i * 11) % pool.size()]});
      else inputs.push_back({text, std::nullopt});
    }
    requests.push_back(std::move(inputs));
  }
  std::vector<std::vector<model::Prediction>> expected;
  for (const auto& inputs : requests) expected.push_back(reference.predict(inputs));

  Collector collector;
  Batches batches;
  {
    model::DynamicBatcher batcher(options_of(16, 256), batches.hook());
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < 4; ++k) {
          const int id = t * 4 + k;
          batcher.expect(+1);
          auto encoded = encode(*version, requests[static_cast<size_t>(id)]);
          batcher.submit(version, std::move(encoded), collector.done_for(id));
          batcher.expect(-1);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    REQUIRE(collector.wait_for(32));
  }
  CHECK(collector.calls() == 32);
  for (int id = 0; id < 32; ++id) {
    CAPTURE(id);
    const Outcome o = collector.get(id);
    CHECK(o.calls == 1);
    CHECK(o.error.empty());
    REQUIRE(o.predictions.size() == expected[static_cast<size_t>(id)].size());
    for (size_t i = 0; i < o.predictions.size(); ++i) {
      CAPTURE(i);
      check_close(o.predictions[i], expected[static_cast<size_t>(id)][i]);
    }
  }
  size_t forwarded = 0;
  for (const auto& s : batches.stats()) {
    CHECK(s.inputs <= 16);
    CHECK(s.padded_tokens <= 256);
    CHECK(s.version == version.get());
    CHECK_FALSE(s.failed);
    forwarded += s.inputs;
  }
  size_t submitted = 0;
  for (const auto& r : requests) submitted += r.size();
  CHECK(forwarded == submitted);
}

TEST_CASE("DynamicBatcher: a request of 1,000 inputs spans batches within the budget and comes back in order") {
  auto version = make_version();
  auto reference = make_reference();
  const auto inputs = texts_of(t::fixture_texts(1000, 11));
  const auto expected = reference.predict(inputs);
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(64, 512), batches.hook());
  batcher.submit(version, encode(*version, inputs), collector.done_for(0));
  REQUIRE(collector.wait_for(1));
  const Outcome o = collector.get(0);
  CHECK(o.error.empty());
  REQUIRE(o.predictions.size() == 1000);
  for (size_t i = 0; i < 1000; ++i) {
    CAPTURE(i);
    check_close(o.predictions[i], expected[i]);
  }
  const auto stats = batches.stats();
  // Inputs of up to 14 tokens: 512 tokens hold 36 of the longest, so the budget, not the
  // input count, cuts most batches.
  CHECK(stats.size() > (1000 + 63) / 64);
  size_t total = 0;
  for (const auto& s : stats) {
    CHECK(s.inputs <= 64);
    CHECK(s.padded_tokens <= 512);
    CHECK(s.tokens <= s.padded_tokens);
    total += s.inputs;
  }
  CHECK(total == 1000);
  CHECK(batcher.queued_inputs() == 0);
  CHECK(o.timing.inference.count() > 0);
}

TEST_CASE("DynamicBatcher: max_batch_tokens bounds a batch's padded tokens, and a longer input is refused at submit") {
  auto version = make_version();
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(64, 64), batches.hook());
  std::vector<model::TextInput> inputs;
  for (size_t i = 0; i < 5; ++i) inputs.push_back({text_of_words(28, i * 7), std::nullopt});
  auto encoded = encode(*version, inputs);
  for (const auto& e : encoded) REQUIRE(e.tokens() == 30);
  {
    Blocker blocker(batcher);  // all five queued together
    batcher.submit(version, std::move(encoded), collector.done_for(0));
  }
  REQUIRE(collector.wait_for(1));
  CHECK(collector.get(0).error.empty());
  CHECK(collector.get(0).predictions.size() == 5);
  const auto stats = batches.stats();
  REQUIRE(stats.size() == 3);
  for (const auto& s : stats) {
    CHECK(s.inputs <= 2);
    CHECK(s.padded_tokens <= 64);
  }

  // Refused before anything of the request is queued, naming the input.
  auto too_long = encode(*version, {{"red shoe", std::nullopt}, {text_of_words(68), std::nullopt}});
  REQUIRE(too_long[1].tokens() == 70);
  CHECK_THROWS_WITH_AS(batcher.submit(version, std::move(too_long), collector.done_for(1)),
                       "input 1 has 70 tokens, more than --max-batch-tokens (64) allows in a forward pass", UsageError);
  auto unscorable = encode(*version, {{"red shoe", std::nullopt}, {" ", std::nullopt}});
  CHECK_THROWS_WITH_AS(batcher.submit(version, std::move(unscorable), collector.done_for(2)),
                       "input 1 cannot be scored: empty text", UsageError);
  CHECK(batcher.queued_inputs() == 0);
  batcher.stop();
  CHECK(collector.calls() == 1);
  CHECK(batches.stats().size() == 3);
}

TEST_CASE("DynamicBatcher: for a padded model shorter inputs top up a batch of longer ones, but longer ones never widen a short batch") {
  auto version = make_version(make_int8_model(kLabels, 5), "m", 64);
  REQUIRE_FALSE(version->predictor().mixes_lengths());
  const model::TextInput long_input{text_of_words(38), std::nullopt};  // 40 tokens: the 64 bucket
  const model::TextInput short_input{"red shoe for men", std::nullopt};  // 6 tokens: the 16 bucket
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(64, 4096), batches.hook());
  {
    Blocker blocker(batcher);
    batcher.submit(version, encode(*version, {long_input}), collector.done_for(0));
    batcher.submit(version, encode(*version, {short_input, short_input, short_input}), collector.done_for(1));
  }
  REQUIRE(collector.wait_for(2));
  auto stats = batches.stats();
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].inputs == 4);
  CHECK(stats[0].padded_tokens == 4 * 40);
  CHECK(stats[0].tokens == 40 + 3 * 6);

  {
    Blocker blocker(batcher);
    batcher.submit(version, encode(*version, {short_input, short_input, short_input}), collector.done_for(2));
    batcher.submit(version, encode(*version, {long_input}), collector.done_for(3));
  }
  REQUIRE(collector.wait_for(4));
  stats = batches.stats();
  REQUIRE(stats.size() == 3);
  CHECK(stats[1].inputs == 3);
  CHECK(stats[1].padded_tokens == 3 * 6);
  CHECK(stats[2].inputs == 1);
  CHECK(stats[2].padded_tokens == 40);
  for (int id = 0; id < 4; ++id) CHECK(collector.get(id).error.empty());
}

namespace {

// Three short inputs, then a long one, queued together for a version that mixes lengths: one
// batch. Checks every answer against `reference` scoring the same four inputs; returns the batch.
model::BatchStats short_and_long_batch(const model::VersionPtr& version, model::BatchPredictor& reference) {
  REQUIRE(version->predictor().mixes_lengths());
  const model::TextInput long_input{text_of_words(38), std::nullopt};  // 40 tokens: the 64 bucket
  const model::TextInput short_input{"red shoe for men", std::nullopt};  // 6 tokens: the 16 bucket
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(64, 4096), batches.hook());
  {
    Blocker blocker(batcher);
    batcher.submit(version, encode(*version, {short_input, short_input, short_input}), collector.done_for(0));
    batcher.submit(version, encode(*version, {long_input}), collector.done_for(1));
  }
  REQUIRE(collector.wait_for(2));
  auto stats = batches.stats();
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].inputs == 4);
  CHECK(stats[0].tokens == 40 + 3 * 6);
  const auto expected =
      reference.predict(std::vector<model::TextInput>{short_input, short_input, short_input, long_input});
  REQUIRE(collector.get(0).predictions.size() == 3);
  REQUIRE(collector.get(1).predictions.size() == 1);
  for (size_t i = 0; i < 3; ++i) check_close(collector.get(0).predictions[i], expected[i]);
  check_close(collector.get(1).predictions[0], expected[3]);
  return stats[0];
}

}  // namespace

TEST_CASE("DynamicBatcher: when the predictor cuts passes by length, longer inputs join a short batch in passes of their own") {
  // An int8 pass quantizes its activations as a whole: the reference scores the same passes.
  auto reference = make_reference(make_int8_model(kLabels, 5), 32);
  const auto stats = short_and_long_batch(make_version(make_int8_model(kLabels, 5), "m", 64, 32), reference);
  // Two passes: the long input alone, the short ones at their own width.
  CHECK(stats.padded_tokens == 40 + 3 * 6);
  CHECK(reference.padded_tokens() == 40 + 3 * 6);
}

TEST_CASE("DynamicBatcher: an unpadded model takes longer inputs into a short batch, one pass costing its real tokens") {
  auto reference = make_reference();
  const auto stats = short_and_long_batch(make_version(make_model(kLabels, 5), "m", 64, 32), reference);
  CHECK(stats.padded_tokens == stats.tokens);  // pass_cost_tokens plays no part
}

TEST_CASE("DynamicBatcher: the version whose input waited longest goes first and versions never share a batch") {
  auto a = make_version("a", 64, kLabels, 5);
  auto b = make_version("b", 64, {"yes", "no"}, 9);
  auto reference_a = make_reference(kLabels, 5);
  auto reference_b = make_reference({"yes", "no"}, 9);
  const auto texts = texts_of(t::fixture_texts(6, 21));
  const std::vector<model::TextInput> b_inputs = {texts[0]};
  const std::vector<model::TextInput> a_inputs(texts.begin() + 1, texts.end());
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(64, 4096), batches.hook());
  {
    Blocker blocker(batcher);
    // b has one input, a has five: the longer queue is not the one that goes first.
    batcher.submit(b, encode(*b, b_inputs), collector.done_for(0));
    batcher.submit(a, encode(*a, a_inputs), collector.done_for(1));
    batcher.submit(b, encode(*b, b_inputs), collector.done_for(2));
  }
  REQUIRE(collector.wait_for(3));
  const auto stats = batches.stats();
  REQUIRE(stats.size() == 2);
  CHECK(stats[0].version == b.get());
  CHECK(stats[0].inputs == 2);
  CHECK(stats[1].version == a.get());
  CHECK(stats[1].inputs == 5);
  CHECK(collector.get(0).at <= collector.get(1).at);

  const auto expected_a = reference_a.predict(a_inputs);
  const auto expected_b = reference_b.predict(b_inputs);
  for (int id : {0, 2}) {
    const Outcome o = collector.get(id);
    REQUIRE(o.predictions.size() == 1);
    check_close(o.predictions[0], expected_b[0]);
  }
  const Outcome o = collector.get(1);
  REQUIRE(o.predictions.size() == 5);
  for (size_t i = 0; i < 5; ++i) check_close(o.predictions[i], expected_a[i]);
}

TEST_CASE("DynamicBatcher: a lone request is not delayed when nothing is being tokenized") {
  auto version = make_version();
  Collector collector;
  model::DynamicBatcher batcher(options_of(64, 4096, 500ms), nullptr);
  batcher.run([] {});  // the thread is up

  auto start = Clock::now();
  batcher.submit(version, encode(*version, {{"red shoe", std::nullopt}}), collector.done_for(0));
  REQUIRE(collector.wait_for(1));
  CHECK(collector.get(0).at - start < 200ms);
  CHECK(collector.get(0).timing.queue < 200ms);

  // Announced, tokenized, submitted: the wait ends when nothing more is on its way.
  start = Clock::now();
  batcher.expect(+1);
  batcher.submit(version, encode(*version, {{"blue lamp", std::nullopt}}), collector.done_for(1));
  batcher.expect(-1);
  REQUIRE(collector.wait_for(2));
  CHECK(collector.get(1).at - start < 200ms);
  CHECK(collector.get(1).error.empty());
}

TEST_CASE("DynamicBatcher: while requests are being tokenized, a batch waits for them up to max_queue_delay") {
  auto version = make_version();
  SUBCASE("a request that arrives within the delay joins the batch") {
    Collector collector;
    Batches batches;
    model::DynamicBatcher batcher(options_of(64, 4096, 5s), batches.hook());
    batcher.run([] {});
    const auto start = Clock::now();
    batcher.expect(+2);
    batcher.submit(version, encode(*version, {{"red shoe", std::nullopt}, {"desk lamp", std::nullopt}}),
                   collector.done_for(0));
    batcher.expect(-1);
    std::this_thread::sleep_for(30ms);
    CHECK(collector.calls() == 0);  // still waiting for the second
    batcher.submit(version, encode(*version, {{"usb cable", std::nullopt}, {"a", std::nullopt}, {"pen", std::nullopt}}),
                   collector.done_for(1));
    batcher.expect(-1);
    REQUIRE(collector.wait_for(2));
    CHECK(Clock::now() - start < 2s);  // the last one's arrival, not the 5 s delay, ended the wait
    const auto stats = batches.stats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].inputs == 5);
  }
  SUBCASE("the delay ends the wait") {
    Collector collector;
    Batches batches;
    model::DynamicBatcher batcher(options_of(64, 4096, 60ms), batches.hook());
    batcher.run([] {});
    batcher.expect(+1);  // never comes
    const auto start = Clock::now();
    batcher.submit(version, encode(*version, {{"red shoe", std::nullopt}}), collector.done_for(0));
    REQUIRE(collector.wait_for(1));
    const auto waited = collector.get(0).at - start;
    CHECK(waited >= 55ms);
    CHECK(waited < 2s);
    CHECK(collector.get(0).timing.queue >= 55ms);
    batcher.expect(-1);
  }
  SUBCASE("a full batch does not wait") {
    Collector collector;
    Batches batches;
    model::DynamicBatcher batcher(options_of(4, 4096, 5s), batches.hook());
    batcher.run([] {});
    batcher.expect(+1);
    const auto start = Clock::now();
    batcher.submit(version, encode(*version, texts_of(t::fixture_texts(4, 2))), collector.done_for(0));
    REQUIRE(collector.wait_for(1));
    CHECK(Clock::now() - start < 2s);
    batcher.expect(-1);
  }
}

TEST_CASE("DynamicBatcher: a failing forward pass fails only its requests, once each, and the thread goes on") {
  auto version = make_version();
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(2, 4096), batches.hook());
  auto bad = encode(*version, {{"red shoe", std::nullopt}, {"blue lamp", std::nullopt}, {"green pen", std::nullopt}});
  bad[1].encoding.ids[1] = 99999;  // encoded "fine", but outside the vocabulary: the forward pass throws
  REQUIRE(bad[1].ok());
  {
    Blocker blocker(batcher);
    // Batch 1 holds bad's inputs 0 and 1 and fails; its input 2 must leave the queue with it,
    // so batch 2 is the good request alone.
    batcher.submit(version, std::move(bad), collector.done_for(0));
    batcher.submit(version, encode(*version, {{"wooden chair", std::nullopt}}), collector.done_for(1));
  }
  REQUIRE(collector.wait_for(2));
  batcher.run([] {});  // anything still queued would have been forwarded by now
  const Outcome failed = collector.get(0);
  CHECK(failed.calls == 1);
  CHECK(failed.predictions.empty());
  CHECK(failed.error.rfind("inference failed: ", 0) == 0);
  CHECK(failed.error.find("outside the vocabulary") != std::string::npos);
  const Outcome good = collector.get(1);
  CHECK(good.error.empty());
  CHECK(good.predictions.size() == 1);
  auto stats = batches.stats();
  REQUIRE(stats.size() == 2);
  CHECK(stats[0].failed);
  CHECK(stats[0].inputs == 2);
  CHECK_FALSE(stats[1].failed);
  CHECK(stats[1].inputs == 1);
  CHECK(batcher.queued_inputs() == 0);

  batcher.submit(version, encode(*version, {{"red shoe", std::nullopt}}), collector.done_for(2));
  REQUIRE(collector.wait_for(3));
  CHECK(collector.get(2).error.empty());
  CHECK(collector.get(2).predictions.size() == 1);
  batcher.stop();
  CHECK(collector.calls() == 3);
}

TEST_CASE("DynamicBatcher: a score that is not a number fails the request instead of answering nan") {
  auto m = make_model(kLabels, 5);
  {
    torch::NoGradGuard no_grad;
    m->classifier->weight[0][0] = std::nan("");
  }
  auto version = make_version(m, "nan", 64);
  Collector collector;
  model::DynamicBatcher batcher(options_of(64, 4096), nullptr);
  {
    Blocker blocker(batcher);
    batcher.submit(version, encode(*version, {{"red shoe", std::nullopt}, {"blue lamp", std::nullopt}}),
                   collector.done_for(0));
  }
  REQUIRE(collector.wait_for(1));
  batcher.stop();
  const Outcome o = collector.get(0);
  CHECK(o.calls == 1);
  CHECK(o.predictions.empty());
  CHECK(o.error == "the model's score for input 0 is not a number");
}

TEST_CASE("DynamicBatcher: run() executes on the inference thread and rethrows what the task throws") {
  auto version = make_version();
  Collector collector;
  Batches batches;
  model::DynamicBatcher batcher(options_of(64, 4096), batches.hook());
  std::thread::id task_thread;
  batcher.run([&] { task_thread = std::this_thread::get_id(); });
  CHECK(task_thread != std::this_thread::get_id());
  batcher.submit(version, encode(*version, {{"red shoe", std::nullopt}}), collector.done_for(0));
  REQUIRE(collector.wait_for(1));
  REQUIRE(batches.threads().size() == 1);
  CHECK(batches.threads()[0] == task_thread);

  CHECK_THROWS_WITH_AS(batcher.run([] { throw DataError("warm-up failed"); }), "warm-up failed", DataError);
  // A task that runs another task (on the inference thread) does not wait for itself.
  bool inner = false;
  batcher.run([&] { batcher.run([&] { inner = std::this_thread::get_id() == task_thread; }); });
  CHECK(inner);
  batcher.submit(version, encode(*version, {{"blue lamp", std::nullopt}}), collector.done_for(1));
  REQUIRE(collector.wait_for(2));
  CHECK(collector.get(1).error.empty());
}

TEST_CASE("DynamicBatcher: stop() finishes every queued request and task, then refuses new work") {
  auto version = make_version();
  Collector collector;
  Batches batches;
  const auto inputs = texts_of(t::fixture_texts(10, 4));
  model::DynamicBatcher batcher(options_of(4, 4096), batches.hook());
  std::atomic<bool> task_ran{false};
  std::thread task_thread;
  {
    Blocker blocker(batcher);
    for (int id = 0; id < 20; ++id) batcher.submit(version, encode(*version, inputs), collector.done_for(id));
    task_thread = std::thread([&] { batcher.run([&] { task_ran = true; }); });
    while (batcher.queued_tasks() == 0) std::this_thread::sleep_for(1ms);
    CHECK(batcher.queued_inputs() == 200);
    // stop() while everything is still queued: the blocker opens only once stop() has begun
    // (an empty request is refused from then on), then stop() drains the queue and joins.
    std::thread releaser([&] {
      for (;;) {
        try {
          batcher.submit(version, {}, [](std::vector<model::Prediction>, model::RequestTiming, std::string) {});
        } catch (const UsageError&) {
          break;
        }
        std::this_thread::sleep_for(1ms);
      }
      blocker.open();
    });
    batcher.stop();
    releaser.join();
  }
  task_thread.join();
  CHECK(task_ran);
  CHECK(collector.calls() == 20);
  for (int id = 0; id < 20; ++id) {
    const Outcome o = collector.get(id);
    CHECK(o.calls == 1);
    CHECK(o.error.empty());
    CHECK(o.predictions.size() == 10);
  }
  CHECK(batcher.queued_inputs() == 0);
  size_t total = 0;
  for (const auto& s : batches.stats()) total += s.inputs;
  CHECK(total == 200);

  CHECK_THROWS_WITH_AS(batcher.submit(version, encode(*version, inputs), collector.done_for(99)),
                       "the server is shutting down", UsageError);
  CHECK_THROWS_WITH_AS(batcher.run([] {}), "the server is shutting down", UsageError);
  batcher.stop();  // idempotent
  CHECK(collector.calls() == 20);
}
