// Crafted model folders through the real binary (issue 13): pickles that recurse or nest a
// million deep, JSON nested 100k deep, config.json sizes beyond the weights, safetensors headers
// of the wrong types. Each runs under `ulimit -v 4 GiB` and must exit 3 with one error line
// naming the file, never a signal, an internal error (70) or a backtrace.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/hostile.h"
#include "tests/model/pickle_fixture.h"
#include "tests/support.h"
#include "tests/converters/model_fixture.h"  // last: it restores doctest's CHECK after libtorch's glog

namespace t = recmodel::testing;
namespace p = recmodel::testing::pickle;
namespace fs = std::filesystem;

namespace {

struct Folder {
  t::TempDir tmp;
  fs::path dir = tmp / "model";
  std::string path = dir.string();
  Folder() {
    auto m = t::fixture_model("tiny", {"neg", "pos"});
    t::write_fixture_model(dir, m);
  }
  t::RunResult predict() const { return t::run_recmodel_limited({"predict", "--model", path, "-q"}, "red shoe\n"); }
  t::RunResult export_onnx() const {
    return t::run_recmodel_limited({"export", "--model", path, "--out", (tmp / "web").string(), "-q"});
  }
  // Replaces the weights with a torch.save archive of {"w": value} and one 4-float storage "0".
  void write_pickle(const std::string& value) const {
    fs::remove(dir / "model.safetensors");
    p::write_archive(dir / "pytorch_model.bin", p::state_dict("w", value), {{"0", p::floats(4)}});
  }
  void set_config(const std::string& key, const std::string& json_value) const {
    auto config = nlohmann::json::parse(t::read_text(dir / "config.json"));
    config[key] = nlohmann::json::parse(json_value);
    t::write_text(dir / "config.json", config.dump());
  }
  void write_safetensors_header(const std::string& header, const std::string& data) const {
    t::write_text(dir / "model.safetensors", p::le(header.size(), 8) + header + data);
  }
};

const std::string kDeep = std::string(100'000, '[') + std::string(100'000, ']');

bool names(const t::RunResult& result, const std::string& text) { return result.err.find(text) != std::string::npos; }

}  // namespace

TEST_CASE("predict: a pytorch_model.bin whose _rebuild_from_type_v2 args hold themselves exits 3 (was SIGSEGV)") {
  Folder f;
  const std::string rebuild = p::global("torch._tensor", "_rebuild_from_type_v2");
  // _rebuild_from_type_v2(*L) with L = [_rebuild_from_type_v2, None, L, None].
  f.write_pickle(rebuild + p::kEmptyList + p::put(0) + p::kMark + rebuild + p::kNone + p::get(0) + p::kNone +
                 p::kAppends + p::kReduce);
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, f.path + "/pytorch_model.bin: cannot read the checkpoint (truncated or corrupt): "
                      "torch._tensor._rebuild_from_type_v2 with arguments a list (expected a tuple)"));
}

TEST_CASE("predict: a pytorch_model.bin of 1M nested TUPLE1 opcodes exits 3 (was SIGSEGV)") {
  Folder f;
  f.write_pickle(p::integer(1) + std::string(1'000'000, p::kTuple1[0]));
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, f.path + "/pytorch_model.bin: holds no tensors"));
}

TEST_CASE("predict: a pytorch_model.bin whose zip entry declares 4 GB uncompressed exits 3 under a 4 GiB limit") {
  Folder f;
  fs::remove(f.dir / "model.safetensors");
  p::write_inflating_archive(f.dir / "pytorch_model.bin", 0xFFFFFFF0);
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, f.path + "/pytorch_model.bin: cannot read the checkpoint"));
}

TEST_CASE("export: a pytorch_model.bin whose tensor has a float size and a stride-0 view exits 3 naming the argument") {
  Folder f;
  f.write_pickle(p::rebuild_tensor(p::storage("0", 4), p::integer(0), p::tuple_of({p::real(4.0)}), p::int_tuple({1})));
  auto result = f.export_onnx();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, "_rebuild_tensor_v2 with size a float (expected a tuple of int)"));
  f.write_pickle(p::rebuild_tensor(p::storage("0", 4), p::integer(0), p::int_tuple({237, 128}), p::int_tuple({0, 0})));
  result = f.export_onnx();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, "over a storage of 4 (a stride-0 view)"));
  CHECK(!fs::exists(f.tmp / "web"));
}

TEST_CASE("predict: tokenizer.json with 100k nested arrays in the normalizer exits 3 (was a stack overflow)") {
  Folder f;
  fs::remove(f.dir / "vocab.txt");  // tokenizer.json is read only without vocab.txt
  auto doc = nlohmann::json::parse(t::read_text(f.dir / "tokenizer.json"));
  std::string text = doc.dump();
  const std::string key = "\"normalizer\":";
  text.insert(text.find(key) + key.size(), "{\"deep\":" + kDeep + ",\"x\":");
  t::write_text(f.dir / "tokenizer.json", text);
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(result.err == "recmodel: error: " + f.path + "/tokenizer.json: JSON nested deeper than 64 levels\n");
}

