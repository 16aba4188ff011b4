// `recmodel drift` and the profile `recmodel train` records: the profile's contents, drift of a
// registered version's serve log (the version filter, --all-versions), of texts, --reference for a
// model without a profile, and the refusals (exit 2, 3, 4 with one line each). The statistics
// themselves are checked against SciPy by tests/peers/drift_scipy.test.sh.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/cli/train_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;
using t::train::Fixture;

namespace {

// Serve log lines of `version` in the fixture's categories, the scores shifted down by `shift`.
std::string log_lines(int version, int count, double shift, int extra_tokens) {
  const char* labels[] = {"clothing", "home", "grocery"};
  std::string text;
  for (int i = 0; i < count; ++i)
    text += fmt::format(
        "{{\"time\":\"2026-12-04T10:{:02d}:{:02d}.000Z\",\"model\":\"products\",\"version\":{},\"tokens\":{},"
        "\"truncated\":0,\"unk_tokens\":0,\"label\":\"{}\",\"score\":{}}}\n",
        (i / 60) % 60, i % 60, version, 6 + i % 4 + extra_tokens, labels[i % 3], 0.9 - shift - (i % 10) / 100.0);
  return text;
}

int count_lines(const std::string& text, const std::string& prefix) {
  int n = 0;
  size_t at = 0;
  while ((at = text.find(prefix, at)) != std::string::npos) {
    ++n;
    ++at;
  }
  return n;
}

}  // namespace

TEST_CASE("train records a reference profile of dev in recmodel.json") {
  Fixture f;
  const std::string model = f.path("model");
  auto trained = t::run_recmodel(t::train::train_args(f, model));
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
  const nlohmann::json lineage = nlohmann::json::parse(t::read_text(fs::path(model) / "recmodel.json"));
  const nlohmann::json& profile = lineage.at("profile");
  CHECK(profile["split"] == "dev");
  const nlohmann::json manifest = nlohmann::json::parse(t::read_text(fs::path(f.data) / "manifest.json"));
  const uint64_t dev = profile["examples"].get<uint64_t>();
  CHECK(dev > 30);
  uint64_t predicted = 0, truth = 0, train = 0;
  for (const auto& [label, n] : profile["labels"]["predicted"].items()) predicted += n.get<uint64_t>();
  for (const auto& [label, n] : profile["labels"]["dev"].items()) truth += n.get<uint64_t>();
  for (const auto& [label, n] : profile["labels"]["train"].items()) train += n.get<uint64_t>();
  CHECK(predicted == dev);
  CHECK(truth == dev);
  CHECK(train > dev);
  CHECK(profile["labels"]["predicted"].size() == 3);
  CHECK(profile["samples"]["score"].size() == dev);
  CHECK(profile["samples"]["tokens"].size() == dev);
  for (const auto& tokens : profile["samples"]["tokens"]) CHECK(tokens.get<int>() <= 16);  // --max-length 16
  uint64_t histogram = 0;
  for (const auto& n : profile["score_histogram"]["counts"]) histogram += n.get<uint64_t>();
  CHECK(histogram == dev);
  CHECK(profile["truncation_rate"] == manifest["truncation_rate"]);
  // The samples stay on one line each: recmodel.json stays readable.
  CHECK(count_lines(t::read_text(fs::path(model) / "recmodel.json"), "\n") < 200);
}

TEST_CASE("drift of a registered version's serve log counts that version's records only") {
  Fixture f;
  const std::string model = f.path("model"), registry = f.path("registry.db");
  auto trained = t::run_recmodel(t::train::train_args(f, model, {"--register", "products", "--registry", registry}));
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
  // Version 1's traffic as trained, version 7's much shifted (another model answering).
  t::write_text(f.dir / "served.jsonl", log_lines(1, 600, 0.0, 0) + log_lines(7, 400, 0.5, 20));

  auto only_v1 = t::run_recmodel({"drift", "--json", "--registry", registry, "--model", "models:/products/1",
                                  "--input", f.path("served.jsonl")});
  REQUIRE_MESSAGE(only_v1.exit_code == 0, only_v1.err);
  const nlohmann::json v1 = nlohmann::json::parse(only_v1.out);
  CHECK(v1["model"] == "models:/products/1");
  CHECK(v1["input_kind"] == "log");
  CHECK(v1["window"]["records"] == 600);
  CHECK(v1["window"]["skipped"] == 400);
  CHECK(v1["reference"]["source"] == "recmodel.json");
  for (const char* feature : {"predicted_label", "score", "tokens", "unk_rate"}) {
    CAPTURE(feature);
    CHECK(v1["features"][feature]["psi"].is_number());
    CHECK(v1["features"][feature]["p_value"].is_number());
  }
  CHECK(v1["features"]["predicted_label"]["bins"]["labels"].size() == 3);
  CHECK(v1["features"]["score"]["bins"]["edges"].size() == 31);

  auto all = t::run_recmodel({"drift", "--json", "--registry", registry, "--model", "models:/products/1", "--input",
                              f.path("served.jsonl"), "--all-versions", "--window", "500", "--fail-over",
                              "psi=0.2,js=0.1"});
  CHECK(all.exit_code == 1);
  const nlohmann::json mixed = nlohmann::json::parse(all.out);
  CHECK(mixed["window"]["records"] == 500);
  CHECK(mixed["window"]["older"] == 500);
  CHECK(mixed["drift"] == true);
  CHECK(all.err.find("recmodel: error: drift gate failed: tokens (psi ") != std::string::npos);

  // Nothing of the version asked for: exit 4, naming the versions there are.
  t::write_text(f.dir / "other.jsonl", log_lines(7, 50, 0.0, 0));
  auto none = t::run_recmodel({"drift", "--registry", registry, "--model", "models:/products/1", "--input",
                               f.path("other.jsonl")});
  CHECK(none.exit_code == 4);
  CHECK(none.err.find("it has records of version 7 of this model; pass --all-versions") != std::string::npos);
  CHECK(count_lines(none.err, "recmodel: error:") == 1);
}

