#include "data/readers.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

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
  CHECK(records[2].problem == "invalid UTF-8 in column \"text\" at byte 4");
  CHECK(records[3].problem == "invalid UTF-8 in column \"text\" at byte 1");
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
  REQUIRE(records.size() == 2);
  CHECK(records[1].line == 3);
  CHECK(records[1].problem == "unterminated quoted field: the quote opened in this record is never closed");
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
        path + ":1: no column \"text\" in the header (columns: review, stars); name the right one with the "
               "--*-column options");
  t::write_text(dir / "dup.csv", "text,text,label\nx,y,1\n");
  CHECK(error_of(dir / "dup.csv", Format::csv, {"text"}) ==
        (dir / "dup.csv").string() + ":1: the header names column \"text\" twice; rename one of them");
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
  CHECK(records[4].problem.rfind("invalid JSON: parse error at line 1, column 2", 0) == 0);
  CHECK(records[5].problem == "expected a JSON object, found an array");
  CHECK(records[6].problem == "field \"text\" is an array; expected a string or a number");
  CHECK(records[7].problem == "invalid UTF-8 at byte 15 of the line");
  CHECK(records[8].values == std::vector<std::string>{"bool", "true"});
  CHECK(records[9].values == std::vector<std::string>{"last", "pos"});
  CHECK(records[9].line == 11);
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
