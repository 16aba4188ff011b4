// serve's Prometheus metrics: the text passes `promtool check metrics` (format and lint: HELP,
// _total counters, units), counters count, a model swap leaves one recmodel_model_info series,
// label values with quotes and backslashes are escaped, and many threads record at once.
#include "serving/metrics.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace t = recmodel::testing;
using recmodel::serving::ServeMetrics;

namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult run_command(const std::string& command) {
  CommandResult result;
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs `promtool check metrics` on `text` (promtool comes with Debian's prometheus package,
// installed by scripts/install-deps.sh).
CommandResult promtool_check(const std::string& text) {
  REQUIRE_MESSAGE(run_command("command -v promtool").exit_code == 0,
                  "promtool is missing: run scripts/install-deps.sh (Debian package prometheus)");
  t::TempDir dir;
  t::write_text(dir / "metrics.txt", text);
  return run_command("promtool check metrics < '" + (dir / "metrics.txt").string() + "'");
}

// Returns the lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) found.push_back(line);
  return found;
}

// Returns the value of the one sample `series` (name with its labels, as written), or -1 when
// the text has no such sample.
double sample(const std::string& text, const std::string& series) {
  auto found = lines_starting(text, series + " ");
  if (found.empty()) return -1;
  REQUIRE(found.size() == 1);
  return std::stod(found[0].substr(series.size() + 1));
}

// A realistic mix: several routes and statuses, batches, a swap, a failure, odd labels.
// One scored input: `tokens` before truncation (the model saw at most 512 of them).
recmodel::serving::PredictionSignals signals(const std::string& label, size_t tokens, double score, size_t unknown,
                                             bool truncated = false) {
  recmodel::serving::PredictionSignals out;
  out.label = label;
  out.score = score;
  out.input_tokens = tokens;
  out.truncated = truncated;
  out.seen_tokens = std::min<size_t>(tokens, 512);
  out.unknown_tokens = unknown;
  return out;
}

void record_mix(ServeMetrics& m) {
  for (int i = 0; i < 3; ++i) m.request("/predict", "POST", 200, 0.004);
  m.request("/predict", "POST", 429, 0.0001);
  m.request("/predict", "POST", 413, 0.0002);
  m.request("/v2/models/{name}/infer", "POST", 200, 0.012);
  m.request("/health", "GET", 200, 0.00005);
  m.request("/metrics", "GET", 200, 0.001);
  m.request("other", "GET", 404, 0.00003);
  m.request("other", "BREW", 405, 0.00003);
  m.queue_time("intent", 0.0015);
  m.batch("intent", 12, 12 * 40, 0.018);
  m.batch("intent", 48, 48 * 200, 0.25);
  m.set_queue_inputs(7);
  m.set_in_flight(3);
  m.model_loaded("intent", "7", "models:/intent@production");
  m.model_loaded("intent", "8", "models:/intent@production");
  m.model_loaded("lang", "2", "models:/lang@production");
  m.model_load_failed("lang");
  m.registry_poll_error("lang");
  m.prediction("intent", signals("refund", 14, 0.97, 1));
  m.prediction("intent", signals("refund", 600, 0.55, 0, true));
  m.prediction("intent", signals("say \"hi\" \\ back", 30, 0.35, 3));
  m.prediction("intent", signals("two\nlines", 9, 0.91, 0));
  m.prediction_log_dropped();
}

}  // namespace

TEST_CASE("metrics: a realistic mix passes promtool check metrics with no lint problem") {
  ServeMetrics m(48, 16384);
  record_mix(m);
  const std::string text = m.text();
  auto check = promtool_check(text);
  CHECK_MESSAGE(check.exit_code == 0, check.output);
  CHECK_MESSAGE(check.output.empty(), check.output);

  // Every family has HELP and TYPE, and counters end in _total.
  for (const auto& type : lines_starting(text, "# TYPE ")) {
    std::istringstream words(type.substr(7));
    std::string name, kind;
    words >> name >> kind;
    CHECK_MESSAGE(lines_starting(text, "# HELP " + name + " ").size() == 1, name);
    if (kind == "counter") CHECK_MESSAGE(name.size() > 6, name);
    if (kind == "counter") CHECK(name.compare(name.size() - 6, 6, "_total") == 0);
  }
  CHECK(lines_starting(text, "# TYPE ").size() == 22);
}

