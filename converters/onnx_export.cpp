#include "converters/onnx_export.h"

#include <cmath>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "common/error.h"
#include "common/files.h"
#include "converters/onnx_graph.h"

namespace recmodel::converters {

namespace {

using model::BertForSequenceClassificationImpl;
using model::QuantizableEmbeddingImpl;
using model::QuantizableLinearImpl;
using Attr = OnnxAttribute;

constexpr const char* kBatch = "batch_size";
constexpr const char* kSequence = "sequence_length";

class BertGraph {
 public:
  BertGraph(onnx::GraphProto* graph, const model::BertConfig& config, int opset)
      : b_(graph), config_(config), opset_(opset) {}

  // y = x · Wᵀ + bias, in fp32 or in the int8 form.
  std::string linear(const std::string& x, torch::nn::LinearImpl& layer, const std::string& name) {
    auto* quantizable = dynamic_cast<QuantizableLinearImpl*>(&layer);
    if (quantizable && quantizable->is_int8()) {
      std::string w = b_.initializer(name + ".weight_int8_T", quantizable->weight_int8.t().contiguous());
      std::string scale = b_.initializer(name + ".weight_scale", quantizable->weight_scale);
      auto q = b_.node_outputs("DynamicQuantizeLinear", {x}, 3);
      std::string sums = b_.node("MatMulInteger", {q[0], w, q[2], int8_zero()});
      std::string real = b_.node("Cast", {sums}, {Attr::integer("to", onnx::TensorProto::FLOAT)});
      std::string combined = b_.node("Mul", {q[1], scale});
      std::string y = b_.node("Mul", {real, combined});
      return b_.node("Add", {y, b_.initializer(name + ".bias", layer.bias)});
    }
    std::string w = b_.initializer(name + ".weight_T", layer.weight.t().contiguous());
    std::string y = b_.node("MatMul", {x, w});
    return b_.node("Add", {y, b_.initializer(name + ".bias", layer.bias)});
  }

  std::string layer_norm(const std::string& x, torch::nn::LayerNormImpl& norm, const std::string& name) {
    std::string gamma = b_.initializer(name + ".weight", norm.weight);
    std::string beta = b_.initializer(name + ".bias", norm.bias);
    const float eps = static_cast<float>(config_.layer_norm_eps);
    if (opset_ >= 17)
      return b_.node("LayerNormalization", {x, gamma, beta}, {Attr::integer("axis", -1), Attr::real("epsilon", eps)});
    // The decomposition torch.onnx writes below opset 17; ONNX Runtime fuses it into LayerNormalization.
    std::string mean = b_.node("ReduceMean", {x}, {Attr::integers("axes", {-1}), Attr::integer("keepdims", 1)});
    std::string centered = b_.node("Sub", {x, mean});
    std::string squared = b_.node("Pow", {centered, b_.float_scalar(2.0f)});
    std::string variance =
        b_.node("ReduceMean", {squared}, {Attr::integers("axes", {-1}), Attr::integer("keepdims", 1)});
    std::string deviation = b_.node("Sqrt", {b_.node("Add", {variance, b_.float_scalar(eps)})});
    std::string normalized = b_.node("Div", {centered, deviation});
    return b_.node("Add", {b_.node("Mul", {normalized, gamma}), beta});
  }

  std::string gelu(const std::string& x) {
    // x · 0.5 · (1 + erf(x / √2)): BERT's exact GELU, the pattern ONNX Runtime fuses into Gelu.
    std::string e = b_.node("Erf", {b_.node("Div", {x, b_.float_scalar(static_cast<float>(M_SQRT2))})});
    std::string m = b_.node("Mul", {x, b_.node("Add", {e, b_.float_scalar(1.0f)})});
    return b_.node("Mul", {m, b_.float_scalar(0.5f)});
  }

