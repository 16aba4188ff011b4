// The registry library: numbering, aliases and their history, schema versions and
// migrations, failure modes (corrupt, foreign, newer, read-only, locked files) and many
// processes writing at once.
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "common/error.h"
#include "registry/registry.h"
#include "registry/migrate.h"
#include "registry/schema.h"
#include "registry/postgres.h"
#include "registry/sqlite.h"
#include "tests/registry_backends.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace r = recmodel::registry;
namespace fs = std::filesystem;
using recmodel::ExitCode;

namespace {

// Makes a small model directory with the given weights bytes.
fs::path make_model(const fs::path& dir, const std::string& weights = "weights-1") {
  t::write_text(dir / "config.json", "{\"model_type\": \"bert\"}\n");
  t::write_text(dir / "model.safetensors", weights);
  t::write_text(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nshoe\n");
  t::write_text(dir / "onnx" / "model.onnx", "onnx-bytes");
  return dir;
}

// Returns the exit code a call throws with, or 0 when it does not throw.
template <typename F>
int exit_code_of(F&& call, std::string* message = nullptr) {
  try {
    call();
  } catch (const recmodel::Error& e) {
    if (message) *message = e.what();
    return static_cast<int>(e.code());
  }
  return 0;
}

// A fake clock for the registry: starts at 2025-05-03T12:00:00Z and advances 1 minute a call.
struct FakeClock {
  int64_t ms = r::parse_time("2025-05-03T12:00:00Z");
  std::function<int64_t()> function() {
    return [this] {
      int64_t now = ms;
      ms += 60 * 1000;
      return now;
    };
  }
};

r::RegistryOptions options_with(FakeClock* clock = nullptr, int timeout_ms = 5000) {
  r::RegistryOptions options;
  options.user = "tester@ci";
  options.lock_timeout_ms = timeout_ms;
  options.recmodel_version = "test";
  if (clock) options.clock_ms = clock->function();
  return options;
}

r::RegisterRequest request_for(const std::string& name, const fs::path& dir, const r::Manifest& manifest) {
  r::RegisterRequest request;
  request.name = name;
  request.path = dir;
  request.manifest = manifest;
  return request;
}

r::ModelRef version_ref(const std::string& name, int64_t version) {
  return {r::ModelRef::Kind::version, name, version, ""};
}

r::ModelRef alias_ref(const std::string& name, const std::string& alias) {
  return {r::ModelRef::Kind::alias, name, 0, alias};
}

}  // namespace

TEST_CASE("registry references parse in every documented form and bad ones are refused") {
  auto ref = r::parse_ref("models:/intent/3", false);
  CHECK(ref.kind == r::ModelRef::Kind::version);
  CHECK(ref.name == "intent");
  CHECK(ref.version == 3);
  CHECK(ref.uri() == "models:/intent/3");
  ref = r::parse_ref("models:/intent@production", false);
  CHECK(ref.kind == r::ModelRef::Kind::alias);
  CHECK(ref.alias == "production");
  CHECK(r::parse_ref("models:/intent/latest", false).kind == r::ModelRef::Kind::latest);
  CHECK(r::parse_ref("models:/intent", false).kind == r::ModelRef::Kind::model);
  CHECK(r::parse_ref("query-intent.v2/12", true).uri() == "models:/query-intent.v2/12");
  CHECK(r::parse_ref("intent@staging", true).uri() == "models:/intent@staging");

  for (const char* bad : {"models:/", "models:/intent/0", "models:/intent/03", "models:/intent/x", "models:/intent/-1",
                          "models:/intent@", "models:/intent@1abc", "models:/in tent/1", "models:/intent/1/2",
                          "models:/intent@latest", "models:/../etc/1", "models:/intent@a/b"})
    CHECK_MESSAGE(exit_code_of([&] { r::parse_ref(bad, false); }) == 2, bad);
  CHECK(exit_code_of([&] { r::parse_ref("intent/3", false); }) == 2);  // a path, not a URI, outside the registry
  CHECK(r::is_registry_uri("models:/x/1"));
  CHECK_FALSE(r::is_registry_uri("./models/x"));
  CHECK(exit_code_of([] { r::validate_tag_key("team name"); }) == 2);
  CHECK(exit_code_of([] { r::validate_tag_value("team", "a\nb"); }) == 2);
  CHECK(exit_code_of([] { r::validate_model_name(std::string(129, 'a')); }) == 2);
}

TEST_CASE("times parse with and without zones and format back as UTC") {
  CHECK(r::format_time(r::parse_time("2025-05-03T14:00:00Z")) == "2025-05-03T14:00:00.000Z");
  CHECK(r::format_time(r::parse_time("2025-05-03T16:30+02:00")) == "2025-05-03T14:30:00.000Z");
  CHECK(r::format_time(r::parse_time("2025-05-03 14:00:30.25Z")) == "2025-05-03T14:00:30.250Z");
  CHECK(r::format_time(r::parse_time("2025-05-03Z")) == "2025-05-03T00:00:00.000Z");
  CHECK(exit_code_of([] { r::parse_time("3 May"); }) == 2);
  CHECK(exit_code_of([] { r::parse_time("2025-02-30T10:00Z"); }) == 2);
}

TEST_CASE("a manifest lists every file with size and SHA-256 and verify finds what changed") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 2);
  REQUIRE(manifest.files.size() == 4);
  CHECK(manifest.files[0].path == "config.json");
  CHECK(manifest.files[2].path == "onnx/model.onnx");
  // sha256("weights-1"), computed independently with sha256sum.
  CHECK(manifest.find("model.safetensors")->sha256 ==
        "d6d6b238a083cd70d9cca3b4232e0289a0dc5cfaa9644d8af7601f92b5c76f4f");
  CHECK(manifest.find("model.safetensors")->size == 9);
  CHECK(manifest.digest() == r::compute_manifest(model, 1).digest());
  CHECK(r::verify_manifest(model, manifest, 2).ok());

  t::write_text(model / "model.safetensors", "weights-2");  // same size, other bytes
  fs::remove(model / "vocab.txt");
  t::write_text(model / "notes.txt", "new");
  auto report = r::verify_manifest(model, manifest, 2);
  CHECK_FALSE(report.ok());
  CHECK(report.changed == std::vector<std::string>{"model.safetensors"});
  CHECK(report.missing == std::vector<std::string>{"vocab.txt"});
  CHECK(report.untracked == std::vector<std::string>{"notes.txt"});
  CHECK(report.checked == 3);
  fs::remove_all(model);
  CHECK(r::verify_manifest(model, manifest, 2).directory_missing);

  auto json = r::manifest_to_json(manifest);
  CHECK(r::manifest_from_json(json, "m.json").digest() == manifest.digest());
  json["files"][0]["path"] = "../escape";
  CHECK(exit_code_of([&] { r::manifest_from_json(json, "m.json"); }) == 3);
  CHECK(exit_code_of([&] { r::compute_manifest(dir / "absent", 1); }) == 4);
}

