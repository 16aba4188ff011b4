#include "data/preprocess.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "common/text.h"
#include "data/cleaning.h"
#include "data/dedup.h"
#include "data/hashing.h"
#include "data/labels.h"

namespace recmodel::data {

namespace {

// A batch is what one round of the pipeline handles; it bounds memory and gives every thread
// enough rows.
constexpr size_t kBatchRows = 2048;
constexpr size_t kBatchBytes = 4 << 20;
constexpr size_t kWorkBlock = 16;        // rows a thread takes at a time
constexpr size_t kReasonsInError = 5;    // unusable rows named in the failure message
constexpr double kTruncationWarning = 0.05;

// One input row on its way through the first pass.
struct Row {
  uint32_t file = 0;
  Record record;
  // Filled by process():
  std::string problem;  // non-empty: unusable, and why
  std::string label;    // classification: the label as written (trimmed)
  int32_t fixed_label = -1;
  float target = 0;
  uint64_t key = 0;     // hash of the cleaned text (and pair), for de-duplication
  int group_split = -1;
  std::vector<int32_t> ids;
  uint32_t segment_a = 0;
  uint32_t full_length = 0;  // tokens before truncation
};

struct Batch {
  std::vector<Row> rows;
  size_t count = 0;
};

// Positions of the columns in Record::values.
struct ColumnSlots {
  int text = -1, pair = -1, label = -1, group = -1;
};

// A row in the spool file, followed by its token ids (int32), its problem text and its raw
// record. The first pass writes every row here; the second reads them back in order once the
// duplicates are known, so the input is parsed and tokenized only once.
struct SpoolHeader {
  uint64_t key;
  uint64_t line;
  uint32_t file;
  uint32_t label;         // class id (provisional) or the bits of a float target
  uint32_t ids;           // token count
  uint32_t segment_a;
  uint32_t full_length;
  int32_t group_split;
  uint32_t problem_bytes;  // > 0: the row is unusable
  uint32_t raw_bytes;
};
static_assert(sizeof(SpoolHeader) == 48);

constexpr uint32_t kJsonLineMarker = 0xFFFFFFFF;

void put_u32(std::string& out, uint32_t value) { out.append(reinterpret_cast<const char*>(&value), 4); }

uint32_t take_u32(std::string_view& in) {
  uint32_t value = 0;
  if (in.size() < 4) throw Error(ExitCode::internal, "spool record is cut short");
  std::memcpy(&value, in.data(), 4);
  in.remove_prefix(4);
  return value;
}

// Serializes what raw_record_json needs: the CSV/TSV fields, or the JSONL line.
void serialize_raw(const Record& record, std::string& out) {
  out.clear();
  // A CSV/TSV record with broken quoting has no fields, only its first line.
  if (record.header && !(record.fields.empty() && !record.raw_line.empty())) {
    put_u32(out, static_cast<uint32_t>(record.fields.size()));
    for (const auto& field : record.fields) {
      put_u32(out, static_cast<uint32_t>(field.size()));
      out += field;
    }
  } else {
    put_u32(out, kJsonLineMarker);
    put_u32(out, static_cast<uint32_t>(record.raw_line.size()));
    out += record.raw_line;
  }
}

void deserialize_raw(std::string_view in, Record& record) {
  record.fields.clear();
  record.raw_line.clear();
  uint32_t count = take_u32(in);
  if (count == kJsonLineMarker) {
    uint32_t size = take_u32(in);
    record.raw_line.assign(in.substr(0, size));
    return;
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t size = take_u32(in);
    record.fields.emplace_back(in.substr(0, size));
    in.remove_prefix(size);
  }
}

std::string join(const std::vector<std::string>& items, const char* separator, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) {
    if (i) out += separator;
    out += items[i];
  }
  if (items.size() > limit) out += fmt::format("{}... ({} in all)", separator, items.size());
  return out;
}

class Pipeline {
 public:
  Pipeline(const PreprocessConfig& config, const tokenizer::BertTokenizer& tokenizer, const ProgressFn& progress)
      : config_(config), tokenizer_(tokenizer), progress_(progress), splitter_(config.ratios, config.seed) {
    columns_.push_back(config.text_column);
    slots_.text = 0;
    if (!config.pair_column.empty()) {
      slots_.pair = static_cast<int>(columns_.size());
      columns_.push_back(config.pair_column);
    }
    slots_.label = static_cast<int>(columns_.size());
    columns_.push_back(config.label_column);
    if (!config.group_column.empty()) {
      slots_.group = static_cast<int>(columns_.size());
      columns_.push_back(config.group_column);
    }
    if (config.task == Task::classification && !config.labels.empty()) labels_ = LabelMap(config.labels);
    for (const auto& input : config.inputs) {
      std::error_code ec;
      uint64_t size = fs::file_size(input.path, ec);
      sizes_.push_back(ec ? 0 : size);
      total_bytes_ += sizes_.back();
    }
    input_rows_.assign(config.inputs.size(), 0);
    input_kept_.assign(config.inputs.size(), 0);
    headers_.resize(config.inputs.size());
  }

