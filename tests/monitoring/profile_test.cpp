#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "monitoring/profile.h"

using namespace recmodel;
using namespace recmodel::monitoring;

namespace {

ReferenceProfile small_profile() {
  ProfileBuilder builder({"books", "toys"}, false, "dev");
  builder.add_train_label("books", 7);
  builder.add_train_label("toys", 3);
  const ScoredInput inputs[] = {{"books", 0.9, 10, 1, false}, {"books", 0.7, 20, 0, true}, {"toys", 0.55, 5, 0, false}};
  for (const auto& input : inputs) {
    builder.add_true_label(input.label);
    builder.add(input);
  }
  return builder.finish();
}

}  // namespace

TEST_CASE("a profile counts labels, rates and samples, and reads back what it wrote") {
  const ReferenceProfile p = small_profile();
  CHECK(p.examples == 3);
  CHECK(p.predicted_counts.at("books") == 2);
  CHECK(p.predicted_counts.at("toys") == 1);
  CHECK(p.unk_rate == doctest::Approx(1.0 / 35));
  CHECK(p.truncation_rate == doctest::Approx(1.0 / 3));
  CHECK(p.unk_rates == std::vector<double>{0.1, 0, 0});

  const nlohmann::json doc = p.to_json();
  CHECK(doc["labels"]["train"]["books"] == 7);
  CHECK(doc["samples"]["tokens"].dump() == "[10,20,5]");  // counts stay integers
  CHECK(doc["score_histogram"]["counts"].dump() == "[0,0,0,0,0,1,1,0,0,1]");  // NumPy: 0.7 lies below 7 * 0.1
  const ReferenceProfile back = ReferenceProfile::from_json(doc, "recmodel.json");
  CHECK(back.scores == p.scores);
  CHECK(back.tokens == p.tokens);
  CHECK(back.predicted_counts == p.predicted_counts);
  CHECK(back.train_label_counts == p.train_label_counts);
  CHECK(back.truncation_rate == doctest::Approx(p.truncation_rate).epsilon(1e-6));
}

TEST_CASE("a profile keeps at most 10000 evenly spaced samples") {
  CHECK(evenly_spaced(3, 5) == std::vector<size_t>{0, 1, 2});
  CHECK(evenly_spaced(10, 4) == std::vector<size_t>{0, 2, 5, 7});
  ProfileBuilder builder({"a"}, false, "dev");
  for (int i = 0; i < 25000; ++i) builder.add({"a", 0.5, static_cast<size_t>(i % 50 + 2), 0, false});
  const ReferenceProfile p = builder.finish();
  CHECK(p.examples == 25000);
  CHECK(p.scores.size() == kMaxProfileSamples);
  CHECK(p.tokens[1] == 4);  // input 2 of 25000 (2.5 apart)
}

TEST_CASE("a malformed or newer profile is refused naming the file") {
  nlohmann::json doc = small_profile().to_json();
  doc["format_version"] = 2;
  CHECK_THROWS_WITH_AS(ReferenceProfile::from_json(doc, "m/recmodel.json"),
                       doctest::Contains("m/recmodel.json: the profile has format version 2"), DataError);
  doc = small_profile().to_json();
  doc["samples"]["score"].push_back("x");
  CHECK_THROWS_WITH_AS(ReferenceProfile::from_json(doc, "m/recmodel.json"),
                       doctest::Contains("profile.samples.score holds \"x\""), DataError);
  doc = small_profile().to_json();
  doc["samples"]["tokens"].erase(0);
  CHECK_THROWS_AS(ReferenceProfile::from_json(doc, "m/recmodel.json"), DataError);
  doc = small_profile().to_json();
  doc["unk_rate"] = 3;
  CHECK_THROWS_WITH_AS(ReferenceProfile::from_json(doc, "m/recmodel.json"),
                       doctest::Contains("profile.unk_rate must be a number in [0, 1]"), DataError);
}
