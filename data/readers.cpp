#include "data/readers.h"

#include <csv.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace recmodel::data {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

// libcsv's parser state while inside a field (libcsv.c: FIELD_BEGUN). Together with `quoted`
// it tells that the file ended inside a quoted field, which csv_fini does not report in
// non-strict mode. Non-strict mode is kept on purpose: it accepts a stray quote inside an
// unquoted field (`5" screen`) the way spreadsheet exports write it.
constexpr int kLibcsvFieldBegun = 2;

std::string lower_ascii(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

size_t count_newlines(std::string_view text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 20; ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  if (names.size() > 20) out += fmt::format(", ... ({} in all)", names.size());
  return out;
}

std::string with_article(std::string_view noun) {
  bool vowel = !noun.empty() && std::string_view("aeiou").find(noun[0]) != std::string_view::npos;
  return fmt::format("{} {}", vowel ? "an" : "a", noun);
}

// Checks the requested values of a usable record for invalid UTF-8.
void check_utf8(Record& record, const std::vector<std::string>& columns) {
  if (!record.problem.empty()) return;
  for (size_t i = 0; i < record.values.size(); ++i) {
    size_t bad = unicode::find_invalid_utf8(record.values[i]);
    if (bad != std::string_view::npos) {
      record.problem = fmt::format("invalid UTF-8 in column \"{}\" at byte {}", columns[i], bad + 1);
      return;
    }
  }
}

// Chunked reading of a file with BOM removal and a byte count.
class ChunkedFile {
 public:
  explicit ChunkedFile(const fs::path& path) : path_(path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) fail<NotFoundError>("{}: no such file", path.string());
    if (fs::is_directory(path, ec)) fail<DataError>("{}: is a directory, expected a data file", path.string());
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail<DataError>("{}: cannot open: {}", path.string(), std::strerror(errno));
    buffer_.resize(kChunkBytes);
  }
  ~ChunkedFile() {
    if (file_) std::fclose(file_);
  }

  // Returns the next chunk (empty at the end of the file).
  std::string_view read() {
    size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    if (n == 0 && std::ferror(file_)) fail<DataError>("{}: read error: {}", path_.string(), std::strerror(errno));
    bytes_read_ += n;
    std::string_view chunk(buffer_.data(), n);
    if (first_) {
      first_ = false;
      if (chunk.substr(0, 3) == "\xEF\xBB\xBF") chunk.remove_prefix(3);
    }
    return chunk;
  }
  uint64_t bytes_read() const { return bytes_read_; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  uint64_t bytes_read_ = 0;
  bool first_ = true;
};

}  // namespace

std::string_view format_name(Format format) {
  switch (format) {
    case Format::csv: return "csv";
    case Format::tsv: return "tsv";
    case Format::jsonl: return "jsonl";
  }
  return "csv";
}

Format parse_format(std::string_view name) {
  if (name == "csv") return Format::csv;
  if (name == "tsv") return Format::tsv;
  if (name == "jsonl") return Format::jsonl;
  fail<UsageError>("unknown format \"{}\"; expected csv, tsv or jsonl", name);
}

std::optional<Format> format_from_extension(const fs::path& path) {
  std::string ext = lower_ascii(path.extension().string());
  if (ext == ".csv") return Format::csv;
  if (ext == ".tsv" || ext == ".tab") return Format::tsv;
  if (ext == ".jsonl" || ext == ".ndjson") return Format::jsonl;
  return std::nullopt;
}

nlohmann::ordered_json raw_record_json(const Record& record) {
  // Dump-and-reparse is avoided: invalid bytes are replaced when the caller dumps with
  // error_handler_t::replace, so values are stored as read.
  if (record.header) {
    if (record.fields.size() == record.header->size()) {
      nlohmann::ordered_json object = nlohmann::ordered_json::object();
      for (size_t i = 0; i < record.fields.size(); ++i) object[(*record.header)[i]] = record.fields[i];
      return object;
    }
    return nlohmann::ordered_json(record.fields);
  }
  if (unicode::find_invalid_utf8(record.raw_line) == std::string_view::npos) {
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(record.raw_line, nullptr, false);
    if (!parsed.is_discarded()) return parsed;
  }
  return nlohmann::ordered_json(record.raw_line);
}

class RecordReader::Source {
 public:
  virtual ~Source() = default;
  virtual bool next(Record& record) = 0;
  virtual uint64_t bytes_read() const = 0;
  virtual const std::vector<std::string>& header() const = 0;
};