  PreprocessResult run();

 private:
  // First pass: read, clean, tokenize, spool.
  bool read_batch(Batch& batch);
  void process(Row& row) const;
  void process_parallel(Batch& batch, const std::function<void()>& alongside);
  void spool(Batch& batch);
  // Second pass: drop duplicates, split, write.
  void assemble();
  void reject(uint32_t file, const Record& record, const char* kind, const std::string& reason);
  void check_limits() const;

  std::string where(uint64_t origin) const {
    return fmt::format("{}:{}", config_.inputs[origin_file(origin)].path.string(), origin_line(origin));
  }
  std::string label_text(uint32_t bits) const;
  std::string conflict_reason(const ExternalDedup::Verdict& verdict) const;
  nlohmann::ordered_json manifest(const std::vector<std::string>& labels, LabelOrder order,
                                  const std::vector<std::string>& input_hashes, const fs::path& staging) const;

  const PreprocessConfig& config_;
  const tokenizer::BertTokenizer& tokenizer_;
  const ProgressFn& progress_;
  std::vector<std::string> columns_;
  ColumnSlots slots_;
  LabelMap labels_;
  StratifiedSplitter splitter_;
  std::vector<uint64_t> sizes_;
  uint64_t total_bytes_ = 0;

  // Reading state.
  std::unique_ptr<RecordReader> reader_;
  size_t next_input_ = 0;
  uint32_t current_input_ = 0;
  uint64_t finished_bytes_ = 0;
  std::vector<std::shared_ptr<const std::vector<std::string>>> headers_;

  // Scratch state between the passes.
  std::unique_ptr<ExternalDedup> dedup_;
  std::FILE* spool_ = nullptr;
  fs::path spool_path_;
  uint64_t spooled_ = 0;
  std::string raw_scratch_;

  // Output.
  std::FILE* rejected_file_ = nullptr;
  fs::path rejected_path_;
  std::vector<std::unique_ptr<SplitWriter>> writers_;

