// `recmodel pipeline` end to end on a tiny task: the first run, an unchanged re-run that does no
// work, a changed setting that re-runs only what depends on it, a failed gate, a challenger that
// loses to the champion, residency on publish, an interrupted train stage resumed, the workspace
// lock, and the file's errors.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/cli/train_fixture.h"
#include "tests/support.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A project directory: vocabulary, given splits, a remotes file and a pipeline file.
struct Project {
  t::TempDir dir;
  std::string registry, remotes;

  Project() {
    std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (const char* w : t::train::kWords) vocab += std::string(w) + "\n";
    t::write_text(dir / "vocab.txt", vocab);
    fs::create_directories(dir / "data");
    t::write_text(dir / "data/train.csv", t::train::category_csv(300, 11));
    t::write_text(dir / "data/dev.csv", t::train::category_csv(60, 12));
    t::write_text(dir / "data/test.csv", t::train::category_csv(90, 13));
    registry = path("registry.db");
    remotes = path("remotes.toml");
    fs::create_directories(dir / "onprem");
    fs::create_directories(dir / "cloud");
    t::write_text(remotes, "[remotes.onprem]\nurl = \"file://" + path("onprem") + "\"\npublic = false\n\n"
                           "[remotes.cloud]\nurl = \"file://" + path("cloud") + "\"\npublic = true\n");
  }

  std::string path(const std::string& name) const { return (dir / name).string(); }

  // Writes pipeline.toml: the base sections, then `extra` (more sections, TOML text).
  void write(const std::string& extra = "", const std::string& train = "epochs = 3\nbatch_size = 16\nlr = 2e-3\nseed = 5\n") {
    t::write_text(dir / "pipeline.toml",
                  "[data]\ntrain = \"data/train.csv\"\ndev = \"data/dev.csv\"\ntest = \"data/test.csv\"\n"
                  "text_column = \"title\"\nlabel_column = \"category\"\nmax_length = 16\n\n"
                  "[model]\npreset = \"tiny\"\nvocab = \"vocab.txt\"\nseed = 3\n\n"
                  "[train]\n" + train + "\n"
                  "[register]\nname = \"products\"\ntags = { team = \"search\" }\n\n" + extra);
  }

  t::RunResult run(std::vector<std::string> args, const std::string& command = "run") {
    std::vector<std::string> full = {"--registry", registry, "--threads", "1", "--json", "pipeline", "--config", remotes,
                                     command, path("pipeline.toml")};
    full.insert(full.end(), args.begin(), args.end());
    // export --verify runs the model in tests/peers' onnxruntime-node.
    const fs::path ort = fs::path(RECMODEL_SOURCE_DIR) / "tests" / "peers" / "node_modules" / "onnxruntime-node";
    return t::run_recmodel(full, "", {"RECMODEL_ONNXRUNTIME_NODE=" + ort.string()});
  }

  t::RunResult recmodel(std::vector<std::string> args) {
    std::vector<std::string> full = {"--registry", registry};
    full.insert(full.end(), args.begin(), args.end());
    return t::run_recmodel(full);
  }
};

json parse(const t::RunResult& result) {
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  REQUIRE(!result.out.empty());
  return json::parse(result.out);
}

std::map<std::string, std::string> statuses(const json& doc) {
  std::map<std::string, std::string> out;
  for (auto& [name, stage] : doc["stages"].items()) out[name] = stage["status"].get<std::string>();
  return out;
}

const char* kPromotion = "[promotion]\nalias = \"production\"\nmetric = \"accuracy\"\n\n";

}  // namespace