TEST_CASE("drift scores texts itself, and profiles an old model with --reference") {
  Fixture f;
  // The init model has no profile: refused, pointing at --reference.
  t::write_text(f.dir / "texts.txt", "red shoe size\nbig lamp with cable\nnew bread\n\ncheap apple for best\n");
  auto refused = t::run_recmodel({"drift", "--model", f.model, "--input", f.path("texts.txt")});
  CHECK(refused.exit_code == 4);
  CHECK(refused.err.find("has no reference profile in recmodel.json") != std::string::npos);
  CHECK(refused.err.find("--reference DATA") != std::string::npos);

  auto profiled = t::run_recmodel({"drift", "--json", "--model", f.model, "--input", f.path("texts.txt"),
                                   "--reference", f.data, "--reference-split", "test"});
  REQUIRE_MESSAGE(profiled.exit_code == 0, profiled.err);
  const nlohmann::json doc = nlohmann::json::parse(profiled.out);
  CHECK(doc["input_kind"] == "texts");
  CHECK(doc["window"]["records"] == 4);  // the empty line is not counted
  CHECK(doc["reference"]["split"] == "test");
  CHECK(doc["features"]["tokens"]["live_mean"].get<double>() == doctest::Approx((5 + 6 + 4 + 6) / 4.0));
  CHECK(profiled.err.find("only 4 live inputs") != std::string::npos);
}

TEST_CASE("drift refuses bad flags and bad input with one line and the documented code") {
  Fixture f;
  const std::string model = f.path("model");
  auto trained = t::run_recmodel(t::train::train_args(f, model));
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.err);
  t::write_text(f.dir / "served.jsonl", log_lines(0, 20, 0, 0) + "{\"time\": 3}\n" + log_lines(0, 2, 0, 0));
  t::write_text(f.dir / "preds.jsonl", "{\"label\":\"home\",\"score\":0.8}\n");
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* message;
  };
  const Case cases[] = {
      {{"--input", f.path("served.jsonl"), "--fail-over", "psi=x"}, 2, "--fail-over: psi must be a number"},
      {{"--input", f.path("served.jsonl"), "--window", "20000"}, 2, "--window"},
      {{"--input", f.path("served.jsonl"), "--since", "yesterday"}, 2, "'yesterday' is not a time"},
      {{"--input", f.path("preds.jsonl"), "--since", "2h"}, 2, "--since needs times"},
      {{"--input", f.path("missing.jsonl")}, 4, "missing.jsonl: no such file (--input)"},
      {{"--input", f.path("served.jsonl")}, 3, "served.jsonl:21: \"time\" must be a time string"},
      {{"--input", "-"}, 2, "--input - (stdin) needs --format"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"drift", "--model", model};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CAPTURE(c.message);
    auto result = t::run_recmodel(args);
    CHECK(result.exit_code == c.code);
    CHECK(result.err.find(c.message) != std::string::npos);
    CHECK(count_lines(result.err, "recmodel: error:") == 1);
    CHECK(result.out.empty());
  }
}

TEST_CASE("a version without a profile gets one from evaluate --record, kept in the registry") {
  Fixture f;
  const std::string registry = f.path("registry.db");
  auto registered = t::run_recmodel({"registry", "register", "old", "--path", f.model, "--registry", registry, "-q"});
  REQUIRE_MESSAGE(registered.exit_code == 0, registered.err);
  t::write_text(f.dir / "served.jsonl", log_lines(1, 50, 0, 0));
  auto before = t::run_recmodel({"drift", "--registry", registry, "--model", "models:/old/1", "--input",
                                 f.path("served.jsonl")});
  CHECK(before.exit_code == 4);
  CHECK(before.err.find("recmodel evaluate --model REF --data DATA --split dev --record") != std::string::npos);

  auto recorded = t::run_recmodel({"evaluate", "--registry", registry, "--model", "models:/old/1", "--data", f.data,
                                   "--split", "dev", "--record", "-q"});
  REQUIRE_MESSAGE(recorded.exit_code == 0, recorded.err);
  auto after = t::run_recmodel({"drift", "--json", "--registry", registry, "--model", "models:/old/1", "--input",
                                f.path("served.jsonl")});
  REQUIRE_MESSAGE(after.exit_code == 0, after.err);
  const nlohmann::json doc = nlohmann::json::parse(after.out);
  CHECK(doc["reference"]["source"].get<std::string>().rfind("registry: evaluate --record of the dev split", 0) == 0);
  CHECK(doc["reference"]["split"] == "dev");
  CHECK(doc["window"]["records"] == 50);
  // The registered directory was not touched: its files still match the manifest.
  auto verified = t::run_recmodel({"registry", "verify", "models:/old/1", "--registry", registry});
  CHECK_MESSAGE(verified.exit_code == 0, verified.err);
}
