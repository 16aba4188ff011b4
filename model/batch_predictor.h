// A model opened for inference, with its tokenizer: texts and text pairs in, label scores (or a
// regression value) out. Tokenizing and scoring are separate steps, so a caller can tokenize on
// several threads and hand the model batches of its own making (`recmodel serve` batches by padded
// tokens); `recmodel predict` streams files through it (model/prediction_io.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "model/model_open.h"
#include "model/predictor.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::model {

// One input as parsed from a file or a request: a text, or a pair (query, title).
struct TextInput {
  std::string text;
  std::optional<std::string> pair;
};

// One input tokenized for the model, or why it cannot be scored.
struct EncodedInput {
  tokenizer::Encoding encoding;  // ids and token types, [CLS]/[SEP] included, truncated to max_length
  std::string error;             // non-empty: not encoded ("empty text", "invalid UTF-8 at byte 6")

  bool ok() const { return error.empty(); }
  // Returns the tokens the model sees (after truncation).
  size_t tokens() const { return encoding.ids.size(); }
  // Returns the tokens truncation dropped; tokens() + truncated() is the input's full length.
  size_t truncated() const { return encoding.truncated; }
};

// The model's answer for one input.
struct Prediction {
  std::vector<float> logits;  // one per label, in the model's label order; regression: the value alone
  std::vector<float> scores;  // softmax of the logits, in the model's label order; empty for regression
  size_t tokens = 0;          // tokens the model saw
  size_t truncated = 0;       // tokens dropped to fit max_length

  // Returns the regression value (the only logit).
  float value() const { return logits.front(); }
};

// Sets `order` to the label indices of `scores`, highest first; ties keep the lower index first
// (argmax order). Reuses `order`'s storage.
void rank_labels(const std::vector<float>& scores, std::vector<size_t>& order);

// Returns why `text` (and `pair`) cannot be scored, or an empty string when they can: invalid
// UTF-8 (its 1-based byte) or a text that is empty or only white space.
std::string input_problem(std::string_view text, std::optional<std::string_view> pair);

// Returns the most tokens one input of `config`'s model may have: max_position_embeddings, or the
// tokenizer's model_max_length when that is lower (0 there means the tokenizer sets no limit).
size_t input_limit(const BertConfig& config, const tokenizer::BertTokenizer& tokenizer);

struct BatchPredictorOptions {
  size_t batch_size = 32;              // inputs per forward pass (a batch is sorted by length first)
  torch::Device device = torch::kCPU;
  size_t max_length = 0;               // tokens per input, longer ones truncated; 0 = input_limit()
  size_t pass_cost_tokens = 0;         // see PredictorOptions: 0 cuts fixed passes of batch_size
};

class BatchPredictor {
 public:
  // Takes `opened` (model::open_for_inference) to `options.device`. Throws UsageError when
  // `options.max_length` is more than the model takes or leaves no room for text (under 4), or
  // the batch size is 0.
  BatchPredictor(OpenedModel opened, BatchPredictorOptions options);
  // The same for a model and tokenizer already in memory.
  BatchPredictor(BertForSequenceClassification model, tokenizer::BertTokenizer tokenizer,
                 BatchPredictorOptions options);

  // Tokenizes one input, truncated to max_length() (longest first for pairs); an input that
  // cannot be scored comes back with `error` set. Only reads the predictor: any number of
  // threads may encode while another one runs predict().
  EncodedInput encode(std::string_view text, std::optional<std::string_view> pair = std::nullopt) const;

  // Scores `inputs` together, result i for inputs[i]: sorted by length and run in forward
  // passes of batch_size, each padded to its own longest input. The same inputs in the same
  // batch give bit-identical results; in other batches they agree to float rounding (~1e-6).
  // Throws DataError naming the input index for one with `error` set. Not thread-safe.
  std::vector<Prediction> predict(const std::vector<const EncodedInput*>& inputs);
  std::vector<Prediction> predict(const std::vector<EncodedInput>& inputs);
  // Encodes and scores `inputs`; throws DataError "input I: ..." for the first that cannot be scored.
  std::vector<Prediction> predict(const std::vector<TextInput>& inputs);

  // Returns the labels in the model's order (the order of Prediction::scores).
  const std::vector<std::string>& labels() const { return predictor_.config().labels; }
  bool regression() const { return predictor_.config().problem_type == ProblemType::regression; }
  size_t num_labels() const { return static_cast<size_t>(predictor_.num_labels()); }
  size_t max_length() const { return max_length_; }
  size_t batch_size() const { return predictor_.options().batch_size; }
  // Whether a batch of mixed lengths costs about its real tokens: the model runs unpadded, or
  // predict() cuts it into passes of similar lengths (pass_cost_tokens, a padded model).
  bool mixes_lengths() const { return predictor_.runs_unpadded() || predictor_.cuts_passes_by_length(); }
  const BertConfig& config() const { return predictor_.config(); }
  const tokenizer::BertTokenizer& tokenizer() const { return tokenizer_; }
  // Returns the real and the computed token counts so far (Predictor::padded_tokens).
  uint64_t tokens() const { return predictor_.tokens(); }
  uint64_t padded_tokens() const { return predictor_.padded_tokens(); }

 private:
  tokenizer::BertTokenizer tokenizer_;
  size_t max_length_;
  Predictor predictor_;
};

}  // namespace recmodel::model