TEST_CASE("pipeline: a first run runs every stage, an unchanged re-run runs none, a new lr re-runs train and after") {
  Project p;
  p.write(kPromotion);
  auto first = p.run({});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  json doc = parse(first);
  CHECK(statuses(doc) == std::map<std::string, std::string>{{"preprocess", "ran"}, {"train", "ran"}, {"evaluate", "ran"},
                                                              {"quantize", "skipped"}, {"export", "skipped"},
                                                              {"register", "ran"}, {"promote", "ran"}, {"publish", "skipped"}});
  CHECK(doc["version"] == "models:/products/1");
  CHECK(doc["promotion"]["promoted"] == true);
  CHECK(doc["metrics"]["accuracy"].get<double>() > 0.5);
  // The record, its summary and the stage logs are on disk.
  const fs::path record = doc["record"].get<std::string>();
  CHECK(json::parse(t::read_text(record))["stages"]["train"]["status"] == "ran");
  CHECK(t::read_text(record.parent_path() / "summary.md").find("| train | ran |") != std::string::npos);
  CHECK(t::read_text(record.parent_path() / "logs/train.log").find(" train --model ") != std::string::npos);
  auto shown = p.recmodel({"--json", "registry", "show", "models:/products@production"});
  REQUIRE(shown.exit_code == 0);
  json version = json::parse(shown.out);
  CHECK(version["version"] == 1);
  CHECK(version["tags"]["team"] == "search");

  auto again = p.run({});
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  json second = parse(again);
  for (const char* stage : {"preprocess", "train", "evaluate", "register", "promote"})
    CHECK_MESSAGE(second["stages"][stage]["status"] == "cached", stage << ": " << second["stages"][stage].dump());
  CHECK(second["stages"]["promote"]["reason"] == "models:/products/1 is production already");
  CHECK(second["version"] == "models:/products/1");

  auto status = p.run({"--set", "train.lr=1e-3"}, "status");
  REQUIRE(status.exit_code == 0);
  json planned = parse(status);
  CHECK(planned["stages"]["preprocess"]["status"] == "cached");
  CHECK(planned["stages"]["train"]["status"] == "pending");
  CHECK(planned["stages"]["train"]["reason"] == "changed: settings.--lr");
  CHECK(planned["stages"]["evaluate"]["reason"] == "after train");

  auto changed = p.run({"--set", "train.lr=1e-3"});
  json third = parse(changed);
  CHECK(third["stages"]["preprocess"]["status"] == "cached");
  CHECK(third["stages"]["train"]["status"] == "ran");
  CHECK(third["stages"]["evaluate"]["status"] == "ran");
  CHECK(third["stages"]["register"]["status"] == "ran");
  CHECK(third["version"] == "models:/products/2");
  // The new version's lineage names the champion it was compared with.
  auto lineage = p.recmodel({"--json", "registry", "show", "models:/products/2"});
  REQUIRE(lineage.exit_code == 0);
  CHECK(json::parse(lineage.out)["parent"] == "models:/products/1");
  // Promoted or not, the exit code and the record agree.
  const bool promoted = third["promotion"]["promoted"].get<bool>();
  CHECK(changed.exit_code == (promoted ? 0 : 1));

  // --force STAGE runs it and everything after it, cached or not.
  json forced = parse(p.run({"--set", "train.lr=1e-3", "--force", "evaluate"}));
  CHECK(forced["stages"]["train"]["status"] == "cached");
  CHECK(forced["stages"]["evaluate"]["status"] == "ran");
  CHECK(forced["stages"]["evaluate"]["reason"] == "--force evaluate");
  CHECK(forced["stages"]["register"]["status"] == "ran");
  CHECK(p.run({"--force", "train-it"}).exit_code == 2);
}

TEST_CASE("pipeline: quantize and export: the version registered is the int8 model with its ONNX files, scored as int8") {
  Project p;
  p.write(std::string("[quantize]\nmax_drop = 0.5\n\n[export]\nint8 = true\n\n") + kPromotion);
  auto run = p.run({});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  json doc = parse(run);
  CHECK(doc["stages"]["quantize"]["status"] == "ran");
  CHECK(doc["stages"]["export"]["status"] == "ran");
  const fs::path release = doc["artifacts"]["release"].get<std::string>();
  CHECK(fs::exists(release / "onnx/model.onnx"));
  CHECK(fs::exists(release / "onnx/model_quantized.onnx"));
  CHECK(t::read_text(release / "model.safetensors") ==
        t::read_text(doc["artifacts"]["int8_model"].get<std::string>() + "/model.safetensors"));
  // The registered metrics are the int8 model's own (the quantize stage's evaluation), not fp32's.
  CHECK(doc["stages"]["register"]["details"]["metrics"] == doc["stages"]["quantize"]["details"]["metrics"]);
  auto again = p.run({});
  REQUIRE(again.exit_code == 0);
  for (auto& [name, stage] : parse(again)["stages"].items())
    CHECK_MESSAGE(stage["status"] != "ran", name << " ran again: " << stage.dump());
}

TEST_CASE("pipeline: a failed gate exits 1 and registers and promotes nothing, and the re-run starts at the gate") {
  Project p;
  p.write(std::string("[gates]\nmax = { accuracy = 0.01 }\n\n") + kPromotion);
  auto run = p.run({});
  CHECK(run.exit_code == 1);
  json doc = parse(run);
  CHECK(doc["stages"]["evaluate"]["status"] == "failed");
  CHECK(doc["stages"]["register"]["status"] == "skipped");
  CHECK(doc["stages"]["promote"]["status"] == "skipped");
  CHECK(doc["stages"]["evaluate"]["details"]["gates"][0]["passed"] == false);
  CHECK(t::error_line_count(run.err) == 1);
  CHECK(run.err.find("recmodel: error: stage evaluate: ") != std::string::npos);
  CHECK(p.recmodel({"registry", "show", "models:/products"}).exit_code == 4);
  auto again = p.run({});
  CHECK(again.exit_code == 1);
  json second = parse(again);
  CHECK(second["stages"]["train"]["status"] == "cached");
  CHECK(second["stages"]["evaluate"]["status"] == "failed");
}

