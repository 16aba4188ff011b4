#include "commands/predict.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "common/error.h"
#include "common/json.h"
#include "common/line_reader.h"
#include "data/readers.h"
#include "model/model_open.h"
#include "model/predictor.h"
#include "registry/registry.h"
#include "tokenizer/unicode.h"

namespace recmodel {

namespace {

namespace fs = std::filesystem;

struct PredictOptions {
  std::string model;
  std::string input = "-";
  std::string format = "auto";
  bool pair = false;
  std::string text_column = "text";
  std::string pair_column;
  std::string id_column = "id";
  int top_k = 3;
  bool logits = false;
  bool probs = false;
  int batch_size = 32;
  int max_length = 0;  // 0: the model's limit
  std::string device = "auto";
  bool strict = false;
};

enum class InputKind { lines, pairs, csv, tsv, jsonl };

// One input as it travels from the reader thread to the model.
struct Item {
  uint64_t line = 0;
  std::string id;  // JSON text of the id, empty when the input has none
  tokenizer::Encoding encoding;
  std::string error;  // non-empty: not scored, reported
};

// Items read ahead of the model; bounded so memory does not grow with the input.
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
  // Marks the end of the input (with the reader's exception, if it failed).
  void close(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    error_ = error;
    not_empty_.notify_one();
  }
  void stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    not_full_.notify_all();
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
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Item> items_;
  bool closed_ = false;
  bool stopped_ = false;
  std::exception_ptr error_;
};

InputKind input_kind(const PredictOptions& options, bool text_column_given) {
  if (options.pair) {
    if (options.format != "auto" && options.format != "lines")
      fail<UsageError>("--pair reads TAB-separated text pairs; it does not combine with --format {} (use "
                       "--text-pair-column for CSV/TSV/JSONL)",
                       options.format);
    return InputKind::pairs;
  }
  if (options.format == "lines") return InputKind::lines;
  if (options.format == "csv") return InputKind::csv;
  if (options.format == "tsv") return InputKind::tsv;
  if (options.format == "jsonl") return InputKind::jsonl;
  std::optional<data::Format> by_name;
  if (options.input != "-") by_name = data::format_from_extension(options.input);
  if (!by_name) {
    if (text_column_given || !options.pair_column.empty())
      fail<UsageError>("--text-column reads CSV, TSV or JSONL; say which with --format (the input {} has no such "
                       "extension)",
                       options.input == "-" ? "on stdin" : options.input);
    return InputKind::lines;
  }
  switch (*by_name) {
    case data::Format::csv: return InputKind::csv;
    case data::Format::tsv: return InputKind::tsv;
    case data::Format::jsonl: return InputKind::jsonl;
  }
  return InputKind::lines;
}

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos;
}

// Reads the input, validates and tokenizes each text, and queues the items in order.
class InputReader {
 public:
  InputReader(const PredictOptions& options, InputKind kind, const tokenizer::BertTokenizer& tokenizer,
              size_t max_length)
      : options_(options), kind_(kind), tokenizer_(tokenizer), max_length_(max_length) {}

  std::string name() const { return options_.input == "-" ? "<stdin>" : options_.input; }

  void run(ItemQueue& queue) {
    if (kind_ == InputKind::lines || kind_ == InputKind::pairs || kind_ == InputKind::jsonl)
      read_lines(queue);
    else
      read_records(queue);
  }

 private:
  void encode(Item& item, std::string_view text, std::optional<std::string_view> pair) {
    if (blank(text) || (pair && blank(*pair))) {
      item.error = pair ? "empty text in the pair" : "empty text";
      return;
    }
    item.encoding = tokenizer_.encode(text, pair, max_length_);
  }

  void read_lines(ItemQueue& queue) {
    LineReader reader(options_.input);
    std::string raw;
    while (reader.next(raw)) {
      Item item;
      item.line = reader.line_number();
      parse_line(item, raw);
      if (!queue.push(std::move(item))) return;
    }
  }

