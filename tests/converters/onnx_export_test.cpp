// The ONNX graph: what onnx::checker and shape inference see, the fp32 and int8 forms, the
// opset-dependent LayerNorm, and external data.
#include <map>

#include <onnx/checker.h>

#include "common/error.h"
#include "converters/onnx_export.h"
#include "converters/quantization.h"
#include "tests/converters/model_fixture.h"
#include "tests/support.h"

// After the libtorch headers: glog, which they include, defines its own CHECK.
#include <doctest/doctest.h>

namespace c = recmodel::converters;
namespace t = recmodel::testing;
namespace fs = std::filesystem;

namespace {

std::map<std::string, int> op_counts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const auto& node : model.graph().node()) ++counts[node.op_type()];
  return counts;
}

std::string dims_of(const onnx::ValueInfoProto& info) {
  std::string text;
  for (const auto& d : info.type().tensor_type().shape().dim())
    text += (text.empty() ? "" : ",") + (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return text;
}

}  // namespace

TEST_CASE("the fp32 graph has the Hugging Face interface and passes the full check") {
  auto model = t::fixture_model("tiny", {"a", "b", "c"});
  onnx::ModelProto proto = c::build_onnx_model(*model, c::kDefaultOpset);
  CHECK_NOTHROW(c::check_onnx_model(proto, "model.onnx"));
  CHECK(proto.opset_import(0).version() == 17);
  CHECK(proto.ir_version() == onnx::IR_VERSION);
  const auto& graph = proto.graph();
  REQUIRE(graph.input_size() == 3);
  CHECK(graph.input(0).name() == "input_ids");
  CHECK(graph.input(1).name() == "attention_mask");
  CHECK(graph.input(2).name() == "token_type_ids");
  for (const auto& input : graph.input()) {
    CHECK(input.type().tensor_type().elem_type() == onnx::TensorProto::INT64);
    CHECK(dims_of(input) == "batch_size,sequence_length");
  }
  REQUIRE(graph.output_size() == 1);
  CHECK(graph.output(0).name() == "logits");
  CHECK(dims_of(graph.output(0)) == "batch_size,3");
  auto ops = op_counts(proto);
  CHECK(ops["LayerNormalization"] == 1 + 2 * 2);  // embeddings + two per layer
  CHECK(ops["MatMul"] == 2 * (6 + 2) + 2);        // 6 Linear + 2 attention products per layer; pooler; head
  CHECK(ops["Erf"] == 2);
  CHECK(ops.count("MatMulInteger") == 0);
  // Shape inference filled in the intermediate shapes.
  CHECK(graph.value_info_size() > 50);
  // Weights are stored once each: all parameters' elements, as float32.
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  CHECK(c::initializer_bytes(proto) >= static_cast<uint64_t>(parameters) * 4);
  CHECK(c::initializer_bytes(proto) < static_cast<uint64_t>(parameters) * 4 + 4096);
}

TEST_CASE("opsets below 17 decompose LayerNorm, out-of-range opsets are usage errors") {
  auto model = t::fixture_model("tiny", {"a", "b"});
  onnx::ModelProto proto = c::build_onnx_model(*model, 14);
  CHECK_NOTHROW(c::check_onnx_model(proto, "model.onnx"));
  auto ops = op_counts(proto);
  CHECK(ops.count("LayerNormalization") == 0);
  CHECK(ops["ReduceMean"] == 2 * 5);
  CHECK(ops["Sqrt"] == 5);
  CHECK_THROWS_AS(c::build_onnx_model(*model, 13), recmodel::UsageError);
  CHECK_THROWS_AS(c::build_onnx_model(*model, 18), recmodel::UsageError);
}

TEST_CASE("the int8 graph uses DynamicQuantizeLinear + MatMulInteger with int8 weights") {
  auto model = t::fixture_model("tiny", {"a", "b"});
  auto modules = c::quantize_model(*model, {});
  onnx::ModelProto proto = c::build_onnx_model(*model, c::kDefaultOpset);
  CHECK_NOTHROW(c::check_onnx_model(proto, "model_quantized.onnx"));
  auto ops = op_counts(proto);
  const int linears = static_cast<int>(modules.size()) - 1;  // all but the word embeddings
  CHECK(ops["DynamicQuantizeLinear"] == linears);
  CHECK(ops["MatMulInteger"] == linears);
  CHECK(ops["MatMul"] == 2 * 2 + 1);  // attention products and the fp32 head
  int int8_tensors = 0;
  for (const auto& tensor : proto.graph().initializer()) {
    if (tensor.data_type() != onnx::TensorProto::INT8 || tensor.dims_size() != 2) continue;
    ++int8_tensors;
  }
  CHECK(int8_tensors == linears + 1);
  CHECK(dims_of(proto.graph().output(0)) == "batch_size,2");
}

TEST_CASE("a broken graph fails the checker with an internal error") {
  auto model = t::fixture_model("tiny", {"a", "b"});
  onnx::ModelProto proto = c::build_onnx_model(*model, c::kDefaultOpset);
  proto.mutable_graph()->mutable_node(3)->set_op_type("NoSuchOp");
  try {
    c::check_onnx_model(proto, "model.onnx");
    FAIL("the checker accepted an unknown operator");
  } catch (const recmodel::Error& e) {
    CHECK(e.code() == recmodel::ExitCode::internal);
    CHECK(std::string(e.what()).find("model.onnx: the exported graph fails the ONNX checker") != std::string::npos);
  }
}

TEST_CASE("external data moves the weights beside the graph and the file still checks") {
  t::TempDir dir;
  auto model = t::fixture_model("tiny", {"a", "b"});
  onnx::ModelProto proto = c::build_onnx_model(*model, c::kDefaultOpset);
  c::check_onnx_model(proto, "model.onnx");
  const uint64_t weights = c::initializer_bytes(proto);
  auto inline_info = c::write_onnx_model(proto, dir / "inline.onnx", /*external=*/false);
  CHECK(inline_info.external_data.empty());
  CHECK(fs::file_size(dir / "inline.onnx") > weights);

  auto info = c::write_onnx_model(proto, dir / "model.onnx", /*external=*/true);
  CHECK((info.external_data == dir / "model.onnx_data"));
  CHECK(fs::file_size(dir / "model.onnx") < 64 * 1024);
  CHECK(fs::file_size(dir / "model.onnx_data") >= weights - 64 * 1024);
  onnx::ModelProto written;
  std::string bytes = t::read_text(dir / "model.onnx");
  REQUIRE(written.ParseFromString(bytes));
  int external = 0;
  for (const auto& tensor : written.graph().initializer())
    external += tensor.data_location() == onnx::TensorProto::EXTERNAL;
  CHECK(external > 10);
  // The checker resolves external data relative to the model: a missing data file is caught.
  fs::remove(dir / "model.onnx_data");
  CHECK_THROWS(onnx::checker::check_model((dir / "model.onnx").string()));
}