  // Counts.
  uint64_t rows_read_ = 0;
  uint64_t invalid_ = 0;
  uint64_t kept_ = 0;
  struct Reason {
    uint64_t row;
    std::string text;
  };
  std::vector<Reason> first_invalid_;
  std::vector<uint64_t> input_rows_, input_kept_;
  std::array<std::vector<uint64_t>, kSplitCount> label_counts_;  // by provisional label id
  struct TargetStats {
    double sum = 0, min = 0, max = 0;
  };
  std::array<TargetStats, kSplitCount> targets_{};
  std::map<uint32_t, uint64_t> lengths_;  // untruncated token length → examples
  uint64_t truncated_ = 0;
  // The split of each text's first kept row when later rows of the text are kept too.
  std::unordered_map<uint64_t, int> leader_split_;
};

std::string Pipeline::conflict_reason(const ExternalDedup::Verdict& verdict) const {
  using Kind = ExternalDedup::Kind;
  switch (verdict.kind) {
    case Kind::outvoted:
      return fmt::format("same text as {}, whose label {} is the most frequent ({} of {} rows); {} here (--conflicts "
                         "majority)",
                         where(verdict.first_origin), label_text(verdict.first_label), verdict.votes, verdict.rows,
                         label_text(verdict.label));
    case Kind::tie:
      return fmt::format("no label is the most frequent for this text ({} rows, the top labels have {} each; the first "
                         "is at {}), so all its rows are rejected (--conflicts majority)",
                         verdict.rows, verdict.votes, where(verdict.first_origin));
    default:
      return fmt::format("same text as {} but a different label: {} there, {} here", where(verdict.first_origin),
                         label_text(verdict.first_label), label_text(verdict.label));
  }
}

bool Pipeline::read_batch(Batch& batch) {
  batch.count = 0;
  size_t bytes = 0;
  while (batch.count < kBatchRows && bytes < kBatchBytes) {
    if (!reader_) {
      if (next_input_ == config_.inputs.size()) break;
      current_input_ = static_cast<uint32_t>(next_input_++);
      const InputFile& input = config_.inputs[current_input_];
      reader_ = std::make_unique<RecordReader>(input.path, input.format, columns_);
    }
    if (batch.rows.size() <= batch.count) batch.rows.emplace_back();
    Row& row = batch.rows[batch.count];
    if (!reader_->next(row.record)) {
      finished_bytes_ += reader_->bytes_read();
      reader_.reset();
      continue;
    }
    row.file = current_input_;
    // Every byte the row holds counts, unused columns too, so wide rows make smaller batches.
    bytes += row.record.raw_line.size();
    for (const auto& field : row.record.fields) bytes += field.size();
    for (const auto& value : row.record.values) bytes += value.size();
    ++batch.count;
  }
  if (progress_) progress_(finished_bytes_ + (reader_ ? reader_->bytes_read() : 0), total_bytes_);
  return batch.count > 0;
}

void Pipeline::process(Row& row) const {
  row.problem = row.record.problem;
  row.ids.clear();
  row.label.clear();
  row.fixed_label = -1;
  row.group_split = -1;
  row.key = 0;
  row.segment_a = row.full_length = 0;
  if (!row.problem.empty()) return;
  const auto& values = row.record.values;

  std::string text = clean_text(values[slots_.text]);
  if (text.empty()) {
    row.problem = trim(values[slots_.text]).empty() ? "empty text" : "empty text after cleaning (only markup or spaces)";
    return;
  }
  std::optional<std::string> pair;
  if (slots_.pair >= 0) {
    pair = clean_text(values[slots_.pair]);
    if (pair->empty()) {
      row.problem = fmt::format("empty text pair (column \"{}\")", config_.pair_column);
      return;
    }
  }

  std::string_view label = trim(values[slots_.label]);
  if (config_.task == Task::classification) {
    if (label.empty()) {
      row.problem = "missing label";
      return;
    }
    row.label = std::string(label);
    if (labels_.fixed()) {
      // Only a fixed map is read here: an open one is being extended by spool() meanwhile.
      row.fixed_label = labels_.find(label);
      if (row.fixed_label < 0) {
        row.problem =
            fmt::format("unknown label {}; --labels allows {}", quoted_for_message(label), join(config_.labels, ", ", 10));
        return;
      }
    }
  } else {
    std::string why;
    std::optional<float> target = parse_target(label, why);
    if (!target) {
      row.problem = why;
      return;
    }
    row.target = *target;
  }

  if (slots_.group >= 0) row.group_split = assign_group(trim(values[slots_.group]), config_.ratios, config_.seed);

  row.key = hash64(text, 1);
  if (pair) row.key = mix64(row.key ^ (hash64(*pair, 2) * 0x9e3779b97f4a7c15ULL));

  tokenizer::Encoding encoding =
      tokenizer_.encode(text, pair ? std::optional<std::string_view>(*pair) : std::nullopt, config_.max_length);
  row.full_length = static_cast<uint32_t>(encoding.ids.size() + encoding.truncated);
  row.segment_a = static_cast<uint32_t>(std::count(encoding.type_ids.begin(), encoding.type_ids.end(), 0));
  row.ids = std::move(encoding.ids);
}

void Pipeline::process_parallel(Batch& batch, const std::function<void()>& alongside) {
  const size_t n = batch.count;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (;;) {
      size_t begin = next.fetch_add(kWorkBlock);
      if (begin >= n) return;
      for (size_t i = begin; i < std::min(n, begin + kWorkBlock); ++i) process(batch.rows[i]);
    }
  };
  // The calling thread spools the previous batch and reads the next one while the others
  // tokenize this one, then joins them; row order never depends on which thread did what.
  const size_t helpers = config_.threads > 1 ? static_cast<size_t>(config_.threads - 1) : 0;
  std::vector<std::exception_ptr> errors(helpers);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers && n > 0; ++t) {
    threads.emplace_back([&, t] {
      try {
        work();
      } catch (...) {
        errors[t] = std::current_exception();
        next = n;
      }
    });
  }
  std::exception_ptr error;
  try {
    alongside();
    work();
  } catch (...) {
    error = std::current_exception();
    next = n;
  }
  for (auto& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void write_spool(std::FILE* file, const fs::path& path, const void* data, size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, file) != bytes)
    fail<DataError>("{}: write failed: {}; is the disk full?", path.string(), std::strerror(errno));
}

void read_spool(std::FILE* file, const fs::path& path, void* data, size_t bytes) {
  if (bytes && std::fread(data, 1, bytes, file) != bytes)
    fail<DataError>("{}: cannot read back: {}", path.string(), std::strerror(errno));
}

