// Crafted model folders (issue 13): pickles that recurse, nest or lie about their arguments,
// safetensors headers of the wrong types or sizes, config.json fields beyond what the weights
// hold. Each is refused with a DataError (exit 3) naming the file, and the field or tensor.
#include <doctest/doctest.h>

#include <functional>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/torch_checkpoint.h"
#include "tests/model/pickle_fixture.h"
#include "tests/hostile.h"
#include "tests/support.h"
#include "tests/converters/model_fixture.h"  // last: it restores doctest's CHECK after libtorch's glog

using namespace recmodel;
namespace t = recmodel::testing;
namespace p = recmodel::testing::pickle;

namespace {

// Runs `load` and returns the message of the DataError it must throw.
std::string refusal(const std::function<void()>& load) { return t::refusal_message(load); }

// A torch.save archive of {"w": <value>} with one 4-float storage "0" the value may use.
std::string pickle_refusal(const t::TempDir& tmp, const std::string& value) {
  const auto file = tmp / "pytorch_model.bin";
  p::write_archive(file, p::state_dict("w", value), {{"0", p::floats(4)}});
  const std::string message = refusal([&] { model::read_torch_checkpoint(file); });
  CHECK(message.find(file.string() + ": ") == 0);
  return message;
}

const std::string kRebuildFromType = p::global("torch._tensor", "_rebuild_from_type_v2");
const std::string kRebuildTensor = p::global("torch._utils", "_rebuild_tensor_v2");
// A list that holds itself: EMPTY_LIST, PUT 0, GET 0, APPEND.
const std::string kSelfList = p::kEmptyList + p::put(0) + p::get(0) + p::kAppend;

// A tensor record over storage "0" with the given offset, size and stride arguments.
std::string tensor_with(const std::string& offset, const std::string& size, const std::string& stride,
                        const std::string& storage = p::storage("0", 4)) {
  return p::rebuild_tensor(storage, offset, size, stride);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// pytorch_model.bin: the pickle reader

TEST_CASE("torch checkpoint: a list that holds itself as _rebuild_from_type_v2's args is refused, not recursed "
          "into (SIGSEGV)") {
  t::TempDir tmp;
  // _rebuild_from_type_v2(*L) with L = [_rebuild_from_type_v2, None, L, None]: the old reader
  // called func(*L[2]) = func(*L) forever.
  const std::string self_call = kRebuildFromType + p::kEmptyList + p::put(0) + p::kMark + kRebuildFromType +
                                p::kNone + p::get(0) + p::kNone + p::kAppends + p::kReduce;
  CHECK(pickle_refusal(tmp, self_call)
            .find("torch._tensor._rebuild_from_type_v2 with arguments a list (expected a tuple)") !=
        std::string::npos);
  // (func, type, L, state) with L a list that holds itself.
  const std::string self_args =
      kRebuildFromType + p::tuple_of({kRebuildFromType, p::kNone, kSelfList, p::kNone}) + p::kReduce;
  CHECK(pickle_refusal(tmp, self_args)
            .find("torch._tensor._rebuild_from_type_v2 with args a list (expected a tuple)") != std::string::npos);
  // The same list as a tensor's size.
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), kSelfList, p::int_tuple({1})))
            .find("torch._utils._rebuild_tensor_v2 with size a list (expected a tuple of int)") != std::string::npos);
  // _rebuild_from_type_v2 calling itself through nested argument tuples stops at a fixed depth.
  std::string deep = p::tuple_of({kRebuildTensor, p::kNone,
                                  p::tuple_of({p::storage("0", 4), p::integer(0), p::int_tuple({4}), p::int_tuple({1})}),
                                  p::kNone});
  for (int i = 0; i < 6; ++i) deep = p::tuple_of({kRebuildFromType, p::kNone, deep, p::kNone});
  CHECK(pickle_refusal(tmp, kRebuildFromType + deep + p::kReduce)
            .find("torch._tensor._rebuild_from_type_v2 nested more than 4 deep") != std::string::npos);
}