  void parse_line(Item& item, const std::string& raw) {
    if (size_t bad = unicode::find_invalid_utf8(raw); bad != std::string_view::npos) {
      item.error = fmt::format("invalid UTF-8 at byte {}", bad + 1);
      return;
    }
    if (kind_ == InputKind::lines) return encode(item, raw, std::nullopt);
    if (kind_ == InputKind::pairs) {
      size_t tab = raw.find('\t');
      if (tab == std::string::npos) {
        item.error = blank(raw) ? "empty text" : "expected two texts separated by a TAB (--pair)";
        return;
      }
      return encode(item, std::string_view(raw).substr(0, tab), std::string_view(raw).substr(tab + 1));
    }
    // JSONL
    if (blank(raw)) {
      item.error = "empty line";
      return;
    }
    // Bounded: the id is echoed (dumped), and a line of 1 M nested arrays would overflow the stack.
    nlohmann::json doc;
    try {
      doc = parse_json(raw, "line");
    } catch (const DataError& e) {
      item.error = std::string_view(e.what()).find("nested deeper") != std::string_view::npos
                       ? fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth)
                       : "invalid JSON";
      return;
    }
    if (!doc.is_object()) {
      item.error = "expected a JSON object";
      return;
    }
    if (auto id = doc.find(options_.id_column); id != doc.end() && !id->is_null())
      item.id = id->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto text_of = [&](const std::string& column, std::string& out) -> bool {
      auto found = doc.find(column);
      if (found == doc.end() || found->is_null()) {
        item.error = fmt::format("missing field \"{}\"", column);
        return false;
      }
      if (!found->is_string()) {
        item.error = fmt::format("field \"{}\" is not a string", column);
        return false;
      }
      out = found->get<std::string>();
      return true;
    };
    std::string text, pair;
    if (!text_of(options_.text_column, text)) return;
    if (!options_.pair_column.empty() && !text_of(options_.pair_column, pair)) return;
    encode(item, text, options_.pair_column.empty() ? std::nullopt : std::optional<std::string_view>(pair));
  }

  // CSV and TSV through the dataset reader (from a pipe it reads 1 MiB blocks).
  void read_records(ItemQueue& queue) {
    std::string path = options_.input == "-" ? "/dev/stdin" : options_.input;
    data::Format format = kind_ == InputKind::csv ? data::Format::csv : data::Format::tsv;
    std::vector<std::string> columns = {options_.text_column};
    if (!options_.pair_column.empty()) columns.push_back(options_.pair_column);
    data::RecordReader reader(path, format, columns);
    const auto& header = reader.header();
    auto id_at = std::find(header.begin(), header.end(), options_.id_column);
    const size_t id_index = id_at == header.end() ? SIZE_MAX : static_cast<size_t>(id_at - header.begin());
    data::Record record;
    while (reader.next(record)) {
      Item item;
      item.line = record.line;
      if (id_index < record.fields.size()) item.id = nlohmann::json(record.fields[id_index]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (!record.problem.empty())
        item.error = record.problem;
      else
        encode(item, record.values[0],
               options_.pair_column.empty() ? std::nullopt : std::optional<std::string_view>(record.values[1]));
      if (!queue.push(std::move(item))) return;
    }
  }

  const PredictOptions& options_;
  InputKind kind_;
  const tokenizer::BertTokenizer& tokenizer_;
  size_t max_length_;
};

void append_float(std::string& out, float v) { fmt::format_to(std::back_inserter(out), "{}", v); }