TEST_CASE("pipeline: a challenger worse than the champion is registered, not promoted (exit 1)") {
  Project p;
  p.write(kPromotion);
  REQUIRE(p.run({}).exit_code == 0);
  // One step at a learning rate that cannot learn: the random head's accuracy against the trained one.
  auto worse = p.run({"--set", "train.lr=1e-12", "--set", "train.epochs=1"});
  CHECK(worse.exit_code == 1);
  json doc = parse(worse);
  CHECK(doc["stages"]["register"]["status"] == "ran");
  CHECK(doc["stages"]["promote"]["status"] == "ran");
  CHECK(doc["promotion"]["promoted"] == false);
  CHECK(doc["version"] == "models:/products/2");
  CHECK(worse.err.find("recmodel: error: not better than production: accuracy ") != std::string::npos);
  CHECK(t::error_line_count(worse.err) == 1);
  auto shown = p.recmodel({"--json", "registry", "show", "models:/products@production"});
  REQUIRE(shown.exit_code == 0);
  CHECK(json::parse(shown.out)["version"] == 1);
  // Nothing changed: the decision is cached, and still not a promotion.
  auto again = p.run({"--set", "train.lr=1e-12", "--set", "train.epochs=1"});
  CHECK(again.exit_code == 1);
  CHECK(parse(again)["stages"]["promote"]["status"] == "cached");
}

TEST_CASE("pipeline: publish pushes the promoted version, and a private one is refused by a public remote") {
  Project p;
  p.write(std::string(kPromotion) + "[publish]\nremotes = [\"onprem\", \"cloud\"]\n");
  auto published = p.run({"--set", "register.classification=internal"});
  INFO(published.err);
  REQUIRE(published.exit_code == 0);
  CHECK(parse(published)["published"] == json::array({"onprem", "cloud"}));
  CHECK(fs::exists(p.dir / "onprem/models/products/1.json"));
  CHECK(fs::exists(p.dir / "cloud/models/products/1.json"));

  Project q;
  q.write(std::string(kPromotion) + "[publish]\nremotes = [\"onprem\", \"cloud\"]\n");
  auto refused = q.run({"--set", "register.classification=private"});
  CHECK(refused.exit_code == 5);
  json doc = parse(refused);
  CHECK(doc["stages"]["publish"]["status"] == "failed");
  CHECK(refused.err.find("refusing to publish models:/products/1 to 'cloud': it is classified private") != std::string::npos);
  // Residency is checked before anything moves: the private remote did not get it either.
  CHECK_FALSE(fs::exists(q.dir / "onprem/models"));
  CHECK_FALSE(fs::exists(q.dir / "cloud/models"));
}

TEST_CASE("pipeline: the data can come from a remote, as a pushed snapshot, pulled once and verified") {
  Project p;
  auto pushed = t::run_recmodel({"push", p.path("data"), "--to", "onprem", "--name", "products-data", "--version",
                                 "2026-12-04", "--config", p.remotes});
  INFO(pushed.err);
  REQUIRE(pushed.exit_code == 0);
  fs::remove_all(p.dir / "data");  // only the remote has it now
  p.write();
  std::string text = t::read_text(p.dir / "pipeline.toml");
  text.replace(text.find("[data]\n"), 7,
               "[data]\nfrom_remote = \"onprem\"\nsnapshot = \"products-data/2026-12-04\"\n");
  for (const char* split : {"train", "dev", "test"}) {
    const std::string from = std::string("\"data/") + split;
    text.replace(text.find(from), from.size(), std::string("\"") + split);
  }
  t::write_text(p.dir / "pipeline.toml", text);
  auto status = p.run({}, "status");
  REQUIRE(status.exit_code == 0);
  CHECK(parse(status)["stages"]["preprocess"]["reason"] ==
        "the data snapshot products-data/2026-12-04 is not pulled from 'onprem' yet");
  auto run = p.run({});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(parse(run)["stages"]["preprocess"]["status"] == "ran");
  CHECK(fs::exists(p.dir / "pipeline.pipeline/snapshots/products-data/2026-12-04/train.csv"));
  auto again = p.run({});
  REQUIRE(again.exit_code == 0);
  CHECK(parse(again)["stages"]["preprocess"]["status"] == "cached");
}

