// `recmodel export`: files written and their layout, the summary, refusing to overwrite,
// error lines and exit codes, int8 sources, and --verify with ONNX Runtime.
#include <cstdlib>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "converters/quantization.h"
#include "model/safetensors.h"
#include "tests/converters/model_fixture.h"
#include "tests/support.h"

// After the libtorch headers: glog, which they include, defines its own CHECK.
#include <doctest/doctest.h>

#include "tests/hostile.h"

namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  t::TempDir dir;
  std::string model;
  Fixture() {
    auto m = t::fixture_model("tiny", {"neg", "pos"});
    t::write_fixture_model(dir / "model", m);
    model = (dir / "model").string();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

onnx::ModelProto read_onnx(const fs::path& path) {
  onnx::ModelProto proto;
  std::string bytes = t::read_text(path);
  REQUIRE(proto.ParseFromString(bytes));
  return proto;
}

// The environment that lets the binary find tests/peers' onnxruntime-node.
std::vector<std::string> ort_env() {
  fs::path peers = fs::path(RECMODEL_SOURCE_DIR) / "tests" / "peers" / "node_modules" / "onnxruntime-node";
  return {"RECMODEL_ONNXRUNTIME_NODE=" + peers.string()};
}

bool ort_installed() {
  return fs::exists(fs::path(RECMODEL_SOURCE_DIR) / "tests" / "peers" / "node_modules" / "onnxruntime-node") &&
         std::system("node --version >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("export writes onnx/model.onnx into the model directory") {
  Fixture f;
  const std::string config_before = t::read_text(f.dir / "model" / "config.json");
  auto result = t::run_recmodel({"export", "--model", f.model, "-q"});
  CHECK(result.err == "");
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.rfind("exported " + f.model + " to " + f.model +
                             "/onnx (opset 17; onnx::checker and shape inference passed)\n"
                             "  onnx/model.onnx            fp32 ",
                         0) == 0);
  CHECK(result.out.find("load it with transformers.js: pipeline('text-classification', '" + f.model + "')\n") !=
        std::string::npos);
  auto proto = read_onnx(f.dir / "model" / "onnx" / "model.onnx");
  CHECK(proto.opset_import(0).version() == 17);
  CHECK(proto.graph().output(0).name() == "logits");
  CHECK(!fs::exists(f.dir / "model" / "onnx" / "model_quantized.onnx"));
  CHECK(t::read_text(f.dir / "model" / "config.json") == config_before);  // the source is left as it was

  // A second run refuses to overwrite; --force replaces.
  auto again = t::run_recmodel({"export", "--model", f.model});
  CHECK(again.exit_code == 2);
  CHECK(again.out == "");
  CHECK(again.err == "recmodel: error: " + f.model + "/onnx/model.onnx: already exists; pass --force to replace " +
                         f.model + "/onnx\n");
  auto forced = t::run_recmodel({"export", "--model", f.model, "--force", "--quantize", "int8", "-q"});
  CHECK(forced.exit_code == 0);
  CHECK(fs::exists(f.dir / "model" / "onnx" / "model_quantized.onnx"));
  // No staging directories are left behind.
  for (const auto& entry : fs::directory_iterator(f.dir / "model"))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("export --out writes the layout transformers.js loads, and --json describes it") {
  Fixture f;
  auto result = t::run_recmodel({"export", "--model", f.model, "--out", f.path("web"), "--quantize", "int8",
                                 "--opset", "15", "--json", "-q"});
  CHECK(result.err == "");
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  CHECK(doc["opset"] == 15);
  CHECK(doc["inputs"] == nlohmann::json({"input_ids", "attention_mask", "token_type_ids"}));
  CHECK(doc["outputs"] == nlohmann::json({"logits"}));
  REQUIRE(doc["files"].size() == 2);
  CHECK(doc["files"][0]["path"] == "onnx/model.onnx");
  CHECK(doc["files"][1]["path"] == "onnx/model_quantized.onnx");
  CHECK(doc["files"][1]["precision"] == "int8");
  CHECK(doc["verify"].is_null());
  for (const char* name : {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "vocab.txt", "onnx/model.onnx", "onnx/model_quantized.onnx"})
    CHECK_MESSAGE(fs::exists(f.dir / "web" / name), name);
  CHECK(t::read_text(f.dir / "web" / "config.json") == t::read_text(f.dir / "model" / "config.json"));
  const auto fp32 = fs::file_size(f.dir / "web" / "onnx" / "model.onnx");
  const auto int8 = fs::file_size(f.dir / "web" / "onnx" / "model_quantized.onnx");
  CHECK(doc["files"][0]["bytes"] == fp32);
  CHECK(int8 < fp32 / 2);
  CHECK(read_onnx(f.dir / "web" / "onnx" / "model.onnx").opset_import(0).version() == 15);

  auto again = t::run_recmodel({"export", "--model", f.model, "--out", f.path("web")});
  CHECK(again.exit_code == 2);
  CHECK(again.err == "recmodel: error: " + f.path("web") +
                         ": already exists; choose another --out or pass --force to replace it\n");
}

TEST_CASE("export of an int8 model directory writes its int8 graph only") {
  Fixture f;
  auto m = t::fixture_model("tiny", {"neg", "pos"});
  recmodel::converters::quantize_model(*m, {});
  t::write_fixture_model(f.dir / "int8", m);
  auto result = t::run_recmodel({"export", "--model", f.path("int8"), "--json", "-q"});
  CHECK(result.err == "");
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  REQUIRE(doc["files"].size() == 1);
  CHECK(doc["files"][0]["path"] == "onnx/model_quantized.onnx");
  CHECK(!fs::exists(f.dir / "int8" / "onnx" / "model.onnx"));
  auto per_tensor = t::run_recmodel({"export", "--model", f.path("int8"), "--out", f.path("x"), "--per-tensor"});
  CHECK(per_tensor.exit_code == 2);
  CHECK(per_tensor.err ==
        "recmodel: error: --per-tensor applies when export quantizes; " + f.path("int8") + " is int8 already\n");
}

TEST_CASE("export --external-data keeps the weights beside the graph") {
  Fixture f;
  auto result = t::run_recmodel({"export", "--model", f.model, "--out", f.path("ext"), "--external-data", "-q"});
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("(weights in onnx/model.onnx_data)") != std::string::npos);
  CHECK(fs::file_size(f.dir / "ext" / "onnx" / "model.onnx") < 64 * 1024);
  CHECK(fs::file_size(f.dir / "ext" / "onnx" / "model.onnx_data") > 1000000);
}

TEST_CASE("export errors name the file or option, with the documented exit code") {
  Fixture f;
  SUBCASE("missing model directory") {
    auto r = t::run_recmodel({"export", "--model", f.path("nope")});
    CHECK(r.exit_code == 4);
    CHECK(r.err == "recmodel: error: " + f.path("nope") + ": no such model directory (--model)\n");
  }
  SUBCASE("corrupt config.json") {
    t::write_text(f.dir / "model" / "config.json", "{not json");
    auto r = t::run_recmodel({"export", "--model", f.model, "--out", f.path("o")});
    CHECK(r.exit_code == 3);
    CHECK(r.err.rfind("recmodel: error: " + f.model + "/config.json: not valid JSON", 0) == 0);
    CHECK(!fs::exists(f.dir / "o"));
  }
  SUBCASE("opset out of range") {
    auto r = t::run_recmodel({"export", "--model", f.model, "--opset", "13"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--opset") != std::string::npos);
    CHECK(r.err.find("14") != std::string::npos);
  }
  SUBCASE("unknown --quantize value") {
    auto r = t::run_recmodel({"export", "--model", f.model, "--quantize", "int4"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("int8") != std::string::npos);
  }
  SUBCASE("--per-tensor without --quantize") {
    auto r = t::run_recmodel({"export", "--model", f.model, "--per-tensor"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "recmodel: error: --per-tensor applies to --quantize int8\n");
  }
  SUBCASE("--out that contains the model") {
    auto r = t::run_recmodel({"export", "--model", f.model, "--out", f.dir.path().string(), "--force"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("contains the model directory") != std::string::npos);
    CHECK(fs::exists(f.dir / "model" / "config.json"));
  }
}

TEST_CASE("export --verify compares ONNX Runtime's logits with recmodel's") {
  Fixture f;
  // scripts/test.sh installs the peers; a missing one is a failure, not a skip.
  REQUIRE_MESSAGE(ort_installed(), "node or tests/peers/node_modules/onnxruntime-node missing (scripts/install-deps.sh)");
  auto result = t::run_recmodel(
      {"export", "--model", f.model, "--out", f.path("v"), "--quantize", "int8", "--verify", "--json"}, "", ort_env());
  REQUIRE(result.exit_code == 0);
  auto doc = nlohmann::json::parse(result.out);
  REQUIRE(doc["verify"]["files"].size() == 2);
  CHECK(doc["verify"]["inputs"] == 32);
  CHECK(doc["verify"]["runtime"].get<std::string>().rfind("onnxruntime-node ", 0) == 0);
  const auto& fp32 = doc["verify"]["files"][0]["outputs"]["logits"];
  CHECK(fp32["max_abs_diff"].get<double>() <= 1e-4);
  CHECK(fp32["ok"] == true);
  CHECK(doc["verify"]["files"][1]["outputs"]["logits"]["ok"] == true);
  CHECK(result.err.find("validating with ONNX Runtime") != std::string::npos);

  // Human output: one line per file with the largest difference, as Optimum prints it.
  auto human = t::run_recmodel({"export", "--model", f.model, "--out", f.path("v"), "--force", "--verify", "-q"},
                               "", ort_env());
  REQUIRE(human.exit_code == 0);
  CHECK(human.out.find("  validated model.onnx       logits: max |diff| ") != std::string::npos);
  CHECK(human.out.find("<= atol 1e-04  ok\n") != std::string::npos);
}

TEST_CASE("export --verify without onnxruntime-node warns and still exports") {
  Fixture f;
  auto r = t::run_recmodel({"export", "--model", f.model, "--verify", "-q"}, "",
                           {"RECMODEL_ONNXRUNTIME_NODE=/nonexistent/onnxruntime-node"});
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(f.dir / "model" / "onnx" / "model.onnx"));
  // On a machine with a global onnxruntime-node the check runs instead.
  if (r.err.empty()) CHECK(r.out.find("validated model.onnx") != std::string::npos);
  else CHECK(r.err.rfind("recmodel: warning: --verify skipped: ", 0) == 0);
}

TEST_CASE("export and quantize take registry references, and a registered version is exported with --out only") {
  Fixture f;
  const std::string registry = "--registry=" + f.path("registry.db");
  auto registered = t::run_recmodel({"registry", "register", "clf", "--path", f.model, registry});
  REQUIRE_MESSAGE(registered.exit_code == 0, registered.err);
  auto in_place = t::run_recmodel({"export", "--model", "models:/clf/1", registry});
  CHECK(in_place.exit_code == 2);
  CHECK(in_place.err == "recmodel: error: models:/clf/1: is a registered version, whose files must not change; "
                        "export it with --out DIR\n");
  CHECK_FALSE(fs::exists(f.dir / "model" / "onnx"));
  auto exported = t::run_recmodel({"export", "--model", "models:/clf/latest", "--out", f.path("onnx"), registry});
  REQUIRE_MESSAGE(exported.exit_code == 0, exported.err);
  CHECK(fs::exists(f.dir / "onnx" / "onnx" / "model.onnx"));
  auto lineage = t::run_recmodel({"registry", "lineage", "models:/clf/1", "--json", registry});
  REQUIRE(lineage.exit_code == 0);
  CHECK(lineage.out.find(f.path("onnx")) != std::string::npos);
  auto quantized = t::run_recmodel({"quantize", "--model", "models:/clf/1", "--out", f.path("int8"), registry});
  REQUIRE_MESSAGE(quantized.exit_code == 0, quantized.err);
  CHECK(fs::exists(f.dir / "int8" / "model.safetensors"));
  auto verified = t::run_recmodel({"registry", "verify", "models:/clf/1", registry});
  CHECK_MESSAGE(verified.exit_code == 0, verified.err);
}

TEST_CASE("regression: export and quantize refuse a checkpoint without a trained head, as predict and evaluate do") {
  Fixture f;
  // A Hugging Face base checkpoint: the encoder only. Its head would be drawn at random.
  auto tensors = recmodel::model::read_safetensors(f.dir / "model" / "model.safetensors");
  recmodel::model::NamedTensors encoder;
  for (auto& [name, tensor] : tensors)
    if (name.rfind("classifier.", 0) != 0) encoder.emplace_back(name, tensor);
  recmodel::model::write_safetensors(f.dir / "model" / "model.safetensors", encoder, {{"format", "pt"}});
  std::string csv = "text,label\n";
  const auto texts = t::fixture_texts(40, 9);
  for (size_t i = 0; i < texts.size(); ++i) csv += texts[i] + (i % 2 ? ",pos\n" : ",neg\n");
  t::write_text(f.dir / "data.csv", csv);
  auto prepared = t::run_recmodel(
      {"preprocess", "--vocab", f.model + "/vocab.txt", "--input", f.path("data.csv"), "--out", f.path("data"), "-q"});
  REQUIRE_MESSAGE(prepared.exit_code == 0, prepared.err);
  const std::string line = "recmodel: error: " + f.model + "/model.safetensors: the checkpoint lacks parameters (e.g. "
                           "classifier.bias); train the model first ('recmodel train')\n";
  auto error_line = [](const t::RunResult& r) { return r.err.substr(std::min(r.err.find("recmodel: error: "), r.err.size())); };
  const std::vector<std::pair<const char*, t::RunResult>> runs = {
      {"export", t::run_recmodel_limited({"export", "--model", f.model, "--out", f.path("web")})},
      {"quantize", t::run_recmodel_limited({"quantize", "--model", f.model, "--out", f.path("int8")})},
      {"predict", t::run_recmodel_limited({"predict", "--model", f.model}, "red shoe\n")},
      {"evaluate", t::run_recmodel_limited({"evaluate", "--model", f.model, "--data", f.path("data")})},
  };
  for (const auto& [command, run] : runs) {
    CAPTURE(command);
    REQUIRE_REFUSED(run, 3);
    CHECK(error_line(run) == line);
  }
  CHECK_FALSE(fs::exists(f.dir / "web"));
  CHECK_FALSE(fs::exists(f.dir / "int8"));
}
