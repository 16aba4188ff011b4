// `recmodel evaluate`: predictions/labels files joined by id, the table and --json, quality gates
// (exit 1, one line per failed gate), unknown metrics (exit 2), bad files (exit 3/4), and a model
// on a prepared split (vocabulary check, agreement with predict + evaluate --predictions).
#include <doctest/doctest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "tests/converters/model_fixture.h"
#include "tests/hostile.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

// Ten labelled queries; the predictions get 8 right. Class "toys" is never predicted.
struct Files {
  t::TempDir dir;
  std::string predictions = (dir / "pred.jsonl").string();
  std::string labels = (dir / "labels.csv").string();
  Files() {
    t::write_text(dir / "labels.csv",
                  "id,label\nq1,books\nq2,books\nq3,books\nq4,electronics\nq5,electronics\nq6,electronics\n"
                  "q7,electronics\nq8,garden\nq9,garden\nq10,toys\n");
    t::write_text(dir / "pred.jsonl",
                  "{\"id\": \"q10\", \"label\": \"books\"}\n"
                  "{\"id\": \"q1\", \"label\": \"books\"}\n{\"id\": \"q2\", \"label\": \"books\"}\n"
                  "{\"id\": \"q3\", \"label\": \"electronics\"}\n{\"id\": \"q4\", \"label\": \"electronics\"}\n"
                  "{\"id\": \"q5\", \"label\": \"electronics\"}\n{\"id\": \"q6\", \"label\": \"electronics\"}\n"
                  "{\"id\": \"q7\", \"label\": \"electronics\"}\n{\"id\": \"q8\", \"label\": \"garden\"}\n"
                  "{\"id\": \"q9\", \"label\": \"garden\"}\n");
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

TEST_CASE("evaluate --predictions --labels joins by id and reports scikit-learn's metrics") {
  Files f;
  auto r = t::run_recmodel({"evaluate", "--predictions", f.predictions, "--labels", f.labels, "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.err == "recmodel: warning: precision and F1 of class 'toys' set to 0: never predicted\n");
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["task"] == "classification");
  CHECK(doc["examples"] == 10);
  CHECK(doc["accuracy"].get<double>() == doctest::Approx(0.8));
  // sklearn: f1_score(..., average="macro", zero_division=0) = (2/3 + 8/9 + 1 + 0) / 4
  CHECK(doc["f1_macro"].get<double>() == doctest::Approx(0.6388888888888888));
  CHECK(doc["f1_micro"].get<double>() == doctest::Approx(0.8));
  CHECK(doc["per_class"]["toys"]["precision"] == 0.0);
  CHECK(doc["per_class"]["toys"]["support"] == 1);
  CHECK(doc["confusion_matrix"]["labels"] == nlohmann::json{"books", "electronics", "garden", "toys"});
  CHECK(doc["confusion_matrix"]["matrix"][3] == nlohmann::json{1, 0, 0, 0});
  CHECK_FALSE(doc.contains("roc_auc"));
  CHECK_FALSE(doc.contains("top_k_accuracy"));

  auto human = t::run_recmodel({"evaluate", "--predictions", f.predictions, "--labels", f.labels, "-q"});
  REQUIRE(human.exit_code == 0);
  CHECK(human.out.find("  class         precision     recall         f1   support\n") != std::string::npos);
  CHECK(human.out.find("  toys             0.0000     0.0000     0.0000         1\n") != std::string::npos);
  CHECK(human.out.find("  accuracy        0.8000\n") != std::string::npos);
  CHECK(human.out.find("confusion matrix (rows: truth, columns: predicted)") != std::string::npos);
}

TEST_CASE("evaluate quality gates: exit 1 with one line per failed gate") {
  Files f;
  auto pass = t::run_recmodel({"evaluate", "--predictions", f.predictions, "--labels", f.labels, "--fail-under",
                               "accuracy=0.8", "--json", "-q"});
  CHECK(pass.exit_code == 0);
  auto doc = nlohmann::json::parse(pass.out);
  CHECK(doc["passed"] == true);
  CHECK(doc["gates"][0]["metric"] == "accuracy");

  auto fail = t::run_recmodel({"evaluate", "--predictions", f.predictions, "--labels", f.labels, "--fail-under",
                               "accuracy=0.9,f1_weighted=0.5", "--fail-under", "f1_macro=0.7", "-q",
                               "--report", f.path("report.json")});
  CHECK(fail.exit_code == 1);
  CHECK(fail.err ==
        "recmodel: warning: precision and F1 of class 'toys' set to 0: never predicted\n"
        "recmodel: error: quality gate failed: accuracy 0.8 is below 0.9 (--fail-under)\n"
        "recmodel: error: quality gate failed: f1_macro 0.6388888888888888 is below 0.7 (--fail-under)\n");
  CHECK(fail.out.find("accuracy        0.8000") != std::string::npos);  // the metrics are still printed
  auto report = nlohmann::json::parse(t::read_text(f.dir / "report.json"));
  CHECK(report["passed"] == false);
  CHECK(report["gates"].size() == 3);
  CHECK(report["gates"][1]["passed"] == true);

  auto unknown = t::run_recmodel({"evaluate", "--predictions", f.predictions, "--labels", f.labels, "--fail-under",
                                  "acuracy=0.9"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.rfind("recmodel: error: unknown metric 'acuracy' in --fail-under; did you mean 'accuracy'? "
                          "(known: accuracy, ",
                          0) == 0);
  CHECK(unknown.out == "");
  auto not_a_number = t::run_recmodel(
      {"evaluate", "--predictions", f.predictions, "--labels", f.labels, "--max", "mae=low"});
  CHECK(not_a_number.exit_code == 2);
  CHECK(not_a_number.err == "recmodel: error: --max mae: 'low' is not a number; expected a value such as mae=0.9\n");
  auto inapplicable = t::run_recmodel(
      {"evaluate", "--predictions", f.predictions, "--labels", f.labels, "--fail-under", "r2=0.5", "-q"});
  CHECK(inapplicable.exit_code == 2);
  CHECK(inapplicable.err ==
        "recmodel: error: --fail-under r2: r2 does not apply here: it is a regression metric and this is a "
        "classification task\n");
}

TEST_CASE("evaluate refuses a missing, duplicate or unmatched id") {
  Files f;
  t::write_text(f.dir / "short.jsonl", "{\"id\": \"q1\", \"label\": \"books\"}\n");
  auto missing = t::run_recmodel({"evaluate", "--predictions", f.path("short.jsonl"), "--labels", f.labels});
  CHECK(missing.exit_code == 3);
  CHECK(missing.err == "recmodel: error: " + f.labels + ":3: id \"q2\" has no prediction in " + f.path("short.jsonl") +
                           " (9 labelled ids have none)\n");
  t::write_text(f.dir / "dup.jsonl", "{\"id\": \"q1\", \"label\": \"books\"}\n{\"id\": \"q1\", \"label\": \"toys\"}\n");
  auto duplicate = t::run_recmodel({"evaluate", "--predictions", f.path("dup.jsonl"), "--labels", f.labels});
  CHECK(duplicate.exit_code == 3);
  CHECK(duplicate.err == "recmodel: error: " + f.path("dup.jsonl") +
                             ":2: duplicate id \"q1\" (first on line 1); predict each id once\n");
  t::write_text(f.dir / "extra.jsonl", "{\"id\": \"q99\", \"label\": \"books\"}\n");
  auto extra = t::run_recmodel({"evaluate", "--predictions", f.path("extra.jsonl"), "--labels", f.labels});
  CHECK(extra.exit_code == 3);
  CHECK(extra.err == "recmodel: error: " + f.path("extra.jsonl") + ":1: id \"q99\" has no label in " + f.labels + "\n");
  auto absent = t::run_recmodel({"evaluate", "--predictions", f.path("nope.jsonl"), "--labels", f.labels});
  CHECK(absent.exit_code == 4);
  CHECK(absent.err == "recmodel: error: " + f.path("nope.jsonl") + ": no such file\n");
  auto neither = t::run_recmodel({"evaluate", "--labels", f.labels});
  CHECK(neither.exit_code == 2);
}

TEST_CASE("evaluate: binary probabilities and regression values") {
  Files f;
  // scikit-learn's example: y_true [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8].
  t::write_text(f.dir / "bin.csv", "id,label,probs\n1,neg,\"{\"\"neg\"\": 0.9, \"\"pos\"\": 0.1}\"\n"
                                   "2,neg,\"{\"\"neg\"\": 0.6, \"\"pos\"\": 0.4}\"\n"
                                   "3,neg,\"{\"\"neg\"\": 0.65, \"\"pos\"\": 0.35}\"\n"
                                   "4,pos,\"{\"\"neg\"\": 0.2, \"\"pos\"\": 0.8}\"\n");
  t::write_text(f.dir / "bin.tsv", "id\tlabel\n1\tneg\n2\tneg\n3\tpos\n4\tpos\n");
  auto r = t::run_recmodel({"evaluate", "--predictions", f.path("bin.csv"), "--labels", f.path("bin.tsv"), "--json",
                            "--fail-under", "roc_auc=0.7,pr_auc=0.8"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["roc_auc"].get<double>() == doctest::Approx(0.75));  // sklearn roc_auc_score
  CHECK(doc["pr_auc"].get<double>() == doctest::Approx(0.8333333333333333));  // average_precision_score
  CHECK(doc["top_k"] == 1);  // two classes: top-2 would always be right

  t::write_text(f.dir / "values.jsonl", "{\"id\": 1, \"value\": 2.5}\n{\"id\": 2, \"value\": 0.0}\n"
                                        "{\"id\": 3, \"value\": 2}\n{\"id\": 4, \"value\": 8}\n");
  t::write_text(f.dir / "truth.jsonl", "{\"id\": 1, \"value\": 3}\n{\"id\": 2, \"value\": -0.5}\n"
                                       "{\"id\": 3, \"value\": 2}\n{\"id\": 4, \"value\": 7}\n");
  auto reg = t::run_recmodel({"evaluate", "--predictions", f.path("values.jsonl"), "--labels", f.path("truth.jsonl"),
                              "--json", "--max", "mae=0.4"});
  CHECK(reg.exit_code == 1);
  CHECK(reg.err == "recmodel: error: quality gate failed: mae 0.5 is above 0.4 (--max)\n");
  auto rdoc = nlohmann::json::parse(reg.out);
  CHECK(rdoc["task"] == "regression");
  CHECK(rdoc["rmse"].get<double>() == doctest::Approx(0.6123724356957945));
  CHECK(rdoc["r2"].get<double>() == doctest::Approx(0.9486081370449679));
}

namespace {

// A tiny model and a dataset whose test labels are the model's own answers except for 20 of
// 100 flipped to the next class: accuracy 0.8 by construction.
struct ModelFixture {
  t::TempDir dir;
  std::string model, data;
  std::vector<std::string> test_texts, test_labels;
  ModelFixture() {
    auto m = t::fixture_model("tiny", {"a", "b", "c"}, /*seed=*/11, /*initializer_range=*/0.1);
    t::write_fixture_model(dir / "model", m);
    model = (dir / "model").string();
    auto texts = t::fixture_texts(160, 4);
    auto labels = t::predicted_labels(m, texts);
    const std::vector<std::string> names = {"a", "b", "c"};
    for (size_t i = 60; i < 160; ++i) {
      test_texts.push_back(texts[i]);
      std::string label = labels[i];
      if (i % 5 == 0) label = names[(std::find(names.begin(), names.end(), label) - names.begin() + 1) % 3];
      test_labels.push_back(label);
    }
    t::write_text(dir / "train.csv", t::csv_of(texts, labels, 0, 40));
    t::write_text(dir / "dev.csv", t::csv_of(texts, labels, 40, 60));
    t::write_text(dir / "test.csv", t::csv_of(test_texts, test_labels, 0, test_texts.size()));
    data = (dir / "data").string();
    auto r = t::run_recmodel({"preprocess", "--train", path("train.csv"), "--dev", path("dev.csv"), "--test",
                              path("test.csv"), "--vocab", model + "/vocab.txt", "--labels", "a,b,c", "--out", data,
                              "-q"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

TEST_CASE("evaluate --model --data scores a split, and predict + evaluate --predictions agree") {
  ModelFixture f;
  auto r = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.data, "--json", "-q", "--batch-size", "7"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["split"] == "test");
  CHECK(doc["examples"] == 100);
  CHECK(doc["accuracy"].get<double>() == doctest::Approx(0.8));
  CHECK(doc["top_k"] == 2);
  CHECK(doc.contains("top_k_accuracy"));

  // The same texts through predict, then evaluated as files: the same numbers.
  std::string jsonl;
  for (size_t i = 0; i < f.test_texts.size(); ++i)
    jsonl += nlohmann::json{{"id", i}, {"text", f.test_texts[i]}, {"label", f.test_labels[i]}}.dump() + "\n";
  t::write_text(f.dir / "test.jsonl", jsonl);
  auto p = t::run_recmodel({"predict", "--model", f.model, "--input", f.path("test.jsonl"), "--probs", "-q"});
  REQUIRE_MESSAGE(p.exit_code == 0, p.err);
  t::write_text(f.dir / "pred.jsonl", p.out);
  auto e = t::run_recmodel({"evaluate", "--predictions", f.path("pred.jsonl"), "--labels", f.path("test.jsonl"),
                            "--json", "-q"});
  REQUIRE_MESSAGE(e.exit_code == 0, e.err);
  auto files = nlohmann::json::parse(e.out);
  for (const char* name : {"accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro"})
    CHECK_MESSAGE(files[name].get<double>() == doctest::Approx(doc[name].get<double>()), name);
  CHECK(files["top_k_accuracy"].get<double>() == doctest::Approx(doc["top_k_accuracy"].get<double>()));
  CHECK(files["confusion_matrix"] == doc["confusion_matrix"]);

  auto gate = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.data, "--fail-under", "accuracy=0.85", "-q"});
  CHECK(gate.exit_code == 1);
  CHECK(gate.err ==
        "recmodel: warning: precision and F1 of class 'b' set to 0: never predicted\n"
        "recmodel: error: quality gate failed: accuracy 0.8 is below 0.85 (--fail-under)\n");
}

TEST_CASE("evaluate refuses a dataset tokenized with another vocabulary") {
  ModelFixture f;
  auto tokens = t::fixture_tokenizer().vocab().tokens();
  std::swap(tokens[10], tokens[11]);
  std::string other;
  for (const auto& token : tokens) other += token + "\n";
  t::write_text(f.dir / "other_vocab.txt", other);
  auto r = t::run_recmodel({"preprocess", "--train", f.path("train.csv"), "--dev", f.path("dev.csv"), "--test",
                            f.path("test.csv"), "--vocab", f.path("other_vocab.txt"), "--labels", "a,b,c", "--out",
                            f.path("other"), "-q"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto e = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.path("other")});
  CHECK(e.exit_code == 3);
  CHECK(e.err.rfind("recmodel: error: " + f.path("other") + " was tokenized with another vocabulary than " + f.model +
                        " (vocabulary sha256 ",
                    0) == 0);
  CHECK(e.err.find("prepare the data again with 'recmodel preprocess --model " + f.model + "'") != std::string::npos);
  auto record = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.data, "--record"});
  CHECK(record.exit_code == 2);
  CHECK(record.err.rfind("recmodel: error: --record attaches the metrics to a registry version", 0) == 0);
  auto missing = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.path("nope")});
  CHECK(missing.exit_code == 4);
}

TEST_CASE("evaluate --record attaches the metrics to the registry version") {
  ModelFixture f;
  std::string db = f.path("registry.db");
  auto reg = t::run_recmodel({"--registry", db, "registry", "register", "intent", "--path", f.model, "-q"});
  REQUIRE_MESSAGE(reg.exit_code == 0, reg.err);
  auto promote = t::run_recmodel({"--registry", db, "registry", "promote", "models:/intent/1", "--alias", "staging",
                                  "-q"});
  REQUIRE_MESSAGE(promote.exit_code == 0, promote.err);
  auto r = t::run_recmodel({"--registry", db, "evaluate", "--model", "models:/intent@staging", "--data", f.data,
                            "--record", "--json", "-q"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["version"] == "models:/intent/1");
  auto show = t::run_recmodel({"--registry", db, "registry", "show", "models:/intent/1", "--json"});
  REQUIRE_MESSAGE(show.exit_code == 0, show.err);
  auto shown = nlohmann::json::parse(show.out);
  REQUIRE(shown["evaluations"].size() == 1);
  CHECK(shown["evaluations"][0]["split"] == "test");
  CHECK(shown["evaluations"][0]["metrics"]["accuracy"].get<double>() == doctest::Approx(0.8));
  CHECK(shown["evaluations"][0]["dataset_sha256"].get<std::string>().size() == 64);
}

namespace {

// A copy of `f`'s dataset at `name` whose manifest.json is edited by `edit`.
std::string edited_dataset(const ModelFixture& f, const std::string& name,
                           const std::function<void(nlohmann::json&)>& edit) {
  fs::copy(f.data, f.dir / name, fs::copy_options::recursive);
  auto manifest = nlohmann::json::parse(t::read_text(f.dir / name / "manifest.json"));
  edit(manifest);
  t::write_text(f.dir / name / "manifest.json", manifest.dump(2));
  return f.path(name);
}

// Runs the same model and dataset through evaluate, train and quantize (under the memory limit),
// each writing nothing: the refusals are compared across commands.
struct Runs {
  t::RunResult evaluate, train, quantize;
};

Runs through_each_command(const ModelFixture& f, const std::string& model, const std::string& data) {
  Runs runs;
  runs.evaluate = t::run_recmodel_limited({"evaluate", "--model", model, "--data", data});
  runs.train = t::run_recmodel_limited({"train", "--model", model, "--data", data, "--out", f.path("trained")});
  runs.quantize = t::run_recmodel_limited({"quantize", "--model", model, "--data", data, "--out", f.path("int8")});
  CHECK_FALSE(fs::exists(f.dir / "trained"));
  CHECK_FALSE(fs::exists(f.dir / "int8"));
  return runs;
}

// Checks that each run was refused with `exit_code` and exactly the error line `line`.
void check_same_refusal(const std::vector<std::pair<const char*, t::RunResult>>& runs, int exit_code,
                        const std::string& line) {
  for (const auto& [command, run] : runs) {
    CAPTURE(command);
    REQUIRE_REFUSED(run, exit_code);
    CHECK(run.err.substr(std::min(run.err.find("recmodel: error: "), run.err.size())) == line);
  }
}

void check_same_refusal(const Runs& runs, int exit_code, const std::string& line) {
  check_same_refusal({{"evaluate", runs.evaluate}, {"train", runs.train}, {"quantize", runs.quantize}}, exit_code,
                     line);
}

const std::string kResetHead = "; pass --reset-head to train a new head";

}  // namespace

TEST_CASE("regression: evaluate refuses a dataset from a newer recmodel like train does") {
  ModelFixture f;
  const auto version =
      nlohmann::json::parse(t::read_text(fs::path(f.data) / "manifest.json"))["format_version"].get<int>();
  std::string newer = edited_dataset(f, "newer", [&](nlohmann::json& m) { m["format_version"] = version + 1; });
  check_same_refusal(through_each_command(f, f.model, newer), 3,
                     "recmodel: error: " + newer + "/manifest.json: dataset format version " +
                         std::to_string(version + 1) + " is newer than this recmodel reads (" +
                         std::to_string(version) + "); upgrade recmodel\n");
}

TEST_CASE("regression: a dataset manifest with fields this recmodel does not know is still read") {
  ModelFixture f;
  // Newer preprocess runs record more (policy counts, test overlap); the format version says
  // whether a reader must understand them.
  std::string extended = edited_dataset(f, "extended", [](nlohmann::json& m) {
    m["policy"] = {{"duplicates", "keep"}, {"conflicts", {{"kept", 3}, {"rejected", 0}}}};
    m["test_overlap"] = {{"rows", 7}, {"dropped", false}};
    m["splits"]["test"]["overlap_with_train"] = 7;
  });
  auto usual = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.data, "--json", "-q"});
  auto r = t::run_recmodel({"evaluate", "--model", f.model, "--data", extended, "--json", "-q"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(usual.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"] == nlohmann::json::parse(usual.out)["accuracy"]);
}

TEST_CASE("regression: evaluate reads the manifest with the bounded parser, like train") {
  ModelFixture f;
  fs::copy(f.data, f.dir / "deep", fs::copy_options::recursive);
  t::write_text(f.dir / "deep" / "manifest.json", std::string(200000, '[') + std::string(200000, ']'));
  Runs runs = through_each_command(f, f.model, f.path("deep"));
  CHECK(runs.train.err.find("/manifest.json: JSON nested deeper than") != std::string::npos);
  check_same_refusal(runs, 3, runs.train.err.substr(runs.train.err.find("recmodel: error: ")));
}

TEST_CASE("regression: evaluate, quantize and train give one message for a dataset label the model does not have") {
  ModelFixture f;
  auto m = t::fixture_model("tiny", {"a", "b", "x"}, /*seed=*/3);
  t::write_fixture_model(f.dir / "abx", m);
  const std::string other = f.path("abx");
  const std::string line = "recmodel: error: " + f.data + ": label \"c\" of the dataset is not a label of " + other +
                           " (its labels: \"a\", \"b\", \"x\")";
  Runs runs = through_each_command(f, other, f.data);
  check_same_refusal({{"evaluate", runs.evaluate}, {"quantize", runs.quantize}}, 3, line + "\n");
  // The same words; train also says how it can train on this dataset anyway.
  check_same_refusal({{"train", runs.train}}, 3, line + kResetHead + "\n");
}

TEST_CASE("regression: evaluate, quantize and train give one message for a regression dataset and a classifier") {
  ModelFixture f;
  std::string regression = edited_dataset(f, "regression", [](nlohmann::json& m) {
    m["task"] = "regression";
    m.erase("labels");
  });
  const std::string line =
      "recmodel: error: " + f.model + " is a classification model but " + regression + " is a regression dataset";
  Runs runs = through_each_command(f, f.model, regression);
  check_same_refusal({{"evaluate", runs.evaluate}, {"quantize", runs.quantize}}, 3, line + "\n");
  check_same_refusal({{"train", runs.train}}, 3, line + kResetHead + "\n");
}

TEST_CASE("regression: evaluate, quantize and train give one message for other tokenizer settings") {
  ModelFixture f;
  std::string cased = edited_dataset(f, "cased", [](nlohmann::json& m) {
    m["tokenizer"]["settings"]["do_lower_case"] = false;
    m["tokenizer"]["settings"]["strip_accents"] = false;
  });
  check_same_refusal(through_each_command(f, f.model, cased), 3,
                     "recmodel: error: " + cased + " was tokenized with other settings (lowercase false, strip "
                     "accents false, split CJK characters true) than " + f.model + " (lowercase true, strip accents "
                     "true, split CJK characters true); prepare the data again with 'recmodel preprocess --model " +
                         f.model + "'\n");
}

TEST_CASE("regression: evaluate, quantize and train refuse a dataset longer than the model's positions alike") {
  ModelFixture f;
  auto r = t::run_recmodel({"preprocess", "--train", f.path("train.csv"), "--dev", f.path("dev.csv"), "--test",
                            f.path("test.csv"), "--vocab", f.model + "/vocab.txt", "--labels", "a,b,c", "--out",
                            f.path("long"), "--max-length", "512", "-q"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const std::string long_data = f.path("long");
  check_same_refusal(through_each_command(f, f.model, long_data), 3,
                     "recmodel: error: " + long_data + ": examples of up to 512 tokens, but the model " + f.model +
                         " has 128 positions; preprocess with --max-length 128\n");
}

TEST_CASE("regression: evaluate and quantize refuse an empty --split with one message") {
  ModelFixture f;
  std::string no_dev = edited_dataset(f, "no-dev", [](nlohmann::json& m) { m["splits"]["dev"]["examples"] = 0; });
  // (train trains without a dev split: it takes no --split.)
  auto evaluate = t::run_recmodel_limited({"evaluate", "--model", f.model, "--data", no_dev, "--split", "dev"});
  auto quantize = t::run_recmodel_limited(
      {"quantize", "--model", f.model, "--data", no_dev, "--split", "dev", "--out", f.path("int8")});
  CHECK_FALSE(fs::exists(f.dir / "int8"));
  check_same_refusal({{"evaluate", evaluate}, {"quantize", quantize}}, 4,
                     "recmodel: error: " + no_dev +
                         ": the dataset has no examples in split 'dev' (--split); it has examples in train, test\n");
  fs::remove(f.dir / "no-dev" / "test.bin");
  auto missing = t::run_recmodel({"evaluate", "--model", f.model, "--data", no_dev});
  REQUIRE_REFUSED(missing, 4);
  CHECK(missing.err == "recmodel: error: " + no_dev +
                           ": the dataset has no examples in split 'test' (--split); it has examples in train\n");
}

TEST_CASE("regression: train refuses a head with more classes than the dataset that evaluate scores by name") {
  ModelFixture f;
  auto m = t::fixture_model("tiny", {"c", "x", "a", "b"}, /*seed=*/11);
  t::write_fixture_model(f.dir / "cxab", m);
  const std::string wide = f.path("cxab");
  auto evaluate = t::run_recmodel({"evaluate", "--model", wide, "--data", f.data, "--json", "-q"});
  REQUIRE_MESSAGE(evaluate.exit_code == 0, evaluate.err);
  CHECK(nlohmann::json::parse(evaluate.out)["confusion_matrix"]["labels"] ==
        nlohmann::json({"c", "x", "a", "b"}));
  auto train = t::run_recmodel_limited({"train", "--model", wide, "--data", f.data, "--out", f.path("trained")});
  REQUIRE_REFUSED(train, 3);
  CHECK(train.err == "recmodel: error: the model " + wide + " has labels [\"c\", \"x\", \"a\", \"b\"] but the dataset " +
                         f.data + " has labels [\"a\", \"b\", \"c\"]" + kResetHead + "\n");
  CHECK_FALSE(fs::exists(f.dir / "trained"));
}

TEST_CASE("regression: quantize --max-drop refuses accuracy=0.01, (trailing comma) as evaluate's gates do") {
  ModelFixture f;
  // One parser (metrics::parse_gates): the same refusal, exit 2, in both commands.
  const std::pair<const char*, std::string> cases[] = {
      {"accuracy=0.01,", "'accuracy=0.01,': empty item; expected metric=value[,metric=value...], such as accuracy=0.9"},
      {",accuracy=0.01", "',accuracy=0.01': empty item; expected metric=value[,metric=value...], such as accuracy=0.9"},
      {"accuracy=0.01,,f1_macro=0.1",
       "'accuracy=0.01,,f1_macro=0.1': empty item; expected metric=value[,metric=value...], such as accuracy=0.9"},
      {"=0.01", "'=0.01': no metric name; expected metric=value, such as accuracy=0.9"},
      {"accuracy=1pt", "accuracy: '1pt' is not a number; expected a value such as accuracy=0.9"},
      {"accuracy", "'accuracy': expected metric=value, such as accuracy=0.9"},
      {"accuracy=0.1,accuracy=0.2", ": metric accuracy is given twice"},
  };
  for (const auto& [spec, message] : cases) {
    CAPTURE(spec);
    auto evaluate = t::run_recmodel({"evaluate", "--model", f.model, "--data", f.data, "--fail-under", spec});
    auto quantize =
        t::run_recmodel({"quantize", "--model", f.model, "--data", f.data, "--out", f.path("int8"), "--max-drop", spec});
    const std::string joiner = message.front() == ':' ? "" : " ";
    REQUIRE_REFUSED(evaluate, 2);
    REQUIRE_REFUSED(quantize, 2);
    CHECK(evaluate.err == "recmodel: error: --fail-under" + joiner + message + "\n");
    CHECK(quantize.err == "recmodel: error: --max-drop" + joiner + message + "\n");
  }
  auto unknown = t::run_recmodel({"quantize", "--model", f.model, "--data", f.data, "--out", f.path("int8"),
                                  "--max-drop", "acuracy=0.01"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.rfind("recmodel: error: unknown metric 'acuracy' in --max-drop; did you mean 'accuracy'? ", 0) == 0);
  CHECK_FALSE(fs::exists(f.dir / "int8"));
}

TEST_CASE("regression: evaluate --predictions with a JSONL line or probs nested 200k deep is refused, not a crash") {
  Files f;
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  SUBCASE("a predictions line") {
    t::write_text(f.dir / "deep.jsonl", "{\"id\": \"q1\", \"label\": \"books\", \"probs\": " + deep + "}\n");
    auto r = t::run_recmodel_limited({"evaluate", "--predictions", f.path("deep.jsonl"), "--labels", f.labels});
    REQUIRE_REFUSED(r, 3);
    CHECK(r.err.find("deep.jsonl:1") != std::string::npos);
  }
  SUBCASE("a probs column in CSV") {
    t::write_text(f.dir / "deep.csv", "id,label,probs\nq1,books,\"" + deep + "\"\n");
    auto r = t::run_recmodel_limited({"evaluate", "--predictions", f.path("deep.csv"), "--labels", f.labels});
    REQUIRE_REFUSED(r, 3);
    CHECK(r.err.find("deep.csv:2: the probs column is not a JSON object") != std::string::npos);
  }
}