void Pipeline::spool(Batch& batch) {
  for (size_t i = 0; i < batch.count; ++i) {
    Row& row = batch.rows[i];
    ++rows_read_;
    ++input_rows_[row.file];
    if (!headers_[row.file] && row.record.header) headers_[row.file] = row.record.header;
    const uint64_t index = spooled_++;
    SpoolHeader header{};
    header.line = row.record.line;
    header.file = row.file;
    header.group_split = row.group_split;
    if (!row.problem.empty()) {
      ++invalid_;
      if (first_invalid_.size() < kReasonsInError)
        first_invalid_.push_back(
            {index, fmt::format("{}:{}: {}", config_.inputs[row.file].path.string(), row.record.line, row.problem)});
      header.problem_bytes = static_cast<uint32_t>(row.problem.size());
    } else {
      header.key = row.key;
      if (config_.task == Task::classification)
        header.label = static_cast<uint32_t>(labels_.fixed() ? row.fixed_label : labels_.add(row.label));
      else
        std::memcpy(&header.label, &row.target, 4);
      header.ids = static_cast<uint32_t>(row.ids.size());
      header.segment_a = row.segment_a;
      header.full_length = row.full_length;
      const int given = config_.inputs[row.file].split;
      dedup_->add(row.key, index, pack_origin(row.file, row.record.line), header.label,
                  given == kTest ? ExternalDedup::kHeldOut : given == kTrain ? ExternalDedup::kTrain
                                                                              : ExternalDedup::kPooled);
    }
    serialize_raw(row.record, raw_scratch_);
    header.raw_bytes = static_cast<uint32_t>(raw_scratch_.size());
    write_spool(spool_, spool_path_, &header, sizeof(header));
    write_spool(spool_, spool_path_, row.ids.data(), header.ids * sizeof(int32_t));
    write_spool(spool_, spool_path_, row.problem.data(), header.problem_bytes);
    write_spool(spool_, spool_path_, raw_scratch_.data(), raw_scratch_.size());
  }
}

std::string Pipeline::label_text(uint32_t bits) const {
  if (config_.task == Task::classification) return quoted_for_message(labels_.label(static_cast<int32_t>(bits)));
  float value;
  std::memcpy(&value, &bits, 4);
  return fmt::format("{}", value);
}

void Pipeline::reject(uint32_t file, const Record& record, const char* kind, const std::string& reason) {
  nlohmann::ordered_json line;
  line["file"] = config_.inputs[file].path.string();
  line["line"] = record.line;
  line["kind"] = kind;
  line["reason"] = reason;
  line["fields"] = raw_record_json(record);
  std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  text += '\n';
  if (std::fwrite(text.data(), 1, text.size(), rejected_file_) != text.size())
    fail<DataError>("{}: write failed: {}; is the disk full?", rejected_path_.string(), std::strerror(errno));
}

void Pipeline::check_limits() const {
  if (rows_read_ == 0) {
    std::vector<std::string> names;
    for (const auto& input : config_.inputs) names.push_back(input.path.string());
    fail<DataError>("no data rows in {}; only a header, or empty", join(names, ", ", 5));
  }
  const uint64_t rejected = invalid_ + dedup_->conflicts();
  const auto& counts = dedup_->counts();
  const uint64_t usable = rows_read_ - rejected - counts.duplicates_dropped - counts.test_overlap_dropped;
  if (usable > 0 && !config_.max_rejected.exceeded(rejected, rows_read_)) return;

  // The first few unusable rows in input order: invalid ones and label conflicts merged.
  std::vector<Reason> reasons = first_invalid_;
  for (const auto& verdict : dedup_->first_conflicts())
    reasons.push_back({verdict.row, fmt::format("{}: {}", where(verdict.origin), conflict_reason(verdict))});
  std::sort(reasons.begin(), reasons.end(), [](const Reason& a, const Reason& b) { return a.row < b.row; });
  std::vector<std::string> texts;
  for (size_t i = 0; i < reasons.size() && i < kReasonsInError; ++i) texts.push_back(reasons[i].text);
  std::string listed = join(texts, "; ", kReasonsInError);
  if (rejected > texts.size()) listed += fmt::format("; and {} more", rejected - texts.size());
  // Raising --max-rejected would leave nothing to train on, so it is not suggested then. (Every
  // text keeps a row unless rejected, so no usable row means every row was rejected.)
  if (usable == 0) fail<DataError>("none of the {} rows is usable: {}. Fix the input", rows_read_, listed);
  fail<DataError>("{} of {} rows are unusable, more than --max-rejected {} allows: {}. Fix the input, or raise "
                  "--max-rejected to skip such rows (they are then listed in rejected.jsonl)",
                  rejected, rows_read_, config_.max_rejected.text(), listed);
}

