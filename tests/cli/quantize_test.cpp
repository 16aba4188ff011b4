// `recmodel quantize`: the int8 directory it writes, the before/after report, the quality gate
// (exit 1, nothing written), and its error lines.
#include <nlohmann/json.hpp>

#include "tests/converters/model_fixture.h"
#include "tests/support.h"

// After the libtorch headers: glog, which they include, defines its own CHECK.
#include <doctest/doctest.h>

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

// A model with weight outliers (see add_quantization_outliers) and a prepared dataset whose
// labels are that model's own fp32 answers: fp32 accuracy is 1 by construction, so any int8
// change shows as a drop.
struct Shared {
  t::TempDir dir;
  std::string model, data;
  Shared() {
    auto m = t::fixture_model("tiny", {"a", "b", "c"}, /*seed=*/5, /*initializer_range=*/0.1);
    t::add_quantization_outliers(m);
    t::write_fixture_model(dir / "model", m);
    model = (dir / "model").string();
    auto texts = t::fixture_texts(360, 3);
    auto labels = t::predicted_labels(m, texts);
    t::write_text(dir / "train.csv", t::csv_of(texts, labels, 0, 120));
    t::write_text(dir / "dev.csv", t::csv_of(texts, labels, 120, 160));
    t::write_text(dir / "test.csv", t::csv_of(texts, labels, 160, 360));
    data = (dir / "data").string();
    auto r = t::run_recmodel({"preprocess", "--train", path("train.csv"), "--dev", path("dev.csv"), "--test",
                              path("test.csv"), "--vocab", model + "/vocab.txt", "--labels", "a,b,c", "--out", data,
                              "-q"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// The model and dataset are made once per test run; each test writes into its own directory.
const Shared& shared() {
  static const Shared instance;
  return instance;
}

struct Fixture {
  t::TempDir dir;
  std::string model = shared().model, data = shared().data;
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

TEST_CASE("quantize writes an int8 model directory and reports the change") {
  Fixture f;
  auto r = t::run_recmodel({"quantize", "--model", f.model, "--data", f.data, "--out", f.path("int8"), "--max-drop",
                            "accuracy=0.5", "--json", "-q"});
  CHECK(r.err == "");
  REQUIRE(r.exit_code == 0);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["written"] == true);
  CHECK(doc["data"]["examples"] == 200);
  CHECK(doc["data"]["split"] == "test");
  CHECK(doc["metrics"]["accuracy"]["before"] == 1.0);  // the labels are the fp32 answers
  const double after = doc["metrics"]["accuracy"]["after"].get<double>();
  CHECK(doc["top_label_agreement"].get<double>() == doctest::Approx(after));  // so agreement = int8 accuracy
  CHECK(after >= 0.5);
  CHECK(doc["metrics"].contains("f1_macro"));
  CHECK(doc["gate"][0]["metric"] == "accuracy");
  CHECK(doc["gate"][0]["passed"] == true);
  CHECK(doc["size"]["after_bytes"].get<double>() < 0.5 * doc["size"]["before_bytes"].get<double>());
  CHECK(doc["scheme"]["weights"] == "int8 symmetric, per output channel");

  auto config = nlohmann::json::parse(t::read_text(f.dir / "int8" / "config.json"));
  CHECK(config["recmodel_quantization"]["method"] == "dynamic-int8");
  auto lineage = nlohmann::json::parse(t::read_text(f.dir / "int8" / "recmodel.json"));
  CHECK(lineage["quantization"]["source"] == f.model);
  CHECK(lineage["created_by"] == "test fixture");  // the source's lineage is kept
  for (const char* name : {"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    CHECK_MESSAGE(fs::exists(f.dir / "int8" / name), name);

  // Human report.
  auto human = t::run_recmodel({"quantize", "--model", f.model, "--data", f.data, "--out", f.path("int8"), "--force",
                                "--max-drop", "accuracy=0.5", "-q"});
  REQUIRE(human.exit_code == 0);
  CHECK(human.out.rfind("wrote " + f.path("int8") + " (int8: 14 modules, weights per output channel;", 0) == 0);
  CHECK(human.out.find("  on 200 test examples of " + f.data + ":\n  accuracy     1.0000 -> ") != std::string::npos);
  CHECK(human.out.find("  top labels agree on ") != std::string::npos);
  CHECK(human.out.find("  gate accuracy drop ") != std::string::npos);

  // Already int8: refused.
  auto twice = t::run_recmodel({"quantize", "--model", f.path("int8"), "--out", f.path("int8-again")});
  CHECK(twice.exit_code == 3);
  CHECK(twice.err == "recmodel: error: " + f.path("int8") +
                         ": is an int8 model already (recmodel quantize); quantize the fp32 model it came from\n");
}

TEST_CASE("quantize fails the gate with exit 1, prints the report and writes nothing") {
  Fixture f;
  // Per-tensor scales are set by the outliers: the other weights of those matrices round to 0.
  auto r = t::run_recmodel({"quantize", "--model", f.model, "--data", f.data, "--out", f.path("int8"),
                            "--per-tensor", "-q"});
  CHECK(r.exit_code == 1);
  CHECK(!fs::exists(f.dir / "int8"));
  CHECK(r.out.rfind("did not write " + f.path("int8"), 0) == 0);
  CHECK(r.out.find("  gate accuracy drop ") != std::string::npos);
  CHECK(r.out.find("FAILED\n") != std::string::npos);
  CHECK(r.err.rfind("recmodel: error: the int8 model does not meet the gate: accuracy dropped by ", 0) == 0);
  CHECK(r.err.find("more than --max-drop accuracy=0.01; " + f.path("int8") +
                   " was not written (raise --max-drop to keep it)\n") != std::string::npos);
  for (const auto& entry : fs::directory_iterator(f.dir.path()))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);

  auto json = t::run_recmodel({"quantize", "--model", f.model, "--data", f.data, "--out", f.path("int8"),
                               "--per-tensor", "--json", "-q"});
  CHECK(json.exit_code == 1);
  auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["written"] == false);
  CHECK(doc["gate"][0]["passed"] == false);
  CHECK(doc["gate"][0]["drop"].get<double>() > 0.01);
  CHECK(doc["largest_class_drop"]["drop"].get<double>() > 0);
}

TEST_CASE("quantize without --data reports the sizes only") {
  Fixture f;
  auto r = t::run_recmodel({"quantize", "--model", f.model, "--out", f.path("int8"), "-q"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("  accuracy  not measured (give --data DIR to compare on a split and gate the drop)\n") !=
        std::string::npos);
  CHECK(fs::exists(f.dir / "int8" / "model.safetensors"));
}

TEST_CASE("quantize errors name the option or file, with the documented exit code") {
  Fixture f;
  SUBCASE("an unknown metric in --max-drop") {
    auto r = t::run_recmodel(
        {"quantize", "--model", f.model, "--data", f.data, "--out", f.path("o"), "--max-drop", "acurracy=0.01"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("did you mean 'accuracy'?") != std::string::npos);
  }
  SUBCASE("a bad amount in --max-drop") {
    auto r = t::run_recmodel(
        {"quantize", "--model", f.model, "--data", f.data, "--out", f.path("o"), "--max-drop", "accuracy=1pt"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "recmodel: error: --max-drop accuracy=1pt: '1pt' is not a number of 0 or more; did you mean "
                   "accuracy=0.01?\n");
  }
  SUBCASE("--max-drop without --data") {
    auto r = t::run_recmodel({"quantize", "--model", f.model, "--out", f.path("o"), "--max-drop", "accuracy=0.02"});
    CHECK(r.exit_code == 2);
    CHECK(r.err ==
          "recmodel: error: --max-drop needs --data DIR: the accuracy change is measured on a prepared dataset\n");
  }
  SUBCASE("an existing --out") {
    fs::create_directories(f.dir / "o");
    auto r = t::run_recmodel({"quantize", "--model", f.model, "--out", f.path("o")});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "recmodel: error: " + f.path("o") +
                       ": already exists; choose another --out or pass --force to replace it\n");
  }
  SUBCASE("a dataset with other labels") {
    auto m = t::fixture_model("tiny", {"x", "y", "z"});
    t::write_fixture_model(f.dir / "other", m);
    auto r = t::run_recmodel({"quantize", "--model", f.path("other"), "--data", f.data, "--out", f.path("o")});
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("the dataset's labels (a, b, c) are not the model's (x, y, z") != std::string::npos);
    CHECK(!fs::exists(f.dir / "o"));
  }
  SUBCASE("a missing model") {
    auto r = t::run_recmodel({"quantize", "--model", f.path("nope"), "--out", f.path("o")});
    CHECK(r.exit_code == 4);
    CHECK(r.err == "recmodel: error: " + f.path("nope") + ": no such model directory (--model)\n");
  }
}