TEST_CASE("pipeline: an interrupted train stage continues from its checkpoint and gives the uninterrupted model") {
  Project p;
  p.write("", "epochs = 2\nbatch_size = 16\nlr = 2e-3\nseed = 5\ncheckpoint_every = 4\n");
  auto stopped = p.run({"--set", "train.stop_after=6"});
  CHECK(stopped.exit_code == 130);
  json doc = parse(stopped);
  CHECK(doc["stages"]["train"]["status"] == "failed");
  CHECK(doc["stages"]["evaluate"]["status"] == "skipped");
  CHECK(stopped.err.find("run the pipeline again to continue from the checkpoint") != std::string::npos);
  auto resumed = p.run({});
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  json second = parse(resumed);
  CHECK(second["stages"]["preprocess"]["status"] == "cached");
  CHECK(second["stages"]["train"]["reason"].get<std::string>().find("resuming its checkpoint") != std::string::npos);
  const fs::path log = fs::path(second["record"].get<std::string>()).parent_path() / "logs/train.log";
  CHECK(t::read_text(log).find("--resume") != std::string::npos);

  Project straight;
  straight.write("", "epochs = 2\nbatch_size = 16\nlr = 2e-3\nseed = 5\ncheckpoint_every = 4\n");
  REQUIRE(straight.run({}).exit_code == 0);
  CHECK(t::read_text(p.dir / "pipeline.pipeline/stages/train/model/model.safetensors") ==
        t::read_text(straight.dir / "pipeline.pipeline/stages/train/model/model.safetensors"));
}

TEST_CASE("pipeline: a second run on a held workspace exits 6 naming the holder") {
  Project p;
  p.write();
  fs::create_directories(p.dir / "pipeline.pipeline");
  const std::string lock = p.path("pipeline.pipeline/lock");
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const std::string holder = "pid 4242 on build-7 since 2026-12-04T02:00:00.000Z\n";
  REQUIRE(::write(fd, holder.data(), holder.size()) == static_cast<ssize_t>(holder.size()));
  auto run = p.run({});
  ::close(fd);
  CHECK(run.exit_code == 6);
  CHECK(run.err == "recmodel: error: " + p.path("pipeline.pipeline") +
                       ": another pipeline run holds this workspace (pid 4242 on build-7 since "
                       "2026-12-04T02:00:00.000Z); wait for it to finish\n");
  CHECK_FALSE(fs::exists(p.dir / "pipeline.pipeline/stages"));
}

TEST_CASE("pipeline: the file's mistakes are refused before any stage runs, naming the line") {
  Project p;
  SUBCASE("an unknown key gets the closest one") {
    p.write("", "epoch = 3\n");
    auto run = p.run({});
    CHECK(run.exit_code == 3);
    CHECK(run.err == "recmodel: error: " + p.path("pipeline.toml") +
                         ":15: train.epoch: unknown key (did you mean 'epochs'?); [train] takes the long options of "
                         "recmodel train with _ for -\n");
  }
  SUBCASE("a value the command would refuse") {
    p.write("", "batch_size = \"many\"\n");
    auto run = p.run({});
    CHECK(run.exit_code == 3);
    CHECK(run.err.find(p.path("pipeline.toml") + ": [train]: --batch-size: ") != std::string::npos);
  }
  SUBCASE("a misspelt metric in a gate") {
    p.write("[gates]\nfail_under = { acuracy = 0.9 }\n");
    auto run = p.run({});
    CHECK(run.exit_code == 3);
    CHECK(run.err.find("gates.fail_under.acuracy: unknown metric 'acuracy'") != std::string::npos);
    CHECK(run.err.find("did you mean 'accuracy'?") != std::string::npos);
  }
  SUBCASE("an unknown section") {
    p.write("[promotions]\nalias = \"production\"\n");
    auto run = p.run({});
    CHECK(run.exit_code == 3);
    CHECK(run.err.find("promotions: unknown key (did you mean 'promotion'?)") != std::string::npos);
  }
  SUBCASE("a malformed --set") {
    p.write();
    auto run = p.run({"--set", "lr"});
    CHECK(run.exit_code == 2);
    CHECK(run.err == "recmodel: error: --set 'lr': expected SECTION.KEY=VALUE, e.g. --set train.lr=1e-4\n");
  }
  CHECK_FALSE(fs::exists(p.dir / "pipeline.pipeline/stages"));
}