void Pipeline::assemble() {
  if (std::fflush(spool_) != 0)
    fail<DataError>("{}: write failed: {}; is the disk full?", spool_path_.string(), std::strerror(errno));
  std::rewind(spool_);
  const bool classification = config_.task == Task::classification;
  Record record;
  std::vector<int32_t> ids;
  std::string problem, raw;
  for (uint64_t index = 0; index < spooled_; ++index) {
    SpoolHeader header;
    read_spool(spool_, spool_path_, &header, sizeof(header));
    ids.resize(header.ids);
    read_spool(spool_, spool_path_, ids.data(), ids.size() * sizeof(int32_t));
    problem.resize(header.problem_bytes);
    read_spool(spool_, spool_path_, problem.data(), problem.size());
    raw.resize(header.raw_bytes);
    read_spool(spool_, spool_path_, raw.data(), raw.size());
    deserialize_raw(raw, record);
    record.header = headers_[header.file];
    record.line = header.line;

    if (header.problem_bytes > 0) {
      reject(header.file, record, "invalid", problem);
      continue;
    }
    using Kind = ExternalDedup::Kind;
    std::optional<ExternalDedup::Verdict> verdict = dedup_->verdict(index);
    if (verdict && verdict->dropped()) {
      if (verdict->rejected()) reject(header.file, record, "conflict", conflict_reason(*verdict));
      else if (verdict->kind == Kind::test_overlap)
        reject(header.file, record, "test_overlap",
               fmt::format("also in the train split at {} (--drop-test-overlap)", where(verdict->first_origin)));
      else reject(header.file, record, "duplicate", "duplicate of " + where(verdict->first_origin));
      continue;
    }
    int split;
    if (config_.inputs[header.file].split >= 0) split = config_.inputs[header.file].split;
    else if (header.group_split >= 0) split = header.group_split;
    else if (verdict && verdict->kind == Kind::repeat && leader_split_.count(verdict->first_row))
      split = leader_split_[verdict->first_row];  // never one text in two splits
    else split = splitter_.assign(classification ? std::string_view(labels_.label(static_cast<int32_t>(header.label)))
                                                 : std::string_view());
    if (verdict && verdict->kind == Kind::leader) leader_split_[index] = split;

    const uint64_t origin = pack_origin(header.file, header.line);
    writers_[split]->add(ids, header.segment_a, header.label, origin);
    ++kept_;
    ++input_kept_[header.file];
    ++lengths_[header.full_length];
    if (header.full_length > header.ids) ++truncated_;
    if (classification) {
      auto& counts = label_counts_[split];
      if (counts.size() <= header.label) counts.resize(header.label + 1, 0);
      ++counts[header.label];
    } else {
      TargetStats& stats = targets_[split];
      float target;
      std::memcpy(&target, &header.label, 4);
      const double value = target;
      const bool first = writers_[split]->examples() == 1;
      stats.sum += value;
      stats.min = first ? value : std::min(stats.min, value);
      stats.max = first ? value : std::max(stats.max, value);
    }
  }
}

