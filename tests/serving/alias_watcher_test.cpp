// Following a registry alias: a promotion swaps the new version in after it was verified and
// warmed, a rollback swaps back, a version whose files changed is refused once (the old one
// keeps serving, the failure is in /info), and a removed alias leaves the served version alone.
#include "serving/alias_watcher.h"

#include <doctest/doctest.h>

#include <fstream>

#include "registry/reference.h"
#include "tests/converters/model_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using namespace recmodel;

namespace {

struct Fixture {
  t::TempDir dir;
  std::string registry_path = (dir / "registry.db").string();
  model::DynamicBatcher batcher{model::BatcherOptions{}, nullptr};
  serving::ServeMetrics metrics{64, 16384};
  std::vector<std::string> lines;
  std::unique_ptr<serving::VersionLoader> loader;

  Fixture() {
    for (int v = 1; v <= 3; ++v) {
      auto m = t::fixture_model("tiny", {"a" + std::to_string(v), "b", "c"}, /*seed=*/static_cast<uint64_t>(v));
      const auto folder = dir / ("m" + std::to_string(v));
      t::write_fixture_model(folder, m);
      registry::register_directory(folder, "m", registry_path);
    }
    serving::LoaderOptions options;
    options.registry = registry_path;
    options.cache = dir / "cache";
    loader = std::make_unique<serving::VersionLoader>(options, batcher, nullptr, [](const std::string&) {});
  }

  void promote(int64_t version) {
    registry::Registry registry(registry_path, registry::Registry::Access::write);
    registry.promote(registry::parse_ref("models:/m/" + std::to_string(version), false), "prod", "test");
  }

  model::VersionPtr load_current(const std::string& ref) {
    return loader->load_registered("m", ref, loader->resolve(registry::parse_ref(ref, false)));
  }

  // Serves models:/m@prod, pointing at m/1, watched without polling (the tests call check()).
  serving::ModelSet models;
  std::unique_ptr<serving::AliasWatcher> watcher;
  void follow_prod() {
    promote(1);
    models.add(load_current("models:/m@prod"), /*follows=*/true);
    watcher = std::make_unique<serving::AliasWatcher>(
        models, *loader, metrics, [this](const std::string& l) { lines.push_back(l); }, std::chrono::milliseconds(0));
  }
};

}  // namespace

TEST_CASE("AliasWatcher: a promotion swaps the verified version in, a rollback swaps back") {
  Fixture f;
  f.follow_prod();
  serving::ModelSet& models = f.models;
  serving::AliasWatcher& watcher = *f.watcher;
  CHECK(models.current(0)->version_label() == "m/1");

  watcher.check(0, false);  // nothing moved
  CHECK(models.current(0)->version_label() == "m/1");
  CHECK(f.lines.empty());

  model::VersionPtr held = models.current(0);  // a request in flight keeps its version
  f.promote(2);
  watcher.check(0, false);
  CHECK(models.current(0)->version_label() == "m/2");
  CHECK(models.current(0)->labels().front() == "a2");
  CHECK(held->version_label() == "m/1");
  REQUIRE(f.lines.size() == 1);
  CHECK(f.lines[0] == "serve: m now serves m/2 (models:/m@prod, was m/1)");

  {
    registry::Registry registry(f.registry_path, registry::Registry::Access::write);
    registry.rollback("m", "prod", "test");
  }
  watcher.check(0, false);
  CHECK(models.current(0)->version_label() == "m/1");
  CHECK(f.metrics.text().find("recmodel_model_info{model=\"m\",ref=\"models:/m@prod\",version=\"1\"} 1") !=
        std::string::npos);
}

TEST_CASE("AliasWatcher: a version whose files changed is refused once and the old one keeps serving") {
  Fixture f;
  f.follow_prod();
  serving::ModelSet& models = f.models;
  serving::AliasWatcher& watcher = *f.watcher;
  // Same size, different bytes: only a full re-hash sees it.
  const auto weights = f.dir / "m3" / "model.safetensors";
  {
    std::fstream file(weights, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-16, std::ios::end);
    file.write("\x7f\x7f\x7f\x7f", 4);
  }
  f.promote(3);
  watcher.check(0, false);
  watcher.check(0, false);  // the same files fail the same way: not retried, not logged again
  CHECK(models.current(0)->version_label() == "m/1");
  REQUIRE(f.lines.size() == 1);
  CHECK(f.lines[0].find("serve: error: cannot serve models:/m/3") == 0);
  CHECK(f.lines[0].find("model.safetensors changed") != std::string::npos);
  CHECK(f.lines[0].find("still serving m/1") != std::string::npos);
  const auto failure = models.failure(0);
  REQUIRE(failure);
  CHECK(failure->version == 3);
  CHECK(models.describe()[0]["last_error"]["version"] == 3);
  CHECK(f.metrics.text().find("recmodel_model_load_failed{model=\"m\"} 1") != std::string::npos);

  watcher.check(0, /*retry_failed=*/true);  // SIGHUP retries
  CHECK(f.lines.size() == 2);

  // The next good version clears the failure.
  f.promote(2);
  watcher.check(0, false);
  CHECK(models.current(0)->version_label() == "m/2");
  CHECK_FALSE(models.failure(0));
  CHECK(models.describe()[0]["last_error"].is_null());
}

TEST_CASE("AliasWatcher: a removed alias keeps the served version and says so once") {
  Fixture f;
  f.follow_prod();
  serving::ModelSet& models = f.models;
  serving::AliasWatcher& watcher = *f.watcher;
  {
    registry::Registry registry(f.registry_path, registry::Registry::Access::write);
    registry.remove_alias("m", "prod", "test");
  }
  watcher.check(0, false);
  watcher.check(0, false);
  CHECK(models.current(0)->version_label() == "m/1");
  REQUIRE(f.lines.size() == 1);
  CHECK(f.lines[0].find("still serving m/1") != std::string::npos);
  CHECK(models.describe()[0]["alias_missing"] == true);
}

TEST_CASE("AliasWatcher: a version missing on disk without --from is refused with the way out") {
  Fixture f;
  f.follow_prod();
  serving::ModelSet& models = f.models;
  serving::AliasWatcher& watcher = *f.watcher;
  std::filesystem::remove_all(f.dir / "m2");
  f.promote(2);
  watcher.check(0, false);
  CHECK(models.current(0)->version_label() == "m/1");
  REQUIRE(f.lines.size() == 1);
  CHECK(f.lines[0].find("no --from remote") != std::string::npos);
}