TEST_CASE("versions are numbered 1, 2, 3 per model and numbers are never reused, on SQLite and PostgreSQL") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 1);
  for (const std::string& location : t::fresh_registries(dir)) {
    CAPTURE(location);
    r::Registry registry(location, r::Registry::Access::write, options_with());
    for (int i = 1; i <= 3; ++i) CHECK(registry.register_version(request_for("intent", model, manifest)).version == i);
    CHECK(registry.register_version(request_for("stars", model, manifest)).version == 1);
    registry.delete_version(version_ref("intent", 3), false);
    CHECK(registry.register_version(request_for("intent", model, manifest)).version == 4);
    std::string message;
    CHECK(exit_code_of([&] { registry.version(version_ref("intent", 3)); }, &message) == 4);
    CHECK(message == "models:/intent/3: version 3 of intent was deleted");
    CHECK(exit_code_of([&] { registry.version(version_ref("intent", 9)); }, &message) == 4);
    CHECK(message == "models:/intent/9: intent has no version 9 (its newest is 4)");
    CHECK(exit_code_of([&] { registry.version(version_ref("intnt", 1)); }, &message) == 4);
    CHECK(message.find("did you mean 'intent'?") != std::string::npos);

    auto versions = registry.list_versions("intent");
    REQUIRE(versions.size() == 3);
    CHECK(versions[0].version == 4);  // newest first
    CHECK(registry.version({r::ModelRef::Kind::latest, "intent", 0, ""}).version == 4);
    registry.set_status(version_ref("intent", 4), "archived", false);
    CHECK(registry.version({r::ModelRef::Kind::latest, "intent", 0, ""}).version == 2);
    r::VersionFilter archived;
    archived.status = "archived";
    CHECK(registry.list_versions("intent", archived).size() == 1);
    auto models = registry.list_models();
    REQUIRE(models.size() == 2);
    CHECK(models[0].name == "intent");
    CHECK(models[0].version_count == 3);
    CHECK(*models[0].latest == 2);
  }
}