TEST_CASE("torch checkpoint: 1M nested TUPLE1 opcodes and a 1M-deep list are read and freed without recursion") {
  t::TempDir tmp;
  const auto file = tmp / "pytorch_model.bin";
  const int depth = 1'000'000;
  const std::string tuples = p::integer(1) + std::string(depth, p::kTuple1[0]);
  std::string lists;
  for (int i = 0; i < depth; ++i) lists += p::kEmptyList;
  lists += std::string(depth - 1, p::kAppend[0]);
  const std::string tensor = tensor_with(p::integer(0), p::int_tuple({2, 2}), p::int_tuple({2, 1}));
  const std::string pickle = p::kProto + p::kEmptyDict + p::kMark + p::text("tuples") + tuples + p::text("w") +
                             tensor + p::text("lists") + lists + p::kSetItems + p::kStop;
  p::write_archive(file, pickle, {{"0", p::floats(4)}});
  // The old reader's values freed each other recursively and overflowed the stack here.
  auto tensors = model::read_torch_checkpoint(file);
  REQUIRE(tensors.size() == 1);
  CHECK(tensors[0].first == "w");
  CHECK(tensors[0].second.sizes().vec() == std::vector<int64_t>{2, 2});
  CHECK(tensors[0].second[1][1].item<float>() == 3.0f);
  // Nothing but the deep tuple: refused as a file without tensors.
  CHECK(pickle_refusal(tmp, tuples).find("holds no tensors") != std::string::npos);
}

TEST_CASE("torch checkpoint: lengths, memo keys and names are bounded before anything is allocated") {
  t::TempDir tmp;
  // A BINUNICODE8 of 2^40 bytes in a file of a few hundred.
  CHECK(pickle_refusal(tmp, std::string("\x8d", 1) + p::le(uint64_t{1} << 40, 8) + "abc")
            .find("a str or bytes value of 1099511627776 bytes (at most 67108864)") != std::string::npos);
  // A BINBYTES that claims more than the pickle holds.
  CHECK(pickle_refusal(tmp, "B" + p::le(1'000'000, 4) + "abc").find("the pickle ends early") != std::string::npos);
  // LONG_BINGET of an entry never written.
  CHECK(pickle_refusal(tmp, "j" + p::le(0xFFFFFFFFu, 4))
            .find("memo entry 4294967295 is read before it is written") != std::string::npos);
  // A GLOBAL whose name never ends.
  CHECK(pickle_refusal(tmp, "ctorch\n" + std::string(10'000, 'x')).find("a GLOBAL name longer than 4096 bytes") !=
        std::string::npos);
  // A MARK that was never set.
  CHECK(pickle_refusal(tmp, p::kNone + p::kTuple).find("a pickle MARK is missing") != std::string::npos);
}

TEST_CASE("torch checkpoint: every argument of a storage and tensor record is type-checked") {
  t::TempDir tmp;
  struct Case {
    std::string value, expected;
  };
  const std::string size = p::int_tuple({4}), stride = p::int_tuple({1});
  const Case cases[] = {
      {tensor_with(p::text("0"), size, stride), "_rebuild_tensor_v2 with offset a str (expected an int)"},
      {tensor_with(p::real(0.5), size, stride), "_rebuild_tensor_v2 with offset a float (expected an int)"},
      {tensor_with(p::integer(0), p::tuple_of({p::real(4.0)}), stride),
       "_rebuild_tensor_v2 with size a float (expected a tuple of int)"},
      {tensor_with(p::integer(0), size, p::kNone), "_rebuild_tensor_v2 with stride None (expected a tuple of int)"},
      {tensor_with(p::integer(0), p::text("4"), stride), "with size a str (expected a tuple of int)"},
      {tensor_with(p::integer(0), size, stride, p::integer(7)), "with storage an int (expected a storage)"},
      {tensor_with(p::integer(0), size, stride, p::storage("0", 4, "EvilStorage")),
       "holds a storage of type torch.EvilStorage, which recmodel does not read"},
      {tensor_with(p::integer(0), size, stride,
                   p::tuple_of({p::text("storage"), p::global("torch", "FloatStorage"), p::integer(0), p::text("cpu"),
                                p::integer(4)}) +
                       p::kBinPersId),
       "a storage id with key an int (expected a str)"},
      {tensor_with(p::integer(0), size, stride,
                   p::tuple_of({p::text("storage"), p::global("torch", "FloatStorage"), p::text("0"), p::text("cpu"),
                                p::text("4")}) +
                       p::kBinPersId),
       "a storage id with size a str (expected an int)"},
      {p::text("x") + p::kBinPersId, "an unknown persistent id"},
      {kRebuildTensor + p::tuple_of({p::storage("0", 4)}) + p::kReduce,
       "_rebuild_tensor_v2 with 1 arguments (expected at least 4)"},
      {p::global("torch._utils", "_rebuild_parameter") + p::tuple_of({p::integer(3), p::kFalse}) + p::kReduce,
       "_rebuild_parameter with data an int (expected a tensor)"},
      {p::global("torch._utils", "_rebuild_parameter") + p::text("args") + p::kReduce,
       "_rebuild_parameter with arguments a str (expected a tuple)"},
      {p::kEmptyDict + p::kNone + p::kAppend, "APPEND to a dict (expected a list)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    CHECK(pickle_refusal(tmp, c.value).find(c.expected) != std::string::npos);
  }
}

TEST_CASE("torch checkpoint: tensor views that overflow, reach past or repeat their storage are refused") {
  t::TempDir tmp;
  const int64_t big = int64_t{1} << 62;
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), p::int_tuple({big, 4}), p::int_tuple({4, 1})))
            .find("_rebuild_tensor_v2 whose size or stride overflows") != std::string::npos);
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), p::int_tuple({5}), p::int_tuple({1})))
            .find("reaches past its storage of 4 elements") != std::string::npos);
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(-1), p::int_tuple({2}), p::int_tuple({1})))
            .find("reaches past its storage of 4 elements") != std::string::npos);
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), p::int_tuple({2}), p::int_tuple({-1})))
            .find("with a negative size or stride") != std::string::npos);
  // Four floats passing for a 30522 x 768 embedding matrix.
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), p::int_tuple({30522, 768}), p::int_tuple({0, 0})))
            .find("of 23440896 elements over a storage of 4 (a stride-0 view)") != std::string::npos);
  // A storage whose element count exceeds its record.
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), p::int_tuple({4}), p::int_tuple({1}), p::storage("0", big)))
            .find("data/0 holds 16 bytes, too few for 4611686018427387904 elements") != std::string::npos);
  CHECK(pickle_refusal(tmp, tensor_with(p::integer(0), p::int_tuple({4}), p::int_tuple({1}), p::storage("1", 4)))
            .find("the archive lacks data/1") != std::string::npos);
}

