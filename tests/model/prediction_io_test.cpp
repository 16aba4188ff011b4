// predict's streaming path in the domain: the input reader (lines, TAB pairs, JSONL, CSV), the
// JSONL writer, and predict_stream (input order across chunks, error objects, --strict's stop).
#include "model/prediction_io.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tests/converters/model_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using namespace recmodel;

namespace {

model::BatchPredictor make_predictor(size_t batch_size) {
  auto m = t::fixture_model("tiny", {"books", "electronics", "toys"}, /*seed=*/9, /*initializer_range=*/0.1);
  model::BatchPredictorOptions options;
  options.batch_size = batch_size;
  return model::BatchPredictor(m, t::fixture_tokenizer(), options);
}

model::InputSpec spec_of(const std::string& path, model::InputFormat format, std::string text_column = "text",
                         std::string pair_column = "", std::string id_column = "id") {
  model::InputSpec spec;
  spec.path = path;
  spec.format = format;
  spec.text_column = std::move(text_column);
  spec.pair_column = std::move(pair_column);
  spec.id_column = std::move(id_column);
  return spec;
}

std::vector<model::InputRecord> read_all(const model::InputSpec& spec) {
  model::InputReader reader(spec);
  std::vector<model::InputRecord> records;
  model::InputRecord record;
  while (reader.next(record)) records.push_back(record);
  return records;
}

// Runs predict_stream into a temporary file and returns what it wrote.
struct StreamRun {
  std::string out;
  model::StreamSummary summary;
  std::vector<std::string> bad;  // "line:error:nth" as on_bad saw them
};

StreamRun run_stream(model::BatchPredictor& predictor, const model::InputSpec& spec, model::StreamOptions options,
                     const model::OnBadInput& extra = nullptr) {
  StreamRun run;
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  auto on_bad = [&](uint64_t line, const std::string& error, uint64_t nth) {
    run.bad.push_back(std::to_string(line) + ":" + error + ":" + std::to_string(nth));
    if (extra) extra(line, error, nth);
  };
  try {
    run.summary = model::predict_stream(predictor, spec, file, "the file", options, on_bad);
  } catch (...) {
    std::fclose(file);
    throw;
  }
  std::rewind(file);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) run.out.append(buffer, n);
  std::fclose(file);
  return run;
}

std::vector<nlohmann::json> lines_of(const std::string& out) {
  std::vector<nlohmann::json> docs;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) docs.push_back(nlohmann::json::parse(line));
  return docs;
}

}  // namespace

