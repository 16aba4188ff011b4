#include <doctest/doctest.h>

#include <string>

#include <fmt/format.h>

#include "common/error.h"
#include "monitoring/traffic.h"
#include "registry/registry.h"
#include "tests/support.h"

using namespace recmodel;
using namespace recmodel::monitoring;

namespace {

std::string log_line(const std::string& time, const std::string& model, int version, int tokens, int truncated,
                     int unk, const std::string& label, double score) {
  return fmt::format(
      "{{\"time\":\"{}\",\"model\":\"{}\",\"version\":{},\"tokens\":{},\"truncated\":{},\"unk_tokens\":{},"
      "\"label\":\"{}\",\"score\":{}}}\n",
      time, model, version, tokens, truncated, unk, label, score);
}

}  // namespace

TEST_CASE("a serve log is told from predictions and texts by its first line") {
  CHECK(detect_kind(log_line("2026-12-04T10:00:00.000Z", "m", 1, 10, 0, 0, "a", 0.5)) == TrafficKind::log);
  CHECK(detect_kind(R"({"id": 3, "label": "a", "score": 0.9, "top_k": [["a", 0.9]]})") == TrafficKind::predictions);
  CHECK(detect_kind(R"({"line": 4, "error": "empty text"})") == TrafficKind::predictions);
  CHECK_FALSE(detect_kind(R"({"text": "red shoes", "label": "a"})").has_value());
  CHECK_FALSE(detect_kind("red shoes size 42").has_value());
}

TEST_CASE("a log keeps the chosen model and version, the times from --since and the last --window records") {
  recmodel::testing::TempDir dir;
  std::string text;
  text += log_line("2026-12-04T10:00:00.000Z", "intent", 3, 12, 0, 1, "a", 0.5);
  text += log_line("2026-12-04T10:01:00.000Z", "intent", 3, 40, 8, 0, "b", 0.6);
  text += log_line("2026-12-04T10:02:00.000Z", "other", 3, 9, 0, 0, "a", 0.7);
  text += log_line("2026-12-04T10:03:00.000Z", "intent", 2, 9, 0, 0, "a", 0.8);
  text += log_line("2026-12-04T10:04:00.000Z", "intent", 3, 10, 0, 5, "a", 0.9);
  recmodel::testing::write_text(dir.path() / "log.jsonl", text);
  const std::string path = (dir.path() / "log.jsonl").string();

  TrafficFilter filter;
  filter.served_name = "intent";
  filter.version = 3;
  TrafficSummary summary;
  LiveTraffic live = read_traffic(path, TrafficKind::log, filter, summary);
  CHECK(live.scores == std::vector<double>{0.5, 0.6, 0.9});
  CHECK(live.tokens == std::vector<double>{12, 32, 10});  // what the model saw, after truncation
  CHECK(live.unk_rates == std::vector<double>{1.0 / 12, 0, 0.5});
  CHECK(live.truncated == 1);
  CHECK(summary.other_versions == std::vector<int64_t>{2});
  CHECK(summary.other_models == std::vector<std::string>{"other"});

  filter.window = 2;
  filter.since_ms = registry::parse_time("2026-12-04T10:00:30Z");
  live = read_traffic(path, TrafficKind::log, filter, summary);
  CHECK(live.scores == std::vector<double>{0.6, 0.9});
  CHECK(registry::format_time(*summary.first_ms) == "2026-12-04T10:01:00.000Z");

  filter = TrafficFilter{};
  CHECK_THROWS_WITH_AS(read_traffic(path, TrafficKind::log, filter, summary),
                       doctest::Contains("several served models ('intent', 'other'); choose one with --served-name"),
                       UsageError);
}

TEST_CASE("a bad log line is refused naming file and line, but a last line cut short is skipped") {
  recmodel::testing::TempDir dir;
  const std::string good = log_line("2026-12-04T10:00:00.000Z", "m", 1, 12, 0, 1, "a", 0.5);
  recmodel::testing::write_text(dir.path() / "cut.jsonl", good + good + "{\"time\":\"2026-12-04T10:0");
  TrafficSummary summary;
  LiveTraffic live = read_traffic((dir.path() / "cut.jsonl").string(), TrafficKind::log, {}, summary);
  CHECK(live.size() == 2);
  CHECK(summary.skipped == 1);

  recmodel::testing::write_text(dir.path() / "bad.jsonl", good + "not json\n" + good);
  CHECK_THROWS_WITH_AS(read_traffic((dir.path() / "bad.jsonl").string(), TrafficKind::log, {}, summary),
                       doctest::Contains("bad.jsonl:2: not a JSON object"), DataError);
  recmodel::testing::write_text(dir.path() / "counts.jsonl", log_line("2026-12-04T10:00:00Z", "m", 1, 5, 0, 9, "a", 0.5));
  CHECK_THROWS_WITH_AS(read_traffic((dir.path() / "counts.jsonl").string(), TrafficKind::log, {}, summary),
                       doctest::Contains("counts.jsonl:1: \"truncated\" 0 and \"unk_tokens\" 9 do not fit"), DataError);
  recmodel::testing::write_text(dir.path() / "score.jsonl", log_line("2026-12-04T10:00:00Z", "m", 1, 5, 0, 0, "a", 1.5));
  CHECK_THROWS_WITH_AS(read_traffic((dir.path() / "score.jsonl").string(), TrafficKind::log, {}, summary),
                       doctest::Contains("\"score\" 1.5 is not a probability"), DataError);
}

TEST_CASE("a predictions file skips its error lines and has no times or token counts") {
  recmodel::testing::TempDir dir;
  recmodel::testing::write_text(dir.path() / "p.jsonl",
                             "{\"label\":\"a\",\"score\":0.9}\n{\"line\":2,\"error\":\"empty text\"}\n"
                             "{\"id\":3,\"label\":\"b\",\"score\":0.4,\"top_k\":[[\"b\",0.4]]}\n");
  const std::string path = (dir.path() / "p.jsonl").string();
  TrafficSummary summary;
  LiveTraffic live = read_traffic(path, TrafficKind::predictions, {}, summary);
  CHECK(live.labels == std::vector<std::string>{"a", "b"});
  CHECK(live.tokens.empty());
  CHECK(summary.skipped == 1);
  TrafficFilter since;
  since.since_ms = 0;
  CHECK_THROWS_WITH_AS(read_traffic(path, TrafficKind::predictions, since, summary),
                       doctest::Contains("--since needs times"), UsageError);
  TrafficFilter regression;
  regression.regression = true;
  CHECK_THROWS_WITH_AS(read_traffic(path, TrafficKind::predictions, regression, summary),
                       doctest::Contains("no \"value\": the model is a regression model"), DataError);
}