  std::string embeddings(model::BertEmbeddingsImpl& embeddings) {
    b_.set_scope("/bert/embeddings");
    const std::string prefix = "bert.embeddings.";
    QuantizableEmbeddingImpl& words = *embeddings.word_embeddings;
    std::string word;
    if (words.is_int8()) {
      std::string table = b_.initializer(prefix + "word_embeddings.weight_int8", words.weight_int8);
      std::string scales = b_.initializer(prefix + "word_embeddings.weight_scale_rows", words.weight_scale.unsqueeze(1));
      std::string rows = b_.node("Cast", {b_.node("Gather", {table, "input_ids"})},
                                 {Attr::integer("to", onnx::TensorProto::FLOAT)});
      word = b_.node("Mul", {rows, b_.node("Gather", {scales, "input_ids"})});
    } else {
      word = b_.node("Gather", {b_.initializer(prefix + "word_embeddings.weight", words.weight), "input_ids"});
    }
    std::string shape = b_.node("Shape", {"input_ids"});
    std::string length = b_.node("Gather", {shape, b_.int64s({1}, /*scalar=*/true)}, {Attr::integer("axis", 0)});
    std::string positions =
        b_.node("Range", {b_.int64s({0}, /*scalar=*/true), length, b_.int64s({1}, /*scalar=*/true)});
    std::string position = b_.node(
        "Gather", {b_.initializer(prefix + "position_embeddings.weight", embeddings.position_embeddings->weight),
                   positions});
    std::string type = b_.node(
        "Gather", {b_.initializer(prefix + "token_type_embeddings.weight", embeddings.token_type_embeddings->weight),
                   "token_type_ids"});
    std::string sum = b_.node("Add", {b_.node("Add", {word, position}), type});
    return layer_norm(sum, *embeddings.LayerNorm, prefix + "LayerNorm");
  }

  std::string additive_mask() {
    // Hugging Face's extended mask: (1 - mask) · float32 lowest, shaped (batch, 1, 1, sequence).
    b_.set_scope("/bert");
    std::string mask = b_.node("Cast", {"attention_mask"}, {Attr::integer("to", onnx::TensorProto::FLOAT)});
    std::string expanded = b_.node("Unsqueeze", {mask, b_.int64s({1, 2})});
    std::string inverted = b_.node("Sub", {b_.float_scalar(1.0f), expanded});
    return b_.node("Mul", {inverted, b_.float_scalar(std::numeric_limits<float>::lowest())});
  }

  std::string layer(model::BertLayerImpl& layer, const std::string& hidden, const std::string& mask, int64_t index) {
    const std::string prefix = fmt::format("bert.encoder.layer.{}.", index);
    b_.set_scope(fmt::format("/bert/encoder/layer.{}", index));
    auto& self = *layer.attention->self;
    const int64_t heads = self.heads, head_size = self.head_size;
    auto split = [&](const std::string& x, std::vector<int64_t> perm) {
      std::string shaped = b_.node("Reshape", {x, b_.int64s({0, 0, heads, head_size})});
      return b_.node("Transpose", {shaped}, {Attr::integers("perm", std::move(perm))});
    };
    std::string q = split(linear(hidden, *self.query, prefix + "attention.self.query"), {0, 2, 1, 3});
    std::string k = split(linear(hidden, *self.key, prefix + "attention.self.key"), {0, 2, 3, 1});
    std::string v = split(linear(hidden, *self.value, prefix + "attention.self.value"), {0, 2, 1, 3});
    std::string scores = b_.node(
        "Div", {b_.node("MatMul", {q, k}), b_.float_scalar(static_cast<float>(std::sqrt(static_cast<double>(head_size))))});
    std::string probabilities = b_.node("Softmax", {b_.node("Add", {scores, mask})}, {Attr::integer("axis", -1)});
    std::string context = b_.node("Transpose", {b_.node("MatMul", {probabilities, v})}, {Attr::integers("perm", {0, 2, 1, 3})});
    context = b_.node("Reshape", {context, b_.int64s({0, 0, heads * head_size})});

    auto& attention_output = *layer.attention->output;
    std::string attended = layer_norm(
        b_.node("Add", {linear(context, *attention_output.dense, prefix + "attention.output.dense"), hidden}),
        *attention_output.LayerNorm, prefix + "attention.output.LayerNorm");
    std::string intermediate = gelu(linear(attended, *layer.intermediate->dense, prefix + "intermediate.dense"));
    auto& output = *layer.output;
    return layer_norm(b_.node("Add", {linear(intermediate, *output.dense, prefix + "output.dense"), attended}),
                      *output.LayerNorm, prefix + "output.LayerNorm");
  }

