// serve --log-predictions: JSONL lines with the fields `recmodel drift` reads, many threads at
// once, sampling that repeats for a seed, appending, a bounded queue that drops and says so,
// and a path that cannot be opened refused with a DataError naming it.
#include "serving/prediction_log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using recmodel::serving::PredictionLog;
using recmodel::serving::PredictionRecord;

namespace {

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

PredictionRecord classification(size_t tokens, const std::string& label = "refund", float score = 0.91f) {
  PredictionRecord r;
  r.time_ms = 1796284800123;  // 2026-12-03T08:00:00.123Z
  r.model = "intent";
  r.version = 7;
  r.tokens = tokens;
  r.truncated = 0;
  r.unk_tokens = 1;
  r.label = label;
  r.score = score;
  return r;
}

// Returns how many of `n` records a log sampling `share` with `seed` keeps.
size_t kept(double share, uint64_t seed, size_t n) {
  t::TempDir dir;
  {
    PredictionLog log((dir / "p.jsonl").string(), share, seed, nullptr);
    for (size_t i = 0; i < n; ++i) log.record(classification(i));
  }
  return read_lines(dir / "p.jsonl").size();
}

}  // namespace

TEST_CASE("prediction log: a classification line has drift's fields in order") {
  t::TempDir dir;
  PredictionLog log((dir / "p.jsonl").string(), 1.0, 1, nullptr);
  log.record(classification(14));
  log.flush();
  CHECK(t::read_text(dir / "p.jsonl") ==
        "{\"time\":\"2026-12-03T08:00:00.123Z\",\"model\":\"intent\",\"version\":7,\"tokens\":14,"
        "\"truncated\":0,\"unk_tokens\":1,\"label\":\"refund\",\"score\":0.91}\n");
}

TEST_CASE("prediction log: a regression line has value instead of label and score") {
  t::TempDir dir;
  PredictionLog log((dir / "p.jsonl").string(), 1.0, 1, nullptr);
  PredictionRecord r = classification(600);
  r.regression = true;
  r.label.clear();
  r.score = -2.5f;
  r.truncated = 88;
  r.version = 0;
  log.record(r);
  log.flush();
  CHECK(t::read_text(dir / "p.jsonl") ==
        "{\"time\":\"2026-12-03T08:00:00.123Z\",\"model\":\"intent\",\"version\":0,\"tokens\":600,"
        "\"truncated\":88,\"unk_tokens\":1,\"value\":-2.5}\n");
}

TEST_CASE("prediction log: labels with quotes, control characters and bad UTF-8 stay valid JSON") {
  t::TempDir dir;
  PredictionLog log((dir / "p.jsonl").string(), 1.0, 1, nullptr);
  log.record(classification(3, "say \"hi\"\\\n\x01"));
  log.record(classification(3, "bad \xff utf8"));
  PredictionRecord nan = classification(3);
  nan.score = std::numeric_limits<float>::quiet_NaN();
  log.record(nan);
  log.flush();
  auto lines = read_lines(dir / "p.jsonl");
  REQUIRE(lines.size() == 3);
  CHECK(nlohmann::json::parse(lines[0])["label"] == "say \"hi\"\\\n\x01");
  CHECK(nlohmann::json::parse(lines[1])["label"] == "bad \xef\xbf\xbd utf8");
  CHECK(nlohmann::json::parse(lines[2])["score"].is_null());
}

TEST_CASE("prediction log: 10,000 records from 4 threads are 10,000 valid lines") {
  t::TempDir dir;
  std::atomic<int> drops{0};
  {
    PredictionLog log((dir / "p.jsonl").string(), 1.0, 1, [&] { ++drops; });
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&log, i] {
        for (size_t k = 0; k < 2500; ++k) log.record(classification(i * 2500 + k, "label" + std::to_string(i)));
      });
    for (auto& thread : threads) thread.join();
  }  // the destructor drains
  CHECK(drops == 0);
  auto lines = read_lines(dir / "p.jsonl");
  REQUIRE(lines.size() == 10000);
  std::set<size_t> tokens;
  for (const auto& line : lines) {
    auto j = nlohmann::json::parse(line);
    REQUIRE(j.size() == 8);
    for (const char* field : {"time", "model", "version", "tokens", "truncated", "unk_tokens", "label", "score"})
      REQUIRE_MESSAGE(j.contains(field), field);
    CHECK(j["label"] == "label" + std::to_string(j["tokens"].get<size_t>() / 2500));
    tokens.insert(j["tokens"].get<size_t>());
  }
  CHECK(tokens.size() == 10000);  // each record once
}

