// ONNX export of a BERT sequence classifier, written with the ONNX protobuf classes.
//
// Graph: inputs input_ids, attention_mask, token_type_ids (int64, [batch_size, sequence_length]),
// output logits (float32, [batch_size, num_labels]); the operations of model/bert.cpp one for one
// (opset 17 uses LayerNormalization, opsets 14-16 its ReduceMean/Pow/Sqrt decomposition, which
// ONNX Runtime fuses back).
//
// int8 form. The int8 modules of a quantized model (recmodel quantize) become
//   DynamicQuantizeLinear(x) → MatMulInteger(x_q, W_int8, x_zero_point, 0) → Cast(float)
//     → Mul(x_scale · w_scale) → Add(bias)
// and the int8 word embeddings Gather(W_int8) → Cast → Mul(Gather(row scales)). This is the form
// ONNX Runtime's own quantize_dynamic produces, and the one its CPU provider fuses into one integer
// GEMM (DynamicQuantizeMatMul / MatMulIntegerToFloat) with the scaling in the GEMM's epilogue. The
// QDQ alternative (DequantizeLinear on the weight, MatMul in float) needs a static activation
// range from calibration data, or else runs the product in float and saves only file size. With
// explicit integer ops the numbers are also pinned down by the ONNX spec, which is what lets
// recmodel's own int8 inference (converters/int8.h) reproduce them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <onnx/onnx_pb.h>

#include "model/bert.h"

namespace recmodel::converters {

namespace fs = std::filesystem;

constexpr int kMinOpset = 14;
constexpr int kMaxOpset = 17;  // the newest opset of libonnx-dev 1.12's checker
constexpr int kDefaultOpset = 17;

// Builds the ONNX model of `model`: fp32 modules as MatMul, int8 modules (QuantizableLinear /
// QuantizableEmbedding after to_int8) in the int8 form above.
onnx::ModelProto build_onnx_model(model::BertForSequenceClassificationImpl& model, int opset);

// Runs onnx::checker (full check: the checker, then strict, type-checking shape inference with
// data propagation) and confirms the inferred logits shape. Throws an internal Error naming
// `what` with the checker's message; fills the graph's value_info.
void check_onnx_model(onnx::ModelProto& model, const std::string& what);

// Protobuf cannot serialize more than 2 GB, so bigger models store their initializers in a data
// file beside the graph (ONNX external data).
constexpr uint64_t kExternalDataThreshold = (uint64_t{2} << 30) - (uint64_t{64} << 20);

struct OnnxFileInfo {
  fs::path path;
  uint64_t bytes = 0;      // graph file plus external data
  fs::path external_data;  // empty when the weights are inside the graph file
  uint64_t initializer_bytes = 0;
};

// Writes `model` to `path`; with `external` (or above kExternalDataThreshold) the initializers of
// 1 KiB or more go to `path` + "_data" (e.g. model.onnx_data). Then re-reads the written file
// and checks it again, external data included.
OnnxFileInfo write_onnx_model(onnx::ModelProto model, const fs::path& path, bool external);

// Returns the total size of the initializers (the weights) of `model`.
uint64_t initializer_bytes(const onnx::ModelProto& model);

}  // namespace recmodel::converters
