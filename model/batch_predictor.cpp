#include "model/batch_predictor.h"

#include <algorithm>
#include <numeric>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace recmodel::model {

namespace {

bool blank(std::string_view text) { return text.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos; }

size_t checked_max_length(const BertConfig& config, const tokenizer::BertTokenizer& tokenizer, size_t requested) {
  const size_t limit = input_limit(config, tokenizer);
  if (requested > limit) fail<UsageError>("--max-length {} is more than the model takes ({} positions)", requested, limit);
  const size_t max_length = requested > 0 ? requested : limit;
  if (max_length < 4) fail<UsageError>("--max-length {} leaves no room for text; use at least 4", max_length);
  return max_length;
}

}  // namespace

void rank_labels(const std::vector<float>& scores, std::vector<size_t>& order) {
  order.resize(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
}

std::string input_problem(std::string_view text, std::optional<std::string_view> pair) {
  if (size_t bad = unicode::find_invalid_utf8(text); bad != std::string_view::npos)
    return fmt::format("invalid UTF-8 at byte {}", bad + 1);
  if (pair) {
    if (size_t bad = unicode::find_invalid_utf8(*pair); bad != std::string_view::npos)
      return fmt::format("invalid UTF-8 at byte {} of the second text", bad + 1);
  }
  if (blank(text) || (pair && blank(*pair))) return pair ? "empty text in the pair" : "empty text";
  return {};
}

size_t input_limit(const BertConfig& config, const tokenizer::BertTokenizer& tokenizer) {
  // Hugging Face writes model_max_length 1e30 for a tokenizer without a limit; it reads as 0 here.
  const size_t tokenizer_limit = tokenizer.config().model_max_length;
  size_t limit = static_cast<size_t>(config.max_position_embeddings);
  if (tokenizer_limit > 0) limit = std::min(limit, tokenizer_limit);
  return limit;
}

BatchPredictor::BatchPredictor(OpenedModel opened, BatchPredictorOptions options)
    : BatchPredictor(std::move(opened.loaded.model), std::move(opened.tokenizer), options) {}

BatchPredictor::BatchPredictor(BertForSequenceClassification model, tokenizer::BertTokenizer tokenizer,
                               BatchPredictorOptions options)
    : tokenizer_(std::move(tokenizer)),
      max_length_(checked_max_length(model->config, tokenizer_, options.max_length)),
      predictor_(std::move(model), tokenizer_.pad_id(), PredictorOptions{options.batch_size, options.device, options.pass_cost_tokens}) {}

EncodedInput BatchPredictor::encode(std::string_view text, std::optional<std::string_view> pair) const {
  EncodedInput input;
  input.error = input_problem(text, pair);
  if (input.ok()) tokenizer_.encode_into(text, pair, max_length_, /*add_special_tokens=*/true, /*with_tokens=*/false,
                                         input.encoding);
  return input;
}

std::vector<Prediction> BatchPredictor::predict(const std::vector<const EncodedInput*>& inputs) {
  std::vector<SequenceView> views;
  views.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const EncodedInput& input = *inputs[i];
    if (!input.ok()) fail<DataError>("input {}: {}", i, input.error);
    views.push_back({input.encoding.ids.data(), input.encoding.type_ids.data(), input.encoding.ids.size()});
  }
  std::vector<Prediction> out(inputs.size());
  if (inputs.empty()) return out;
  // Softmax over the whole batch at once, as predict always did: rows are independent, and
  // the same call keeps the scores bit-identical to earlier releases.
  const torch::Tensor logits = predictor_.logits(views);
  const size_t classes = num_labels();
  const float* logit_data = logits.data_ptr<float>();
  torch::Tensor probs;
  const float* prob_data = nullptr;
  if (!regression()) {
    probs = torch::softmax(logits, 1).contiguous();
    prob_data = probs.data_ptr<float>();
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Prediction& p = out[i];
    p.logits.assign(logit_data + i * classes, logit_data + (i + 1) * classes);
    if (prob_data) p.scores.assign(prob_data + i * classes, prob_data + (i + 1) * classes);
    p.tokens = inputs[i]->tokens();
    p.truncated = inputs[i]->truncated();
  }
  return out;
}

std::vector<Prediction> BatchPredictor::predict(const std::vector<EncodedInput>& inputs) {
  std::vector<const EncodedInput*> pointers;
  pointers.reserve(inputs.size());
  for (const EncodedInput& input : inputs) pointers.push_back(&input);
  return predict(pointers);
}

std::vector<Prediction> BatchPredictor::predict(const std::vector<TextInput>& inputs) {
  std::vector<EncodedInput> encoded;
  encoded.reserve(inputs.size());
  for (const TextInput& input : inputs) {
    encoded.push_back(encode(input.text, input.pair ? std::optional<std::string_view>(*input.pair) : std::nullopt));
    if (!encoded.back().ok()) fail<DataError>("input {}: {}", encoded.size() - 1, encoded.back().error);
  }
  return predict(encoded);
}

}  // namespace recmodel::model