void run_predict(const PredictOptions& options, const Console& console, bool text_column_given) {
  const InputKind kind = input_kind(options, text_column_given);
  if (options.input != "-") {
    std::error_code ec;
    if (!fs::exists(options.input, ec)) fail<NotFoundError>("{}: no such file (--input)", options.input);
    if (fs::is_directory(options.input, ec)) fail<UsageError>("{}: is a directory; --input takes a file", options.input);
  }
  const torch::Device device = model::parse_device(options.device);

  registry::ResolvedModel resolved = registry::resolve_model(options.model, console.options().registry);
  model::OpenedModel opened =
      model::open_for_inference(resolved.path, options.model, [&](const std::string& w) { console.warn("{}", w); });
  const tokenizer::BertTokenizer& tokenizer = opened.tokenizer;
  model::LoadedModel& loaded = opened.loaded;
  const bool regression = loaded.config.problem_type == model::ProblemType::regression;
  const std::vector<std::string> labels = loaded.config.labels;

  // model_max_length 0 means the tokenizer sets no limit (Hugging Face writes 1e30 then): positions decide.
  const size_t tokenizer_limit = tokenizer.config().model_max_length;
  size_t model_limit = static_cast<size_t>(loaded.config.max_position_embeddings);
  if (tokenizer_limit > 0) model_limit = std::min(model_limit, tokenizer_limit);
  if (options.max_length > 0 && static_cast<size_t>(options.max_length) > model_limit)
    fail<UsageError>("--max-length {} is more than the model takes ({} positions)", options.max_length, model_limit);
  const size_t max_length = options.max_length > 0 ? static_cast<size_t>(options.max_length) : model_limit;
  if (max_length < 4) fail<UsageError>("--max-length {} leaves no room for text; use at least 4", max_length);

  model::PredictorOptions popts;
  popts.batch_size = static_cast<size_t>(options.batch_size);
  popts.device = device;
  model::Predictor predictor(loaded.model, tokenizer.pad_id(), popts);
  const int64_t classes = predictor.num_labels();
  const size_t top_k = regression ? 0 : std::min<size_t>(static_cast<size_t>(options.top_k), static_cast<size_t>(classes));

  InputReader input(options, kind, tokenizer, max_length);
  // Length-sorting works within a chunk: several batches at once, still streaming.
  const size_t chunk = std::min<size_t>(static_cast<size_t>(options.batch_size) * 8, 4096);
  ItemQueue queue(chunk * 2);
  std::thread reader([&] {
    try {
      input.run(queue);
      queue.close(nullptr);
    } catch (...) {
      queue.close(std::current_exception());
    }
  });
  struct JoinOnExit {
    std::thread& thread;
    ItemQueue& queue;
    ~JoinOnExit() {
      queue.stop();
      if (thread.joinable()) {
        // A reader blocked on a pipe cannot be woken; on an error path let the process end it.
        if (std::uncaught_exceptions() > 0) thread.detach();
        else thread.join();
      }
    }
  } join_on_exit{reader, queue};

  uint64_t scored = 0, truncated = 0, bad = 0;
  std::vector<uint64_t> bad_lines;
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  std::vector<size_t> order(static_cast<size_t>(classes));
  while (true) {
    std::vector<Item> items = queue.take(chunk);
    if (items.empty()) break;
    std::vector<tokenizer::Encoding*> encodings;
    std::vector<model::SequenceView> views;
    for (Item& item : items) {
      if (!item.error.empty()) {
        ++bad;
        if (options.strict)
          fail<DataError>("{}:{}: {} (--strict stops at the first bad input)", input.name(), item.line, item.error);
        if (bad <= 10) console.warn("{}:{}: {}; its output line holds the error", input.name(), item.line, item.error);
        bad_lines.push_back(item.line);
        continue;
      }
      if (item.encoding.truncated > 0) ++truncated;
      views.push_back({item.encoding.ids.data(), item.encoding.type_ids.data(), item.encoding.ids.size()});
    }
    torch::Tensor logits = predictor.logits(views);
    torch::Tensor probs;
    if (!regression) probs = torch::softmax(logits, 1).contiguous();
    const float* logit_data = logits.data_ptr<float>();
    const float* prob_data = regression ? nullptr : probs.data_ptr<float>();
    out.clear();
    size_t row = 0;
    for (const Item& item : items) {
      out += '{';
      if (!item.id.empty()) out += "\"id\":" + item.id + ",";
      if (!item.error.empty()) {
        out += fmt::format("\"line\":{},\"error\":{}}}\n", item.line, nlohmann::json(item.error).dump());
        continue;
      }
      const float* l = logit_data + row * classes;
      if (regression) {
        out += "\"value\":";
        append_float(out, l[0]);
      } else {
        const float* p = prob_data + row * classes;
        for (size_t c = 0; c < order.size(); ++c) order[c] = c;
        // Highest probability first; ties keep the lower class first (argmax order).
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
        out += "\"label\":" + nlohmann::json(labels[order[0]]).dump() + ",\"score\":";
        append_float(out, p[order[0]]);
        if (top_k > 0) {
          out += ",\"top_k\":[";
          for (size_t k = 0; k < top_k; ++k) {
            if (k) out += ',';
            out += "[" + nlohmann::json(labels[order[k]]).dump() + ",";
            append_float(out, p[order[k]]);
            out += ']';
          }
          out += ']';
        }
        if (options.probs) {
          out += ",\"probs\":{";
          for (int64_t c = 0; c < classes; ++c) {
            if (c) out += ',';
            out += nlohmann::json(labels[c]).dump() + ":";
            append_float(out, p[c]);
          }
          out += '}';
        }
      }
      if (options.logits) {
        out += ",\"logits\":[";
        for (int64_t c = 0; c < classes; ++c) {
          if (c) out += ',';
          append_float(out, l[c]);
        }
        out += ']';
      }
      if (item.encoding.truncated > 0) out += fmt::format(",\"truncated\":{}", item.encoding.truncated);
      out += "}\n";
      ++row;
      ++scored;
    }
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
      fail<DataError>("cannot write the predictions to stdout");
  }
  if (reader.joinable()) reader.join();

  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (truncated > 0)
    console.warn("{} of {} texts were longer than {} tokens and truncated (longest first for pairs); see "
                 "\"truncated\" in their output",
                 truncated, scored, max_length);
  if (bad > 0) {
    std::string list;
    for (size_t i = 0; i < bad_lines.size() && i < 20; ++i) list += (i ? ", " : "") + std::to_string(bad_lines[i]);
    if (bad_lines.size() > 20) list += ", ...";
    console.warn("{} input{} not scored ({} {}): their output lines hold \"error\"", bad, bad == 1 ? " was" : "s were",
                 bad == 1 ? "line" : "lines", list);
  }
  console.info("predicted {} texts in {:.2f} s ({:.1f} texts/s, {} threads, batch {})", scored, seconds,
               seconds > 0 ? static_cast<double>(scored) / seconds : 0.0, console.threads(), options.batch_size);
}

}  // namespace