nlohmann::ordered_json Pipeline::manifest(const std::vector<std::string>& labels, LabelOrder order,
                                          const std::vector<std::string>& input_hashes,
                                          const fs::path& staging) const {
  using ojson = nlohmann::ordered_json;
  const bool given = config_.inputs.front().split >= 0;
  ojson m;
  m["format"] = kDatasetFormatName;
  m["format_version"] = kDatasetFormatVersion;
  m["recmodel_version"] = RECMODEL_VERSION;
  m["task"] = task_name(config_.task);
  ojson inputs = ojson::array();
  for (size_t i = 0; i < config_.inputs.size(); ++i) {
    const InputFile& input = config_.inputs[i];
    inputs.push_back({{"path", input.path.string()},
                      {"format", format_name(input.format)},
                      {"split", input.split >= 0 ? split_name(input.split) : "auto"},
                      {"bytes", sizes_[i]},
                      {"sha256", input_hashes[i]},
                      {"rows", input_rows_[i]},
                      {"kept", input_kept_[i]}});
  }
  m["inputs"] = inputs;
  auto optional_column = [](const std::string& name) { return name.empty() ? ojson() : ojson(name); };
  m["columns"] = {{"text", config_.text_column},
                  {"text_pair", optional_column(config_.pair_column)},
                  {"label", config_.label_column},
                  {"group", optional_column(config_.group_column)}};
  m["tokenizer"] = {{"directory", "tokenizer"},
                    {"source", config_.tokenizer_source},
                    {"vocab_sha256", tokenizer_.vocab().sha256()},
                    {"vocab_size", tokenizer_.vocab().size()},
                    {"settings", ojson::parse(tokenizer_.config().to_json().dump())}};
  m["max_length"] = config_.max_length;
  m["seed"] = config_.seed;
  ojson split;
  split["mode"] = given ? "given" : "ratios";
  if (given) {
    split["ratios"] = nullptr;
    split["by"] = "input files";
  } else {
    split["ratios"] = {{"train", config_.ratios.values[kTrain]},
                       {"dev", config_.ratios.values[kDev]},
                       {"test", config_.ratios.values[kTest]}};
    split["by"] = !config_.group_column.empty() ? "group"
                  : config_.task == Task::classification ? "label (stratified)" : "row order (seeded)";
    if (config_.group_column.empty()) split["cycle"] = splitter_.cycle_length();
  }
  m["split"] = split;
  if (config_.task == Task::classification) {
    m["labels"] = labels;
    m["label_order"] = label_order_name(order);
  }
  m["counts"] = {{"rows_read", rows_read_},
                 {"kept", kept_},
                 {"duplicates_removed", dedup_->duplicates()},
                 {"rejected", invalid_ + dedup_->conflicts()},
                 {"label_conflicts", dedup_->conflicts()}};
  // What each policy did: rows unless named texts.
  const ExternalDedup::Counts& c = dedup_->counts();
  const DedupPolicy& policy = config_.policy;
  ojson policies;
  policies["duplicates"] = {{"policy", duplicate_policy_name(policy.duplicates)},
                            {"dropped", c.duplicates_dropped},
                            {"kept", c.duplicates_kept}};
  policies["conflicts"] = {{"policy", conflict_policy_name(policy.conflicts)},
                           {"texts", c.conflict_texts},
                           {"rejected", c.conflicts_rejected},
                           {"kept", c.conflicts_kept},
                           {"resolved_texts", c.conflicts_resolved}};
  bool given_test = false;
  for (const auto& input : config_.inputs) given_test = given_test || input.split == kTest;
  if (given_test)
    policies["test_overlap"] = {{"policy", policy.drop_test_overlap ? "drop" : "keep"},
                                {"test_rows", c.held_out},
                                {"in_train", c.test_overlap},
                                {"dropped", c.test_overlap_dropped}};
  m["policies"] = policies;
  ojson splits;
  for (int s = 0; s < kSplitCount; ++s) {
    const SplitWriter& writer = *writers_[s];
    std::string file = fmt::format("{}.bin", split_name(s));
    ojson entry = {{"file", file},
                   {"examples", writer.examples()},
                   {"tokens", writer.tokens()},
                   {"bytes", fs::file_size(staging / file)},
                   {"sha256", sha256_file(staging / file)}};
    if (config_.task == Task::classification) {
      ojson per_label = ojson::object();
      for (const std::string& name : labels) {
        int32_t provisional = labels_.find(name);
        const auto& counts = label_counts_[s];
        per_label[name] = provisional >= 0 && static_cast<size_t>(provisional) < counts.size() ? counts[provisional] : 0;
      }
      entry["labels"] = per_label;
    } else if (writer.examples() > 0) {
      const TargetStats& stats = targets_[s];
      entry["targets"] = {{"min", stats.min},
                          {"max", stats.max},
                          {"mean", stats.sum / static_cast<double>(writer.examples())}};
    }
    splits[split_name(s)] = entry;
  }
  m["splits"] = splits;

  // Token lengths before truncation: what --max-length would have to be to keep everything.
  ojson lengths;
  uint64_t total = 0, sum = 0;
  for (const auto& [length, count] : lengths_) {
    total += count;
    sum += static_cast<uint64_t>(length) * count;
  }
  for (int p : {50, 90, 95, 99}) {
    uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total)));
    uint64_t seen = 0;
    uint32_t value = 0;
    for (const auto& [length, count] : lengths_) {
      seen += count;
      value = length;
      if (seen >= rank) break;
    }
    lengths[fmt::format("p{}", p)] = value;
  }
  lengths["max"] = lengths_.empty() ? 0 : lengths_.rbegin()->first;
  lengths["mean"] = total ? static_cast<double>(sum) / static_cast<double>(total) : 0.0;
  m["token_lengths"] = lengths;
  m["truncated"] = truncated_;
  m["truncation_rate"] = kept_ ? static_cast<double>(truncated_) / static_cast<double>(kept_) : 0.0;
  m["max_rejected"] = config_.max_rejected.text();
  m["rejected_file"] = "rejected.jsonl";
  return m;
}

