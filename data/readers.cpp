#include "data/readers.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>

#include <sys/stat.h>

#include <fmt/format.h>

#include "common/error.h"
#include "common/json.h"
#include "common/text.h"
#include "tokenizer/unicode.h"

namespace recmodel::data {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::string lower_ascii(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 20; ++i) {
    if (i) out += ", ";
    out += quoted_for_message(names[i], 60);
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
      record.problem = fmt::format("invalid UTF-8 in column {} at byte {}", quoted_for_message(columns[i]), bad + 1);
      return;
    }
  }
}

// Chunked reading of a file with BOM removal, a byte count and, for a regular file, going
// back to an earlier offset.
class ChunkedFile {
 public:
  explicit ChunkedFile(const fs::path& path) : path_(path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) fail<NotFoundError>("{}: no such file", path.string());
    if (fs::is_directory(path, ec)) fail<DataError>("{}: is a directory, expected a data file", path.string());
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail<DataError>("{}: cannot open: {}", path.string(), std::strerror(errno));
    struct stat info {};
    seekable_ = ::fstat(::fileno(file_), &info) == 0 && S_ISREG(info.st_mode);
    buffer_.resize(kChunkBytes);
  }
  ~ChunkedFile() {
    if (file_) std::fclose(file_);
  }

  // Returns the next chunk (empty at the end of the file); chunk_offset() is where it starts.
  std::string_view read() {
    size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    if (n == 0 && std::ferror(file_)) fail<DataError>("{}: read error: {}", path_.string(), std::strerror(errno));
    chunk_offset_ = position_;
    position_ += n;
    bytes_read_ = std::max(bytes_read_, position_);
    std::string_view chunk(buffer_.data(), n);
    if (first_) {
      first_ = false;
      if (chunk.substr(0, 3) == "\xEF\xBB\xBF") {
        chunk.remove_prefix(3);
        chunk_offset_ += 3;
      }
    }
    return chunk;
  }
  // The file offset of the first byte of the chunk read() returned last.
  uint64_t chunk_offset() const { return chunk_offset_; }
  // Whether seek() works: a regular file, not a pipe.
  bool seekable() const { return seekable_; }
  // Makes the next read() start at `offset`, which an earlier chunk_offset() gave.
  void seek(uint64_t offset) {
    if (::fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0)
      fail<DataError>("{}: cannot seek: {}", path_.string(), std::strerror(errno));
    position_ = chunk_offset_ = offset;
    first_ = offset == 0;
  }
  // Bytes of the file read so far (reading again after seek() does not count twice).
  uint64_t bytes_read() const { return bytes_read_; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  std::FILE* file_ = nullptr;
  bool seekable_ = false;
  std::vector<char> buffer_;
  uint64_t position_ = 0;      // file offset of the next byte fread returns
  uint64_t chunk_offset_ = 0;  // file offset of the last chunk's first byte
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
  if (record.header && record.fields.empty() && !record.raw_line.empty()) return nlohmann::ordered_json(record.raw_line);
  if (record.header) {
    if (record.fields.size() == record.header->size()) {
      nlohmann::ordered_json object = nlohmann::ordered_json::object();
      for (size_t i = 0; i < record.fields.size(); ++i) object[(*record.header)[i]] = record.fields[i];
      return object;
    }
    return nlohmann::ordered_json(record.fields);
  }
  if (unicode::find_invalid_utf8(record.raw_line) == std::string_view::npos) {
    std::string why;
    auto parsed = try_parse_ordered_json(record.raw_line, why);
    if (why.empty()) return parsed;
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

// One physical line: its text without the line end, the line end as read, and its number.
struct PhysicalLine {
  std::string text;
  std::string end;  // "\n", "\r\n", "\r", or "" for a last line without one
  uint64_t number = 0;
  uint64_t next_offset = 0;  // file offset where the line after this one starts
};

// Splits a file into physical lines. A line ends at "\n", "\r\n" or a lone "\r", so files
// written with any convention, or a mix, get the line numbers an editor shows.
class LineSplitter {
 public:
  // `hint` ends the message for a line longer than RecordReader::kMaxRecordBytes.
  LineSplitter(ChunkedFile& file, const char* hint) : file_(file), hint_(hint) {}

  // Whether rewind() works (the file is a regular file).
  bool can_rewind() const { return file_.seekable(); }
  // Makes the next line the one after `line`, which this splitter returned earlier. Within the
  // chunk at hand nothing is read again, so rows that fail one after another cost no more than
  // reading them; only a record that began in an earlier chunk makes the file seek back.
  void rewind(const PhysicalLine& line) {
    const uint64_t start = file_.chunk_offset();
    if (line.next_offset >= start && line.next_offset - start <= chunk_.size()) {
      pos_ = static_cast<size_t>(line.next_offset - start);
    } else {
      file_.seek(line.next_offset);
      chunk_ = std::string_view();
      pos_ = 0;
      eof_ = false;
    }
    line_ = line.number;
    pending_cr_ = false;
  }

  // Reads the next line into `line`; returns false at the end of the file.
  bool next(PhysicalLine& line) {
    line.text.clear();
    line.end.clear();
    for (;;) {
      if (pos_ == chunk_.size()) {
        if (eof_) return false;
        chunk_ = file_.read();
        pos_ = 0;
        if (chunk_.empty()) {
          eof_ = true;
          if (line.text.empty() && !pending_cr_) return false;
          if (pending_cr_) line.end = "\r";
          pending_cr_ = false;
          return finish(line);
        }
      }
      if (pending_cr_) {  // a '\r' ended the previous chunk
        pending_cr_ = false;
        return end_after_cr(line);
      }
      size_t stop = chunk_.find_first_of("\r\n", pos_);
      size_t length = (stop == std::string_view::npos ? chunk_.size() : stop) - pos_;
      line.text.append(chunk_.data() + pos_, length);
      if (line.text.size() > RecordReader::kMaxRecordBytes)
        fail<DataError>("{}:{}: a line longer than {} MiB; {}", file_.path().string(), line_ + 1,
                        RecordReader::kMaxRecordBytes >> 20, hint_);
      if (stop == std::string_view::npos) {
        pos_ = chunk_.size();
        continue;
      }
      pos_ = stop + 1;
      if (chunk_[stop] == '\n') {
        line.end = "\n";
        return finish(line);
      }
      if (pos_ == chunk_.size()) {
        pending_cr_ = true;  // "\r" or "\r\n": the next chunk tells
        continue;
      }
      return end_after_cr(line);
    }
  }

 private:
  // Ends `line` at the '\r' just before pos_ (or at the end of the previous chunk): "\r\n" when
  // a '\n' follows.
  bool end_after_cr(PhysicalLine& line) {
    if (chunk_[pos_] == '\n') {
      ++pos_;
      line.end = "\r\n";
    } else {
      line.end = "\r";
    }
    return finish(line);
  }

  // Numbers `line` and records where the next one starts.
  bool finish(PhysicalLine& line) {
    line.number = ++line_;
    line.next_offset = file_.chunk_offset() + pos_;
    return true;
  }

  ChunkedFile& file_;
  const char* hint_;
  std::string_view chunk_;
  size_t pos_ = 0;
  uint64_t line_ = 0;  // lines returned so far
  bool pending_cr_ = false;
  bool eof_ = false;
};

// CSV and TSV, parsed strictly by RFC 4180 quoting, record by record over physical lines.
//
// libcsv was used here before; its lenient mode merges rows after a stray quote, and its strict
// mode stops without a way to resynchronise, so the quoting rules are implemented here:
// - A field that starts with a quote (after optional spaces) is quoted: it ends at the next
//   single quote, holds delimiters and line ends as text, and writes a quote as "". Only spaces
//   may follow its closing quote before the delimiter or the line end; anything else rejects
//   the row ("text after the closing quote").
// - A quote inside an unquoted field (`55" TV`) is kept as text, as Python's csv module and
//   spreadsheets read it: it cannot open a quoted field, so it cannot merge rows.
// - A rejected row never takes other rows with it. A row whose quoted field does not close
//   properly (text after its closing quote on a later line, or no closing quote before the end
//   of the file) is rejected at the line where it starts, and the lines after that one are read
//   again as rows of their own. A quoted field may span lines only up to
//   RecordReader::kMaxRecordBytes; a record that grows past it is rejected the same way (the
//   quote is taken as one that never closes). The lines are read again from the file, so memory
//   stays at one record whatever follows the quote; only a pipe, which cannot be read twice,
//   keeps them in memory, and there a record past the bound refuses the file (exit 3).
// Spaces around unquoted fields are trimmed (tabs too in CSV), as libcsv did.
class DelimitedSource final : public RecordReader::Source {
 public:
  DelimitedSource(const fs::path& path, Format format, std::vector<std::string> columns)
      : file_(path),
        lines_(file_, "is a quoted field missing its closing quote?"),
        columns_(std::move(columns)),
        delimiter_(format == Format::tsv ? '\t' : ','),
        trim_tabs_(format != Format::tsv) {
    // The header is the first record.
    Record first;
    uint64_t line = 0;
    for (;;) {
      if (!read_record(first)) fail<DataError>("{}: the file is empty; expected a header line naming the columns", path.string());
      line = first.line;
      if (!first.problem.empty())
        fail<DataError>("{}:{}: cannot read the header: {}", path.string(), line, first.problem);
      bool blank = first.fields.size() == 1 && first.fields[0].empty();
      if (!blank) break;
    }
    for (auto& name : first.fields) name = std::string(trim_view(name));
    header_ = std::make_shared<const std::vector<std::string>>(std::move(first.fields));
    const auto& names = *header_;
    for (const std::string& column : columns_) {
      auto found = std::find(names.begin(), names.end(), column);
      if (found == names.end())
        fail<DataError>("{}:{}: no column {} in the header (columns: {}); name the right one with the "
                        "--*-column options",
                        path.string(), line, quoted_for_message(column), list_names(names));
      if (std::find(found + 1, names.end(), column) != names.end())
        fail<DataError>("{}:{}: the header names column {} twice; rename one of them", path.string(), line,
                        quoted_for_message(column));
      indices_.push_back(static_cast<size_t>(found - names.begin()));
    }
  }

  bool next(Record& record) override {
    for (;;) {
      if (!read_record(record)) return false;
      // A line of spaces is a blank line, not a one-field record.
      if (record.problem.empty() && record.fields.size() == 1 && record.fields[0].empty() && header_->size() > 1)
        continue;
      record.header = header_;
      if (record.problem.empty() && record.fields.size() != header_->size()) {
        record.problem = fmt::format("expected {} fields as in the header, found {}", header_->size(), record.fields.size());
        if (record.last_line != record.line)
          record.problem += fmt::format(" (a quoted field takes this record over lines {} to {})", record.line,
                                        record.last_line);
      }
      record.values.clear();
      for (size_t index : indices_) record.values.push_back(index < record.fields.size() ? record.fields[index] : "");
      check_utf8(record, columns_);
      return true;
    }
  }

  uint64_t bytes_read() const override { return file_.bytes_read(); }
  const std::vector<std::string>& header() const override { return *header_; }

 private:
  // How a record whose quoted field spans lines went wrong; the lines it took are read again.
  enum class Failure { none, unterminated, text_after_quote, too_long };

  // Returns the next physical line: one given back by a rejected record first, else the file's.
  bool take_line(PhysicalLine& line) {
    if (!replay_.empty()) {
      line = std::move(replay_.front());
      replay_.pop_front();
      return true;
    }
    return lines_.next(line);
  }

  bool is_space(char c) const { return c == ' ' || (trim_tabs_ && c == '\t'); }

  // Reads the next record, skipping empty lines; returns false at the end of the file. A record
  // with broken quoting comes back with `problem` set, `fields` empty and `raw_line` holding its
  // first line.
  bool read_record(Record& out) {
    PhysicalLine first;
    do {
      if (!take_line(first)) return false;
    } while (first.text.empty());
    out = Record();
    parse(std::move(first), out);
    return true;
  }

  void parse(PhysicalLine first, Record& record) {
    enum class State { field_start, unquoted, quoted, quote_in_quoted, after_quoted };
    record.line = record.last_line = first.number;
    std::vector<std::string>& fields = record.fields;
    std::string field;
    size_t trailing_spaces = 0;  // at the end of an unquoted field, trimmed when it ends
    size_t quoted_field = 0;     // 1-based number of the field whose quote is open
    size_t bytes = 0;
    State state = State::field_start;
    // The lines after the first that the record went on to: kept only when the file cannot be
    // read again (a pipe); otherwise `current` holds the last one and `last_taken` counts.
    std::deque<PhysicalLine> taken;
    PhysicalLine current;
    uint64_t last_taken = 0;  // number of the last line taken after the first; 0: none
    const bool keep_lines = !lines_.can_rewind();
    const PhysicalLine* line = &first;
    for (;;) {
      for (char c : line->text) {
        switch (state) {
          case State::field_start:
            if (c == delimiter_) {
              fields.emplace_back();
            } else if (c == '"') {
              state = State::quoted;
              quoted_field = fields.size() + 1;
            } else if (!is_space(c)) {
              field += c;
              trailing_spaces = 0;
              state = State::unquoted;
            }
            break;
          case State::unquoted:
            if (c == delimiter_) {
              field.resize(field.size() - trailing_spaces);
              fields.push_back(std::move(field));
              field.clear();
              state = State::field_start;
            } else {
              field += c;
              trailing_spaces = is_space(c) ? trailing_spaces + 1 : 0;
            }
            break;
          case State::quoted:
            if (c == '"') state = State::quote_in_quoted;
            else field += c;
            break;
          case State::quote_in_quoted:
          case State::after_quoted:
            if (c == '"' && state == State::quote_in_quoted) {
              field += '"';
              state = State::quoted;
            } else if (c == delimiter_) {
              fields.push_back(std::move(field));
              field.clear();
              state = State::field_start;
            } else if (is_space(c)) {
              state = State::after_quoted;
            } else {
              reject(record, first, taken, last_taken, Failure::text_after_quote, line->number, quoted_field);
              return;
            }
            break;
        }
      }
      if (state != State::quoted) break;
      // The quoted field goes on past the line end.
      if (first.number < replay_until_ && last_taken == 0) {
        // These lines were read before inside a quoted field that failed; from the same state
        // the same input fails the same way, so this record is rejected without reading on.
        reject(record, first, taken, last_taken, failure_, failure_line_, quoted_field);
        return;
      }
      if (line->end.empty()) {
        reject(record, first, taken, last_taken, Failure::unterminated, line->number, quoted_field);
        return;
      }
      field += line->end;
      bytes += line->text.size() + line->end.size();
      if (bytes > RecordReader::kMaxRecordBytes) {
        if (keep_lines)
          fail<DataError>("{}:{}: a record longer than {} MiB starts here; is a quoted field missing its closing "
                          "quote?",
                          file_.path().string(), first.number, RecordReader::kMaxRecordBytes >> 20);
        reject(record, first, taken, last_taken, Failure::too_long, line->number, quoted_field);
        return;
      }
      PhysicalLine next;
      if (!take_line(next)) {
        reject(record, first, taken, last_taken, Failure::unterminated, line->number, quoted_field);
        return;
      }
      last_taken = next.number;
      if (keep_lines) {
        taken.push_back(std::move(next));
        line = &taken.back();
      } else {
        current = std::move(next);
        line = &current;
      }
      record.last_line = line->number;
    }
    if (state == State::unquoted) field.resize(field.size() - trailing_spaces);
    fields.push_back(std::move(field));
  }

  // Rejects the record that starts at `first` for broken quoting, and has the lines it took
  // after its first (up to line `last_taken`) read again as records of their own: from the file
  // when it can be read again, else from `taken`.
  void reject(Record& record, PhysicalLine& first, std::deque<PhysicalLine>& taken, uint64_t last_taken,
              Failure failure, uint64_t at, size_t quoted_field) {
    const bool more_lines = last_taken != 0 || first.number < replay_until_;
    if (failure == Failure::too_long) {
      record.problem = fmt::format("unterminated quoted field: the quote that opens field {} ", quoted_field);
      if (last_taken != 0)
        record.problem += fmt::format("is not closed within {} MiB (by line {})", RecordReader::kMaxRecordBytes >> 20, at);
      else
        record.problem += fmt::format("is still open at line {}, where an earlier quoted field passed {} MiB", at,
                                      RecordReader::kMaxRecordBytes >> 20);
      record.problem += "; the lines after it are read as rows of their own";
    } else if (failure == Failure::unterminated) {
      record.problem = fmt::format("unterminated quoted field: the quote that opens field {} is never closed", quoted_field);
      if (more_lines) record.problem += "; the lines after it are read as rows of their own";
    } else if (at == first.number) {
      record.problem = fmt::format(
          "text after the closing quote of field {}; inside a quoted field a quote is written twice (\"\")", quoted_field);
    } else {
      record.problem = fmt::format(
          "the quote that opens field {} closes on line {} and text follows it; the lines after this one are read "
          "as rows of their own",
          quoted_field, at);
    }
    if (last_taken != 0) {
      replay_until_ = last_taken;
      failure_ = failure;
      failure_line_ = at;
      if (taken.empty()) {
        lines_.rewind(first);
      } else {
        for (auto it = taken.rbegin(); it != taken.rend(); ++it) replay_.push_front(std::move(*it));
      }
    }
    record.fields.clear();
    record.raw_line = std::move(first.text);
    record.last_line = record.line;
  }

  static std::string_view trim_view(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
    return text;
  }

  ChunkedFile file_;
  LineSplitter lines_;
  std::vector<std::string> columns_;
  std::vector<size_t> indices_;
  char delimiter_;
  bool trim_tabs_;
  std::shared_ptr<const std::vector<std::string>> header_;
  std::deque<PhysicalLine> replay_;  // lines to read again, when the file is a pipe
  // The last record that failed inside a quoted field spanning lines: the lines before
  // replay_until_ are being read again, and a quoted field open at the end of one of them
  // fails as that record did (failure_ at failure_line_).
  uint64_t replay_until_ = 0;
  Failure failure_ = Failure::none;
  uint64_t failure_line_ = 0;
};

// JSON Lines: one object per line; blank lines are skipped.
class JsonlSource final : public RecordReader::Source {
 public:
  JsonlSource(const fs::path& path, std::vector<std::string> columns)
      : file_(path), lines_(file_, "is this really JSON Lines (one object per line)?"), columns_(std::move(columns)) {}

  bool next(Record& record) override {
    PhysicalLine line;
    while (lines_.next(line)) {
      if (line.text.find_first_not_of(" \t") == std::string::npos) continue;
      record = Record();
      record.line = record.last_line = line.number;
      record.raw_line = std::move(line.text);
      parse(record);
      return true;
    }
    return false;
  }

  uint64_t bytes_read() const override { return file_.bytes_read(); }
  const std::vector<std::string>& header() const override { return empty_; }

 private:
  void parse(Record& record) {
    const std::string& text = record.raw_line;
    size_t bad = unicode::find_invalid_utf8(text);
    if (bad != std::string_view::npos) {
      record.problem = fmt::format("invalid UTF-8 at byte {} of the line", bad + 1);
      return;
    }
    nlohmann::json doc = try_parse_json(text, record.problem);
    if (!record.problem.empty()) return;
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
  LineSplitter lines_;
  std::vector<std::string> columns_;
  std::vector<std::string> empty_;
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
