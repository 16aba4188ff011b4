// BERT for sequence classification in libtorch, laid out so that parameter names are
// exactly Hugging Face's (bert.embeddings.word_embeddings.weight, ..., classifier.weight).
#pragma once

#include <torch/torch.h>

#include "model/bert_config.h"

namespace recmodel::model {

// --- int8 inference (recmodel quantize; the arithmetic is in converters/int8.h) ---
// A Linear that runs in fp32 or, after to_int8(), with int8 weights and activations quantized
// per call (ONNX DynamicQuantizeLinear + MatMulInteger numerics). In int8 the fp32 `weight` is
// gone: its state is the buffers weight_int8 (out, in) and weight_scale (out) or (1).
struct QuantizableLinearImpl : torch::nn::LinearImpl {
  QuantizableLinearImpl(int64_t in, int64_t out) : torch::nn::LinearImpl(in, out) {}
  torch::Tensor forward(const torch::Tensor& input);
  // Replaces the fp32 weight with int8 `values` and float `scales` (shapes checked by the caller).
  void to_int8(const torch::Tensor& values, const torch::Tensor& scales);
  bool is_int8() const { return weight_int8.defined(); }

  torch::Tensor weight_int8, weight_scale;
};
TORCH_MODULE(QuantizableLinear);

// An Embedding that looks up fp32 rows or, after to_int8(), int8 rows with one scale per row.
struct QuantizableEmbeddingImpl : torch::nn::EmbeddingImpl {
  using torch::nn::EmbeddingImpl::EmbeddingImpl;
  torch::Tensor forward(const torch::Tensor& indices);
  // Replaces the fp32 table with int8 `values` (rows, dim) and per-row float `scales` (rows).
  void to_int8(const torch::Tensor& values, const torch::Tensor& scales);
  bool is_int8() const { return weight_int8.defined(); }

  torch::Tensor weight_int8, weight_scale;
};
TORCH_MODULE(QuantizableEmbedding);
// --- end int8 ---

// Where the real tokens of a padded (batch, length) batch are. Inference runs its Linears,
// LayerNorms and GELUs on those rows only, packed into one (tokens, hidden) matrix, and pads
// only for attention: a batch of mixed lengths costs about its real tokens.
struct PackedLayout {
  int64_t batch = 0, length = 0;
  torch::Tensor rows;           // (tokens): the flat index into batch x length of each real token
  torch::Tensor first_rows;     // (batch): the packed row of each sequence's first token, [CLS]
  torch::Tensor additive_mask;  // (batch, 1, 1, length): 0 where attended, a large negative where padded

  // Returns `packed` (tokens, width) laid out as (batch, length, width), zeros where padded.
  torch::Tensor pad(const torch::Tensor& packed) const;
};

struct BertEmbeddingsImpl : torch::nn::Module {
  explicit BertEmbeddingsImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);
  // The same for the real tokens of `layout` only: returns (tokens, hidden).
  torch::Tensor forward_packed(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                               const PackedLayout& layout);

  QuantizableEmbedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertEmbeddings);

struct BertSelfAttentionImpl : torch::nn::Module {
  explicit BertSelfAttentionImpl(const BertConfig& config);
  // `additive_mask` is (batch, 1, 1, seq): 0 where attended, a large negative where padded.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);
  // `hidden` is packed (tokens, hidden); returns the context of every real token, or with
  // `first_only` of each sequence's first token only (batch, hidden).
  torch::Tensor forward_packed(const torch::Tensor& hidden, const PackedLayout& layout, bool first_only);

  int64_t heads, head_size;
  double dropout_p;
  QuantizableLinear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(BertSelfAttention);

// A Linear, dropout, residual and post-LayerNorm block (BertSelfOutput and BertOutput).
struct BertResidualOutputImpl : torch::nn::Module {
  BertResidualOutputImpl(int64_t in, int64_t out, const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& residual);

  QuantizableLinear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertResidualOutput);

struct BertAttentionImpl : torch::nn::Module {
  explicit BertAttentionImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);
  torch::Tensor forward_packed(const torch::Tensor& hidden, const PackedLayout& layout, bool first_only);

  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

struct BertIntermediateImpl : torch::nn::Module {
  explicit BertIntermediateImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden);