PreprocessResult Pipeline::run() {
  // Every header is checked before any work, so a wrong column name fails in a second.
  for (const auto& input : config_.inputs) RecordReader(input.path, input.format, columns_);

  StagingDir staging(config_.out, config_.force);
  // Input hashes are computed alongside the first pass rather than in a pass of their own.
  std::future<std::vector<std::string>> hashes = std::async(std::launch::async, [this] {
    std::vector<std::string> out;
    for (const auto& input : config_.inputs) out.push_back(sha256_file(input.path));
    return out;
  });

  // Scratch files live in the staging directory: same disk as the output, and removed with it
  // when the run fails.
  const fs::path work = staging.path() / ".work";
  fs::create_directory(work);
  dedup_ = std::make_unique<ExternalDedup>(work, config_.policy);
  spool_path_ = work / "rows.spool";
  spool_ = std::fopen(spool_path_.c_str(), "w+b");
  if (!spool_) fail<DataError>("{}: cannot create: {}", spool_path_.string(), std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> spool_guard(spool_, &std::fclose);
  std::setvbuf(spool_, nullptr, _IOFBF, 1 << 20);

  // First pass. Three batches rotate: one is tokenized by all threads while the calling thread
  // spools the previous one and reads the next.
  std::array<Batch, 3> batches;
  Batch* reading = &batches[0];
  Batch* working = &batches[1];
  Batch* spooling = &batches[2];
  read_batch(*working);
  while (working->count > 0 || spooling->count > 0) {
    process_parallel(*working, [&] {
      spool(*spooling);
      read_batch(*reading);
    });
    Batch* done = spooling;
    spooling = working;
    working = reading;
    reading = done;
  }
  batches = {};
  std::vector<std::string> input_hashes = hashes.get();

  dedup_->resolve();
  check_limits();

  // Second pass.
  rejected_path_ = staging.path() / "rejected.jsonl";
  rejected_file_ = std::fopen(rejected_path_.c_str(), "wb");
  if (!rejected_file_) fail<DataError>("{}: cannot create: {}", rejected_path_.string(), std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> rejected_guard(rejected_file_, &std::fclose);
  const uint32_t id_bytes = tokenizer_.vocab().size() <= 0x10000 ? 2 : 4;
  for (int s = 0; s < kSplitCount; ++s)
    writers_.push_back(
        std::make_unique<SplitWriter>(staging.path() / fmt::format("{}.bin", split_name(s)), config_.task, id_bytes));
  assemble();
  spool_guard.reset();
  fs::remove_all(work);
  if (std::fclose(rejected_guard.release()) != 0)
    fail<DataError>("{}: write failed: {}", rejected_path_.string(), std::strerror(errno));

  std::vector<int32_t> remap;
  LabelOrder order = LabelOrder::given;
  std::vector<std::string> labels;
  if (config_.task == Task::classification) {
    std::vector<uint64_t> kept_per_label(labels_.size(), 0);
    for (const auto& counts : label_counts_)
      for (size_t id = 0; id < counts.size(); ++id) kept_per_label[id] += counts[id];
    labels = labels_.finalize(remap, order, kept_per_label);
  }
  for (auto& writer : writers_) writer->finish(remap);

  PreprocessResult result;
  result.manifest = manifest(labels, order, input_hashes, staging.path());
  write_file_atomic(staging.path() / "manifest.json", result.manifest.dump(2) + "\n");
  tokenizer_.save(staging.path() / "tokenizer");
  staging.commit();

  // Advice that does not stop the run.
  auto& w = result.warnings;
  const bool given = config_.inputs.front().split >= 0;
  for (int s = 0; s < kSplitCount; ++s) {
    if (writers_[s]->examples() == 0 && (given ? s == kTrain : config_.ratios.values[s] > 0))
      w.push_back(fmt::format("the {} split is empty{}", split_name(s),
                              given ? "" : fmt::format(": {} kept row{} too few for --split {}", kept_,
                                                       kept_ == 1 ? " is" : "s are", config_.ratios.text())));
  }
  if (config_.task == Task::classification) {
    if (labels.size() == 1)
      w.push_back(fmt::format("only one label ({}) in the data; a classifier needs two or more",
                              quoted_for_message(labels[0])));
    if (labels_.fixed()) {
      for (const std::string& name : labels) {
        uint64_t count = 0;
        int32_t id = labels_.find(name);
        for (const auto& counts : label_counts_)
          if (static_cast<size_t>(id) < counts.size()) count += counts[id];
        if (count == 0) w.push_back(fmt::format("label {} from --labels has no rows", quoted_for_message(name)));
      }
    }
  }
  double rate = result.manifest["truncation_rate"].get<double>();
  if (rate > kTruncationWarning)
    w.push_back(fmt::format("{:.1f}% of the examples were cut to --max-length {}; the 95th percentile length is {}",
                            rate * 100, config_.max_length, result.manifest["token_lengths"]["p95"].get<uint32_t>()));
  if (tokenizer_.config().model_max_length > 0 && config_.max_length > tokenizer_.config().model_max_length)
    w.push_back(fmt::format("--max-length {} exceeds the tokenizer's model_max_length {}", config_.max_length,
                            tokenizer_.config().model_max_length));
  return result;
}

}  // namespace

RejectLimit RejectLimit::parse(std::string_view text) {
  RejectLimit limit;
  std::string_view number = text;
  if (!number.empty() && number.back() == '%') {
    limit.percent = true;
    number.remove_suffix(1);
  }
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), limit.value);
  bool whole = ec == std::errc() && end == number.data() + number.size() && !number.empty() &&
               number.find_first_not_of("0123456789.") == std::string_view::npos;
  if (!whole || limit.value < 0 || (!limit.percent && limit.value != std::floor(limit.value)) ||
      (limit.percent && limit.value > 100))
    fail<UsageError>("--max-rejected {}: expected a row count (10) or a percentage of the rows read (2.5%)", text);
  return limit;
}

