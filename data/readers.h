// Streaming record readers for CSV (RFC 4180, strict quoting), TSV and JSONL datasets. Files are
// read in bounded chunks; lines end at "\n", "\r\n" or "\r"; each record carries its 1-based
// line and the columns asked for by name. A record that cannot be used is still returned, with
// `problem` saying why, so the caller can list it in rejected.jsonl instead of stopping at the
// first bad row; a row with broken quoting is rejected alone and never takes the rows after it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace recmodel::data {

namespace fs = std::filesystem;

enum class Format { csv, tsv, jsonl };

// Returns "csv", "tsv" or "jsonl".
std::string_view format_name(Format format);
// Parses "csv", "tsv" or "jsonl"; throws UsageError for anything else.
Format parse_format(std::string_view name);
// Returns the format a file name implies (.csv, .tsv/.tab, .jsonl/.ndjson, any case), or nullopt.
std::optional<Format> format_from_extension(const fs::path& path);

// One row of an input file.
struct Record {
  uint64_t line = 0;                // 1-based line where the record starts
  uint64_t last_line = 0;           // CSV/TSV: the line where it ends (a quoted field may span lines)
  std::vector<std::string> values;  // the requested columns, in the order asked; "" when absent
  std::string problem;              // non-empty: why the record cannot be used
  std::vector<std::string> fields;  // CSV/TSV: every field in file order (empty when quoting is broken)
  std::string raw_line;             // JSONL: the line as read; CSV/TSV with broken quoting: its first line
  std::shared_ptr<const std::vector<std::string>> header;  // CSV/TSV: the column names
};

// Returns the record as read, for rejected.jsonl: an object keyed by column name, an array of
// fields when their count does not match the header, the first line as a string when its quoting
// is broken, or the JSONL object (the line as a string when it is not valid JSON or nests too
// deep). Invalid UTF-8 is replaced by U+FFFD when the caller dumps with error_handler_t::replace.
nlohmann::ordered_json raw_record_json(const Record& record);

// Reads records one at a time from a CSV, TSV or JSONL file.
class RecordReader {
 public:
  // Largest line, and largest record of lines joined by a quoted field; a longer record is
  // almost always a quote that never closes, and the bound keeps memory flat.
  static constexpr size_t kMaxRecordBytes = 64u << 20;

  // Opens `path` and, for CSV/TSV, reads its header. Throws NotFoundError when the file is
  // missing and DataError when the header lacks one of `columns` or the file is empty.
  RecordReader(const fs::path& path, Format format, std::vector<std::string> columns);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Reads the next record into `record`; returns false at the end of the file. Throws
  // DataError only for what makes the rest of the file unreadable (I/O error, oversized line,
  // or an oversized record from a pipe; from a regular file such a record is rejected alone).
  bool next(Record& record);
  // Returns how many bytes of the file have been consumed so far.
  uint64_t bytes_read() const;
  // Returns the CSV/TSV column names (empty for JSONL).
  const std::vector<std::string>& header() const;

  class Source;

 private:
  std::unique_ptr<Source> source_;
};

}  // namespace recmodel::data