TEST_CASE("metrics: counters, gauges and histograms hold what was recorded") {
  ServeMetrics m(48, 16384);
  record_mix(m);
  const std::string text = m.text();
  CHECK(sample(text, R"(recmodel_http_requests_total{method="POST",route="/predict",status="200"})") == 3);
  CHECK(sample(text, R"(recmodel_http_requests_total{method="POST",route="/predict",status="429"})") == 1);
  CHECK(sample(text, R"(recmodel_http_requests_total{method="POST",route="/predict",status="413"})") == 1);
  CHECK(sample(text, R"(recmodel_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"})") ==
        1);
  CHECK(sample(text, R"(recmodel_http_requests_total{method="GET",route="other",status="404"})") == 1);
  // A method the client made up is counted as "other".
  CHECK(sample(text, R"(recmodel_http_requests_total{method="other",route="other",status="405"})") == 1);
  CHECK(lines_starting(text, "recmodel_http_requests_total{").size() == 8);
  CHECK(sample(text, R"(recmodel_http_request_duration_seconds_count{route="/predict"})") == 5);
  CHECK(sample(text, R"(recmodel_http_request_duration_seconds_bucket{route="/predict",le="0.0005"})") == 2);
  CHECK(sample(text, R"(recmodel_http_request_duration_seconds_bucket{route="/predict",le="10"})") == 5);
  CHECK(sample(text, R"(recmodel_http_request_duration_seconds_bucket{route="/predict",le="+Inf"})") == 5);

  // Batch buckets follow the limits: 1, 2, 4, ..., 32, then the limit 48; 64 ... 8192, 16384.
  CHECK(sample(text, R"(recmodel_batch_inputs_bucket{model="intent",le="32"})") == 1);
  CHECK(sample(text, R"(recmodel_batch_inputs_bucket{model="intent",le="48"})") == 2);
  CHECK(lines_starting(text, R"(recmodel_batch_inputs_bucket{model="intent",le="64"})").empty());
  CHECK(sample(text, R"(recmodel_batch_tokens_bucket{model="intent",le="64"})") == 0);
  CHECK(sample(text, R"(recmodel_batch_tokens_bucket{model="intent",le="512"})") == 1);
  CHECK(sample(text, R"(recmodel_batch_tokens_bucket{model="intent",le="16384"})") == 2);
  CHECK(sample(text, R"(recmodel_batch_tokens_sum{model="intent"})") == 12 * 40 + 48 * 200);
  CHECK(sample(text, R"(recmodel_inference_duration_seconds_count{model="intent"})") == 2);
  CHECK(sample(text, R"(recmodel_queue_duration_seconds_count{model="intent"})") == 1);
  CHECK(sample(text, "recmodel_queue_inputs") == 7);
  CHECK(sample(text, "recmodel_requests_in_flight") == 3);

  // The swap intent/7 -> intent/8 leaves only intent/8's info series.
  auto info = lines_starting(text, "recmodel_model_info{");
  REQUIRE(info.size() == 2);
  CHECK(sample(text, R"(recmodel_model_info{model="intent",ref="models:/intent@production",version="8"})") == 1);
  CHECK(sample(text, R"(recmodel_model_info{model="lang",ref="models:/lang@production",version="2"})") == 1);
  CHECK(sample(text, R"(recmodel_model_loads_total{model="intent"})") == 2);
  CHECK(sample(text, R"(recmodel_model_load_failed{model="intent"})") == 0);
  CHECK(sample(text, R"(recmodel_model_load_failed{model="lang"})") == 1);
  CHECK(sample(text, R"(recmodel_model_load_failures_total{model="lang"})") == 1);
  CHECK(sample(text, R"(recmodel_model_load_failures_total{model="intent"})") == 0);
  CHECK(sample(text, R"(recmodel_registry_poll_errors_total{model="lang"})") == 1);

  // Label values are escaped as the format says: \" \\ \n.
  CHECK(sample(text, R"(recmodel_predictions_total{label="refund",model="intent"})") == 2);
  CHECK(sample(text, R"(recmodel_predictions_total{label="say \"hi\" \\ back",model="intent"})") == 1);
  CHECK(sample(text, R"(recmodel_predictions_total{label="two\nlines",model="intent"})") == 1);
  CHECK(sample(text, R"(recmodel_input_tokens_bucket{model="intent",le="8"})") == 0);
  CHECK(sample(text, R"(recmodel_input_tokens_bucket{model="intent",le="16"})") == 2);
  CHECK(sample(text, R"(recmodel_input_tokens_bucket{model="intent",le="512"})") == 3);
  CHECK(sample(text, R"(recmodel_input_tokens_bucket{model="intent",le="1024"})") == 4);
  CHECK(sample(text, R"(recmodel_truncated_inputs_total{model="intent"})") == 1);
  // The drift signals: confidence, and the [UNK] share of what the model saw.
  CHECK(sample(text, R"(recmodel_prediction_score_bucket{model="intent",le="0.4"})") == 1);
  CHECK(sample(text, R"(recmodel_prediction_score_bucket{model="intent",le="0.6"})") == 2);
  CHECK(sample(text, R"(recmodel_prediction_score_bucket{model="intent",le="0.95"})") == 3);
  CHECK(sample(text, R"(recmodel_prediction_score_count{model="intent"})") == 4);
  CHECK(sample(text, R"(recmodel_prediction_score_sum{model="intent"})") == doctest::Approx(0.97 + 0.55 + 0.35 + 0.91));
  CHECK(sample(text, R"(recmodel_seen_tokens_total{model="intent"})") == 14 + 512 + 30 + 9);
  CHECK(sample(text, R"(recmodel_unknown_tokens_total{model="intent"})") == 4);
  CHECK(sample(text, "recmodel_prediction_log_dropped_total") == 1);

  CHECK(sample(text, "recmodel_build_info{version=\"" RECMODEL_VERSION "\"}") == 1);
  const double started = sample(text, "recmodel_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  CHECK(started > now - 600);
  CHECK(started <= now + 1);
}

