// serve's --model values: REF or NAME=REF, names defaulted from the registry reference or the
// folder, repeated or invalid names refused, and which references are followed for hot swaps.
#include <doctest/doctest.h>

#include "common/error.h"
#include "serving/server.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using namespace recmodel;
using serving::parse_model_specs;

TEST_CASE("serve --model: names come from NAME=, the registry model or the folder") {
  t::TempDir dir;
  std::filesystem::create_directories(dir / "intent-model");
  std::filesystem::create_directories(dir / "a=b");
  const auto specs = parse_model_specs({"models:/intent@production", "stars=models:/reviews/3",
                                        (dir / "intent-model/").string(), "latest=models:/q/latest",
                                        "local=" + (dir / "a=b").string()});
  REQUIRE(specs.size() == 5);
  CHECK(specs[0].name == "intent");
  CHECK(specs[0].registry);
  CHECK(specs[0].follows);
  CHECK(specs[1].name == "stars");
  CHECK(specs[1].ref == "models:/reviews/3");
  CHECK_FALSE(specs[1].follows);  // a version number never moves
  CHECK(specs[2].name == "intent-model");
  CHECK_FALSE(specs[2].registry);
  CHECK(specs[3].name == "latest");
  CHECK(specs[3].follows);
  CHECK(specs[4].name == "local");
  CHECK(specs[4].ref == (dir / "a=b").string());

  // An existing folder with '=' in its path is a folder, not NAME=REF; its name cannot name a
  // route, so the message says how to name it.
  try {
    parse_model_specs({(dir / "a=b").string()});
    FAIL("a folder name with '=' was accepted as a model name");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("--model NAME=" + (dir / "a=b").string()) != std::string::npos);
  }
}

TEST_CASE("serve --model: repeated names, bad names and references that name no version are usage errors") {
  CHECK_THROWS_AS(parse_model_specs({"models:/intent/1", "models:/intent/2"}), UsageError);
  CHECK_THROWS_AS(parse_model_specs({"x=models:/a/1", "x=models:/b/1"}), UsageError);
  CHECK_THROWS_AS(parse_model_specs({"bad name=models:/a/1"}), UsageError);
  CHECK_THROWS_AS(parse_model_specs({"x="}), UsageError);
  CHECK_THROWS_AS(parse_model_specs({"models:/intent"}), UsageError);  // which version?
  CHECK_THROWS_AS(parse_model_specs({"models:/"}), UsageError);
  CHECK_THROWS_AS(parse_model_specs({"/tmp/a folder with spaces"}), UsageError);
  CHECK_THROWS_AS(parse_model_specs({}), UsageError);
  try {
    parse_model_specs({"models:/intent/1", "intent=models:/other/2"});
    FAIL("a repeated name was accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("NAME=REF") != std::string::npos);
  }
}
