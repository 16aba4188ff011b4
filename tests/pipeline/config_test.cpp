// The pipeline file as load_config reads it: options per command, paths, --set, and the refusals
// with file, line and the closest known key.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "pipeline/config.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;
using recmodel::pipeline::Config;
using recmodel::pipeline::KnownOptions;
using recmodel::pipeline::load_config;

namespace {

KnownOptions known() {
  KnownOptions k;
  k.preprocess = {{"train", false}, {"dev", false},          {"test", false},       {"input", false},
                  {"split", false}, {"text-column", false},  {"label-column", false}, {"max-length", false},
                  {"out", false},   {"vocab", false},        {"model", false},      {"drop-test-overlap", true},
                  {"help", true},   {"max-rejected", false}, {"seed", false}};
  k.train = {{"epochs", false}, {"batch-size", false}, {"lr", false}, {"seed", false}, {"model", false},
             {"data", false},   {"out", false},        {"force", true}, {"reset-head", true}, {"help", true}};
  return k;
}

struct Files {
  t::TempDir dir;
  Files() {
    fs::create_directories(dir / "data");
    for (const char* name : {"data/train.csv", "data/dev.csv", "data/test.csv", "vocab.txt"}) t::write_text(dir / name, "x\n");
  }
  fs::path write(const std::string& text) const {
    t::write_text(dir / "nightly.toml", text);
    return dir / "nightly.toml";
  }
};

const std::string kMinimal =
    "[data]\ntrain = \"data/train.csv\"\ndev = \"data/dev.csv\"\ntest = \"data/test.csv\"\n"
    "[model]\npreset = \"tiny\"\nvocab = \"vocab.txt\"\n"
    "[register]\nname = \"intent\"\n";

std::string refusal(const Files& files, const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    load_config(files.write(text), sets, known());
  } catch (const recmodel::Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("pipeline config: the sections of the example become command lines and settings") {
  Files files;
  const Config config = load_config(files.write(kMinimal +
                                                "[train]\nepochs = 3\nbatch_size = 32\nlr = 5e-4\nreset_head = true\n"
                                                "[gates]\nfail_under = { accuracy = 0.9, f1_macro = 0.85 }\nmax = { }\n"
                                                "[quantize]\nmax_drop = 0.01\n[export]\nint8 = true\n"
                                                "[promotion]\nmetric = \"f1_macro\"\nmin_improvement = 0.002\n"
                                                "[publish]\nremotes = [\"onprem\", \"cloud\"]\n"),
                                    {"train.lr=1e-4"}, known());
  CHECK(config.workspace == files.dir / "nightly.pipeline");
  REQUIRE(config.data_files.size() == 3);
  // In key order (TOML tables are unordered): dev, test, train.
  CHECK(config.data_files[2].key == "data.train");
  CHECK(config.data_files[2].path == files.dir / "data/train.csv");
  std::vector<std::string> argv;
  recmodel::pipeline::append_options(argv, config.train);
  CHECK(argv == std::vector<std::string>{"--batch-size", "32", "--epochs", "3", "--lr", "0.0001", "--reset-head"});
  REQUIRE(config.fail_under.size() == 2);
  CHECK(config.fail_under[0].metric == "accuracy");
  CHECK(config.fail_under[1].threshold == doctest::Approx(0.85));
  CHECK(config.max.empty());
  CHECK(config.quantize);
  REQUIRE(config.max_drop.size() == 1);
  CHECK(config.max_drop[0].metric == "accuracy");
  CHECK(config.max_drop[0].threshold == doctest::Approx(0.01));
  CHECK(config.export_onnx);
  CHECK(config.export_int8);
  CHECK(config.export_verify);
  CHECK(config.promotion);
  CHECK(config.alias == "production");
  CHECK(config.metric == "f1_macro");
  CHECK(config.remotes == std::vector<std::string>{"onprem", "cloud"});
  CHECK(config.vocab == files.dir / "vocab.txt");
}

TEST_CASE("pipeline config: refusals name the file, the line and the closest key") {
  Files files;
  const std::string file = (files.dir / "nightly.toml").string();
  // What follows the minimal file, and what is said about it (the file's name first).
  const std::pair<const char*, const char*> cases[] = {
      {"[train]\nepoch = 3\n",
       ":11: train.epoch: unknown key (did you mean 'epochs'?); [train] takes the long options of recmodel train with _ "
       "for -"},
      {"[train]\nout = \"x\"\n", ":11: train.out: is set by the pipeline itself (each stage's out is its own)"},
      {"[train]\nreset_head = 1\n", ":11: train.reset_head: is a flag: true or false, not an integer"},
      {"[promotoin]\n",
       ":10: promotoin: unknown key (did you mean 'promotion'?); known: pipeline, data, model, train, gates, quantize, "
       "export, register, promotion, publish"},
      {"[register.tags]\nclassification = \"private\"\n", ":11: register.tags.classification: is register.classification"},
      {"[promotion]\nmin_improvement = -1\n", ":11: promotion.min_improvement: must be 0 or more"},
      {"[publish]\nremotes = [\"a\", \"a\"]\n", ":11: publish.remotes: names 'a' twice"},
  };
  for (const auto& [text, said] : cases) CHECK(refusal(files, kMinimal + text) == file + said);
  CHECK(refusal(files, "[data]\ntrain = \"data/nope.csv\"\n[model]\npreset = \"tiny\"\nvocab = \"vocab.txt\"\n"
                       "[register]\nname = \"x\"\n") ==
        file + ": data.train: no such file: " + (files.dir / "data/nope.csv").string());
  CHECK(refusal(files, "[data]\ntrain = \"data/train.csv\"\n[model]\nbase = \"m\"\npreset = \"tiny\"\n[register]\nname = \"x\"\n") ==
        file + ": [model] needs exactly one of base (a model REF) and preset (tiny, mini, small, base, with vocab)");
  CHECK(refusal(files, kMinimal.substr(0, kMinimal.find("[register]"))) ==
        file + ": has no [register] table: the registry name of the trained model");
  CHECK(refusal(files, "[data\n") .find(file + ":1:") == 0);
}

TEST_CASE("pipeline config: --set writes into the file's tables, as TOML or as a string") {
  Files files;
  const Config config =
      load_config(files.write(kMinimal), {"train.epochs=2", "register.name=intent-v2", "gates.fail_under.accuracy=0.95",
                                          "register.classification=\"private\""},
                  known());
  std::vector<std::string> argv;
  recmodel::pipeline::append_options(argv, config.train);
  CHECK(argv == std::vector<std::string>{"--epochs", "2"});
  CHECK(config.name == "intent-v2");
  REQUIRE(config.fail_under.size() == 1);
  CHECK(config.fail_under[0].threshold == doctest::Approx(0.95));
  CHECK(config.classification == "private");
  const std::string file = (files.dir / "nightly.toml").string();
  CHECK(refusal(files, kMinimal, {"train.epoch=2"}) ==
        "--set train.epoch: train.epoch: unknown key (did you mean 'epochs'?); [train] takes the long options of "
        "recmodel train with _ for -");
  CHECK(refusal(files, kMinimal, {"lr=1"}) == "--set 'lr=1': the key must be SECTION.KEY, e.g. train.lr");
  CHECK(refusal(files, kMinimal, {"register.name.x=1"}) == "--set 'register.name.x=1': register.name is not a table");
}

TEST_CASE("pipeline config: the commented example in share/ reads without an error") {
  Files files;
  t::write_text(files.dir / "share.toml", t::read_text(fs::path(RECMODEL_SOURCE_DIR) / "share/pipeline.toml"));
  const Config config = load_config(files.dir / "share.toml", {}, known());
  CHECK(config.workspace == files.dir / "pipeline-work");
  CHECK(config.name == "products");
  CHECK(config.classification == "internal");
  CHECK(config.promotion);
  CHECK(config.min_improvement == doctest::Approx(0.002));
  CHECK(config.remotes == std::vector<std::string>{"onprem"});
}