TEST_CASE("predict: tokenizer.json whose root is an array or whose fields have the wrong types exits 3 (was 70)") {
  Folder f;
  fs::remove(f.dir / "vocab.txt");
  const auto good = nlohmann::json::parse(t::read_text(f.dir / "tokenizer.json"));
  t::write_text(f.dir / "tokenizer.json", "[" + good.dump() + "]");
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, f.path + "/tokenizer.json: expected a JSON object, found array"));

  auto doc = good;
  doc["model"]["vocab"] = nlohmann::json::array({"[PAD]"});
  t::write_text(f.dir / "tokenizer.json", doc.dump());
  result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, f.path + "/tokenizer.json: model.vocab is not a token-to-id object"));

  doc = good;
  doc["model"]["vocab"]["red"] = "7";
  t::write_text(f.dir / "tokenizer.json", doc.dump());
  result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, "\"red\" has \"7\""));

  doc = good;
  doc["normalizer"]["lowercase"] = "yes";
  t::write_text(f.dir / "tokenizer.json", doc.dump());
  result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, f.path + "/tokenizer.json: lowercase must be true or false, found \"yes\""));
}

TEST_CASE("predict: config.json with 100k nested arrays exits 3 (was a stack overflow)") {
  Folder f;
  auto config = t::read_text(f.dir / "config.json");
  t::write_text(f.dir / "config.json", "{\"num_labels\": " + kDeep + ", " + config.substr(config.find('{') + 1));
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(result.err == "recmodel: error: " + f.path + "/config.json: JSON nested deeper than 64 levels\n");
}

TEST_CASE("predict: config.json num_labels or vocab_size of 3e9 exits 3 naming the field (was 70 or a backtrace)") {
  struct Case {
    std::string key, value, expected;
  };
  const Case cases[] = {
      {"num_labels", "3e9", "config.json: num_labels must be an integer, found 3000000000.0"},
      {"num_labels", "3000000000", "config.json: num_labels is 3000000000, outside 1..65536"},
      {"vocab_size", "3000000000", "config.json: vocab_size is 3000000000, outside 1..2147483647"},
      {"vocab_size", "300000", "config.json: vocab_size 300000 does not match the weights"},
      {"hidden_size", "-768", "config.json: hidden_size is -768, outside 1..65536"},
      {"num_hidden_layers", "2.5", "config.json: num_hidden_layers must be an integer, found 2.5"},
      {"intermediate_size", "1048576", "config.json: intermediate_size 1048576 does not match the weights"},
      {"max_position_embeddings", "1048576", "config.json: max_position_embeddings 1048576 does not match"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.key);
    CAPTURE(c.value);
    Folder f;
    f.set_config(c.key, c.value);
    auto result = f.predict();
    REQUIRE_REFUSED(result, 3);
    CHECK(names(result, f.path + "/" + c.expected));
  }
  Folder f;
  f.set_config("num_labels", "3e9");
  auto result = f.export_onnx();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, "config.json: num_labels must be an integer"));
}

TEST_CASE("predict and export: safetensors with a numeric dtype, a string shape, a [2^62] shape or overlapping "
          "offsets exit 3 naming the file and tensor (was 70)") {
  const std::string data(16, '\0');
  struct Case {
    std::string header, expected;
  };
  const Case cases[] = {
      {R"({"w":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", "tensor w: unsupported dtype 7"},
      {R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", "tensor w: shape must be a list"},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}})",
       "tensor w: shape [4611686018427387904] has more bytes than any file can hold"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})",
       "tensors a and b overlap"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0.5,16.5]}})", "tensor w: data_offsets must be [begin, end]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       "tensor w: named twice"},
      {R"([1])", "corrupt safetensors header: expected a JSON object, found array"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    Folder f;
    f.write_safetensors_header(c.header, data);
    auto result = f.predict();
    REQUIRE_REFUSED(result, 3);
    CHECK(names(result, f.path + "/model.safetensors: "));
    CHECK(names(result, c.expected));
    result = f.export_onnx();
    REQUIRE_REFUSED(result, 3);
    CHECK(names(result, c.expected));
  }
  Folder f;
  t::write_text(f.dir / "model.safetensors", p::le(1'000'000, 8) + "{}");
  auto result = f.predict();
  REQUIRE_REFUSED(result, 3);
  CHECK(names(result, "model.safetensors: truncated safetensors file: header of 1000000 bytes but the file has 10"));
}
