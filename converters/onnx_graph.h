// A small builder over the ONNX protobuf classes (libonnx-dev): nodes with generated output
// names, initializers from libtorch tensors, attributes. The BERT exporter is written with it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>
#include <torch/torch.h>

namespace recmodel::converters {

// One node attribute: an int, a float or a list of ints.
struct OnnxAttribute {
  std::string name;
  onnx::AttributeProto::AttributeType type = onnx::AttributeProto::UNDEFINED;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;

  static OnnxAttribute integer(std::string name, int64_t value);
  static OnnxAttribute real(std::string name, float value);
  static OnnxAttribute integers(std::string name, std::vector<int64_t> values);
};

class OnnxGraphBuilder {
 public:
  explicit OnnxGraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  // Adds a node and returns the name of its first output (`outputs` names them; 0 = one output).
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<OnnxAttribute>& attributes = {}, int outputs = 1);
  // Adds a node with several outputs and returns their names.
  std::vector<std::string> node_outputs(const std::string& op, const std::vector<std::string>& inputs, int outputs,
                                        const std::vector<OnnxAttribute>& attributes = {});

  // Adds a tensor (float32, int8, uint8, int32 or int64; any shape, 0-d included) as an initializer.
  std::string initializer(const std::string& name, const torch::Tensor& tensor);
  // Adds int64 or float constants as initializers, shared by value.
  std::string int64s(const std::vector<int64_t>& values, bool scalar = false);
  std::string float_scalar(float value);

  // Declares a graph input or output of `elem_type` with symbolic (dim_param) or fixed dims.
  struct Dim {
    std::string symbol;  // dim_param when not empty
    int64_t value = 0;
  };
  void input(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims);
  void output(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims);

  // Returns a fresh name with this prefix (for the outputs node() would otherwise name).
  std::string fresh(const std::string& prefix);
  // Prefixes the generated names of the nodes added from now on (e.g. "/bert/encoder/layer.0").
  void set_scope(const std::string& scope) { scope_ = scope; }

 private:
  onnx::GraphProto* graph_;
  std::string scope_;
  int64_t counter_ = 0;
  std::vector<std::pair<std::string, std::string>> constants_;  // key → initializer name
};

// Fills `tensor` (an initializer) from a libtorch tensor: dims, data type and raw little-endian data.
void fill_tensor_proto(onnx::TensorProto& tensor, const std::string& name, const torch::Tensor& value);

}  // namespace recmodel::converters
