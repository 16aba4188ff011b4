#include "model/prediction_io.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <iterator>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "common/json.h"
#include "common/line_reader.h"
#include "data/readers.h"
#include "tokenizer/unicode.h"

namespace recmodel::model {

namespace {

bool blank(std::string_view text) { return text.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos; }

// The id is echoed: invalid UTF-8 in it becomes U+FFFD rather than an exception.
std::string id_json(const nlohmann::json& id) {
  return json_dump(id);
}

}  // namespace

void append_float(std::string& out, float v) { fmt::format_to(std::back_inserter(out), "{}", v); }

// ---- reading ----

class InputReader::Source {
 public:
  std::unique_ptr<LineReader> lines;           // lines, pairs, JSONL
  std::unique_ptr<data::RecordReader> records;  // CSV, TSV
  size_t id_index = SIZE_MAX;                   // CSV/TSV column of the id
  std::string raw;
  data::Record record;
};

InputReader::InputReader(InputSpec spec) : spec_(std::move(spec)), source_(std::make_unique<Source>()) {
  if (spec_.format == InputFormat::csv || spec_.format == InputFormat::tsv) {
    // Through the dataset reader (from a pipe it reads 1 MiB blocks).
    const std::string path = spec_.path == "-" ? "/dev/stdin" : spec_.path;
    std::vector<std::string> columns = {spec_.text_column};
    if (!spec_.pair_column.empty()) columns.push_back(spec_.pair_column);
    source_->records = std::make_unique<data::RecordReader>(
        path, spec_.format == InputFormat::csv ? data::Format::csv : data::Format::tsv, columns);
    const auto& header = source_->records->header();
    auto id_at = std::find(header.begin(), header.end(), spec_.id_column);
    if (id_at != header.end()) source_->id_index = static_cast<size_t>(id_at - header.begin());
  } else {
    source_->lines = std::make_unique<LineReader>(spec_.path);
  }
}

InputReader::~InputReader() = default;

bool InputReader::next(InputRecord& record) {
  record.id.clear();
  record.error.clear();
  record.input.text.clear();
  record.input.pair.reset();
  Source& s = *source_;
  if (s.lines) {
    if (!s.lines->next(s.raw)) return false;
    record.line = s.lines->line_number();
    parse_line(record, s.raw);
    return true;
  }
  if (!s.records->next(s.record)) return false;
  record.line = s.record.line;
  if (s.id_index < s.record.fields.size()) record.id = id_json(nlohmann::json(s.record.fields[s.id_index]));
  if (!s.record.problem.empty()) {
    record.error = s.record.problem;
    return true;
  }
  record.input.text = std::move(s.record.values[0]);
  if (!spec_.pair_column.empty()) record.input.pair = std::move(s.record.values[1]);
  return true;
}

void InputReader::parse_line(InputRecord& record, const std::string& raw) const {
  // Checked on the whole line, so the byte counts from its start.
  if (size_t bad = unicode::find_invalid_utf8(raw); bad != std::string_view::npos) {
    record.error = fmt::format("invalid UTF-8 at byte {}", bad + 1);
    return;
  }
  if (spec_.format == InputFormat::lines) {
    record.input.text = raw;
    return;
  }
  if (spec_.format == InputFormat::pairs) {
    const size_t tab = raw.find('\t');
    if (tab == std::string::npos) {
      record.error = blank(raw) ? "empty text" : "expected two texts separated by a TAB (--pair)";
      return;
    }
    record.input.text.assign(raw, 0, tab);
    record.input.pair = raw.substr(tab + 1);
    return;
  }
  // JSONL
  if (blank(raw)) {
    record.error = "empty line";
    return;
  }
  // Bounded: the id is echoed (dumped), and a line of 1 M nested arrays would overflow the stack.
  nlohmann::json doc;
  try {
    doc = parse_json(raw, "line");
  } catch (const DataError& e) {
    record.error = std::string_view(e.what()).find("nested deeper") != std::string_view::npos
                       ? fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth)
                       : "invalid JSON";
    return;
  }
  if (!doc.is_object()) {
    record.error = "expected a JSON object";
    return;
  }
  if (auto id = doc.find(spec_.id_column); id != doc.end() && !id->is_null()) record.id = id_json(*id);
  auto text_of = [&](const std::string& column, std::string& out) -> bool {
    auto found = doc.find(column);
    if (found == doc.end() || found->is_null()) {
      record.error = fmt::format("missing field \"{}\"", column);
      return false;
    }
    if (!found->is_string()) {
      record.error = fmt::format("field \"{}\" is not a string", column);
      return false;
    }
    out = found->get<std::string>();
    return true;
  };
  if (!text_of(spec_.text_column, record.input.text)) return;
  if (spec_.pair_column.empty()) return;
  std::string pair;
  if (!text_of(spec_.pair_column, pair)) return;
  record.input.pair = std::move(pair);
}

