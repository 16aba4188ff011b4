// `serve --log-predictions FILE`: one JSONL line per scored input (or a --log-sample share of
// them), written by a thread of its own from a bounded queue, so a slow disk never slows a
// request: when the queue is full the record is dropped and counted. The lines are what
// `recmodel drift` reads: {"time", "model", "version", "tokens", "truncated", "unk_tokens",
// "label", "score"} (regression: "value" instead of "label" and "score").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace recmodel::serving {

struct PredictionRecord {
  int64_t time_ms = 0;        // since the epoch
  std::string model;          // served name
  int64_t version = 0;        // registry version, 0 for a folder
  size_t tokens = 0;          // input length before truncation, [CLS]/[SEP] included
  size_t truncated = 0;       // tokens dropped
  size_t unk_tokens = 0;      // [UNK] among the tokens the model saw
  bool regression = false;
  std::string label;          // classification: the top label
  float score = 0;            // classification: its probability; regression: the value
};

class PredictionLog {
 public:
  // Opens `path` for appending (created mode 0644; DataError naming it when it cannot be).
  // `sample` in (0, 1]: the share of records kept, drawn with a generator seeded by `seed`.
  // `on_drop` is called for each record dropped because the queue was full.
  PredictionLog(const std::string& path, double sample, uint64_t seed, std::function<void()> on_drop);
  // Writes what is queued and closes the file.
  ~PredictionLog();
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  // Queues one record (any thread); it is sampled here.
  void record(PredictionRecord record);
  // Writes what is queued now and waits until it is written to the file (tests, drain); not
  // fdatasync'ed: a crash of the machine may lose the last lines, never the server's answers.
  void flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recmodel::serving