TEST_CASE("a registered version keeps its manifest, lineage fields and tags, on SQLite and PostgreSQL") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  t::write_text(model / "recmodel.json",
                R"({"metrics": {"accuracy": 0.9}, "parameters": {"lr": 5e-05}, "dataset_manifest_sha256": ")" +
                    std::string(64, 'a') + R"(", "base_checkpoint": "bert-base-uncased"})");
  for (const std::string& location : t::fresh_registries(dir)) {
    CAPTURE(location);
    r::Registry registry(location, r::Registry::Access::write, options_with());
    r::RegisterRequest request = request_for("intent", model, r::compute_manifest(model, 1));
    r::read_lineage_file(model, request);
    request.tags = {{"team", "search"}};
    registry.register_version(request);
    request.parent = version_ref("intent", 1);
    request.metrics["accuracy"] = 0.93;
    registry.register_version(request);

    r::VersionInfo info = registry.version(version_ref("intent", 2), true);
    CHECK(info.source_path == model.string());
    CHECK(info.file_count == 5);
    CHECK(info.manifest.files.size() == 5);
    CHECK(info.metrics["accuracy"] == 0.93);
    CHECK(info.params["lr"] == 5e-05);
    CHECK(*info.dataset_sha256 == std::string(64, 'a'));
    CHECK(*info.base_checkpoint == "bert-base-uncased");
    CHECK(*info.parent == "models:/intent/1");
    CHECK(info.tags.at("team") == "search");
    CHECK(info.created_by == "tester@ci");

    registry.record_evaluation(version_ref("intent", 2), {"test", std::nullopt, {{"f1_macro", 0.8}}, "", ""});
    registry.record_location(version_ref("intent", 2), {"remote", "s3://bucket/models", {{"objects", 5}}, "", ""});
    registry.record_location(version_ref("intent", 2), {"remote", "s3://bucket/models", {{"objects", 6}}, "", ""});
    auto lineage = registry.lineage(version_ref("intent", 2));
    CHECK(lineage.ancestors == std::vector<std::string>{"models:/intent/1"});
    CHECK(lineage.evaluations.size() == 1);
    REQUIRE(lineage.locations.size() == 1);  // the same remote twice is one copy, updated
    CHECK(lineage.locations[0].details["objects"] == 6);
    CHECK(registry.lineage(version_ref("intent", 1)).children == std::vector<std::string>{"models:/intent/2"});
    registry.delete_version(version_ref("intent", 1), false);
    CHECK(*registry.lineage(version_ref("intent", 2)).missing_ancestor == "models:/intent/1");

    request.parent = version_ref("intent", 7);
    CHECK(exit_code_of([&] { registry.register_version(request); }) == 4);
    CHECK(registry.list_versions("intent").size() == 1);  // the failed register left nothing behind
  }
}

TEST_CASE("alias moves are recorded, answer 'what was live when', and roll back, on SQLite and PostgreSQL") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 1);
  for (const std::string& location : t::fresh_registries(dir)) {
    CAPTURE(location);
    FakeClock clock;  // 12:00, 12:01, ... one minute per recorded event
    r::Registry registry(location, r::Registry::Access::write, options_with(&clock));
    for (int i = 0; i < 3; ++i) registry.register_version(request_for("intent", model, manifest));  // 12:00-12:02
    auto move = registry.promote(version_ref("intent", 1), "production", "first launch");        // 12:03
    CHECK(!move.from);
    CHECK(*move.to == 1);
    registry.promote(version_ref("intent", 2), "production", "better f1");  // 12:04
    auto same = registry.promote(alias_ref("intent", "production"), "production", "");
    CHECK(same.from == same.to);  // already there: nothing recorded
    registry.promote(version_ref("intent", 3), "production", "");  // 12:05

    auto history = registry.history("intent", std::string("production"));
    REQUIRE(history.size() == 3);
    CHECK(history[1].at == "2025-05-03T12:04:00.000Z");
    CHECK(*history[1].from == 1);
    CHECK(*history[1].to == 2);
    CHECK(history[1].reason == "better f1");
    CHECK(history[1].by == "tester@ci");
    CHECK(!registry.alias_at("intent", "production", r::parse_time("2025-05-03T12:02:59Z")));
    CHECK(*registry.alias_at("intent", "production", r::parse_time("2025-05-03T12:03:00Z")) == 1);
    CHECK(*registry.alias_at("intent", "production", r::parse_time("2025-05-03T12:04:30Z")) == 2);
    CHECK(*registry.alias_at("intent", "production", r::parse_time("2026-01-01Z")) == 3);

    auto back = registry.rollback("intent", "production", "latency regression");
    CHECK(*back.from == 3);
    CHECK(*back.to == 2);
    CHECK(back.reason == "rollback: latency regression");
    CHECK(registry.version(alias_ref("intent", "production")).version == 2);

    std::string message;
    CHECK(exit_code_of([&] { registry.promote(version_ref("intent", 3), "production", "", 1); }, &message) == 6);
    CHECK(message.find("points at version 2, not version 1 (--expect)") != std::string::npos);
    CHECK(registry.promote(version_ref("intent", 3), "production", "", 2).to == 3);
    CHECK(exit_code_of([&] { registry.promote(version_ref("intent", 1), "staging", "", 4); }) == 6);
    CHECK(registry.promote(version_ref("intent", 1), "staging", "", 0).to == 1);

    CHECK(exit_code_of([&] { registry.delete_version(version_ref("intent", 3), false); }, &message) == 2);
    CHECK(message ==
          "models:/intent/3 is what alias production points at; move it first ('recmodel registry promote') or pass "
          "--force to delete it and remove it");
    auto removed = registry.delete_version(version_ref("intent", 3), true);
    REQUIRE(removed.size() == 1);
    CHECK(!removed[0].to);
    CHECK(exit_code_of([&] { registry.version(alias_ref("intent", "production")); }) == 4);
    CHECK(registry.history("intent", std::string("production")).back().reason == "version 3 deleted (--force)");
    CHECK(exit_code_of([&] { registry.set_status(version_ref("intent", 1), "archived", false); }) == 2);
    CHECK(exit_code_of([&] { registry.promote(version_ref("intent", 2), "prod uction", ""); }) == 2);
  }
}