// ---- writing ----

JsonlWriter::JsonlWriter(const std::vector<std::string>& labels, bool regression, OutputOptions options)
    : regression_(regression), options_(options) {
  for (const std::string& label : labels) quoted_labels_.push_back(nlohmann::json(label).dump());
  options_.top_k = regression ? 0 : std::min(options_.top_k, labels.size());
}

void JsonlWriter::append(std::string& out, const std::string& id, const Prediction& p) {
  out += '{';
  if (!id.empty()) out += "\"id\":" + id + ",";
  if (regression_) {
    out += "\"value\":";
    append_float(out, p.value());
  } else {
    rank_labels(p.scores, order_);
    out += "\"label\":" + quoted_labels_[order_[0]] + ",\"score\":";
    append_float(out, p.scores[order_[0]]);
    if (options_.top_k > 0) {
      out += ",\"top_k\":[";
      for (size_t k = 0; k < options_.top_k; ++k) {
        if (k) out += ',';
        out += "[" + quoted_labels_[order_[k]] + ",";
        append_float(out, p.scores[order_[k]]);
        out += ']';
      }
      out += ']';
    }
    if (options_.probs) {
      out += ",\"probs\":{";
      for (size_t c = 0; c < p.scores.size(); ++c) {
        if (c) out += ',';
        out += quoted_labels_[c] + ":";
        append_float(out, p.scores[c]);
      }
      out += '}';
    }
  }
  if (options_.logits) {
    out += ",\"logits\":[";
    for (size_t c = 0; c < p.logits.size(); ++c) {
      if (c) out += ',';
      append_float(out, p.logits[c]);
    }
    out += ']';
  }
  if (p.truncated > 0) out += fmt::format(",\"truncated\":{}", p.truncated);
  out += "}\n";
}

void JsonlWriter::append_error(std::string& out, const std::string& id, uint64_t line,
                               const std::string& error) const {
  out += '{';
  if (!id.empty()) out += "\"id\":" + id + ",";
  out += fmt::format("\"line\":{},\"error\":{}}}\n", line, nlohmann::json(error).dump());
}

// ---- streaming ----

namespace {

// One input as it travels from the reader thread to the model.
struct Item {
  uint64_t line = 0;
  std::string id;
  EncodedInput input;  // error set: not scored, reported
};

// Items read ahead of the model; bounded so memory does not grow with the input. It also
// tracks where the reader thread is, so that the stream can end early (an error, --strict)
// without waiting on a read that may never return (a pipe) and without the thread touching the
// caller's predictor afterwards.
class ItemQueue {
 public:
  explicit ItemQueue(size_t capacity) : capacity_(capacity) {}