namespace {

// CSV and TSV through libcsv. The input is fed one line at a time, so when libcsv reports the
// end of a record the current line is known, and the record's first line is that minus the
// newlines inside its (quoted) fields.
class DelimitedSource final : public RecordReader::Source {
 public:
  DelimitedSource(const fs::path& path, Format format, std::vector<std::string> columns)
      : file_(path), columns_(std::move(columns)) {
    if (format == Format::tsv) {
      csv_set_delim(&parser_, CSV_TAB);
      // libcsv trims spaces and tabs around unquoted fields; with TAB as the delimiter only
      // spaces may be trimmed.
      csv_set_space_func(&parser_, [](unsigned char c) { return c == CSV_SPACE ? 1 : 0; });
    }
    // The header is the first record.
    while (!header_ && fill()) {
    }
    if (!header_) fail<DataError>("{}: the file is empty; expected a header line naming the columns", path.string());
    const auto& names = *header_;
    for (const std::string& column : columns_) {
      auto found = std::find(names.begin(), names.end(), column);
      if (found == names.end())
        fail<DataError>("{}:{}: no column \"{}\" in the header (columns: {}); name the right one with the "
                        "--*-column options",
                        path.string(), header_line_, column, list_names(names));
      if (std::find(found + 1, names.end(), column) != names.end())
        fail<DataError>("{}:{}: the header names column \"{}\" twice; rename one of them", path.string(),
                        header_line_, column);
      indices_.push_back(static_cast<size_t>(found - names.begin()));
    }
  }

  bool next(Record& record) override {
    while (ready_.empty()) {
      if (!fill()) return false;
    }
    record = std::move(ready_.front());
    ready_.pop_front();
    record.values.clear();
    for (size_t index : indices_) record.values.push_back(index < record.fields.size() ? record.fields[index] : "");
    check_utf8(record, columns_);
    return true;
  }

  uint64_t bytes_read() const override { return file_.bytes_read(); }
  const std::vector<std::string>& header() const override { return *header_; }

 private:
  // Parses more input; returns false once the whole file has been consumed.
  bool fill() {
    if (finished_) return false;
    if (pos_ == chunk_.size()) {
      chunk_ = file_.read();
      pos_ = 0;
      if (chunk_.empty()) {
        finish();
        return true;  // finishing may have completed a record; the caller checks
      }
    }
    const char* start = chunk_.data() + pos_;
    const void* newline = std::memchr(start, '\n', chunk_.size() - pos_);
    size_t length = newline ? static_cast<size_t>(static_cast<const char*>(newline) - start) + 1 : chunk_.size() - pos_;
    size_t parsed = csv_parse(&parser_, start, length, &DelimitedSource::on_field, &DelimitedSource::on_row, this);
    if (parsed != length)
      fail<DataError>("{}:{}: CSV parser error: {}", file_.path().string(), line_,
                      csv_strerror(csv_error(&parser_)));
    pos_ += length;
    if (newline) ++line_;
    size_t pending = pending_bytes_ + parser_.entry_pos;
    if (pending > RecordReader::kMaxRecordBytes) {
      size_t inner = pending_newlines_ + count_newlines(std::string_view(
                                             reinterpret_cast<const char*>(parser_.entry_buf), parser_.entry_pos));
      fail<DataError>("{}:{}: a record longer than {} MiB starts here; is a quoted field missing its closing quote?",
                      file_.path().string(), line_ - inner, RecordReader::kMaxRecordBytes >> 20);
    }
    return true;
  }

  void finish() {
    unterminated_ = parser_.quoted && parser_.pstate == kLibcsvFieldBegun;
    csv_fini(&parser_, &DelimitedSource::on_field, &DelimitedSource::on_row, this);
    finished_ = true;
  }

  static void on_field(void* data, size_t size, void* self_ptr) {
    auto* self = static_cast<DelimitedSource*>(self_ptr);
    std::string_view value(data ? static_cast<const char*>(data) : "", data ? size : 0);
    self->fields_.emplace_back(value);
    self->pending_bytes_ += value.size();
    self->pending_newlines_ += count_newlines(value);
  }

  static void on_row(int /*terminator*/, void* self_ptr) {
    auto* self = static_cast<DelimitedSource*>(self_ptr);
    // No exceptions here: they would unwind through libcsv's C frames.
    self->complete_row();
  }

  void complete_row() {
    // line_ is the line of the record's terminator (or, at end of file, one past the final
    // newline, which then lies inside the record's open quoted field and is counted in it).
    uint64_t start_line = line_ - pending_newlines_;
    std::vector<std::string> fields = std::move(fields_);
    fields_.clear();
    pending_bytes_ = 0;
    pending_newlines_ = 0;
    if (!header_) {
      for (auto& name : fields) name = std::string(trim_view(name));
      header_ = std::make_shared<const std::vector<std::string>>(std::move(fields));
      header_line_ = start_line;
      return;
    }
    // A line holding only spaces is a blank line, not a one-field record.
    if (fields.size() == 1 && fields[0].empty() && header_->size() > 1 && !unterminated_) return;
    Record record;
    record.line = start_line;
    record.header = header_;
    if (unterminated_) {
      record.problem = "unterminated quoted field: the quote opened in this record is never closed";
    } else if (fields.size() != header_->size()) {
      record.problem = fmt::format("expected {} fields as in the header, found {}", header_->size(), fields.size());
    }
    record.fields = std::move(fields);
    ready_.push_back(std::move(record));
  }

  static std::string_view trim_view(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
    return text;
  }