TEST_CASE("a new registry file is mode 0600, in WAL mode, at the current schema version") {
  t::TempDir dir;
  fs::path path = dir / "registry.db";
  { r::Registry registry(path, r::Registry::Access::write, options_with()); }
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  r::SqliteDatabase db(path, r::OpenMode::read_only, 1000);
  CHECK(db.query_int("PRAGMA user_version") == r::schema_version());
  CHECK(db.query_int("PRAGMA application_id") == r::kApplicationId);
  CHECK(db.query_text("PRAGMA journal_mode") == "wal");

  std::string message;
  CHECK(exit_code_of([&] { r::Registry(dir / "absent.db", r::Registry::Access::read, options_with()); }, &message) ==
        4);
  CHECK(exit_code_of([&] { r::Registry(dir / "no" / "such" / "r.db", r::Registry::Access::write, options_with()); },
                     &message) == 4);
  CHECK(message.find("directory " + (dir / "no" / "such").string() + " does not exist") != std::string::npos);
  CHECK(!fs::exists(dir / "no"));
  { r::Registry created(dir / "new" / "r.db", r::Registry::Access::write, options_with(), true); }
  CHECK(fs::exists(dir / "new" / "r.db"));
  CHECK(exit_code_of([&] { r::Registry(dir.path(), r::Registry::Access::read, options_with()); }) == 3);
}

