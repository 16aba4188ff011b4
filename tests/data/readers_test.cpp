#include "data/readers.h"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "common/error.h"
#include "tests/support.h"

using namespace recmodel::data;
namespace t = recmodel::testing;

namespace {

std::vector<Record> read_all(const t::fs::path& path, Format format, std::vector<std::string> columns) {
  RecordReader reader(path, format, std::move(columns));
  std::vector<Record> records;
  Record record;
  while (reader.next(record)) records.push_back(record);
  return records;
}

std::string error_of(const t::fs::path& path, Format format, std::vector<std::string> columns) {
  try {
    read_all(path, format, std::move(columns));
  } catch (const recmodel::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("format_from_extension and parse_format") {
  CHECK(format_from_extension("a/b.csv") == Format::csv);
  CHECK(format_from_extension("B.TSV") == Format::tsv);
  CHECK(format_from_extension("x.jsonl") == Format::jsonl);
  CHECK(format_from_extension("x.ndjson") == Format::jsonl);
  CHECK_FALSE(format_from_extension("x.txt").has_value());
  CHECK_FALSE(format_from_extension("x.json").has_value());
  CHECK(parse_format("tsv") == Format::tsv);
  CHECK_THROWS_AS(parse_format("xlsx"), recmodel::UsageError);
}

TEST_CASE("CSV: quoted fields with embedded newlines and quotes keep their starting line") {
  t::TempDir dir;
  t::write_text(dir / "a.csv",
                "id,text,label\n"
                "1,\"hello, \"\"world\"\"\nsecond line\",pos\n"
                "2,plain,neg\n"
                "\n"
                "3,\"a\r\nb\r\nc\",neu\r\n"
                "4,last,pos");
  auto records = read_all(dir / "a.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 4);
  CHECK(records[0].line == 2);
  CHECK(records[0].values == std::vector<std::string>{"hello, \"world\"\nsecond line", "pos"});
  CHECK(records[0].problem.empty());
  CHECK(records[1].line == 4);
  CHECK(records[1].values == std::vector<std::string>{"plain", "neg"});
  CHECK(records[2].line == 6);  // the blank line 5 is skipped but counted
  CHECK(records[2].values[0] == "a\r\nb\r\nc");
  CHECK(records[3].line == 9);
  CHECK(records[3].values == std::vector<std::string>{"last", "pos"});
  CHECK(records[3].fields == std::vector<std::string>{"4", "last", "pos"});
}

TEST_CASE("CSV: a UTF-8 BOM before the header is ignored") {
  t::TempDir dir;
  t::write_text(dir / "bom.csv", "\xEF\xBB\xBFtext,label\nhi,pos\n");
  auto records = read_all(dir / "bom.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 1);
  CHECK(records[0].values[0] == "hi");
}

TEST_CASE("CSV: wrong field counts and invalid UTF-8 are reported per record") {
  t::TempDir dir;
  t::write_text(dir / "bad.csv",
                "text,label\n"
                "too,many,fields\n"
                "short\n"
                "caf\xE9,pos\n"       // Latin-1, not UTF-8
                "\xC0\xAF,pos\n"      // overlong encoding of '/'
                "fine,neg\n");
  auto records = read_all(dir / "bad.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 5);
  CHECK(records[0].problem == "expected 2 fields as in the header, found 3");
  CHECK(records[1].problem == "expected 2 fields as in the header, found 1");
  CHECK(records[2].line == 4);
  CHECK(records[2].problem == "invalid UTF-8 in column 'text' at byte 4");
  CHECK(records[3].problem == "invalid UTF-8 in column 'text' at byte 1");
  CHECK(records[4].problem.empty());
  CHECK(records[4].line == 6);
}

TEST_CASE("CSV: an unterminated quote is reported at the line where the record starts") {
  t::TempDir dir;
  t::write_text(dir / "open.csv",
                "text,label\n"
                "ok,pos\n"
                "\"never closed,neg\n"
                "more,pos\n"
                "and more,neg\n");
  auto records = read_all(dir / "open.csv", Format::csv, {"text", "label"});
  // The quote swallows nothing: the lines after it are rows of their own.
  REQUIRE(records.size() == 4);
  CHECK(records[1].line == 3);
  CHECK(records[1].problem ==
        "unterminated quoted field: the quote that opens field 1 is never closed; the lines after it are read as "
        "rows of their own");
  CHECK(raw_record_json(records[1]).dump() == R"("\"never closed,neg")");
  CHECK(records[2].line == 4);
  CHECK(records[2].problem.empty());
  CHECK(records[2].values == std::vector<std::string>{"more", "pos"});
  CHECK(records[3].line == 5);
  CHECK(records[3].values == std::vector<std::string>{"and more", "neg"});
}

TEST_CASE("CSV: a broken opening quote followed later by a quoted row no longer merges the rows between") {
  // Regression: libcsv's lenient mode read these 10 physical lines as 5 records with wrong
  // labels, and nothing was rejected.
  t::TempDir dir;
  t::write_text(dir / "merge.csv",
                "text,label\n"              // 1
                "first,toys\n"              // 2
                "\"broken quote,books\n"    // 3
                "second,toys\n"             // 4
                "third,books\n"             // 5
                "\"quoted, row\",toys\n"    // 6
                "fourth,books\n"            // 7
                "\"x\",toys\n"              // 8
                "fifth,books\n"             // 9
                "sixth,toys\n");            // 10
  auto records = read_all(dir / "merge.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 9);
  std::vector<uint64_t> lines;
  std::vector<std::string> problems;
  for (const auto& r : records) {
    lines.push_back(r.line);
    if (!r.problem.empty()) problems.push_back(std::to_string(r.line) + ": " + r.problem);
  }
  CHECK(lines == std::vector<uint64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] ==
        "3: the quote that opens field 1 closes on line 6 and text follows it; the lines after this one are read as "
        "rows of their own");
  CHECK(records[2].values == std::vector<std::string>{"second", "toys"});
  CHECK(records[3].values == std::vector<std::string>{"third", "books"});
  CHECK(records[4].values == std::vector<std::string>{"quoted, row", "toys"});
  CHECK(records[6].values == std::vector<std::string>{"x", "toys"});
  CHECK(records[8].values == std::vector<std::string>{"sixth", "toys"});
}

TEST_CASE("CSV: text after a closing quote rejects that row only") {
  t::TempDir dir;
  t::write_text(dir / "after.csv",
                "text,label\n"
                "\"closed\" trailing,books\n"
                "\"spaces after\"  ,toys\n"
                "\"a \"\"quoted\"\" word\",books\n"
                "\"closed\"x\"more,toys\n"
                "next,books\n");
  auto records = read_all(dir / "after.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 5);
  CHECK(records[0].line == 2);
  CHECK(records[0].problem ==
        "text after the closing quote of field 1; inside a quoted field a quote is written twice (\"\")");
  CHECK(raw_record_json(records[0]).dump() == R"("\"closed\" trailing,books")");
  CHECK(records[1].problem.empty());
  CHECK(records[1].values == std::vector<std::string>{"spaces after", "toys"});
  CHECK(records[2].values == std::vector<std::string>{"a \"quoted\" word", "books"});
  CHECK(records[3].line == 5);
  CHECK_FALSE(records[3].problem.empty());
  CHECK(records[4].line == 6);
  CHECK(records[4].values == std::vector<std::string>{"next", "books"});
}

TEST_CASE("CSV: a quote that never closes before the end of the file rejects one row and rereads the rest") {
  t::TempDir dir;
  t::write_text(dir / "eof.csv", "text,label\nok,pos\n\"open,neg\nmore,pos\nlast,neg");
  auto records = read_all(dir / "eof.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 4);
  CHECK(records[1].line == 3);
  CHECK(records[1].problem.rfind("unterminated quoted field", 0) == 0);
  CHECK(records[2].values == std::vector<std::string>{"more", "pos"});
  CHECK(records[3].line == 5);
  CHECK(records[3].values == std::vector<std::string>{"last", "neg"});
  // On the last line, there is nothing after it to read again.
  t::write_text(dir / "last.csv", "text,label\nok,pos\n\"open,neg\n");
  records = read_all(dir / "last.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 2);
  CHECK(records[1].problem == "unterminated quoted field: the quote that opens field 1 is never closed");
}

TEST_CASE("CSV: a multi-line quoted field is still one field, and a broken one costs its first line only") {
  t::TempDir dir;
  t::write_text(dir / "multi.csv",
                "id,text,label\n"
                "1,\"line one\nline two\",pos\n"  // 2-3: a proper multi-line field
                "2,\"starts\nends\" oops,neg\n"   // 4-5: closes with text after it
                "3,after,pos\n");                // 6
  auto records = read_all(dir / "multi.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 4);
  CHECK(records[0].line == 2);
  CHECK(records[0].last_line == 3);
  CHECK(records[0].values == std::vector<std::string>{"line one\nline two", "pos"});
  CHECK(records[1].line == 4);
  CHECK(records[1].problem ==
        "the quote that opens field 2 closes on line 5 and text follows it; the lines after this one are read as "
        "rows of their own");
  CHECK(records[2].line == 5);  // `ends" oops,neg` read again: two fields where three are expected
  CHECK(records[2].problem == "expected 3 fields as in the header, found 2");
  CHECK(records[3].line == 6);
  CHECK(records[3].values == std::vector<std::string>{"after", "pos"});
}

TEST_CASE("CSV: line numbers count LF, CRLF and CR-only line endings, and a mix of them") {
  // Regression: with CR-only line endings every row was reported as line 1.
  t::TempDir dir;
  const std::vector<std::string> rows = {"text,label", "a,1", "bad,row,here", "\"multi", "line\",2", "", "c,3"};
  for (const std::string eol : {"\n", "\r\n", "\r"}) {
    CAPTURE(eol == "\r" ? "CR" : eol == "\n" ? "LF" : "CRLF");
    std::string text;
    for (const auto& row : rows) text += row + eol;
    t::write_text(dir / "e.csv", text);
    auto records = read_all(dir / "e.csv", Format::csv, {"text", "label"});
    REQUIRE(records.size() == 4);
    CHECK(records[0].line == 2);
    CHECK(records[1].line == 3);
    CHECK(records[1].problem == "expected 2 fields as in the header, found 3");
    CHECK(records[2].line == 4);
    CHECK(records[2].values[0] == "multi" + eol + "line");
    CHECK(records[3].line == 7);
    CHECK(records[3].values == std::vector<std::string>{"c", "3"});
  }
  t::write_text(dir / "mixed.csv", "text,label\ra,1\r\nb,2\nbad\r\rc,3");
  auto records = read_all(dir / "mixed.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 4);
  CHECK(records[0].line == 2);
  CHECK(records[1].line == 3);
  CHECK(records[2].line == 4);
  CHECK(records[2].problem == "expected 2 fields as in the header, found 1");
  CHECK(records[3].line == 6);
  CHECK(records[3].values == std::vector<std::string>{"c", "3"});
}

TEST_CASE("CSV: a CR at the edge of a read chunk still ends one line, CRLF split or not") {
  t::TempDir dir;
  // The header fills the first 1 MiB chunk up to its CR, so the LF starts the next chunk.
  std::string header = "text,label," + std::string((1 << 20) - 11 - 1, 'x');
  t::write_text(dir / "edge.csv", header + "\r\na,1\rb,2\r");
  RecordReader reader(dir / "edge.csv", Format::csv, {"text", "label"});
  Record record;
  REQUIRE(reader.next(record));
  CHECK(record.line == 2);
  CHECK(record.fields == std::vector<std::string>{"a", "1"});
  REQUIRE(reader.next(record));
  CHECK(record.line == 3);
  CHECK_FALSE(reader.next(record));
}

TEST_CASE("CSV: lines after a failed multi-line quote are read again once, not once per failure") {
  // Every line here opens a quoted field that runs to the end of the file; rereading each
  // line's successors would be quadratic. 100k lines must take well under a second.
  t::TempDir dir;
  std::string text = "a,b,c,d\n";
  const int lines = 100000;
  for (int i = 0; i < lines; ++i) text += "a\",,\"b\n";
  t::write_text(dir / "q.csv", text);
  auto start = std::chrono::steady_clock::now();
  auto records = read_all(dir / "q.csv", Format::csv, {"a"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(records.size() == static_cast<size_t>(lines));
  bool all_rejected = true, lines_ok = true;
  for (size_t i = 0; i < records.size(); ++i) {
    all_rejected = all_rejected && records[i].problem.rfind("unterminated quoted field", 0) == 0;
    lines_ok = lines_ok && records[i].line == i + 2;
  }
  CHECK(all_rejected);
  CHECK(lines_ok);
  CHECK(seconds < 10);
}

TEST_CASE("CSV: a stray quote inside an unquoted field is kept as text") {
  t::TempDir dir;
  t::write_text(dir / "inch.csv", "text,label\nSamsung 55\" TV,tv\n");
  auto records = read_all(dir / "inch.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 1);
  CHECK(records[0].values[0] == "Samsung 55\" TV");
  CHECK(records[0].problem.empty());
}

TEST_CASE("CSV: a header without the requested column is an error naming the columns") {
  t::TempDir dir;
  t::write_text(dir / "h.csv", "review,stars\nx,1\n");
  std::string path = (dir / "h.csv").string();
  CHECK(error_of(dir / "h.csv", Format::csv, {"text", "label"}) ==
        path + ":1: no column 'text' in the header (columns: 'review', 'stars'); name the right one with the "
               "--*-column options");
  t::write_text(dir / "dup.csv", "text,text,label\nx,y,1\n");
  CHECK(error_of(dir / "dup.csv", Format::csv, {"text"}) ==
        (dir / "dup.csv").string() + ":1: the header names column 'text' twice; rename one of them");
  t::write_text(dir / "empty.csv", "");
  CHECK(error_of(dir / "empty.csv", Format::csv, {"text"}) ==
        (dir / "empty.csv").string() + ": the file is empty; expected a header line naming the columns");
  CHECK_THROWS_AS(RecordReader(dir / "missing.csv", Format::csv, {"text"}), recmodel::NotFoundError);
}

TEST_CASE("TSV: tab-separated with a header, quoting works as in CSV") {
  t::TempDir dir;
  t::write_text(dir / "a.tsv", "label\ttext\npos\thello world\nneg\t\"tab\there\"\n\t empty label\n");
  auto records = read_all(dir / "a.tsv", Format::tsv, {"text", "label"});
  REQUIRE(records.size() == 3);
  CHECK(records[0].values == std::vector<std::string>{"hello world", "pos"});
  CHECK(records[1].values == std::vector<std::string>{"tab\there", "neg"});
  CHECK(records[2].values == std::vector<std::string>{"empty label", ""});
  CHECK(records[2].problem.empty());
}

TEST_CASE("TSV: quoting is strict as in CSV, and CR-only lines are counted") {
  t::TempDir dir;
  t::write_text(dir / "b.tsv",
                "text\tlabel\r"
                "\"broken quote\tbooks\r"
                "fine\ttoys\r"
                "\"closed\" trailing\tbooks\r"
                "\"quoted\"\ttoys\r");
  auto records = read_all(dir / "b.tsv", Format::tsv, {"text", "label"});
  REQUIRE(records.size() == 4);
  CHECK(records[0].line == 2);
  CHECK(records[0].problem ==
        "the quote that opens field 1 closes on line 4 and text follows it; the lines after this one are read as "
        "rows of their own");
  CHECK(records[1].line == 3);
  CHECK(records[1].values == std::vector<std::string>{"fine", "toys"});
  CHECK(records[2].line == 4);
  CHECK(records[2].problem.rfind("text after the closing quote of field 1", 0) == 0);
  CHECK(records[3].line == 5);
  CHECK(records[3].values == std::vector<std::string>{"quoted", "toys"});
}

TEST_CASE("CSV: a NUL or ESC in the header is escaped in the missing-column error, not cut short") {
  // Regression: the message ended at the NUL ("(columns: te"), and an ESC reached the terminal.
  t::TempDir dir;
  t::write_text(dir / "h.csv", std::string("te\0xt,\x1b[31mlabel\nx,1\n", 21));
  CHECK(error_of(dir / "h.csv", Format::csv, {"text"}) ==
        (dir / "h.csv").string() +
            ":1: no column 'text' in the header (columns: 'te\\x00xt', '\\x1b[31mlabel'); name the right one with "
            "the --*-column options");
}

namespace {

// Writes a CSV whose line 3 opens a quote that never closes, followed by `rows` rows of about
// 64 KiB each (text "row N", label "a", a pad column), so that more than 64 MiB follow the quote.
void write_open_quote_file(const t::fs::path& path, int rows, const std::string& row_prefix = "row ") {
  std::ofstream out(path, std::ios::binary);
  out << "text,label,pad\nfirst,a,x\n\"unclosed,b,x\n";
  const std::string pad(64 << 10, 'x');
  for (int i = 0; i < rows; ++i) out << row_prefix << i << ",a," << pad << '\n';
}

}  // namespace

TEST_CASE("CSV: a quote left open for more than 64 MiB is one rejected row, and reading resumes at the next line") {
  // Regression: the whole file was refused (exit 3) however many rows --max-rejected allowed.
  t::TempDir dir;
  const int rows = 1100;  // 1100 x 64 KiB = 68.75 MiB after the quote
  write_open_quote_file(dir / "open.csv", rows);
  auto records = read_all(dir / "open.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == static_cast<size_t>(rows + 2));
  CHECK(records[0].problem.empty());
  CHECK(records[1].line == 3);
  CHECK(records[1].last_line == 3);
  CHECK(records[1].raw_line == "\"unclosed,b,x");
  CHECK(records[1].fields.empty());
  CHECK(records[1].problem.rfind("unterminated quoted field: the quote that opens field 1 is not closed within 64 MiB "
                                 "(by line ",
                                 0) == 0);
  CHECK(records[1].problem.find("; the lines after it are read as rows of their own") != std::string::npos);
  bool rows_ok = true;
  for (int i = 0; i < rows; ++i) {
    const Record& r = records[static_cast<size_t>(i) + 2];
    rows_ok = rows_ok && r.problem.empty() && r.line == static_cast<uint64_t>(i) + 4 &&
              r.values == std::vector<std::string>{"row " + std::to_string(i), "a"};
  }
  CHECK(rows_ok);
}

TEST_CASE("CSV: after a quote left open past 64 MiB, lines that leave a quote open are not read 64 MiB again") {
  // Each line `x..." , "y` closes an open quote and opens another, so the record from line 3 runs
  // past 64 MiB; read again, each of those lines leaves a quote open too. Reading 64 MiB once
  // per line would take minutes; they are rejected as the first record was.
  t::TempDir dir;
  {
    std::ofstream out(dir / "q.csv", std::ios::binary);
    out << "a,b\nfirst,1\n\"open,1\n";
    const std::string pad(64 << 10, 'x');
    for (int i = 0; i < 1100; ++i) out << pad << "\", \"y\n";
  }
  auto start = std::chrono::steady_clock::now();
  auto records = read_all(dir / "q.csv", Format::csv, {"a"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(records.size() == 1102);
  CHECK(records[1].problem.find("is not closed within 64 MiB") != std::string::npos);
  CHECK(records[2].line == 4);
  CHECK(records[2].problem.find("is still open at line ") != std::string::npos);
  bool all_rejected = true;
  for (size_t i = 1; i < records.size(); ++i)
    all_rejected = all_rejected && records[i].problem.rfind("unterminated quoted field", 0) == 0;
  CHECK(all_rejected);
  CHECK(seconds < 10);
}

TEST_CASE("CSV: rows read again after an unclosed quote are exact across chunk edges, with a BOM and CR or CRLF") {
  // The lines after a failed quote are read again from the file's offset after its first line;
  // the BOM, CR-only and CRLF line ends and 1 MiB chunk edges must not shift them by a byte.
  for (const std::string eol : {"\r", "\r\n", "\n"}) {
    t::TempDir dir;
    std::string text = "\xEF\xBB\xBFtext,label" + eol + "\"open,a" + eol;
    const int rows = 120000;  // about 2.3 MiB
    for (int i = 0; i < rows; ++i) text += "row " + std::to_string(i) + ",l" + std::to_string(i % 7) + eol;
    t::write_text(dir / "c.csv", text);
    auto records = read_all(dir / "c.csv", Format::csv, {"text", "label"});
    REQUIRE(records.size() == static_cast<size_t>(rows + 1));
    CHECK(records[0].line == 2);
    CHECK(records[0].problem.rfind("unterminated quoted field", 0) == 0);
    int first_bad = -1;  // the first row read wrong, if any
    for (int i = 0; i < rows && first_bad < 0; ++i) {
      const Record& r = records[static_cast<size_t>(i) + 1];
      if (!r.problem.empty() || r.line != static_cast<uint64_t>(i) + 3 ||
          r.values != std::vector<std::string>{"row " + std::to_string(i), "l" + std::to_string(i % 7)})
        first_bad = i;
    }
    CHECK(first_bad == -1);
  }
}

TEST_CASE("CSV: many two-line quotes that fail one after another take linear time, not a chunk reread each") {
  // Each record `"aN` closes on its next line with text after the quote, so 300k rows each go
  // back one line; reading the 1 MiB chunk again for each would take minutes of copying.
  t::TempDir dir;
  std::string text = "text,label\n";
  const int pairs = 300000;  // about 4.4 MiB: the rewinds cross chunk edges too
  for (int i = 0; i < pairs; ++i) text += "\"a" + std::to_string(i) + "\nb\"x,1\n";
  t::write_text(dir / "r.csv", text);
  auto start = std::chrono::steady_clock::now();
  auto records = read_all(dir / "r.csv", Format::csv, {"text", "label"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(records.size() == static_cast<size_t>(2 * pairs));
  int first_bad = -1;
  for (int i = 0; i < pairs && first_bad < 0; ++i) {
    const Record& broken = records[2 * static_cast<size_t>(i)];
    const Record& after = records[2 * static_cast<size_t>(i) + 1];
    if (broken.line != static_cast<uint64_t>(2 * i + 2) || broken.raw_line != "\"a" + std::to_string(i) ||
        broken.problem.rfind("the quote that opens field 1 closes on line ", 0) != 0 ||
        after.line != static_cast<uint64_t>(2 * i + 3) || !after.problem.empty() ||
        after.values != std::vector<std::string>{"b\"x", "1"})
      first_bad = i;
  }
  CHECK(first_bad == -1);
  CHECK(seconds < 5);
}

TEST_CASE("CSV: from a pipe, a failed multi-line quote still rereads the lines after it") {
  // A pipe cannot be read twice, so the reader keeps those lines itself there.
  t::TempDir dir;
  const t::fs::path fifo = dir / "in.csv";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::thread writer([&] {
    std::ofstream out(fifo, std::ios::binary);
    out << "text,label\n\"broken,a\nred,b\n\"multi\nline\",c\nblue,d\n";
  });
  auto records = read_all(fifo, Format::csv, {"text", "label"});
  writer.join();
  REQUIRE(records.size() == 4);
  CHECK(records[0].line == 2);
  CHECK(records[0].problem.rfind("the quote that opens field 1 closes on line 4 and text follows it", 0) == 0);
  CHECK(records[1].line == 3);
  CHECK(records[1].values == std::vector<std::string>{"red", "b"});
  CHECK(records[2].line == 4);
  CHECK(records[2].values == std::vector<std::string>{"multi\nline", "c"});
  CHECK(records[3].values == std::vector<std::string>{"blue", "d"});
}

TEST_CASE("CSV: a header with broken quoting is an error naming its line") {
  t::TempDir dir;
  t::write_text(dir / "h.csv", "\"text\" x,label\na,b\n");
  CHECK(error_of(dir / "h.csv", Format::csv, {"text"}) ==
        (dir / "h.csv").string() +
            ":1: cannot read the header: text after the closing quote of field 1; inside a quoted field a quote is "
            "written twice (\"\")");
}

TEST_CASE("JSONL: strings, numbers and problems per line") {
  t::TempDir dir;
  t::write_text(dir / "a.jsonl",
                "{\"text\": \"five\", \"label\": 5}\n"
                "{\"text\": \"half\", \"label\": 4.5, \"extra\": [1]}\n"
                "\n"
                "{\"text\": \"no label\"}\n"
                "{\"text\": \"null label\", \"label\": null}\n"
                "not json\n"
                "[1, 2]\n"
                "{\"text\": [\"a\"], \"label\": \"x\"}\n"
                "{\"text\": \"bad \xFF byte\", \"label\": \"x\"}\n"
                "{\"text\": \"bool\", \"label\": true}\r\n"
                "{\"text\": \"last\", \"label\": \"pos\"}");
  auto records = read_all(dir / "a.jsonl", Format::jsonl, {"text", "label"});
  REQUIRE(records.size() == 10);
  CHECK(records[0].values == std::vector<std::string>{"five", "5"});
  CHECK(records[0].line == 1);
  CHECK(records[1].values == std::vector<std::string>{"half", "4.5"});
  CHECK(records[2].line == 4);
  CHECK(records[2].problem == "missing field \"label\"");
  CHECK(records[3].problem == "missing field \"label\"");
  CHECK(records[4].line == 6);
  CHECK(records[4].problem.rfind("not valid JSON: parse error at line 1, column 2", 0) == 0);
  CHECK(records[5].problem == "expected a JSON object, found an array");
  CHECK(records[6].problem == "field \"text\" is an array; expected a string or a number");
  CHECK(records[7].problem == "invalid UTF-8 at byte 15 of the line");
  CHECK(records[8].values == std::vector<std::string>{"bool", "true"});
  CHECK(records[9].values == std::vector<std::string>{"last", "pos"});
  CHECK(records[9].line == 11);
}

TEST_CASE("JSONL: CR-only line endings and JSON nested too deep") {
  t::TempDir dir;
  t::write_text(dir / "cr.jsonl", "{\"text\": \"a\", \"label\": 1}\r\r{\"text\": \"b\", \"label\": 2}\r");
  auto records = read_all(dir / "cr.jsonl", Format::jsonl, {"text", "label"});
  REQUIRE(records.size() == 2);
  CHECK(records[1].line == 3);
  CHECK(records[1].values == std::vector<std::string>{"b", "2"});
  // A crafted line nested 100k deep: rejected with a reason, and kept as a string for
  // rejected.jsonl, whose writer would otherwise recurse once per level.
  t::write_text(dir / "deep.jsonl", std::string(100000, '[') + std::string(100000, ']') + "\n");
  records = read_all(dir / "deep.jsonl", Format::jsonl, {"text", "label"});
  REQUIRE(records.size() == 1);
  CHECK(records[0].problem == "JSON nested deeper than 64 levels");
  CHECK(raw_record_json(records[0]).is_string());
}

TEST_CASE("raw_record_json gives the fields by column name, or as read") {
  t::TempDir dir;
  t::write_text(dir / "a.csv", "text,label\nx,pos\na,b,c\n");
  auto records = read_all(dir / "a.csv", Format::csv, {"text", "label"});
  REQUIRE(records.size() == 2);
  CHECK(raw_record_json(records[0]).dump() == R"({"text":"x","label":"pos"})");
  CHECK(raw_record_json(records[1]).dump() == R"(["a","b","c"])");
  t::write_text(dir / "a.jsonl", "{\"text\": \"x\", \"label\": 1}\nnot json\n");
  auto lines = read_all(dir / "a.jsonl", Format::jsonl, {"text", "label"});
  CHECK(raw_record_json(lines[0]).dump() == R"({"text":"x","label":1})");
  CHECK(raw_record_json(lines[1]).dump() == R"("not json")");
}

TEST_CASE("Readers stream files larger than one read chunk with exact line numbers") {
  t::TempDir dir;
  std::string csv = "text,label\n";
  std::string jsonl;
  const int rows = 45000;
  for (int i = 0; i < rows; ++i) {
    // Every 7th record spans two lines, so records cross the 1 MiB chunk edges in all ways.
    if (i % 7 == 0) csv += "\"row " + std::to_string(i) + std::string(40, 'x') + "\nsecond\"," + std::to_string(i % 3) + "\n";
    else csv += "row " + std::to_string(i) + std::string(40, 'y') + "," + std::to_string(i % 3) + "\n";
    jsonl += "{\"text\": \"row " + std::to_string(i) + std::string(40, 'z') + "\", \"label\": " + std::to_string(i % 3) + "}\n";
  }
  REQUIRE(csv.size() > (2u << 20));
  t::write_text(dir / "big.csv", csv);
  t::write_text(dir / "big.jsonl", jsonl);

  RecordReader reader(dir / "big.csv", Format::csv, {"text", "label"});
  Record record;
  uint64_t expected_line = 2;
  int count = 0;
  bool lines_ok = true, values_ok = true;
  while (reader.next(record)) {
    lines_ok = lines_ok && record.line == expected_line && record.problem.empty();
    values_ok = values_ok && record.values[0].rfind("row " + std::to_string(count), 0) == 0 &&
                record.values[1] == std::to_string(count % 3);
    expected_line += count % 7 == 0 ? 2 : 1;
    ++count;
  }
  CHECK(count == rows);
  CHECK(lines_ok);
  CHECK(values_ok);
  CHECK(reader.bytes_read() == csv.size());

  auto records = read_all(dir / "big.jsonl", Format::jsonl, {"text", "label"});
  REQUIRE(records.size() == static_cast<size_t>(rows));
  CHECK(records.back().line == static_cast<uint64_t>(rows));
  CHECK(records.back().values[1] == std::to_string((rows - 1) % 3));
}
