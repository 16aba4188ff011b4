#include "converters/onnx_graph.h"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"

namespace recmodel::converters {

OnnxAttribute OnnxAttribute::integer(std::string name, int64_t value) {
  OnnxAttribute a;
  a.name = std::move(name);
  a.type = onnx::AttributeProto::INT;
  a.i = value;
  return a;
}

OnnxAttribute OnnxAttribute::real(std::string name, float value) {
  OnnxAttribute a;
  a.name = std::move(name);
  a.type = onnx::AttributeProto::FLOAT;
  a.f = value;
  return a;
}

OnnxAttribute OnnxAttribute::integers(std::string name, std::vector<int64_t> values) {
  OnnxAttribute a;
  a.name = std::move(name);
  a.type = onnx::AttributeProto::INTS;
  a.ints = std::move(values);
  return a;
}

std::string OnnxGraphBuilder::fresh(const std::string& prefix) {
  return fmt::format("{}/{}_{}", scope_, prefix, counter_++);
}

std::vector<std::string> OnnxGraphBuilder::node_outputs(const std::string& op, const std::vector<std::string>& inputs,
                                                        int outputs, const std::vector<OnnxAttribute>& attributes) {
  onnx::NodeProto* node = graph_->add_node();
  node->set_op_type(op);
  std::string base = fresh(op);
  node->set_name(base);
  for (const auto& input : inputs) node->add_input(input);
  std::vector<std::string> names;
  for (int i = 0; i < outputs; ++i) {
    names.push_back(fmt::format("{}_output_{}", base, i));
    node->add_output(names.back());
  }
  for (const auto& attribute : attributes) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(attribute.name);
    a->set_type(attribute.type);
    switch (attribute.type) {
      case onnx::AttributeProto::INT: a->set_i(attribute.i); break;
      case onnx::AttributeProto::FLOAT: a->set_f(attribute.f); break;
      case onnx::AttributeProto::INTS:
        for (int64_t v : attribute.ints) a->add_ints(v);
        break;
      default: break;
    }
  }
  return names;
}

std::string OnnxGraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                   const std::vector<OnnxAttribute>& attributes, int outputs) {
  return node_outputs(op, inputs, outputs, attributes).front();
}

void fill_tensor_proto(onnx::TensorProto& tensor, const std::string& name, const torch::Tensor& value) {
  torch::Tensor contiguous = value.detach().to(torch::kCPU).contiguous();
  tensor.set_name(name);
  for (int64_t d : contiguous.sizes()) tensor.add_dims(d);
  switch (contiguous.scalar_type()) {
    case torch::kFloat: tensor.set_data_type(onnx::TensorProto::FLOAT); break;
    case torch::kChar: tensor.set_data_type(onnx::TensorProto::INT8); break;
    case torch::kByte: tensor.set_data_type(onnx::TensorProto::UINT8); break;
    case torch::kInt: tensor.set_data_type(onnx::TensorProto::INT32); break;
    case torch::kLong: tensor.set_data_type(onnx::TensorProto::INT64); break;
    default:
      fail<DataError>("tensor {} has type {}, which the ONNX exporter does not write", name,
                      std::string(c10::toString(contiguous.scalar_type())));
  }
  // ONNX raw_data is little-endian, as every platform libtorch runs on here.
  tensor.set_raw_data(std::string(static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes()));
}

std::string OnnxGraphBuilder::initializer(const std::string& name, const torch::Tensor& tensor) {
  fill_tensor_proto(*graph_->add_initializer(), name, tensor);
  return name;
}

std::string OnnxGraphBuilder::int64s(const std::vector<int64_t>& values, bool scalar) {
  std::string key = fmt::format("i64{}:{}", scalar ? "s" : "", fmt::join(values, ","));
  for (const auto& [k, name] : constants_)
    if (k == key) return name;
  torch::Tensor t = torch::tensor(values, torch::kLong);
  if (scalar) t = t.reshape({});
  std::string name = fmt::format("const_i64_{}", constants_.size());
  initializer(name, t);
  constants_.emplace_back(key, name);
  return name;
}

std::string OnnxGraphBuilder::float_scalar(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  std::string key = fmt::format("f32:{:08x}", bits);
  for (const auto& [k, name] : constants_)
    if (k == key) return name;
  std::string name = fmt::format("const_f32_{}", constants_.size());
  initializer(name, torch::full({}, value, torch::kFloat));
  constants_.emplace_back(key, name);
  return name;
}

namespace {

void declare(onnx::ValueInfoProto* info, const std::string& name, int32_t elem_type,
             const std::vector<OnnxGraphBuilder::Dim>& dims) {
  info->set_name(name);
  onnx::TypeProto_Tensor* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  for (const auto& dim : dims) {
    auto* d = shape->add_dim();
    if (!dim.symbol.empty()) d->set_dim_param(dim.symbol);
    else d->set_dim_value(dim.value);
  }
}

}  // namespace

void OnnxGraphBuilder::input(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims) {
  declare(graph_->add_input(), name, elem_type, dims);
}

void OnnxGraphBuilder::output(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims) {
  declare(graph_->add_output(), name, elem_type, dims);
}

}  // namespace recmodel::converters
