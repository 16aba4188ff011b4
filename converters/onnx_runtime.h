// ONNX Runtime as an independent check of an export: runs the written .onnx files through
// node + onnxruntime-node (when both are installed) and compares their outputs with recmodel's.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/bert.h"

namespace recmodel::converters {

namespace fs = std::filesystem;

// One padded batch of model inputs (int64, batch x sequence).
struct TokenBatch {
  torch::Tensor input_ids, attention_mask, token_type_ids;
};

// Returns `count` deterministic inputs of varied lengths (2 up to `max_length` tokens, `cls` ...
// `sep`, some with a second segment), in batches of `batch_size` padded to their longest.
std::vector<TokenBatch> verification_batches(const model::BertConfig& config, int count, int batch_size,
                                             int max_length, uint64_t seed, int64_t cls, int64_t sep);

// Returns the model's logits (float32) for each batch (eval mode, no gradients).
std::vector<torch::Tensor> model_logits(model::BertForSequenceClassificationImpl& model,
                                        const std::vector<TokenBatch>& batches);

// Where ONNX Runtime for node was found, or why it was not.
struct OnnxRuntimeNode {
  bool available = false;
  std::string version;  // onnxruntime-node's package version
  std::string reason;   // when not available: what is missing and how to install it
};

// Looks for `node` on PATH and the onnxruntime-node package (NODE_PATH, $RECMODEL_ONNXRUNTIME_NODE,
// the global npm modules).
OnnxRuntimeNode find_onnxruntime_node();

// Runs `onnx_file` in ONNX Runtime (CPU, `threads` intra-op threads) on each batch and returns
// the output `output` per batch. Throws an Error naming the file when the runtime fails.
std::vector<torch::Tensor> run_onnxruntime(const fs::path& onnx_file, const std::vector<TokenBatch>& batches,
                                           int threads, const std::string& output = "logits");

// The comparison of one output, as Optimum's validation prints it.
struct OutputComparison {
  std::string name;
  double max_abs_diff = 0;
  double atol = 0;
  bool shapes_match = true;
  double top_label_agreement = 1.0;  // argmax over the last dimension
  bool ok() const { return shapes_match && max_abs_diff <= atol; }
};

// Compares reference and runtime outputs batch by batch.
OutputComparison compare_outputs(const std::string& name, const std::vector<torch::Tensor>& reference,
                                 const std::vector<torch::Tensor>& runtime, double atol);

}  // namespace recmodel::converters