TEST_CASE("metrics: a fresh server's text passes promtool and shows zeroed process series") {
  ServeMetrics m(64, 16384);
  const std::string text = m.text();
  auto check = promtool_check(text);
  CHECK_MESSAGE(check.exit_code == 0, check.output);
  CHECK_MESSAGE(check.output.empty(), check.output);
  CHECK(sample(text, "recmodel_prediction_log_dropped_total") == 0);
  CHECK(sample(text, "recmodel_queue_inputs") == 0);
  CHECK(lines_starting(text, "recmodel_model_info{").empty());
}

TEST_CASE("metrics: reloading the version already served keeps its one info series") {
  ServeMetrics m(64, 16384);
  m.model_loaded("intent", "7", "models:/intent@production");
  m.model_loaded("intent", "7", "models:/intent@production");
  const std::string text = m.text();
  CHECK(lines_starting(text, "recmodel_model_info{").size() == 1);
  CHECK(sample(text, R"(recmodel_model_info{model="intent",ref="models:/intent@production",version="7"})") == 1);
}

TEST_CASE("metrics: 8 threads recording 10,000 requests each count 80,000 while scraped") {
  ServeMetrics m(64, 16384);
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, empty_scrapes{0};
  std::thread scraper([&] {
    while (!done) {
      if (m.text().empty()) ++empty_scrapes;
      ++scrapes;
    }
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&m, i] {
      const std::string model = "m" + std::to_string(i % 3);
      for (int k = 0; k < 10000; ++k) {
        m.request("/predict", "POST", 200, 0.001);
        if (k % 100 == 0) {
          m.request("/route" + std::to_string(k % 7), "GET", 200 + k % 5, 0.001);
          m.prediction(model, signals("label" + std::to_string(k % 11), 20, 0.9, 0));
          m.model_loaded(model, std::to_string(k), "models:/x@prod");
        }
      }
    });
  for (auto& thread : threads) thread.join();
  done = true;
  scraper.join();
  CHECK(scrapes > 0);
  CHECK(empty_scrapes == 0);
  const std::string text = m.text();
  CHECK(sample(text, R"(recmodel_http_requests_total{method="POST",route="/predict",status="200"})") == 80000);
  CHECK(sample(text, R"(recmodel_http_request_duration_seconds_count{route="/predict"})") == 80000);
  CHECK(lines_starting(text, "recmodel_model_info{").size() == 3);
  double predictions = 0;
  for (const auto& line : lines_starting(text, "recmodel_predictions_total{"))
    predictions += std::stod(line.substr(line.rfind(' ') + 1));
  CHECK(predictions == 8 * 100);
}