TEST_CASE("InputReader reads lines, TAB pairs, JSONL and CSV columns with their line numbers and ids") {
  t::TempDir dir;
  t::write_text(dir / "in.txt", "red shoe\n\nblue \xff lamp\r\ngreen desk");
  auto lines = read_all(spec_of((dir / "in.txt").string(), model::InputFormat::lines));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].input.text == "red shoe");
  CHECK_FALSE(lines[0].input.pair);
  CHECK(lines[1].error.empty());  // empty text is the predictor's to judge
  CHECK(lines[1].input.text.empty());
  CHECK(lines[2].line == 3);
  CHECK(lines[2].error == "invalid UTF-8 at byte 6");
  CHECK(lines[3].input.text == "green desk");

  t::write_text(dir / "pairs.txt", "red shoe\tleather shoes\nno tab\n  \n");
  auto pairs = read_all(spec_of((dir / "pairs.txt").string(), model::InputFormat::pairs));
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[0].input.text == "red shoe");
  CHECK(pairs[0].input.pair == std::optional<std::string>("leather shoes"));
  CHECK(pairs[1].error == "expected two texts separated by a TAB (--pair)");
  CHECK(pairs[2].error == "empty text");

  t::write_text(dir / "in.jsonl", "{\"id\": 7, \"q\": \"usb cable\", \"t\": \"charger\"}\n"
                                  "{\"id\": \"x\", \"t\": \"lamp\"}\nnot json\n[1]\n\n{\"q\": 3, \"t\": \"a\"}\n");
  model::InputSpec jsonl = spec_of((dir / "in.jsonl").string(), model::InputFormat::jsonl, "q", "t", "id");
  auto docs = read_all(jsonl);
  REQUIRE(docs.size() == 6);
  CHECK(docs[0].id == "7");
  CHECK(docs[0].input.text == "usb cable");
  CHECK(docs[0].input.pair == std::optional<std::string>("charger"));
  CHECK(docs[1].id == "\"x\"");
  CHECK(docs[1].error == "missing field \"q\"");
  CHECK(docs[2].error == "invalid JSON");
  CHECK(docs[3].error == "expected a JSON object");
  CHECK(docs[4].error == "empty line");
  CHECK(docs[5].error == "field \"q\" is not a string");

  t::write_text(dir / "in.csv", "sku,text\nA1,red shoe\nA2,\"wooden desk, cheap\"\n");
  auto csv = read_all(spec_of((dir / "in.csv").string(), model::InputFormat::csv, "text", "", "sku"));
  REQUIRE(csv.size() == 2);
  CHECK(csv[0].id == "\"A1\"");
  CHECK(csv[1].input.text == "wooden desk, cheap");
  CHECK(csv[1].line == 3);
  CHECK_THROWS_AS(read_all(spec_of((dir / "in.csv").string(), model::InputFormat::csv, "title")), DataError);
  CHECK(model::InputSpec{}.name() == "<stdin>");
}

TEST_CASE("JsonlWriter writes predict's line format exactly") {
  model::Prediction p;
  p.logits = {0.5f, 2.0f, -1.0f};
  p.scores = {0.25f, 0.5f, 0.25f};
  p.tokens = 10;
  p.truncated = 3;
  std::string out;
  model::JsonlWriter full({"a", "b", "c\"d"}, /*regression=*/false, {/*top_k=*/5, /*probs=*/true, /*logits=*/true});
  full.append(out, "7", p);
  CHECK(out ==
        "{\"id\":7,\"label\":\"b\",\"score\":0.5,\"top_k\":[[\"b\",0.5],[\"a\",0.25],[\"c\\\"d\",0.25]],"
        "\"probs\":{\"a\":0.25,\"b\":0.5,\"c\\\"d\":0.25},\"logits\":[0.5,2,-1],\"truncated\":3}\n");
  out.clear();
  model::JsonlWriter plain({"a", "b", "c"}, false, {/*top_k=*/0});
  p.truncated = 0;
  plain.append(out, "", p);
  CHECK(out == "{\"label\":\"b\",\"score\":0.5}\n");

  out.clear();
  model::Prediction value;
  value.logits = {1.5f};
  model::JsonlWriter regression({"LABEL_0"}, /*regression=*/true, {/*top_k=*/3});
  regression.append(out, "\"r\"", value);
  regression.append_error(out, "", 4, "empty text");
  regression.append_error(out, "\"x\"", 5, "missing field \"q\"");
  CHECK(out == "{\"id\":\"r\",\"value\":1.5}\n{\"line\":4,\"error\":\"empty text\"}\n"
               "{\"id\":\"x\",\"line\":5,\"error\":\"missing field \\\"q\\\"\"}\n");
}