TEST_CASE("an older registry is migrated in one transaction after a backup") {
  t::TempDir dir;
  fs::path path = dir / "registry.db";
  {
    // A file as the first release wrote it: schema version 1 with one model.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, r::migrations()[0].c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    std::string setup = "PRAGMA user_version = 1; PRAGMA application_id = " + std::to_string(r::kApplicationId) +
                        "; INSERT INTO models (name, created_at, created_by, next_version) VALUES ('intent', "
                        "'2024-01-01T00:00:00.000Z', 'old', 2); INSERT INTO versions (model_id, version, source_path, "
                        "manifest_sha256, file_count, total_size, created_at, created_by) VALUES (1, 1, '/m', 'x', 0, "
                        "0, '2024-01-01T00:00:00.000Z', 'old');";
    REQUIRE(sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  r::Registry registry(path, r::Registry::Access::read, options_with());
  CHECK(registry.migration_backup() == path.string() + ".v1.bak");
  CHECK(registry.version(version_ref("intent", 1)).created_by == "old");
  registry.evaluations(version_ref("intent", 1));  // a version 2 table, present now
  r::SqliteDatabase backup(registry.migration_backup(), r::OpenMode::read_only, 1000);
  CHECK(backup.query_int("PRAGMA user_version") == 1);
  CHECK(backup.query_int("SELECT count(*) FROM versions") == 1);
  struct stat st {};
  REQUIRE(stat(registry.migration_backup().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  r::Registry again(path, r::Registry::Access::read, options_with());
  CHECK(again.migration_backup().empty());
}

TEST_CASE("newer, foreign and corrupt files are refused and left unchanged") {
  t::TempDir dir;
  fs::path newer = dir / "newer.db";
  { r::Registry registry(newer, r::Registry::Access::write, options_with()); }
  {
    r::SqliteDatabase db(newer, r::OpenMode::read_write, 1000);
    db.exec("PRAGMA user_version = 99; PRAGMA journal_mode = DELETE");
  }
  std::string before = t::read_text(newer);
  std::string message;
  CHECK(exit_code_of([&] { r::Registry(newer, r::Registry::Access::write, options_with()); }, &message) == 3);
  CHECK(message == newer.string() +
                       ": the registry has schema version 99 (written by recmodel test); this recmodel test "
                       "understands up to version 3. Upgrade recmodel to use it; the file was left unchanged");
  CHECK(t::read_text(newer) == before);

  fs::path foreign = dir / "foreign.db";
  {
    r::SqliteDatabase db(foreign, r::OpenMode::create, 1000);
    db.exec("CREATE TABLE experiments (id INTEGER)");
  }
  CHECK(exit_code_of([&] { r::Registry(foreign, r::Registry::Access::write, options_with()); }, &message) == 3);
  CHECK(message.find("not a recmodel registry") != std::string::npos);

  fs::path corrupt = dir / "corrupt.db";
  t::write_text(corrupt, std::string(4096, 'x'));
  CHECK(exit_code_of([&] { r::Registry(corrupt, r::Registry::Access::read, options_with()); }, &message) == 3);
  CHECK(message.find(corrupt.string() + ": not a usable registry") == 0);
  CHECK(t::read_text(corrupt) == std::string(4096, 'x'));
}

TEST_CASE("a read-only registry can be read but not written") {
  t::TempDir dir;
  fs::path path = dir / "registry.db";
  fs::path model = make_model(dir / "m");
  {
    r::Registry registry(path, r::Registry::Access::write, options_with());
    registry.register_version(request_for("intent", model, r::compute_manifest(model, 1)));
  }
  fs::permissions(path, fs::perms::owner_read | fs::perms::group_read);
  std::string message;
  CHECK(exit_code_of([&] { r::Registry(path, r::Registry::Access::write, options_with()); }, &message) == 3);
  CHECK(message.find("the registry is read-only") != std::string::npos);
  r::Registry reader(path, r::Registry::Access::read, options_with());
  CHECK(reader.list_versions("intent").size() == 1);
}

TEST_CASE("a registry locked longer than the timeout fails with exit 6 and records nothing, on SQLite and PostgreSQL") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 1);
  for (const std::string& location : t::fresh_registries(dir)) {
    CAPTURE(location);
    { r::Registry registry(location, r::Registry::Access::write, options_with()); }
    std::unique_ptr<r::Database> holder;
    if (r::is_postgresql_url(location))
      holder = std::make_unique<r::PostgresDatabase>(location, 1000);
    else
      holder = std::make_unique<r::SqliteDatabase>(location, r::OpenMode::read_write, 1000);
    holder->begin_write();
    r::Registry waiting(location, r::Registry::Access::write, options_with(nullptr, 300));
    std::string message;
    CHECK(exit_code_of([&] { waiting.register_version(request_for("intent", model, manifest)); }, &message) == 6);
    CHECK(message == waiting.path().string() +
                         ": the registry stayed locked by another process for more than 0.3 s while updating it; retry "
                         "when the other job has finished, or wait longer with --lock-timeout SECONDS");
    holder->commit();
    CHECK(exit_code_of([&] { waiting.list_versions("intent"); }) == 4);  // no model: nothing was half-written
    CHECK(waiting.register_version(request_for("intent", model, manifest)).version == 1);
  }
}

TEST_CASE("16 processes registering 50 versions each and moving aliases get 1..800 with consistent history, on SQLite and PostgreSQL") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 1);
  constexpr int kProcesses = 16, kEach = 50;
  for (const std::string& location : t::fresh_registries(dir)) {
    CAPTURE(location);
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
      pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        int code = 0;
        try {
          r::RegistryOptions options = options_with(nullptr, 120000);
          options.user = "job" + std::to_string(p);
          r::Registry registry(location, r::Registry::Access::write, options);
          for (int i = 0; i < kEach; ++i) {
            r::RegisterRequest request = request_for("intent", model, manifest);
            request.tags = {{"job", std::to_string(p)}};
            int64_t version = registry.register_version(request).version;
            if (i % 5 == 4)
              registry.promote(version_ref("intent", version), p % 2 ? "production" : "staging", "job " + std::to_string(p));
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "process %d: %s\n", p, e.what());
          code = 1;
        }
        _exit(code);
      }
      children.push_back(pid);
    }
    int failures = 0;
    for (pid_t pid : children) {
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
    }
    CHECK(failures == 0);

    r::Registry registry(location, r::Registry::Access::read, options_with());
    auto versions = registry.list_versions("intent");
    REQUIRE(versions.size() == kProcesses * kEach);
    std::set<int64_t> numbers;
    std::map<std::string, int> per_job;
    for (const auto& version : versions) {
      numbers.insert(version.version);
      ++per_job[version.tags.at("job")];
    }
    CHECK(numbers.size() == kProcesses * kEach);
    CHECK(*numbers.begin() == 1);
    CHECK(*numbers.rbegin() == kProcesses * kEach);
    CHECK(per_job.size() == kProcesses);
    for (const auto& [job, count] : per_job) CHECK(count == kEach);

    auto history = registry.history("intent");
    CHECK(history.size() == kProcesses * kEach / 5);
    std::map<std::string, std::optional<int64_t>> state;
    for (const auto& move : history) {
      CHECK(move.from == state[move.alias]);  // each move starts where the previous one ended
      state[move.alias] = move.to;
    }
    for (const char* alias : {"production", "staging"})
      CHECK(registry.version(alias_ref("intent", alias)).version == *state[alias]);
  }
}