CommandAction register_predict(CLI::App& command, const Console& console) {
  auto options = std::make_shared<PredictOptions>();
  command.footer(
      "\nOutput: one JSON object per input line or record, in input order, written as soon as it is scored:\n"
      "  {\"id\": ..., \"label\": ..., \"score\": p, \"top_k\": [[label, p], ...]}   (\"value\" for regression)\n"
      "with \"probs\" ({label: p}, ready for 'recmodel evaluate --predictions') and \"logits\" on request.\n"
      "An input that cannot be scored (empty text, invalid UTF-8, bad JSON, missing column) gets\n"
      "{\"line\": N, \"error\": ...} and a warning naming the line; --strict stops there (exit 3) instead.\n"
      "Texts longer than --max-length tokens are truncated; they carry \"truncated\": tokens dropped.");
  const char* model_group = "Model";
  command.add_option("--model", options->model, "Model directory or models:/NAME/VERSION, models:/NAME@ALIAS")
      ->type_name("REF")
      ->required()
      ->group(model_group);
  command.add_option("--device", options->device, "auto (CUDA when present), cpu, cuda or cuda:N")
      ->capture_default_str()
      ->group(model_group);
  command.add_option("--batch-size", options->batch_size, "Texts per forward pass (batched by length)")
      ->check(CLI::Range(1, 1 << 16).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(model_group);
  command.add_option("--max-length", options->max_length,
                     "Truncate texts to N tokens; 0 = the model's limit (max_position_embeddings)")
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(model_group);
  const char* input_group = "Input";
  command.add_option("--input", options->input, "Text file; - reads stdin")
      ->type_name("FILE")
      ->capture_default_str()
      ->group(input_group);
  command.add_option("--format", options->format,
                     "lines (one text per line), csv, tsv or jsonl; auto = from the file extension, else lines")
      ->check(one_of({"auto", "lines", "csv", "tsv", "jsonl"}))
      ->capture_default_str()
      ->group(input_group);
  command.add_flag("--pair", options->pair, "Each line is two texts separated by a TAB (query, title)")
      ->group(input_group);
  auto* text_column = command.add_option("--text-column", options->text_column, "CSV/TSV/JSONL column with the text")
                          ->capture_default_str()
                          ->group(input_group);
  command.add_option("--text-pair-column", options->pair_column,
                     "CSV/TSV/JSONL column with the second text of a pair (e.g. the product title)")
      ->group(input_group);
  command.add_option("--id-column", options->id_column, "CSV/TSV/JSONL column echoed as \"id\" when present")
      ->capture_default_str()
      ->group(input_group);
  command.add_flag("--strict", options->strict, "Stop at the first input that cannot be scored (exit 3)")
      ->group(input_group);
  const char* output_group = "Output";
  command.add_option("--top-k", options->top_k, "The K most likely labels with probabilities; 0 = leave out")
      ->check(CLI::Range(0, 1 << 20).description(""))
      ->capture_default_str()
      ->type_name("K")
      ->group(output_group);
  command.add_flag("--probs", options->probs, "Add every label's probability as \"probs\": {label: p}")
      ->group(output_group);
  command.add_flag("--logits", options->logits, "Add the raw logits as \"logits\": [...]")->group(output_group);
  return [options, &console, text_column] { run_predict(*options, console, text_column->count() > 0); };
}

}  // namespace recmodel