  // Adds the whole graph and returns the name of the logits value.
  std::string build(BertForSequenceClassificationImpl& model) {
    const std::vector<OnnxGraphBuilder::Dim> tokens = {{kBatch}, {kSequence}};
    for (const char* name : {"input_ids", "attention_mask", "token_type_ids"})
      b_.input(name, onnx::TensorProto::INT64, tokens);
    std::string hidden = embeddings(*model.bert->embeddings);
    std::string mask = additive_mask();
    int64_t index = 0;
    for (const auto& module : *model.bert->encoder->layer)
      hidden = layer(*module->as<model::BertLayer>(), hidden, mask, index++);
    b_.set_scope("/bert/pooler");
    std::string first = b_.node("Gather", {hidden, b_.int64s({0}, /*scalar=*/true)}, {Attr::integer("axis", 1)});
    std::string pooled = b_.node("Tanh", {linear(first, *model.bert->pooler->dense, "bert.pooler.dense")});
    b_.set_scope("/classifier");
    return linear(pooled, *model.classifier, "classifier");
  }

  OnnxGraphBuilder& builder() { return b_; }

 private:
  std::string int8_zero() {
    if (int8_zero_.empty()) int8_zero_ = b_.initializer("int8_zero_point", torch::zeros({}, torch::kChar));
    return int8_zero_;
  }