TEST_CASE("a version 2 registry gains evaluation profiles: old evaluations read with none, new ones keep theirs") {
  t::TempDir dir;
  fs::path path = dir / "registry.db";
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const std::string schema = r::migrations()[0] + r::migrations()[1];
    REQUIRE(sqlite3_exec(db, schema.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    std::string setup = "PRAGMA user_version = 2; PRAGMA application_id = " + std::to_string(r::kApplicationId) +
                        "; INSERT INTO models (name, created_at, created_by, next_version) VALUES ('intent', "
                        "'2024-01-01T00:00:00.000Z', 'old', 2); INSERT INTO versions (model_id, version, source_path, "
                        "manifest_sha256, file_count, total_size, created_at, created_by) VALUES (1, 1, '/m', 'x', 0, "
                        "0, '2024-01-01T00:00:00.000Z', 'old'); INSERT INTO evaluations (version_id, split, metrics, "
                        "recorded_at, recorded_by) VALUES (1, 'test', '{\"accuracy\": 0.9}', "
                        "'2024-01-02T00:00:00.000Z', 'old');";
    REQUIRE(sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  r::Registry registry(path, r::Registry::Access::write, options_with());
  CHECK(registry.migration_backup() == path.string() + ".v2.bak");
  r::Evaluation recorded;
  recorded.split = "dev";
  recorded.metrics = {{"accuracy", 0.8}};
  recorded.profile = {{"format_version", 1}, {"examples", 3}};
  registry.record_evaluation(version_ref("intent", 1), recorded);
  const auto evaluations = registry.evaluations(version_ref("intent", 1));
  REQUIRE(evaluations.size() == 2);
  CHECK(evaluations[0].metrics["accuracy"] == 0.9);
  CHECK(evaluations[0].profile.is_null());
  CHECK(evaluations[1].profile["examples"] == 3);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: the dialect, the database's own failure modes, migration between backends

TEST_CASE("the registry's SQL is rewritten for PostgreSQL outside literals, and URLs lose their password") {
  CHECK(r::postgresql_sql("SELECT id FROM versions WHERE model_id = ?1 AND version = ?12") ==
        "SELECT id FROM versions WHERE model_id = $1 AND version = $12");
  CHECK(r::postgresql_sql("CREATE TABLE t (\n  id INTEGER PRIMARY KEY,\n  n INTEGER NOT NULL -- INTEGER ?1\n) WITHOUT ROWID;") ==
        "CREATE TABLE t (\n  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n  n BIGINT NOT NULL -- INTEGER ?1\n);");
  CHECK(r::postgresql_sql("SELECT group_concat(key || char(31) || value, char(30)), 'what?1 char(' FROM t") ==
        "SELECT string_agg(key || chr(31) || value, chr(30)), 'what?1 char(' FROM t");
  CHECK(r::postgresql_sql("SELECT 'it''s ?1', ?2") == "SELECT 'it''s ?1', $2");
  CHECK(r::redact_url("postgresql://ci:s3cret@db:5432/models?sslmode=require") ==
        "postgresql://ci@db:5432/models?sslmode=require");
  CHECK(r::redact_url("postgres://db/models?password=s3cret&sslmode=disable") == "postgres://db/models?sslmode=disable");
  CHECK(r::redact_url("postgresql://db/models?sslmode=disable&password=s3cret") == "postgresql://db/models?sslmode=disable");
  CHECK(r::redact_url("postgresql://ci@db/models") == "postgresql://ci@db/models");
}

TEST_CASE("a PostgreSQL registry from a newer recmodel, or another program's tables, is refused and left untouched") {
  const std::string newer = t::fresh_postgres_database();
  { r::Registry registry(newer, r::Registry::Access::write, options_with()); }
  {
    r::PostgresDatabase db(newer, 1000);
    db.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  }
  std::string message;
  CHECK(exit_code_of([&] { r::Registry registry(newer, r::Registry::Access::read, options_with()); }, &message) == 3);
  CHECK(message.find("schema version 99") != std::string::npos);
  CHECK(message.find("left unchanged") != std::string::npos);
  {
    r::PostgresDatabase db(newer, 1000);
    CHECK(db.query_text("SELECT value FROM meta WHERE key = 'schema_version'") == "99");
  }

  const std::string foreign = t::fresh_postgres_database();
  {
    r::PostgresDatabase db(foreign, 1000);
    db.exec("CREATE TABLE models (id bigint, shop text)");
  }
  CHECK(exit_code_of([&] { r::Registry registry(foreign, r::Registry::Access::write, options_with()); }, &message) == 3);
  CHECK(message.find("not a recmodel registry") != std::string::npos);
  r::PostgresDatabase db(foreign, 1000);
  CHECK(db.query_int("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 1);  // nothing was added

  const std::string empty = t::fresh_postgres_database();
  CHECK(exit_code_of([&] { r::Registry registry(empty, r::Registry::Access::read, options_with()); }, &message) == 4);
  CHECK(message.find("no registry in this database yet") != std::string::npos);
}

TEST_CASE("a PostgreSQL server that cannot be reached or refuses the login is exit 5, and the password is never shown") {
  const std::string url = t::fresh_postgres_database();
  const std::string with_password = "postgresql://" + url.substr(std::string("postgresql://").size()).replace(
                                                           url.find('@') - std::string("postgresql://").size(), 0,
                                                           ":not-the-password");
  std::string message;
  CHECK(exit_code_of([&] { r::Registry registry(with_password, r::Registry::Access::write, options_with()); },
                     &message) == 5);
  CHECK(message.find("refused the login") != std::string::npos);
  CHECK(message.find("not-the-password") == std::string::npos);
  CHECK(exit_code_of([&] { r::Registry registry("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
                                                r::Registry::Access::read, options_with()); },
                     &message) == 5);
  CHECK(message.find("cannot connect") != std::string::npos);
}

TEST_CASE("a PostgreSQL restart fails a change with exit 5 and nothing recorded, and reads retry until it is back") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 1);
  const std::string url = t::fresh_postgres_database();
  r::Registry registry(url, r::Registry::Access::write, options_with(nullptr, 20000));
  registry.register_version(request_for("intent", model, manifest));

  t::kill_postgres();
  std::string message;
  CHECK(exit_code_of([&] { registry.register_version(request_for("intent", model, manifest)); }, &message) == 5);
  CHECK(message.find("lost the connection") != std::string::npos);
  CHECK(message.find("nothing of it was recorded") != std::string::npos);

  // A read made while the server is down waits for it (within the lock timeout) and then answers.
  std::thread restart([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    t::restart_postgres();
  });
  std::vector<r::VersionInfo> versions;
  CHECK(exit_code_of([&] { versions = registry.list_versions("intent"); }, &message) == 0);
  restart.join();
  CHECK(versions.size() == 1);  // the failed register left nothing
  // A change after the restart needs a new connection of its own: a registry opened again works.
  r::Registry again(url, r::Registry::Access::write, options_with());
  CHECK(again.register_version(request_for("intent", model, manifest)).version == 2);
}

TEST_CASE("registry migrate copies every table SQLite -> PostgreSQL -> SQLite, row for row, and refuses to merge") {
  t::TempDir dir;
  fs::path model = make_model(dir / "m");
  r::Manifest manifest = r::compute_manifest(model, 1);
  FakeClock clock;
  const fs::path source = dir / "source.db";
  {
    r::Registry registry(source, r::Registry::Access::write, options_with(&clock));
    r::RegisterRequest request = request_for("intent", model, manifest);
    request.tags = {{"team", "search"}};
    request.metrics = {{"accuracy", 0.93}};
    registry.register_version(request);
    request.parent = version_ref("intent", 1);
    registry.register_version(request);
    registry.register_version(request_for("stars", model, manifest));
    registry.delete_version(version_ref("stars", 1), false);  // a gap in ids and numbers
    registry.promote(version_ref("intent", 1), "production", "launch");
    registry.promote(version_ref("intent", 2), "production", "better");
    registry.tag({r::ModelRef::Kind::model, "intent", 0, ""}, {{"owner", "ml"}}, {});
    registry.record_evaluation(version_ref("intent", 2), {"test", std::string(64, 'b'), {{"f1", 0.8}}, "", "",
                                                          nlohmann::json{{"bins", 10}}});
    registry.record_location(version_ref("intent", 2), {"remote", "s3://bucket/models", {{"objects", 5}}, "", ""});
  }
  const std::string postgres = t::fresh_postgres_database();
  const fs::path back = dir / "back.db";
  {
    r::Registry from(source, r::Registry::Access::read, options_with());
    r::Registry to(postgres, r::Registry::Access::write, options_with());
    const auto copies = r::migrate_registry(from, to);
    REQUIRE(copies.size() == r::migrated_tables().size());
    std::map<std::string, int64_t> rows;
    for (const auto& copy : copies) rows[copy.table] = copy.rows;
    CHECK(rows["models"] == 2);
    CHECK(rows["versions"] == 2);
    CHECK(rows["version_files"] == 8);
    CHECK(rows["alias_history"] == 2);
    CHECK(rows["evaluations"] == 1);
    CHECK(rows["locations"] == 1);
    std::string message;
    CHECK(exit_code_of([&] { r::migrate_registry(from, to); }, &message) == 2);  // never merged
    CHECK(message.find("already holds a registry (2 models)") != std::string::npos);
  }
  {
    r::Registry from(postgres, r::Registry::Access::read, options_with());
    r::Registry to(back, r::Registry::Access::write, options_with());
    r::migrate_registry(from, to);
  }
  r::Registry original(source, r::Registry::Access::read, options_with());
  for (const std::string& location : {postgres, back.string()}) {
    CAPTURE(location);
    r::Registry copy(location, r::Registry::Access::write, options_with());
    auto a = original.version(version_ref("intent", 2), true), b = copy.version(version_ref("intent", 2), true);
    CHECK(b.manifest_sha256 == a.manifest_sha256);
    CHECK(b.manifest.files.size() == a.manifest.files.size());
    CHECK(b.created_at == a.created_at);
    CHECK(b.tags == a.tags);
    CHECK(*b.parent == "models:/intent/1");
    CHECK(b.metrics == a.metrics);
    CHECK(copy.history("intent").size() == 2);
    CHECK(copy.history("intent").back().reason == "better");
    CHECK(copy.version(alias_ref("intent", "production")).version == 2);
    CHECK(copy.model("intent").tags.at("owner") == "ml");
    const auto evaluations = copy.evaluations(version_ref("intent", 2));
    REQUIRE(evaluations.size() == 1);
    CHECK(evaluations[0].profile["bins"] == 10);
    CHECK(*evaluations[0].dataset_sha256 == std::string(64, 'b'));
    CHECK(copy.lineage(version_ref("intent", 2)).locations.size() == 1);
    // Numbers and ids continue after the copied ones.
    CHECK(copy.register_version(request_for("intent", model, manifest)).version == 3);
    CHECK(copy.register_version(request_for("stars", model, manifest)).version == 2);
    copy.promote(version_ref("intent", 3), "production", "next");
    CHECK(copy.history("intent", std::string("production")).size() == 3);
  }
}

TEST_CASE("registry migrate names every column of the schema on both backends") {
  t::TempDir dir;
  const std::string file = (dir / "r.db").string(), postgres = t::fresh_postgres_database();
  { r::Registry registry(file, r::Registry::Access::write, options_with()); }
  { r::Registry registry(postgres, r::Registry::Access::write, options_with()); }
  r::SqliteDatabase sqlite(file, r::OpenMode::read_only, 1000);
  r::PostgresDatabase pg(postgres, 1000);
  std::set<std::string> listed, in_sqlite, in_postgres;
  for (const auto& table : r::migrated_tables()) {
    for (const auto& column : table.columns) listed.insert(std::string(table.name) + "." + column.substr(2));
    r::Statement columns(sqlite, std::string("SELECT name FROM pragma_table_info('") + table.name + "')");
    while (columns.step()) in_sqlite.insert(std::string(table.name) + "." + columns.text(0));
    r::Statement pg_columns(pg, "SELECT column_name FROM information_schema.columns WHERE table_name = ?1");
    pg_columns.bind(1, table.name);
    while (pg_columns.step()) in_postgres.insert(std::string(table.name) + "." + pg_columns.text(0));
  }
  CHECK(listed == in_sqlite);
  CHECK(listed == in_postgres);
  // Every table but meta (each registry keeps its own) is copied.
  r::Statement tables(sqlite, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name <> 'meta'");
  tables.step();
  CHECK(tables.int64(0) == static_cast<int64_t>(r::migrated_tables().size()));
}