TEST_CASE("torch checkpoint: a zip entry that declares 4 GB uncompressed is refused, not allocated") {
  t::TempDir tmp;
  const auto file = tmp / "pytorch_model.bin";
  p::write_inflating_archive(file, 0xFFFFFFF0);
  const std::string message = refusal([&] { model::read_torch_checkpoint(file); });
  CHECK(message.find(file.string() + ": cannot read the checkpoint") == 0);
  CHECK(message.find("please report") == std::string::npos);
}

// ---------------------------------------------------------------------------------------
// model.safetensors

namespace {

// Writes a safetensors file from header text and data bytes; `declared` overrides the length prefix.
void write_safetensors_bytes(const t::fs::path& path, const std::string& header, const std::string& data,
                             uint64_t declared = 0) {
  t::write_text(path, p::le(declared ? declared : header.size(), 8) + header + data);
}

std::string safetensors_refusal(const t::TempDir& tmp, const std::string& header, const std::string& data,
                                uint64_t declared = 0) {
  const auto file = tmp / "model.safetensors";
  write_safetensors_bytes(file, header, data, declared);
  const std::string message = refusal([&] { model::read_safetensors(file); });
  CHECK(message.find(file.string() + ": ") == 0);
  return message;
}

}  // namespace

TEST_CASE("safetensors: headers of the wrong types, overflowing shapes or bad offsets are refused naming the "
          "tensor") {
  t::TempDir tmp;
  const std::string data(16, '\0');
  struct Case {
    std::string header, expected;
  };
  const Case cases[] = {
      {R"({"w":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", "tensor w: unsupported dtype 7"},
      {R"({"w":{"dtype":"F33","shape":[4],"data_offsets":[0,16]}})", "tensor w: unsupported dtype \"F33\""},
      {R"({"w":{"dtype":"F32","shape":"[4]","data_offsets":[0,16]}})",
       "tensor w: shape must be a list of at most 64 dimensions, found \"[4]\""},
      {R"({"w":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}})",
       "tensor w: shape [\"4\"] holds \"4\", not a dimension"},
      {R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", "tensor w: shape [-4] holds -4, not a dimension"},
      {R"({"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}})", "holds 4.0, not a dimension"},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}})",
       "tensor w: shape [4611686018427387904] has more bytes than any file can hold"},
      {R"({"w":{"dtype":"U8","shape":[4611686018427387904],"data_offsets":[0,16]}})",
       "truncated: tensor w of shape [4611686018427387904] needs 4611686018427387904 bytes"},
      {R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
       "tensor w: shape [4294967296,4294967296] has more elements than any file can hold"},
      {R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,16]}})", "not a dimension"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0.5,16.5]}})",
       "tensor w: data_offsets must be [begin, end], two integers with begin <= end, found [0.5,16.5]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", "tensor w: data_offsets must be [begin, end]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":"0-16"}})", "tensor w: data_offsets must be [begin, end]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}})", "tensor w: data_offsets must be [begin, end]"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}})",
       "truncated: tensor w ends at byte 20 but the data section has 16"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", "tensor w: 16 bytes stored for 2 values of F32"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})",
       "tensors a and b overlap (bytes 0..12 and 4..16 of the data section)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       "bytes 0..8 of the data section belong to no tensor (before tensor a)"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       "tensor w: named twice in the safetensors header"},
      {R"({"w":5})", "tensor w: header entry is 5, expected an object with dtype, shape and data_offsets"},
      {R"({"w":{"dtype":"F32","shape":[4]}})", "tensor w: header entry lacks data_offsets"},
      {R"([{"dtype":"F32","shape":[4],"data_offsets":[0,16]}])",
       "corrupt safetensors header: expected a JSON object, found array"},
      {R"({"__metadata__":[1]})", "__metadata__ must be an object of strings, found array"},
      {R"({"__metadata__":{"format":{"pt":1}}})", "__metadata__ entry format is {\"pt\":1}, not a string"},
      {std::string(100'000, '[') + std::string(100'000, ']'), "JSON nested deeper than 64 levels"},
      {"{\"w\":", "corrupt safetensors header"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expected);
    CHECK(safetensors_refusal(tmp, c.header, data).find(c.expected) != std::string::npos);
  }
  // The length prefix may not point past the file, however large it is.
  const std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  for (uint64_t declared : {uint64_t{1000}, ~uint64_t{0}}) {
    CAPTURE(declared);
    CHECK(safetensors_refusal(tmp, header, data, declared)
              .find("truncated safetensors file: header of " + std::to_string(declared) + " bytes but the file has") !=
          std::string::npos);
  }
  // A tensor name with control characters is shown escaped.
  CHECK(safetensors_refusal(tmp, "{\"\\u001b[31mw\":{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,16]}}", data)
            .find("tensor \\x1b[31mw: unsupported dtype 7") != std::string::npos);
  // The well-formed file reads.
  write_safetensors_bytes(tmp / "good.safetensors", header, data);
  CHECK(model::read_safetensors(tmp / "good.safetensors").size() == 1);
}