  // Owns libcsv's buffers; a member so they are freed when the constructor throws too.
  struct Parser {
    csv_parser state{};
    Parser() {
      if (csv_init(&state, 0) != 0) throw Error(ExitCode::internal, "cannot initialise the CSV parser");
    }
    ~Parser() { csv_free(&state); }
    Parser(const Parser&) = delete;
    Parser& operator=(const Parser&) = delete;
  };

  ChunkedFile file_;
  std::vector<std::string> columns_;
  std::vector<size_t> indices_;
  Parser parser_holder_;
  csv_parser& parser_ = parser_holder_.state;
  std::string_view chunk_;
  size_t pos_ = 0;
  uint64_t line_ = 1;  // the line the next byte fed to libcsv is on
  std::vector<std::string> fields_;
  size_t pending_bytes_ = 0;
  size_t pending_newlines_ = 0;
  std::shared_ptr<const std::vector<std::string>> header_;
  uint64_t header_line_ = 1;
  std::deque<Record> ready_;
  bool unterminated_ = false;
  bool finished_ = false;
};

// JSON Lines: one object per line; blank lines are skipped.
class JsonlSource final : public RecordReader::Source {
 public:
  JsonlSource(const fs::path& path, std::vector<std::string> columns) : file_(path), columns_(std::move(columns)) {}

  bool next(Record& record) override {
    std::string line;
    while (read_line(line)) {
      std::string_view view(line);
      if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
      if (view.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      record = Record();
      record.line = line_;
      record.raw_line = std::string(view);
      parse(record);
      return true;
    }
    return false;
  }

  uint64_t bytes_read() const override { return file_.bytes_read(); }
  const std::vector<std::string>& header() const override { return empty_; }

 private:
  bool read_line(std::string& line) {
    line.clear();
    for (;;) {
      if (pos_ == chunk_.size()) {
        if (eof_) return false;
        chunk_ = file_.read();
        pos_ = 0;
        if (chunk_.empty()) {
          eof_ = true;
          if (line.empty()) return false;
          ++line_;
          return true;
        }
      }
      const char* start = chunk_.data() + pos_;
      const void* newline = std::memchr(start, '\n', chunk_.size() - pos_);
      size_t length = newline ? static_cast<size_t>(static_cast<const char*>(newline) - start)
                              : chunk_.size() - pos_;
      line.append(start, length);
      if (line.size() > RecordReader::kMaxRecordBytes)
        fail<DataError>("{}:{}: a line longer than {} MiB; is this really JSON Lines (one object per line)?",
                        file_.path().string(), line_ + 1, RecordReader::kMaxRecordBytes >> 20);
      if (newline) {
        pos_ += length + 1;
        ++line_;
        return true;
      }
      pos_ = chunk_.size();
    }
  }

  void parse(Record& record) {
    const std::string& text = record.raw_line;
    size_t bad = unicode::find_invalid_utf8(text);
    if (bad != std::string_view::npos) {
      record.problem = fmt::format("invalid UTF-8 at byte {} of the line", bad + 1);
      return;
    }
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      std::string message = e.what();
      size_t bracket = message.find("] ");
      if (bracket != std::string::npos) message = message.substr(bracket + 2);
      record.problem = "invalid JSON: " + message;
      return;
    }
    if (!doc.is_object()) {
      record.problem = fmt::format("expected a JSON object, found {}", with_article(doc.type_name()));
      return;
    }
    for (const std::string& column : columns_) {
      auto found = doc.find(column);
      if (found == doc.end() || found->is_null()) {
        record.problem = fmt::format("missing field \"{}\"", column);
        record.values.clear();
        return;
      }
      const nlohmann::json& value = *found;
      if (value.is_string()) record.values.push_back(value.get<std::string>());
      else if (value.is_number_integer() || value.is_number_unsigned() || value.is_number_float())
        record.values.push_back(value.dump());
      else if (value.is_boolean()) record.values.push_back(value.get<bool>() ? "true" : "false");
      else {
        record.problem = fmt::format("field \"{}\" is {}; expected a string or a number", column,
                                     with_article(value.type_name()));
        record.values.clear();
        return;
      }
    }
  }

  ChunkedFile file_;
  std::vector<std::string> columns_;
  std::vector<std::string> empty_;
  std::string_view chunk_;
  size_t pos_ = 0;
  uint64_t line_ = 0;  // lines returned so far
  bool eof_ = false;
};

}  // namespace

RecordReader::RecordReader(const fs::path& path, Format format, std::vector<std::string> columns) {
  if (format == Format::jsonl) source_ = std::make_unique<JsonlSource>(path, std::move(columns));
  else source_ = std::make_unique<DelimitedSource>(path, format, std::move(columns));
}

RecordReader::~RecordReader() = default;

bool RecordReader::next(Record& record) { return source_->next(record); }

uint64_t RecordReader::bytes_read() const { return source_->bytes_read(); }

const std::vector<std::string>& RecordReader::header() const { return source_->header(); }

}  // namespace recmodel::data
