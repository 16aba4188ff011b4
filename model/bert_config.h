// BertConfig: the config.json fields that change the computation, read and written in
// Hugging Face's format; anything recmodel cannot compute exactly is refused (exit 3).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace recmodel::model {

namespace fs = std::filesystem;

enum class ProblemType { single_label_classification, regression };

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double classifier_dropout = -1;  // < 0: unset, hidden_dropout_prob applies
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double initializer_range = 0.02;
  int64_t pad_token_id = 0;
  ProblemType problem_type = ProblemType::single_label_classification;
  std::vector<std::string> labels;  // id2label in id order; one entry "value" style for regression

  int64_t num_labels() const { return problem_type == ProblemType::regression ? 1 : static_cast<int64_t>(labels.size()); }
  double effective_classifier_dropout() const { return classifier_dropout >= 0 ? classifier_dropout : hidden_dropout_prob; }

  // Reads config.json; unsupported settings throw DataError with what was found.
  static BertConfig from_json_file(const fs::path& path);
  static BertConfig from_json(const nlohmann::json& doc, const std::string& origin);
  // Returns the config.json document (BertConfig fields, id2label, label2id, problem_type).
  nlohmann::json to_json() const;
  // Checks sizes and relations (heads divide hidden size, ...); throws DataError.
  void validate(const std::string& origin) const;
};

// Returns a preset architecture: tiny, mini, small or base (BERT-base). Throws UsageError.
BertConfig preset_config(const std::string& name);
const std::vector<std::string>& preset_names();

}  // namespace recmodel::model