// ---------------------------------------------------------------------------------------
// config.json against the weights

namespace {

struct FixtureDir {
  t::TempDir tmp;
  t::fs::path dir = tmp / "model";
  nlohmann::json config;
  FixtureDir() {
    auto m = t::fixture_model("tiny", {"neg", "pos"});
    t::write_fixture_model(dir, m);
    config = nlohmann::json::parse(t::read_text(dir / "config.json"));
  }
  // Loads the folder with config.json's `key` set to the JSON text `value`.
  std::string refusal_with(const std::string& key, const std::string& value) {
    nlohmann::json changed = config;
    changed[key] = nlohmann::json::parse(value);
    t::write_text(dir / "config.json", changed.dump());
    const std::string message = refusal([&] { model::load_model(dir, [](const std::string&) {}); });
    CHECK(message.find((dir / "config.json").string() + ": ") == 0);
    return message;
  }
};

}  // namespace

TEST_CASE("config.json: sizes beyond their bounds or the weights are refused naming the field, before allocating") {
  FixtureDir f;
  struct Case {
    std::string key, value, expected;
  };
  const Case cases[] = {
      // The issue's cases: 3e9 labels built 3e9 strings; a 3e9 vocabulary ended in a libtorch backtrace.
      {"num_labels", "3e9", "num_labels must be an integer, found 3000000000.0"},
      {"num_labels", "3000000000", "num_labels is 3000000000, outside 1..65536"},
      {"vocab_size", "3e9", "vocab_size must be an integer, found 3000000000.0"},
      {"vocab_size", "3000000000", "vocab_size is 3000000000, outside 1..2147483647"},
      {"vocab_size", "100000", "vocab_size 100000 does not match the weights (bert.embeddings.word_embeddings.weight"},
      {"hidden_size", "4096", "hidden_size 4096 does not match the weights"},
      {"hidden_size", "1e6", "hidden_size must be an integer"},
      {"hidden_size", "128.5", "hidden_size must be an integer, found 128.5"},
      {"hidden_size", "1000000", "hidden_size is 1000000, outside 1..65536"},
      {"num_hidden_layers", "1000", "num_hidden_layers 1000 does not match the weights ("},
      {"num_hidden_layers", "-2", "num_hidden_layers is -2, outside 1..1024"},
      {"num_hidden_layers", "\"2\"", "num_hidden_layers must be an integer, found \"2\""},
      {"num_attention_heads", "3", "hidden_size 128 is not a multiple of num_attention_heads 3"},
      {"num_attention_heads", "18446744073709551615", "num_attention_heads is 18446744073709551615, outside 1..65536"},
      {"intermediate_size", "1000000", "intermediate_size 1000000 does not match the weights"},
      {"intermediate_size", "0", "intermediate_size is 0, outside 1..1048576"},
      {"max_position_embeddings", "1000000", "max_position_embeddings 1000000 does not match the weights"},
      {"type_vocab_size", "65536", "type_vocab_size 65536 does not match the weights"},
      {"pad_token_id", "-1", "pad_token_id is -1, outside"},
      {"hidden_dropout_prob", "[0.1]", "hidden_dropout_prob must be a number, found [0.1]"},
      {"layer_norm_eps", "-1", "layer_norm_eps is -1, outside"},
      {"is_decoder", "\"no\"", "is_decoder must be true or false, found \"no\""},
      {"model_type", "7", "model_type must be a string, found 7"},
      {"id2label", "[\"neg\",\"pos\"]", "id2label must be an object of id → label name, found [\"neg\",\"pos\"]"},
      {"id2label", R"({"0":"neg","1":7})", "id2label entry \"1\": 7 is not an id (0..65535) → label name"},
      {"id2label", R"({"0":"neg","70000":"pos"})", "id2label entry \"70000\""},
      {"id2label", R"({"0":"neg","-1":"pos"})", "id2label entry \"-1\""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.key);
    CAPTURE(c.value);
    CHECK(f.refusal_with(c.key, c.value).find(c.expected) != std::string::npos);
  }
  // A huge id2label: bounded as it is read (the old reader built every entry first).
  nlohmann::json labels = nlohmann::json::object();
  for (int i = 0; i < 100'000; ++i) labels[std::to_string(i)] = "l" + std::to_string(i);
  CHECK(f.refusal_with("id2label", labels.dump()).find("is not an id (0..65535)") != std::string::npos);
  labels.clear();
  for (int i = 0; i < 1000; ++i) labels[std::to_string(i)] = "l" + std::to_string(i);
  CHECK(f.refusal_with("id2label", labels.dump()).find("num_labels 1000 does not match the weights") !=
        std::string::npos);
}

TEST_CASE("config.json: layers the weights name but do not hold are refused before the model is allocated") {
  FixtureDir f;
  // One tiny tensor named layer 999 made the old loader allocate 1000 layers.
  auto tensors = model::read_safetensors(f.dir / "model.safetensors");
  tensors.emplace_back("bert.encoder.layer.999.output.dense.bias", torch::zeros({128}));
  model::write_safetensors(f.dir / "model.safetensors", tensors);
  const std::string message = f.refusal_with("num_hidden_layers", "1000");
  CHECK(message.find("num_hidden_layers 1000, intermediate_size 512 and max_position_embeddings 128 imply 198336002 "
                     "parameters") != std::string::npos);
  CHECK(message.find("parameters, but " + (f.dir / "model.safetensors").string() + " holds") != std::string::npos);
}

TEST_CASE("config.json: a new head of 65536 labels on a bare encoder is refused as larger than the encoder") {
  FixtureDir f;
  model::NamedTensors encoder;
  for (auto& entry : model::read_safetensors(f.dir / "model.safetensors"))
    if (entry.first.rfind("classifier.", 0) != 0) encoder.push_back(entry);
  model::write_safetensors(f.dir / "model.safetensors", encoder);
  f.config.erase("id2label");
  f.config.erase("label2id");
  CHECK(f.refusal_with("num_labels", "65536")
            .find("num_labels 65536 makes a classification head of 8454144 parameters, larger than the encoder") !=
        std::string::npos);
}

TEST_CASE("config.json: 100k nested arrays are refused as too deep, not overflowing the stack") {
  FixtureDir f;
  for (const std::string& where : {std::string("root"), std::string("field")}) {
    CAPTURE(where);
    const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
    t::write_text(f.dir / "config.json", where == "root" ? deep : "{\"hidden_size\": " + deep + "}");
    const std::string message = refusal([&] { model::load_model(f.dir, [](const std::string&) {}); });
    CHECK(message == (f.dir / "config.json").string() + ": JSON nested deeper than 64 levels");
  }
  t::write_text(f.dir / "config.json", "[1, 2]");
  CHECK(refusal([&] { model::load_model(f.dir, [](const std::string&) {}); }) ==
        (f.dir / "config.json").string() + ": expected a JSON object, found array");
}
