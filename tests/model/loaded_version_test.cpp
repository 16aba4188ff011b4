// A served model version: what it is called in headers and metrics, its labels pre-quoted for
// the JSON writers, when it was loaded, and a folder that is not there.
#include "model/loaded_version.h"

#include <doctest/doctest.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tests/converters/model_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using namespace recmodel;

namespace {

model::VersionIdentity identity_of(const std::filesystem::path& dir, const std::string& name, int64_t version) {
  model::VersionIdentity identity;
  identity.name = name;
  identity.version = version;
  identity.ref = version ? "models:/" + name + "@production" : dir.string();
  identity.uri = version ? "models:/" + name + "/" + std::to_string(version) : dir.string();
  identity.dir = dir;
  identity.manifest_sha256 = version ? std::string(64, 'a') : std::string();
  return identity;
}

const model::Warn ignore = [](const std::string&) {};

}  // namespace

TEST_CASE("LoadedVersion::load opens a model folder with its label, quoted labels and load time") {
  t::TempDir tmp;
  const std::vector<std::string> labels = {"refund", "électronique", "toys"};
  auto m = t::fixture_model("tiny", labels, /*seed=*/5, /*initializer_range=*/0.1);
  t::write_fixture_model(tmp / "intent", m);

  model::BatchPredictorOptions options;
  options.batch_size = 64;
  const auto version = model::LoadedVersion::load(identity_of(tmp / "intent", "intent", 7), options, ignore);
  REQUIRE(version);
  CHECK(version->version_label() == "intent/7");
  CHECK(version->identity().uri == "models:/intent/7");
  CHECK(version->identity().ref == "models:/intent@production");
  CHECK(version->labels() == labels);
  CHECK(version->quoted_labels() == std::vector<std::string>{"\"refund\"", "\"électronique\"", "\"toys\""});
  for (size_t i = 0; i < labels.size(); ++i)
    CHECK(nlohmann::json::parse(version->quoted_labels()[i]).get<std::string>() == labels[i]);
  CHECK_FALSE(version->regression());
  CHECK(version->max_length() == 128);
  CHECK(version->predictor().batch_size() == 64);
  CHECK(std::regex_match(version->loaded_at(), std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));

  // It scores as the model does.
  const auto encoded = version->encoder().encode("red shoe");
  const auto p = version->predictor().predict(std::vector<model::EncodedInput>{encoded});
  model::BatchPredictor reference(t::fixture_model("tiny", labels, 5, 0.1), t::fixture_tokenizer(), options);
  const auto q = reference.predict(std::vector<model::EncodedInput>{encoded});
  REQUIRE(p.size() == 1);
  CHECK(p[0].logits == q[0].logits);
}

TEST_CASE("LoadedVersion of a folder given by path is labelled with its name alone") {
  t::TempDir tmp;
  auto m = t::fixture_model("tiny", {"a", "b"}, 3);
  t::write_fixture_model(tmp / "model", m);
  model::BatchPredictorOptions options;
  options.max_length = 32;
  const auto version = model::LoadedVersion::load(identity_of(tmp / "model", "model", 0), options, ignore);
  CHECK(version->version_label() == "model");
  CHECK(version->max_length() == 32);
  CHECK(version->identity().manifest_sha256.empty());
}

TEST_CASE("LoadedVersion::load refuses a missing folder and a max_length the model does not take") {
  t::TempDir tmp;
  CHECK_THROWS_AS(model::LoadedVersion::load(identity_of(tmp / "absent", "intent", 7), {}, ignore), NotFoundError);

  auto m = t::fixture_model("tiny", {"a", "b"}, 3);
  t::write_fixture_model(tmp / "model", m);
  model::BatchPredictorOptions options;
  options.max_length = 512;
  CHECK_THROWS_WITH_AS(model::LoadedVersion::load(identity_of(tmp / "model", "model", 0), options, ignore),
                       "--max-length 512 is more than the model takes (128 positions)", UsageError);
}