TEST_CASE("prediction log: a 0.1 sample keeps about a tenth, the same records for the same seed") {
  const size_t first = kept(0.1, 42, 10000);
  CHECK(first >= 850);
  CHECK(first <= 1150);
  CHECK(kept(0.1, 42, 10000) == first);
  CHECK(kept(1.0, 42, 10000) == 10000);
  // Another seed draws other records (the count alone could match by chance; the lines would not).
  t::TempDir dir;
  auto lines_for = [&](uint64_t seed, const std::string& name) {
    {
      PredictionLog log((dir / name).string(), 0.1, seed, nullptr);
      for (size_t i = 0; i < 1000; ++i) log.record(classification(i));
    }
    return read_lines(dir / name);
  };
  CHECK(lines_for(42, "a") == lines_for(42, "b"));
  CHECK(lines_for(42, "c") != lines_for(43, "d"));
}

TEST_CASE("prediction log: an existing file is appended to, created files are mode 0644") {
  t::TempDir dir;
  const auto path = dir / "p.jsonl";
  t::write_text(path, "{\"earlier\":1}\n");
  {
    PredictionLog log(path.string(), 1.0, 1, nullptr);
    log.record(classification(1));
  }
  {
    PredictionLog log(path.string(), 1.0, 1, nullptr);
    log.record(classification(2));
  }
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "{\"earlier\":1}");
  CHECK(nlohmann::json::parse(lines[1])["tokens"] == 1);
  CHECK(nlohmann::json::parse(lines[2])["tokens"] == 2);

  const mode_t old_mask = ::umask(022);
  { PredictionLog log((dir / "new.jsonl").string(), 1.0, 1, nullptr); }
  ::umask(old_mask);
  struct stat st {};
  REQUIRE(::stat((dir / "new.jsonl").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("prediction log: a path that cannot be opened is a DataError naming it") {
  t::TempDir dir;
  std::filesystem::create_directories(dir / "folder");
  const std::string folder = (dir / "folder").string();
  CHECK_THROWS_WITH_AS(PredictionLog(folder, 1.0, 1, nullptr),
                       ("cannot open prediction log " + folder + ": Is a directory").c_str(), recmodel::DataError);
  const std::string missing = (dir / "no" / "such" / "p.jsonl").string();
  CHECK_THROWS_WITH_AS(PredictionLog(missing, 1.0, 1, nullptr),
                       ("cannot open prediction log " + missing + ": No such file or directory").c_str(),
                       recmodel::DataError);
}

TEST_CASE("prediction log: a FIFO nobody reads is refused instead of hanging the start") {
  t::TempDir dir;
  const std::string fifo = (dir / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK_THROWS_AS(PredictionLog(fifo, 1.0, 1, nullptr), recmodel::DataError);
}

TEST_CASE("prediction log: a share of 0 or over 1 is refused") {
  t::TempDir dir;
  CHECK_THROWS_AS(PredictionLog((dir / "p").string(), 0.0, 1, nullptr), recmodel::UsageError);
  CHECK_THROWS_AS(PredictionLog((dir / "p").string(), 1.5, 1, nullptr), recmodel::UsageError);
}

TEST_CASE("prediction log: when the writer falls behind, records are dropped and counted, not queued without bound") {
  t::TempDir dir;
  const std::string fifo = (dir / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  // A reader that opens the FIFO and reads nothing until told: the writer blocks on a full pipe.
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  std::atomic<int> drops{0};
  {
    PredictionLog log(fifo, 1.0, 1, [&] { ++drops; });
    for (size_t i = 0; i < 200000; ++i) log.record(classification(i));
    // At most 65,536 queued plus what the pipe (64 KiB) and the writer's batch hold.
    CHECK(drops > 200000 - 65536 * 2 - 1000);
    // Drain the pipe so the destructor can finish writing.
    std::atomic<bool> stop{false};
    std::thread drain([&] {
      char buffer[65536];
      while (!stop) {
        if (::read(reader, buffer, sizeof buffer) <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    log.flush();
    stop = true;
    drain.join();
  }
  ::close(reader);
}