bool RejectLimit::exceeded(uint64_t rejected, uint64_t rows) const {
  if (percent) return static_cast<double>(rejected) * 100.0 > value * static_cast<double>(rows);
  return static_cast<double>(rejected) > value;
}

std::string RejectLimit::text() const { return percent ? fmt::format("{}%", value) : fmt::format("{}", value); }

void validate_config(const PreprocessConfig& config) {
  if (config.inputs.empty())
    fail<UsageError>("no input: give --input FILE (repeatable), or --train FILE with optional --dev and --test");
  const bool given = config.inputs.front().split >= 0;
  bool has_train = false;
  for (const auto& input : config.inputs) {
    if ((input.split >= 0) != given)
      fail<UsageError>("--input cannot be combined with --train/--dev/--test; use one or the other");
    has_train = has_train || input.split == kTrain;
    std::error_code ec;
    if (!fs::exists(input.path, ec)) fail<NotFoundError>("{}: no such file", input.path.string());
    if (fs::is_directory(input.path, ec))
      fail<UsageError>("{}: is a directory; give the data file itself", input.path.string());
    // The input is read twice (its SHA-256 for the manifest, then its rows, re-read after a broken
    // quote): a pipe would be empty the second time, so it is refused rather than hang or lose rows.
    if (!fs::is_regular_file(input.path, ec))
      fail<UsageError>("{}: is not a regular file (a pipe or device); preprocess reads its input more than once, "
                       "so save it to a file first",
                       input.path.string());
  }
  if (given && !has_train) fail<UsageError>("--dev and --test need --train as well");
  if (config.policy.drop_test_overlap &&
      std::none_of(config.inputs.begin(), config.inputs.end(), [](const InputFile& input) { return input.split == kTest; }))
    fail<UsageError>("--drop-test-overlap applies to a given --test split; give --train and --test files");
  if (config.out.empty()) fail<UsageError>("give the output directory with --out DIR");
  if (config.text_column.empty()) fail<UsageError>("--text-column cannot be empty");
  if (config.label_column.empty()) fail<UsageError>("--label-column cannot be empty");
  // The group column may well be the text itself (group by query); the others must differ.
  std::vector<std::pair<const char*, std::string>> columns = {{"--text-column", config.text_column},
                                                             {"--text-pair-column", config.pair_column},
                                                             {"--label-column", config.label_column}};
  for (size_t i = 0; i < columns.size(); ++i)
    for (size_t j = i + 1; j < columns.size(); ++j)
      if (!columns[i].second.empty() && columns[i].second == columns[j].second)
        fail<UsageError>("{} and {} both name column \"{}\"; each needs its own column", columns[i].first,
                         columns[j].first, columns[i].second);
  if (config.task == Task::regression && !config.labels.empty())
    fail<UsageError>("--labels applies to --task classification; regression targets are numbers");
  if (given && !config.group_column.empty())
    fail<UsageError>("--group-column decides the split, so it cannot be combined with given --train/--dev/--test files");
  const size_t specials = config.pair_column.empty() ? 2 : 3;
  if (config.max_length <= specials)
    fail<UsageError>("--max-length {} leaves no room for text after {} special tokens; use at least {}",
                     config.max_length, specials, specials + 1);
  if (config.threads < 1) fail<UsageError>("threads must be at least 1");
}

PreprocessResult preprocess(const PreprocessConfig& config, const tokenizer::BertTokenizer& tokenizer,
                            const ProgressFn& progress) {
  validate_config(config);
  Pipeline pipeline(config, tokenizer, progress);
  return pipeline.run();
}

}  // namespace recmodel::data
