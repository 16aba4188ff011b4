// Predictions for a file of texts, streamed: inputs read from lines, TAB-separated pairs, CSV,
// TSV or JSONL, tokenized on a reader thread while the model scores the inputs before them, and
// written as JSONL in input order as soon as each chunk is scored (`recmodel predict`). An input
// that cannot be scored gets an error object on its line instead and the stream goes on.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/batch_predictor.h"

namespace recmodel::model {

enum class InputFormat { lines, pairs, csv, tsv, jsonl };

// Where the inputs come from and which columns hold them.
struct InputSpec {
  std::string path = "-";            // "-" reads stdin
  InputFormat format = InputFormat::lines;
  std::string text_column = "text";  // CSV, TSV and JSONL
  std::string pair_column;           // CSV, TSV and JSONL: the second text of a pair; empty: none
  std::string id_column = "id";      // CSV, TSV and JSONL: echoed as "id" when present

  // Returns the input's name for messages: the path, or "<stdin>".
  std::string name() const { return path == "-" ? "<stdin>" : path; }
};

// One input as read, before tokenization.
struct InputRecord {
  uint64_t line = 0;     // 1-based line of the file where it starts
  std::string id;        // JSON text of the id, empty when the input has none
  TextInput input;
  std::string error;     // non-empty: the line or record holds no usable input (why)
};

// Reads the inputs of an InputSpec one record at a time.
class InputReader {
 public:
  // Opens the input (for CSV and TSV, reads its header). Throws NotFoundError for a missing file
  // and DataError for a header without the text columns.
  explicit InputReader(InputSpec spec);
  ~InputReader();
  InputReader(const InputReader&) = delete;
  InputReader& operator=(const InputReader&) = delete;

  // Reads the next record into `record` (its fields replaced); false at the end of the input.
  // A line that holds no input (invalid UTF-8, bad JSON, a missing field, no TAB in a pair)
  // comes back with `error` set. Throws DataError only when the rest cannot be read.
  bool next(InputRecord& record);

 private:
  void parse_line(InputRecord& record, const std::string& raw) const;

  InputSpec spec_;
  class Source;
  std::unique_ptr<Source> source_;
};

// What the JSONL line of a scored input holds besides "label" and "score" (or "value").
struct OutputOptions {
  size_t top_k = 3;     // the K most likely labels as "top_k": [[label, p], ...]; 0 = leave out
  bool probs = false;   // every label's probability as "probs": {label: p}
  bool logits = false;  // the raw logits as "logits": [...]
};

// Appends `v` as the shortest text that reads back as the same float (predict's and serve's
// number format). The caller keeps NaN and infinities out: they are not JSON.
void append_float(std::string& out, float v);

// Formats predictions as predict's JSONL lines.
class JsonlWriter {
 public:
  // `top_k` is capped at the number of labels (0 for regression).
  JsonlWriter(const std::vector<std::string>& labels, bool regression, OutputOptions options);

  // Appends the line of a scored input: {"id"?, "label", "score", "top_k"?, "probs"?, "logits"?,
  // "truncated"?} or, for regression, {"id"?, "value", "logits"?, "truncated"?}.
  void append(std::string& out, const std::string& id_json, const Prediction& prediction);
  // Appends the line of an input that was not scored: {"id"?, "line": N, "error": "..."}.
  void append_error(std::string& out, const std::string& id_json, uint64_t line, const std::string& error) const;

 private:
  std::vector<std::string> quoted_labels_;  // JSON strings, made once
  bool regression_;
  OutputOptions options_;
  std::vector<size_t> order_;
};

struct StreamOptions {
  // Inputs taken together: sorted by length within a chunk, then run in batches; still streaming.
  // 0 = eight batches, at most 4096.
  size_t chunk = 0;
  OutputOptions output;
};

struct StreamSummary {
  static constexpr size_t kListedBadLines = 20;

  uint64_t scored = 0;
  uint64_t truncated = 0;           // scored inputs that were truncated
  uint64_t bad = 0;                 // inputs not scored (their lines hold "error")
  std::vector<uint64_t> bad_lines;  // the lines of the first kListedBadLines of them
};

// Called for each input that is not scored, before its chunk is written, with how many have
// not been scored so far (1 for the first). It may throw to stop the stream (--strict).
using OnBadInput = std::function<void(uint64_t line, const std::string& error, uint64_t nth)>;

// Reads every input of `input`, scores it with `predictor` and writes one JSONL line per input,
// in input order, to `out` (flushed after each chunk, so a pipe gets its answers at once).
// Reading and tokenizing run on a thread of their own, a bounded chunk ahead of the model.
// Throws what InputReader throws (before any output for a missing file or column), DataError
// when `out` (named `out_name` in the message) cannot be written, and what `on_bad` throws.
// On such an early end a reader thread blocked on a pipe is left behind; it touches nothing of
// the caller's once it wakes.
StreamSummary predict_stream(BatchPredictor& predictor, const InputSpec& input, std::FILE* out,
                             const std::string& out_name, const StreamOptions& options, const OnBadInput& on_bad);

}  // namespace recmodel::model
