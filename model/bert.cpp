#include "model/bert.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "converters/int8.h"

namespace recmodel::model {

// --- int8 inference (recmodel quantize) ---
namespace {

void refuse_int8_training(const torch::nn::Module& module) {
  if (module.is_training() && torch::GradMode::is_enabled())
    fail<DataError>("this is an int8 model (recmodel quantize), which runs inference only; train the fp32 model "
                    "it was quantized from and quantize again");
}

}  // namespace

torch::Tensor QuantizableLinearImpl::forward(const torch::Tensor& input) {
  if (!is_int8()) return torch::nn::LinearImpl::forward(input);
  refuse_int8_training(*this);
  return converters::int8_linear(input, weight_int8, weight_scale, bias);
}

void QuantizableLinearImpl::to_int8(const torch::Tensor& values, const torch::Tensor& scales) {
  weight_int8 = register_buffer("weight_int8", values.to(torch::kChar).contiguous());
  weight_scale = register_buffer("weight_scale", scales.to(torch::kFloat).contiguous());
  parameters_["weight"] = torch::Tensor();  // an undefined parameter is left out of named_parameters()
  weight = torch::Tensor();
}

torch::Tensor QuantizableEmbeddingImpl::forward(const torch::Tensor& indices) {
  if (!is_int8()) return torch::nn::EmbeddingImpl::forward(indices);
  refuse_int8_training(*this);
  return converters::int8_embedding(indices, weight_int8, weight_scale);
}

void QuantizableEmbeddingImpl::to_int8(const torch::Tensor& values, const torch::Tensor& scales) {
  weight_int8 = register_buffer("weight_int8", values.to(torch::kChar).contiguous());
  weight_scale = register_buffer("weight_scale", scales.to(torch::kFloat).contiguous());
  parameters_["weight"] = torch::Tensor();
  weight = torch::Tensor();
}

std::vector<std::string> BertForSequenceClassificationImpl::int8_modules() const {
  std::vector<std::string> names;
  for (const auto& item : named_modules()) {
    const auto* linear = dynamic_cast<const QuantizableLinearImpl*>(item.value().get());
    const auto* embedding = dynamic_cast<const QuantizableEmbeddingImpl*>(item.value().get());
    if ((linear && linear->is_int8()) || (embedding && embedding->is_int8())) names.push_back(item.key());
  }
  return names;
}
// --- end int8 ---

namespace {

torch::nn::LayerNorm layer_norm(const BertConfig& config) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps).elementwise_affine(true));
}

}  // namespace

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& config) {
  word_embeddings = register_module(
      "word_embeddings",
      QuantizableEmbedding(torch::nn::EmbeddingOptions(config.vocab_size, config.hidden_size).padding_idx(config.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings", torch::nn::Embedding(config.max_position_embeddings, config.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(config.type_vocab_size, config.hidden_size));
  LayerNorm = register_module("LayerNorm", layer_norm(config));
  dropout = register_module("dropout", torch::nn::Dropout(config.hidden_dropout_prob));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids) {
  int64_t length = input_ids.size(1);
  auto positions = torch::arange(length, torch::TensorOptions().dtype(torch::kLong).device(input_ids.device()));
  auto embedded = word_embeddings(input_ids) + position_embeddings(positions).unsqueeze(0) +
                  token_type_embeddings(token_type_ids);
  return dropout(LayerNorm(embedded));
}

torch::Tensor BertEmbeddingsImpl::forward_packed(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                                 const PackedLayout& layout) {
  // A token's position is its column in the padded batch, as in forward().
  auto positions = torch::remainder(layout.rows, layout.length);
  auto embedded = word_embeddings(input_ids.reshape({-1}).index_select(0, layout.rows)) +
                  position_embeddings(positions) +
                  token_type_embeddings(token_type_ids.reshape({-1}).index_select(0, layout.rows));
  return dropout(LayerNorm(embedded));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& config)
    : heads(config.num_attention_heads),
      head_size(config.hidden_size / config.num_attention_heads),
      dropout_p(config.attention_probs_dropout_prob) {
  query = register_module("query", QuantizableLinear(config.hidden_size, config.hidden_size));
  key = register_module("key", QuantizableLinear(config.hidden_size, config.hidden_size));
  value = register_module("value", QuantizableLinear(config.hidden_size, config.hidden_size));
}

namespace {

// Scaled dot-product attention of q (batch, heads, queries, head_size) over k and v (batch,
// heads, keys, head_size); `additive_mask` is (batch, 1, 1, keys).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& additive_mask, double dropout_p, bool training) {
#if TORCH_VERSION_MAJOR >= 2
  // Fused attention kernels (flash / memory-efficient on CUDA) where this libtorch has them.
  return at::scaled_dot_product_attention(q, k, v, additive_mask.to(q.dtype()), training ? dropout_p : 0.0,
                                          /*is_causal=*/false);
#else
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
  scores = scores + additive_mask.to(scores.dtype());
  auto probabilities = torch::softmax(scores, -1);
  probabilities = torch::dropout(probabilities, dropout_p, training);
  return torch::matmul(probabilities, v);
#endif
}

}  // namespace

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  const int64_t batch = hidden.size(0), length = hidden.size(1);
  auto split_heads = [&](const torch::Tensor& x) { return x.view({batch, length, heads, head_size}).transpose(1, 2); };
  auto context = attend(split_heads(query(hidden)), split_heads(key(hidden)), split_heads(value(hidden)),
                        additive_mask, dropout_p, is_training());
  return context.transpose(1, 2).reshape({batch, length, heads * head_size});
}

torch::Tensor BertSelfAttentionImpl::forward_packed(const torch::Tensor& hidden, const PackedLayout& layout,
                                                    bool first_only) {
  const int64_t batch = layout.batch, length = layout.length;
  auto split_heads = [&](const torch::Tensor& x) { return x.view({batch, -1, heads, head_size}).transpose(1, 2); };
  auto k = split_heads(layout.pad(key(hidden)));
  auto v = split_heads(layout.pad(value(hidden)));
  if (first_only) {
    auto q = split_heads(query(hidden.index_select(0, layout.first_rows)));  // (batch, heads, 1, head_size)
    return attend(q, k, v, layout.additive_mask, dropout_p, false).reshape({batch, heads * head_size});
  }
  auto context = attend(split_heads(layout.pad(query(hidden))), k, v, layout.additive_mask, dropout_p, false);
  return context.transpose(1, 2).reshape({batch * length, heads * head_size}).index_select(0, layout.rows);
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in, int64_t out, const BertConfig& config) {
  dense = register_module("dense", QuantizableLinear(in, out));
  LayerNorm = register_module("LayerNorm", layer_norm(config));
  dropout = register_module("dropout", torch::nn::Dropout(config.hidden_dropout_prob));
}

torch::Tensor BertResidualOutputImpl::forward(const torch::Tensor& hidden, const torch::Tensor& residual) {
  return LayerNorm(dropout(dense(hidden)) + residual);
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& config) {
  self = register_module("self", BertSelfAttention(config));
  output = register_module("output", BertResidualOutput(config.hidden_size, config.hidden_size, config));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  return output(self(hidden, additive_mask), hidden);
}

torch::Tensor BertAttentionImpl::forward_packed(const torch::Tensor& hidden, const PackedLayout& layout,
                                                bool first_only) {
  auto residual = first_only ? hidden.index_select(0, layout.first_rows) : hidden;
  return output(self->forward_packed(hidden, layout, first_only), residual);
}

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& config) {
  dense = register_module("dense", QuantizableLinear(config.hidden_size, config.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& hidden) {
  return torch::gelu(dense(hidden));  // exact erf GELU, BERT's "gelu"
}

BertLayerImpl::BertLayerImpl(const BertConfig& config) {
  attention = register_module("attention", BertAttention(config));
  intermediate = register_module("intermediate", BertIntermediate(config));
  output = register_module("output", BertResidualOutput(config.intermediate_size, config.hidden_size, config));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  auto attended = attention(hidden, additive_mask);
  return output(intermediate(attended), attended);
}

torch::Tensor BertLayerImpl::forward_packed(const torch::Tensor& hidden, const PackedLayout& layout, bool first_only) {
  auto attended = attention->forward_packed(hidden, layout, first_only);
  return output(intermediate(attended), attended);
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layer->push_back(BertLayer(config));
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor hidden, const torch::Tensor& additive_mask) {
  for (const auto& module : *layer) hidden = module->as<BertLayer>()->forward(hidden, additive_mask);
  return hidden;
}

torch::Tensor BertEncoderImpl::first_tokens_packed(torch::Tensor hidden, const PackedLayout& layout) {
  const size_t layers = layer->size();
  if (layers == 0) return hidden.index_select(0, layout.first_rows);
  for (size_t i = 0; i < layers; ++i)
    hidden = layer[i]->as<BertLayer>()->forward_packed(hidden, layout, /*first_only=*/i + 1 == layers);
  return hidden;
}

BertPoolerImpl::BertPoolerImpl(const BertConfig& config) {
  dense = register_module("dense", QuantizableLinear(config.hidden_size, config.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden) {
  using torch::indexing::Slice;
  return pool(hidden.index({Slice(), 0}));
}

torch::Tensor BertPoolerImpl::pool(const torch::Tensor& first_tokens) { return torch::tanh(dense(first_tokens)); }

BertModelImpl::BertModelImpl(const BertConfig& config, bool with_pooler) {
  embeddings = register_module("embeddings", BertEmbeddings(config));
  encoder = register_module("encoder", BertEncoder(config));
  if (with_pooler) pooler = register_module("pooler", BertPooler(config));
}

namespace {

// Hugging Face's extended mask: (1 - mask) * the dtype's lowest value, broadcast over heads and queries.
torch::Tensor additive_mask_of(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  double lowest = dtype == torch::kDouble ? std::numeric_limits<double>::lowest()
                  : dtype == torch::kHalf ? -65504.0
                  : dtype == torch::kBFloat16 ? -3.38953139e38
                                              : static_cast<double>(std::numeric_limits<float>::lowest());
  return (1.0 - attention_mask.to(dtype).unsqueeze(1).unsqueeze(2)) * lowest;
}

}  // namespace

torch::Tensor PackedLayout::pad(const torch::Tensor& packed) const {
  return torch::zeros({batch * length, packed.size(1)}, packed.options())
      .index_copy_(0, rows, packed)
      .view({batch, length, packed.size(1)});
}

bool BertModelImpl::runs_unpadded() const {
  for (const auto& item : modules()) {
    const auto* linear = dynamic_cast<const QuantizableLinearImpl*>(item.get());
    const auto* embedding = dynamic_cast<const QuantizableEmbeddingImpl*>(item.get());
    if ((linear && linear->is_int8()) || (embedding && embedding->is_int8())) return false;
  }
  return true;
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                     const torch::Tensor& attention_mask) {
  if (is_training() || !runs_unpadded() || input_ids.dim() != 2 || input_ids.size(1) == 0 ||
      !attention_mask.select(1, 0).ne(0).all().item<bool>())
    return pooler(encode(input_ids, token_type_ids, attention_mask));
  PackedLayout layout;
  layout.batch = input_ids.size(0);
  layout.length = input_ids.size(1);
  auto attended = attention_mask.reshape({-1}).ne(0);
  layout.rows = attended.nonzero().reshape({-1});
  // The packed row of a real token is the number of real tokens before it.
  layout.first_rows = (attended.to(torch::kLong).cumsum(0) - 1).view({layout.batch, layout.length}).select(1, 0);
  auto hidden = embeddings->forward_packed(input_ids, token_type_ids, layout);
  layout.additive_mask = additive_mask_of(attention_mask, hidden.scalar_type());
  return pooler->pool(encoder->first_tokens_packed(hidden, layout));
}

torch::Tensor BertModelImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                    const torch::Tensor& attention_mask) {
  auto hidden = embeddings(input_ids, token_type_ids);
  return encoder(hidden, additive_mask_of(attention_mask, hidden.scalar_type()));
}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const BertConfig& cfg) : config(cfg) {
  bert = register_module("bert", BertModel(config));
  dropout = register_module("dropout", torch::nn::Dropout(config.effective_classifier_dropout()));
  classifier = register_module("classifier", torch::nn::Linear(config.hidden_size, config.num_labels()));
}

torch::Tensor BertForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                         const torch::Tensor& token_type_ids,
                                                         const torch::Tensor& attention_mask) {
  return classifier(dropout(bert(input_ids, token_type_ids, attention_mask)));
}

torch::Tensor BertForSequenceClassificationImpl::loss(const torch::Tensor& logits, const torch::Tensor& labels) const {
  if (config.problem_type == ProblemType::regression)
    return torch::mse_loss(logits.squeeze(-1).to(torch::kFloat), labels.to(torch::kFloat));
  return torch::cross_entropy_loss(logits.to(torch::kFloat), labels.to(torch::kLong));
}

namespace {

void initialize_module(torch::nn::Module& module, double range) {
  torch::NoGradGuard no_grad;
  if (auto* linear = module.as<torch::nn::Linear>()) {
    linear->weight.normal_(0.0, range);
    if (linear->bias.defined()) linear->bias.zero_();
  } else if (auto* embedding = module.as<torch::nn::Embedding>()) {
    embedding->weight.normal_(0.0, range);
    if (embedding->options.padding_idx()) embedding->weight[*embedding->options.padding_idx()].zero_();
  } else if (auto* norm = module.as<torch::nn::LayerNorm>()) {
    norm->weight.fill_(1.0);
    norm->bias.zero_();
  }
}

}  // namespace

void BertForSequenceClassificationImpl::initialize_weights() {
  // Hugging Face's _init_weights visits modules in registration order (module.apply).
  apply([&](torch::nn::Module& module) { initialize_module(module, config.initializer_range); });
}

void BertForSequenceClassificationImpl::initialize_head() { initialize_module(*classifier, config.initializer_range); }

void BertForSequenceClassificationImpl::initialize_pooler() {
  initialize_module(*bert->pooler->dense, config.initializer_range);
}

BertPredictionHeadTransformImpl::BertPredictionHeadTransformImpl(const BertConfig& config) {
  dense = register_module("dense", torch::nn::Linear(config.hidden_size, config.hidden_size));
  LayerNorm = register_module("LayerNorm", layer_norm(config));
}

torch::Tensor BertPredictionHeadTransformImpl::forward(const torch::Tensor& hidden) {
  return LayerNorm(torch::gelu(dense(hidden)));
}

BertLMPredictionHeadImpl::BertLMPredictionHeadImpl(const BertConfig& config) {
  transform = register_module("transform", BertPredictionHeadTransform(config));
  bias = register_parameter("bias", torch::zeros({config.vocab_size}));
}

torch::Tensor BertLMPredictionHeadImpl::forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings) {
  return torch::nn::functional::linear(transform(hidden), word_embeddings.to(hidden.dtype()), bias.to(hidden.dtype()));
}

BertOnlyMLMHeadImpl::BertOnlyMLMHeadImpl(const BertConfig& config) {
  predictions = register_module("predictions", BertLMPredictionHead(config));
}

BertForMaskedLMImpl::BertForMaskedLMImpl(const BertConfig& cfg) : config(cfg) {
  bert = register_module("bert", BertModel(config, /*with_pooler=*/false));
  cls = register_module("cls", BertOnlyMLMHead(config));
}

torch::Tensor BertForMaskedLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                           const torch::Tensor& attention_mask, const torch::Tensor& positions) {
  torch::Tensor hidden = bert->encode(input_ids, token_type_ids, attention_mask);
  hidden = hidden.reshape({-1, hidden.size(-1)}).index_select(0, positions);
  return cls->predictions->forward(hidden, bert->embeddings->word_embeddings->weight);
}

void BertForMaskedLMImpl::initialize_weights() {
  apply([&](torch::nn::Module& module) { initialize_module(module, config.initializer_range); });
  torch::NoGradGuard no_grad;
  cls->predictions->bias.zero_();
}

}  // namespace recmodel::model