  QuantizableLinear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

struct BertLayerImpl : torch::nn::Module {
  explicit BertLayerImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);
  // `hidden` is packed (tokens, hidden); with `first_only` returns (batch, hidden), the output
  // at each sequence's first token only (all the pooler reads of the last layer).
  torch::Tensor forward_packed(const torch::Tensor& hidden, const PackedLayout& layout, bool first_only);

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertEncoderImpl : torch::nn::Module {
  explicit BertEncoderImpl(const BertConfig& config);
  torch::Tensor forward(torch::Tensor hidden, const torch::Tensor& additive_mask);
  // Returns the last layer's output at each sequence's first token (batch, hidden).
  torch::Tensor first_tokens_packed(torch::Tensor hidden, const PackedLayout& layout);

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

struct BertPoolerImpl : torch::nn::Module {
  explicit BertPoolerImpl(const BertConfig& config);
  // `hidden` is (batch, seq, hidden); reads position 0.
  torch::Tensor forward(const torch::Tensor& hidden);
  // The same from each sequence's first-token state (batch, hidden).
  torch::Tensor pool(const torch::Tensor& first_tokens);

  QuantizableLinear dense{nullptr};
};
TORCH_MODULE(BertPooler);

struct BertModelImpl : torch::nn::Module {
  // Without the pooler for the masked-LM model, as Hugging Face's BertForMaskedLM (add_pooling_layer=False).
  explicit BertModelImpl(const BertConfig& config, bool with_pooler = true);
  // Returns the pooled [CLS] representation (batch, hidden). In eval mode, for an fp32 model and
  // a mask that attends every first token, the unpadded path (PackedLayout): the same numbers
  // to float rounding, at the cost of the real tokens.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask);
  // Whether forward() in eval mode runs unpadded: no int8 modules (their activations are
  // quantized over the whole padded tensor, as the exported ONNX graph does).
  bool runs_unpadded() const;
  // Returns the last hidden states of every position (batch, seq, hidden).
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                       const torch::Tensor& attention_mask);

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(BertModel);

struct BertForSequenceClassificationImpl : torch::nn::Module {
  explicit BertForSequenceClassificationImpl(const BertConfig& config);
  // Returns logits (batch, num_labels). Inputs are int64 (batch, seq); mask 1 = token, 0 = padding.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask);
  // Returns the training loss of `logits` against `labels` (cross-entropy, or MSE for regression).
  torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& labels) const;
  // Initializes every weight as Hugging Face does: normal(0, initializer_range), zero biases,
  // unit LayerNorm, zero padding embedding. Uses the global torch generator (seed it first).
  void initialize_weights();
  // Initializes only the classification head (a checkpoint without one).
  void initialize_head();
  // Initializes the pooler (a pretrained encoder without one: BertForMaskedLM).
  void initialize_pooler();
  // Returns the names of the modules that run in int8 (recmodel quantize); empty for fp32.
  std::vector<std::string> int8_modules() const;

  BertConfig config;
  BertModel bert{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(BertForSequenceClassification);

// --- masked-LM pretraining (recmodel pretrain) ---
// cls.predictions.transform: dense, GELU, LayerNorm.
struct BertPredictionHeadTransformImpl : torch::nn::Module {
  explicit BertPredictionHeadTransformImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertPredictionHeadTransform);

// cls.predictions: the transform, then the decoder whose weight is the word-embedding matrix
// (tied, as in Hugging Face), plus its own bias.
struct BertLMPredictionHeadImpl : torch::nn::Module {
  explicit BertLMPredictionHeadImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings);

  BertPredictionHeadTransform transform{nullptr};
  torch::Tensor bias;
};
TORCH_MODULE(BertLMPredictionHead);

struct BertOnlyMLMHeadImpl : torch::nn::Module {
  explicit BertOnlyMLMHeadImpl(const BertConfig& config);

  BertLMPredictionHead predictions{nullptr};
};
TORCH_MODULE(BertOnlyMLMHead);

// BERT with the masked-LM head, parameter names exactly Hugging Face's BertForMaskedLM
// (bert.* without a pooler, cls.predictions.*; the decoder weight is bert.embeddings.word_embeddings.weight).
struct BertForMaskedLMImpl : torch::nn::Module {
  explicit BertForMaskedLMImpl(const BertConfig& config);
  // Returns the vocabulary logits of the `positions` (a flat index into batch * seq) only: the
  // masked ones, so the decoder runs on 15% of the tokens.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask, const torch::Tensor& positions);
  // Hugging Face's _init_weights over every module (seed torch's generator first).
  void initialize_weights();

  BertConfig config;
  BertModel bert{nullptr};
  BertOnlyMLMHead cls{nullptr};
};
TORCH_MODULE(BertForMaskedLM);

}  // namespace recmodel::model