TEST_CASE("predict_stream answers every input in input order across chunks, errors on their lines") {
  t::TempDir dir;
  auto texts = t::fixture_texts(30, 6);
  std::string input;
  for (size_t i = 0; i < texts.size(); ++i) {
    input += texts[i] + "\n";
    if (i == 4) input += "\n";               // line 6
    if (i == 11) input += "bad \xfe byte\n";  // line 14
  }
  t::write_text(dir / "in.txt", input);
  model::InputSpec spec = spec_of((dir / "in.txt").string(), model::InputFormat::lines);

  auto predictor = make_predictor(4);
  model::StreamOptions options;
  options.chunk = 7;
  options.output.top_k = 2;
  auto run = run_stream(predictor, spec, options);
  CHECK(run.summary.scored == 30);
  CHECK(run.summary.bad == 2);
  CHECK(run.summary.truncated == 0);
  CHECK(run.summary.bad_lines == std::vector<uint64_t>{6, 14});
  CHECK(run.bad == std::vector<std::string>{"6:empty text:1", "14:invalid UTF-8 at byte 5:2"});
  auto docs = lines_of(run.out);
  REQUIRE(docs.size() == 32);
  CHECK(docs[5] == nlohmann::json{{"line", 6}, {"error", "empty text"}});
  CHECK(docs[13] == nlohmann::json{{"line", 14}, {"error", "invalid UTF-8 at byte 5"}});

  auto alone = make_predictor(1);
  size_t text = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (i == 5 || i == 13) continue;
    CAPTURE(i);
    const auto single = alone.predict(std::vector<model::TextInput>{{texts[text++], std::nullopt}});
    std::vector<size_t> order;
    model::rank_labels(single[0].scores, order);
    CHECK(docs[i]["label"] == predictor.labels()[order[0]]);
    CHECK(docs[i]["score"].get<double>() == doctest::Approx(single[0].scores[order[0]]).epsilon(1e-5));
    REQUIRE(docs[i]["top_k"].size() == 2);
  }

  // Batches of one are the same forward passes however the chunks fall (take() does not wait
  // to fill a chunk), so the stream writes the very bytes of the writer over predict().
  auto single = make_predictor(1);
  options.chunk = 4096;
  auto whole = run_stream(single, spec, options);
  model::JsonlWriter writer(single.labels(), false, options.output);
  std::vector<model::EncodedInput> encoded;
  for (const auto& s : texts) encoded.push_back(single.encode(s));
  const auto predictions = single.predict(encoded);
  std::string expected;
  for (size_t i = 0, row = 0; i < 32; ++i) {
    if (i == 5) writer.append_error(expected, "", 6, "empty text");
    else if (i == 13) writer.append_error(expected, "", 14, "invalid UTF-8 at byte 5");
    else writer.append(expected, "", predictions[row++]);
  }
  CHECK(whole.out == expected);
}

TEST_CASE("predict_stream stops where on_bad throws (--strict) and lists only the first bad lines") {
  t::TempDir dir;
  std::string input = "red shoe\n";
  for (int i = 0; i < 25; ++i) input += "\n";
  input += "blue lamp\n";
  t::write_text(dir / "in.txt", input);
  model::InputSpec spec = spec_of((dir / "in.txt").string(), model::InputFormat::lines);
  auto predictor = make_predictor(4);

  auto run = run_stream(predictor, spec, {});
  CHECK(run.summary.scored == 2);
  CHECK(run.summary.bad == 25);
  CHECK(run.summary.bad_lines.size() == model::StreamSummary::kListedBadLines);
  CHECK(run.summary.bad_lines.front() == 2);
  CHECK(run.bad.back() == "26:empty text:25");
  CHECK(lines_of(run.out).size() == 27);

  auto strict = [](uint64_t line, const std::string& error, uint64_t) { fail<DataError>("line {}: {}", line, error); };
  CHECK_THROWS_WITH_AS(run_stream(predictor, spec, {}, strict), "line 2: empty text", DataError);
}

TEST_CASE("predict_stream refuses an output it cannot write") {
  t::TempDir dir;
  t::write_text(dir / "in.txt", "red shoe\n");
  auto predictor = make_predictor(4);
  model::InputSpec spec = spec_of((dir / "in.txt").string(), model::InputFormat::lines);
  std::FILE* read_only = std::fopen((dir / "in.txt").c_str(), "r");
  REQUIRE(read_only != nullptr);
  CHECK_THROWS_WITH_AS(model::predict_stream(predictor, spec, read_only, "stdout", {}, nullptr),
                       "cannot write the predictions to stdout", DataError);
  std::fclose(read_only);
}
