// `recmodel quantize`: the int8 directory it writes, the before/after report, the quality gate
// (exit 1, nothing written), and its error lines.
#include <nlohmann/json.hpp>

#include "tests/converters/model_fixture.h"
#include "tests/support.h"

// After the libtorch headers: glog, which they include, defines its own CHECK.
#include <doctest/doctest.h>

#include "tests/hostile.h"

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
    CHECK(r.err == "recmodel: error: --max-drop accuracy: '1pt' is not a number; expected a value such as "
                   "accuracy=0.9\n");
    auto negative = t::run_recmodel(
        {"quantize", "--model", f.model, "--data", f.data, "--out", f.path("o"), "--max-drop", "accuracy=-0.1"});
    CHECK(negative.exit_code == 2);
    CHECK(negative.err == "recmodel: error: --max-drop accuracy: -0.1 is a negative drop; give the largest allowed "
                          "loss, such as accuracy=0.01\n");
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
    CHECK(r.err == "recmodel: error: " + f.data + ": label \"a\" of the dataset is not a label of " +
                       f.path("other") + " (its labels: \"x\", \"y\", \"z\")\n");
    CHECK(!fs::exists(f.dir / "o"));
  }
  SUBCASE("a missing model") {
    auto r = t::run_recmodel({"quantize", "--model", f.path("nope"), "--out", f.path("o")});
    CHECK(r.exit_code == 4);
    CHECK(r.err == "recmodel: error: " + f.path("nope") + ": no such model directory (--model)\n");
  }
}

TEST_CASE("regression: quantize matches labels by name, not order") {
  Fixture f;
  // The same examples, the labels listed in another order: class id 0 is "c" here, "a" in the model.
  const Shared& s = shared();
  auto r = t::run_recmodel({"preprocess", "--train", s.path("train.csv"), "--dev", s.path("dev.csv"), "--test",
                            s.path("test.csv"), "--vocab", f.model + "/vocab.txt", "--labels", "c,b,a", "--out",
                            f.path("reordered"), "-q"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto manifest = nlohmann::json::parse(t::read_text(f.dir / "reordered" / "manifest.json"));
  REQUIRE(manifest["labels"] == nlohmann::json({"c", "b", "a"}));

  auto quantize = [&](const std::string& data, const std::string& out) {
    auto run = t::run_recmodel({"quantize", "--model", f.model, "--data", data, "--out", f.path(out), "--max-drop",
                                "accuracy=0.5", "--json", "-q"});
    REQUIRE_MESSAGE(run.exit_code == 0, run.err);
    return nlohmann::json::parse(run.out);
  };
  auto usual = quantize(f.data, "int8-a");
  auto reordered = quantize(f.path("reordered"), "int8-b");
  CHECK(reordered["metrics"]["accuracy"]["before"] == 1.0);  // the labels are the fp32 answers
  CHECK(reordered["metrics"] == usual["metrics"]);
  CHECK(reordered["largest_class_drop"] == usual["largest_class_drop"]);

  // evaluate on the same split gives the fp32 accuracy quantize reports.
  auto evaluate = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.path("reordered"), "--json", "-q"});
  REQUIRE_MESSAGE(evaluate.exit_code == 0, evaluate.err);
  auto doc = nlohmann::json::parse(evaluate.out);
  CHECK(doc["accuracy"].get<double>() == doctest::Approx(reordered["metrics"]["accuracy"]["before"].get<double>()));
  CHECK(doc["f1_macro"].get<double>() == doctest::Approx(reordered["metrics"]["f1_macro"]["before"].get<double>()));
}

TEST_CASE("regression: quantize reads the source model's recmodel.json bounded, and refuses a malformed one") {
  Fixture f;
  fs::copy(f.model, f.dir / "model", fs::copy_options::recursive);
  const std::string model = f.path("model");
  // Copied into the int8 model's lineage and printed: 200k nested arrays overflowed the stack.
  t::write_text(f.dir / "model" / "recmodel.json", "{\"a\": " + std::string(200000, '[') + std::string(200000, ']') + "}");
  auto deep = t::run_recmodel_limited({"quantize", "--model", model, "--out", f.path("int8")});
  REQUIRE_REFUSED(deep, 3);
  CHECK(deep.err.rfind("recmodel: error: " + model + "/recmodel.json: JSON nested deeper than", 0) == 0);
  t::write_text(f.dir / "model" / "recmodel.json", "[1, 2]");
  auto array = t::run_recmodel_limited({"quantize", "--model", model, "--out", f.path("int8")});
  REQUIRE_REFUSED(array, 3);
  CHECK(array.err == "recmodel: error: " + model + "/recmodel.json: not a JSON object; recmodel.json holds the "
                         "model's lineage (fix or remove it)\n");
  CHECK_FALSE(fs::exists(f.dir / "int8"));
}