  // Adds an item, waiting while the queue is full; returns false when the consumer stopped.
  bool push(Item item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_ || stopped_; });
    if (stopped_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  // Marks the reader thread as inside a read, and back out of it; false when the consumer stopped.
  bool begin_read() { return set_reading(true); }
  bool end_read() { return set_reading(false); }
  // Marks the end of the input (with the reader's exception, if it failed): the thread's last act.
  void close(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    error_ = error;
    not_empty_.notify_one();
    idle_.notify_all();
  }
  // Tells the reader thread to stop, and returns once it has ended (true) or is inside a read
  // (false): from then on it touches only what it co-owns.
  bool stop() {
    std::unique_lock<std::mutex> lock(mutex_);
    stopped_ = true;
    not_full_.notify_all();
    idle_.wait(lock, [&] { return closed_ || reading_; });
    return closed_;
  }
  // Takes up to `limit` items: waits for the first, then takes only what is already there, so
  // a slow pipe gets its answers at once and a fast file gets full batches. Empty at the end.
  std::vector<Item> take(size_t limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    std::vector<Item> out;
    while (!items_.empty() && out.size() < limit) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    not_full_.notify_all();
    if (out.empty() && error_) std::rethrow_exception(error_);
    return out;
  }

 private:
  bool set_reading(bool reading) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return false;
    reading_ = reading;
    if (reading) idle_.notify_all();
    return true;
  }

  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_, idle_;
  std::deque<Item> items_;
  bool closed_ = false;
  bool stopped_ = false;
  bool reading_ = false;
  std::exception_ptr error_;
};

// Reads, checks and tokenizes every input, queueing them in order. `predictor` is used only
// outside reads and never once the queue is stopped (see ItemQueue::stop).
void read_inputs(const BatchPredictor& predictor, InputReader& reader, ItemQueue& queue) {
  InputRecord record;
  while (true) {
    if (!queue.begin_read()) return;
    const bool more = reader.next(record);
    if (!queue.end_read() || !more) return;
    Item item;
    item.line = record.line;
    item.id = std::move(record.id);
    if (!record.error.empty()) {
      item.input.error = std::move(record.error);
    } else {
      const TextInput& in = record.input;
      item.input = predictor.encode(in.text, in.pair ? std::optional<std::string_view>(*in.pair) : std::nullopt);
    }
    if (!queue.push(std::move(item))) return;
  }
}

}  // namespace

StreamSummary predict_stream(BatchPredictor& predictor, const InputSpec& input, std::FILE* out,
                             const std::string& out_name, const StreamOptions& options, const OnBadInput& on_bad) {
  const size_t chunk = options.chunk > 0 ? options.chunk : std::min<size_t>(predictor.batch_size() * 8, 4096);
  // Opened here, so a missing file or column is thrown before any output. The reader thread
  // co-owns the reader and the queue: it may outlive this call, blocked on a pipe.
  auto reader = std::make_shared<InputReader>(input);
  auto queue = std::make_shared<ItemQueue>(chunk * 2);
  std::thread thread([&predictor, reader, queue] {
    try {
      read_inputs(predictor, *reader, *queue);
      queue->close(nullptr);
    } catch (...) {
      queue->close(std::current_exception());
    }
  });
  struct JoinOnExit {
    std::thread& thread;
    ItemQueue& queue;
    ~JoinOnExit() {
      // Stopped inside a read that may never return (a pipe): leave it; it ends at its next step.
      if (queue.stop()) thread.join();
      else thread.detach();
    }
  } join_on_exit{thread, *queue};

  JsonlWriter writer(predictor.labels(), predictor.regression(), options.output);
  StreamSummary summary;
  std::string text;
  std::vector<const EncodedInput*> batch;
  while (true) {
    std::vector<Item> items = queue->take(chunk);
    if (items.empty()) break;
    batch.clear();
    for (const Item& item : items) {
      if (!item.input.ok()) {
        ++summary.bad;
        if (summary.bad_lines.size() < StreamSummary::kListedBadLines) summary.bad_lines.push_back(item.line);
        if (on_bad) on_bad(item.line, item.input.error, summary.bad);
        continue;
      }
      if (item.input.truncated() > 0) ++summary.truncated;
      batch.push_back(&item.input);
    }
    const std::vector<Prediction> predictions = predictor.predict(batch);
    text.clear();
    size_t row = 0;
    for (const Item& item : items) {
      if (!item.input.ok()) {
        writer.append_error(text, item.id, item.line, item.input.error);
        continue;
      }
      writer.append(text, item.id, predictions[row++]);
      ++summary.scored;
    }
    if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0)
      fail<DataError>("cannot write the predictions to {}", out_name);
  }
  return summary;
}

}  // namespace recmodel::model
