#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "monitoring/drift.h"

using namespace recmodel;
using namespace recmodel::monitoring;

namespace {

ReferenceProfile reference() {
  ProfileBuilder builder({"books", "toys", "games"}, false, "dev");
  for (int i = 0; i < 300; ++i) {
    const char* label = i % 3 == 0 ? "books" : i % 3 == 1 ? "toys" : "games";
    builder.add({label, 0.5 + (i % 50) / 100.0, static_cast<size_t>(8 + i % 10), i % 20 == 0 ? 1u : 0u, false});
  }
  return builder.finish();
}

LiveTraffic like(const ReferenceProfile& p, size_t n) {
  LiveTraffic live;
  for (size_t i = 0; i < n; ++i) {
    const size_t j = (i * 7) % p.scores.size();
    live.labels.push_back(i % 3 == 0 ? "books" : i % 3 == 1 ? "toys" : "games");
    live.scores.push_back(p.scores[j]);
    live.tokens.push_back(p.tokens[j]);
    live.unk_rates.push_back(p.unk_rates[j]);
  }
  return live;
}

const FeatureDrift& feature(const DriftResult& r, const std::string& name) {
  for (const auto& f : r.features)
    if (f.name == name) return f;
  FAIL("no feature " << name);
  throw 0;
}

}  // namespace

TEST_CASE("traffic like the reference does not drift and traffic that moved does, feature by feature") {
  const ReferenceProfile p = reference();
  const DriftResult same = compare(p, like(p, 300), {});
  CHECK_FALSE(same.drift);
  CHECK(feature(same, "score").psi < 0.01);
  CHECK(std::string(feature(same, "tokens").severity()) == "none");

  LiveTraffic moved = like(p, 300);
  for (double& t : moved.tokens) t += 6;  // longer queries
  const DriftResult result = compare(p, moved, {});
  CHECK(result.drift);
  CHECK(result.drifted() == std::vector<std::string>{"tokens"});
  CHECK(std::string(feature(result, "tokens").severity()) == "major");
  CHECK(feature(result, "tokens").p_value < 1e-10);
  CHECK(feature(result, "tokens").edges.size() == kNumericBins + 1);
  CHECK(feature(result, "tokens").live_mean == doctest::Approx(feature(result, "tokens").reference_mean + 6));
}

TEST_CASE("a label the model never predicted gets a bin of its own, after the model's labels") {
  const ReferenceProfile p = reference();
  LiveTraffic live = like(p, 300);
  for (size_t i = 0; i < 60; ++i) live.labels[i] = "garden";
  const FeatureDrift& f = feature(compare(p, live, {}), "predicted_label");
  CHECK(f.bin_labels == std::vector<std::string>{"books", "toys", "games", "garden"});
  CHECK(f.reference[3] == 0);
  CHECK(f.live[3] == doctest::Approx(0.2));
  CHECK(f.drift);
}

TEST_CASE("without token counts the length features are reported unavailable, not zero") {
  const ReferenceProfile p = reference();
  LiveTraffic live = like(p, 100);
  live.tokens.clear();
  live.unk_rates.clear();
  live.no_tokens_reason = "a predictions file holds no token counts";
  const DriftResult r = compare(p, live, {});
  CHECK_FALSE(feature(r, "tokens").available);
  CHECK(features_json(r)["unk_rate"]["reason"] == "a predictions file holds no token counts");
  CHECK(features_json(r)["unk_rate"]["psi"].is_null());
  CHECK_FALSE(r.live_truncation_rate.has_value());
}

TEST_CASE("an empty or oversized live window is refused") {
  const ReferenceProfile p = reference();
  CHECK_THROWS_AS(compare(p, LiveTraffic{}, {}), UsageError);
  LiveTraffic big;
  big.scores.assign(kMaxProfileSamples + 1, 0.5);
  big.labels.assign(kMaxProfileSamples + 1, "books");
  CHECK_THROWS_WITH_AS(compare(p, big, {}), doctest::Contains("pass --window"), UsageError);
}

TEST_CASE("--fail-over takes psi, js and p_value once each and refuses anything else") {
  const DriftThresholds t = parse_thresholds("psi=0.3, js=0.05,p_value=0.01");
  CHECK(t.psi == 0.3);
  CHECK(t.js == 0.05);
  CHECK(t.p_value == 0.01);
  CHECK(parse_thresholds("js=0.2").psi == 0.2);  // the default stays
  CHECK_THROWS_WITH_AS(parse_thresholds("psi=0.2,"), doctest::Contains("'' is not NAME=VALUE"), UsageError);
  CHECK_THROWS_WITH_AS(parse_thresholds("psi=0.2,psi=0.3"), doctest::Contains("psi is given twice"), UsageError);
  CHECK_THROWS_WITH_AS(parse_thresholds("ks=0.2"), doctest::Contains("unknown statistic 'ks'"), UsageError);
  CHECK_THROWS_WITH_AS(parse_thresholds("psi=abc"), doctest::Contains("psi must be a number"), UsageError);
  CHECK_THROWS_WITH_AS(parse_thresholds("p_value=1"), doctest::Contains("p_value must be in (0, 1)"), UsageError);
}