  OnnxGraphBuilder b_;
  const model::BertConfig& config_;
  int opset_;
  std::string int8_zero_;
};

}  // namespace

onnx::ModelProto build_onnx_model(BertForSequenceClassificationImpl& model, int opset) {
  if (opset < kMinOpset || opset > kMaxOpset)
    fail<UsageError>("--opset {} is out of range; recmodel writes opsets {} to {}", opset, kMinOpset, kMaxOpset);
  torch::NoGradGuard no_grad;
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("recmodel");
  proto.set_producer_version(RECMODEL_VERSION);
  proto.set_domain("recmodel");
  proto.set_model_version(1);
  const bool int8 = !model.int8_modules().empty();
  proto.set_doc_string(fmt::format("BertForSequenceClassification ({}), {} labels, exported by recmodel {}",
                                   int8 ? "int8 dynamic quantization" : "fp32", model.config.num_labels(),
                                   RECMODEL_VERSION));
  auto* op = proto.add_opset_import();
  op->set_domain("");
  op->set_version(opset);

  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(int8 ? "bert_sequence_classification_int8" : "bert_sequence_classification");
  BertGraph bert(graph, model.config, opset);
  std::string logits = bert.build(model);
  // The classifier's bias Add, the last node, produces the graph output: name it "logits".
  onnx::NodeProto* last = graph->mutable_node(graph->node_size() - 1);
  if (last->output(0) != logits) throw Error(ExitCode::internal, "ONNX export: the last node is not the classifier");
  last->set_output(0, "logits");
  const bool regression = model.config.problem_type == model::ProblemType::regression;
  bert.builder().output("logits", onnx::TensorProto::FLOAT, {{kBatch}, {"", model.config.num_labels()}});

  nlohmann::json id2label = nlohmann::json::object();
  for (size_t i = 0; i < model.config.labels.size(); ++i) id2label[std::to_string(i)] = model.config.labels[i];
  auto* meta = proto.add_metadata_props();
  meta->set_key("id2label");
  meta->set_value(id2label.dump());
  meta = proto.add_metadata_props();
  meta->set_key("problem_type");
  meta->set_value(regression ? "regression" : "single_label_classification");
  if (int8) {
    meta = proto.add_metadata_props();
    meta->set_key("quantization");
    meta->set_value("dynamic int8: DynamicQuantizeLinear (uint8, per tensor) + MatMulInteger (int8 symmetric weights)");
  }
  return proto;
}

void check_onnx_model(onnx::ModelProto& model, const std::string& what) {
  // Inference runs with the output's dimensions cleared, so that what it derives for "logits" can be
  // compared with the declared [batch_size, labels] (an inferred shape that merely agrees with a
  // declared one would not show a lost symbolic batch dimension).
  auto* declared = model.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type();
  const onnx::TensorShapeProto declared_shape = declared->shape();
  for (auto& dim : *declared->mutable_shape()->mutable_dim()) dim.Clear();
  std::string inferred;
  try {
    onnx::checker::check_model(model);
    onnx::ShapeInferenceOptions options(/*check_type_val=*/true, /*strict_mode_val=*/1, /*data_prop_val=*/true);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
    const auto& output = model.graph().output(0).type().tensor_type();
    if (!output.has_shape()) inferred = "unknown";
    for (const auto& dim : output.shape().dim())
      inferred += (inferred.empty() ? "" : ", ") +
                  (dim.has_dim_param() ? dim.dim_param() : dim.has_dim_value() ? std::to_string(dim.dim_value()) : "?");
  } catch (const std::exception& e) {
    *declared->mutable_shape() = declared_shape;
    throw Error(ExitCode::internal,
                fmt::format("{}: the exported graph fails the ONNX checker: {} (please report this)", what, e.what()));
  }
  *declared->mutable_shape() = declared_shape;
  const std::string expected = fmt::format("{}, {}", kBatch, declared_shape.dim(1).dim_value());
  if (inferred != expected)
    throw Error(ExitCode::internal, fmt::format("{}: shape inference gives logits [{}], expected [{}] (please report this)",
                                                what, inferred, expected));
}

uint64_t initializer_bytes(const onnx::ModelProto& model) {
  uint64_t total = 0;
  for (const auto& tensor : model.graph().initializer()) total += tensor.raw_data().size();
  return total;
}

OnnxFileInfo write_onnx_model(onnx::ModelProto model, const fs::path& path, bool external) {
  OnnxFileInfo info;
  info.path = path;
  info.initializer_bytes = initializer_bytes(model);
  if (external || info.initializer_bytes > kExternalDataThreshold) {
    info.external_data = fs::path(path.string() + "_data");
    std::ofstream data(info.external_data, std::ios::binary | std::ios::trunc);
    if (!data) fail<DataError>("{}: cannot create the external data file", info.external_data.string());
    uint64_t offset = 0;
    const std::string location = info.external_data.filename().string();
    for (auto& tensor : *model.mutable_graph()->mutable_initializer()) {
      if (tensor.raw_data().size() < 1024) continue;
      // 64-byte alignment lets runtimes map the weights straight from the file.
      uint64_t padding = (64 - offset % 64) % 64;
      static const char zeros[64] = {};
      data.write(zeros, static_cast<std::streamsize>(padding));
      offset += padding;
      data.write(tensor.raw_data().data(), static_cast<std::streamsize>(tensor.raw_data().size()));
      auto add = [&](const std::string& key, const std::string& value) {
        auto* entry = tensor.add_external_data();
        entry->set_key(key);
        entry->set_value(value);
      };
      add("location", location);
      add("offset", std::to_string(offset));
      add("length", std::to_string(tensor.raw_data().size()));
      offset += tensor.raw_data().size();
      tensor.set_data_location(onnx::TensorProto::EXTERNAL);
      tensor.clear_raw_data();
    }
    data.flush();
    if (!data) fail<DataError>("{}: write failed (disk full?)", info.external_data.string());
    data.close();
    info.bytes += offset;
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw Error(ExitCode::internal, fmt::format("{}: protobuf could not serialize the graph", path.string()));
  write_file_atomic(path, bytes);
  info.bytes += bytes.size();
  try {
    onnx::checker::check_model(path.string());
  } catch (const std::exception& e) {
    throw Error(ExitCode::internal,
                fmt::format("{}: the written file fails the ONNX checker: {} (please report this)", path.string(), e.what()));
  }
  return info;
}

}  // namespace recmodel::converters
