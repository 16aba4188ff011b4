#include "model/bert_config.h"

#include <map>

#include "common/error.h"
#include "common/text.h"
#include "common/files.h"
#include "common/json.h"
#include "model/safetensors.h"

namespace recmodel::model {

namespace {

// Upper bounds far above any real BERT (BERT-large: hidden 1024, 24 layers, 512 positions) that
// keep a crafted config.json from sizing allocations or loops; the weights file bounds the rest.
constexpr int64_t kMaxVocabSize = INT32_MAX;  // token ids are 32-bit
constexpr int64_t kMaxHiddenSize = int64_t{1} << 16;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxIntermediateSize = int64_t{1} << 20;
constexpr int64_t kMaxPositions = int64_t{1} << 20;
constexpr int64_t kMaxTypeVocabSize = int64_t{1} << 16;
constexpr int64_t kMaxLabels = int64_t{1} << 16;  // a head of 65,536 × hidden floats

// The member `key` of `doc`, or nullptr when it is absent or null (Hugging Face writes null for unset).
const nlohmann::json* member(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it == doc.end() || it->is_null() ? nullptr : &*it;
}

// Reads an integer field that must lie in [min, max].
void read_integer(const nlohmann::json& doc, const char* key, int64_t& target, int64_t min, int64_t max,
                  const std::string& origin) {
  const nlohmann::json* value = member(doc, key);
  if (!value) return;
  if (!value->is_number_integer())
    fail<DataError>("{}: {} must be an integer, found {}", origin, key, json_excerpt(*value));
  if (value->is_number_unsigned() ? value->get<uint64_t>() > static_cast<uint64_t>(max)
                                  : value->get<int64_t>() < min || value->get<int64_t>() > max)
    fail<DataError>("{}: {} is {}, outside {}..{}", origin, key, json_excerpt(*value), min, max);
  target = value->get<int64_t>();
}

// Reads a real field that must lie in [min, max) (or [min, max] when `max_included`).
void read_real(const nlohmann::json& doc, const char* key, double& target, double min, double max,
               bool max_included, const std::string& origin) {
  const nlohmann::json* value = member(doc, key);
  if (!value) return;
  if (!value->is_number()) fail<DataError>("{}: {} must be a number, found {}", origin, key, json_excerpt(*value));
  const double number = value->get<double>();
  if (!(number >= min && (max_included ? number <= max : number < max)))
    fail<DataError>("{}: {} is {}, outside {}..{}{}", origin, key, json_excerpt(*value), min, max,
                    max_included ? "" : " (exclusive)");
  target = number;
}

std::string read_string(const nlohmann::json& doc, const char* key, const std::string& fallback,
                        const std::string& origin) {
  const nlohmann::json* value = member(doc, key);
  if (!value) return fallback;
  if (!value->is_string()) fail<DataError>("{}: {} must be a string, found {}", origin, key, json_excerpt(*value));
  return value->get<std::string>();
}

bool read_bool(const nlohmann::json& doc, const char* key, const std::string& origin) {
  const nlohmann::json* value = member(doc, key);
  if (!value) return false;
  if (!value->is_boolean()) fail<DataError>("{}: {} must be true or false, found {}", origin, key, json_excerpt(*value));
  return value->get<bool>();
}

// Parses an id2label key: a decimal id with nothing around it.
int64_t label_id(const std::string& key) {
  if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(key);
}

}  // namespace

BertConfig BertConfig::from_json_file(const fs::path& path) {
  return from_json(read_json_file(path), path.string());
}

BertConfig BertConfig::from_json(const nlohmann::json& doc, const std::string& origin) {
  if (!doc.is_object()) fail<DataError>("{}: expected a JSON object, found {}", origin, json_type_name(doc));
  BertConfig config;
  std::string model_type = read_string(doc, "model_type", "bert", origin);
  if (model_type != "bert")
    fail<DataError>("{}: model_type is \"{}\"; recmodel computes BERT (model_type \"bert\") only", origin,
                    printable(model_type));
  std::string activation = read_string(doc, "hidden_act", "gelu", origin);
  if (activation != "gelu")
    fail<DataError>("{}: hidden_act is \"{}\"; recmodel supports BERT's exact erf GELU (\"gelu\") only", origin,
                    printable(activation));
  std::string position = read_string(doc, "position_embedding_type", "absolute", origin);
  if (position != "absolute")
    fail<DataError>("{}: position_embedding_type is \"{}\"; only \"absolute\" position embeddings are supported",
                    origin, printable(position));
  if (read_bool(doc, "is_decoder", origin) || read_bool(doc, "add_cross_attention", origin))
    fail<DataError>("{}: a BERT decoder (is_decoder/add_cross_attention) is not a sequence classifier", origin);
  read_integer(doc, "vocab_size", config.vocab_size, 1, kMaxVocabSize, origin);
  read_integer(doc, "hidden_size", config.hidden_size, 1, kMaxHiddenSize, origin);
  read_integer(doc, "num_hidden_layers", config.num_hidden_layers, 1, kMaxLayers, origin);
  read_integer(doc, "num_attention_heads", config.num_attention_heads, 1, kMaxHiddenSize, origin);
  read_integer(doc, "intermediate_size", config.intermediate_size, 1, kMaxIntermediateSize, origin);
  read_real(doc, "hidden_dropout_prob", config.hidden_dropout_prob, 0, 1, false, origin);
  read_real(doc, "attention_probs_dropout_prob", config.attention_probs_dropout_prob, 0, 1, false, origin);
  read_real(doc, "classifier_dropout", config.classifier_dropout, 0, 1, false, origin);
  read_integer(doc, "max_position_embeddings", config.max_position_embeddings, 1, kMaxPositions, origin);
  read_integer(doc, "type_vocab_size", config.type_vocab_size, 1, kMaxTypeVocabSize, origin);
  read_real(doc, "layer_norm_eps", config.layer_norm_eps, 0, 1, false, origin);
  read_real(doc, "initializer_range", config.initializer_range, 0, 1e3, true, origin);
  read_integer(doc, "pad_token_id", config.pad_token_id, 0, kMaxVocabSize - 1, origin);

  // Labels: id2label (keys are ids as strings), else num_labels generic names.
  std::map<int64_t, std::string> id2label;
  if (const nlohmann::json* labels = member(doc, "id2label")) {
    if (!labels->is_object())
      fail<DataError>("{}: id2label must be an object of id → label name, found {}", origin, json_excerpt(*labels));
    for (const auto& [key, value] : labels->items()) {
      const int64_t id = label_id(key);
      if (id < 0 || id >= kMaxLabels || !value.is_string())
        fail<DataError>("{}: id2label entry \"{}\": {} is not an id (0..{}) → label name", origin, printable(key),
                        json_excerpt(value), kMaxLabels - 1);
      if (!id2label.emplace(id, value.get<std::string>()).second)
        fail<DataError>("{}: id2label names id {} twice", origin, id);
    }
  }
  int64_t num_labels = static_cast<int64_t>(id2label.size());
  if (member(doc, "num_labels")) {
    read_integer(doc, "num_labels", num_labels, 1, kMaxLabels, origin);
  } else if (num_labels == 0) {
    num_labels = 2;  // Hugging Face's default head
  }
  std::string problem = read_string(doc, "problem_type", num_labels == 1 ? "regression" : "single_label_classification",
                                    origin);
  if (problem == "regression") {
    config.problem_type = ProblemType::regression;
    if (num_labels != 1 && !(id2label.size() <= 1))
      fail<DataError>("{}: problem_type \"regression\" needs num_labels 1, found {}", origin, num_labels);
    config.labels = {id2label.count(0) ? id2label[0] : "LABEL_0"};
  } else if (problem == "single_label_classification") {
    if (!id2label.empty()) num_labels = static_cast<int64_t>(id2label.size());
    for (int64_t i = 0; i < num_labels; ++i) {
      auto it = id2label.find(i);
      if (!id2label.empty() && it == id2label.end())
        fail<DataError>("{}: id2label has no entry for id {} (ids must be 0..{})", origin, i, num_labels - 1);
      config.labels.push_back(it != id2label.end() ? it->second : "LABEL_" + std::to_string(i));
    }
  } else {
    fail<DataError>("{}: problem_type is \"{}\"; recmodel trains \"single_label_classification\" and "
                    "\"regression\"",
                    origin, printable(problem));
  }
  config.validate(origin);
  return config;
}

void BertConfig::validate(const std::string& origin) const {
  auto bounded = [&](const char* name, int64_t value, int64_t max) {
    if (value <= 0 || value > max) fail<DataError>("{}: {} is {}, outside 1..{}", origin, name, value, max);
  };
  bounded("vocab_size", vocab_size, kMaxVocabSize);
  bounded("hidden_size", hidden_size, kMaxHiddenSize);
  bounded("num_hidden_layers", num_hidden_layers, kMaxLayers);
  bounded("num_attention_heads", num_attention_heads, kMaxHiddenSize);
  bounded("intermediate_size", intermediate_size, kMaxIntermediateSize);
  bounded("max_position_embeddings", max_position_embeddings, kMaxPositions);
  bounded("type_vocab_size", type_vocab_size, kMaxTypeVocabSize);
  if (hidden_size % num_attention_heads != 0)
    fail<DataError>("{}: hidden_size {} is not a multiple of num_attention_heads {}", origin, hidden_size,
                    num_attention_heads);
  for (double p : {hidden_dropout_prob, attention_probs_dropout_prob}) {
    if (p < 0 || p >= 1) fail<DataError>("{}: dropout probabilities must be in [0, 1), found {}", origin, p);
  }
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    fail<DataError>("{}: pad_token_id {} is not a token id (0..{})", origin, pad_token_id, vocab_size - 1);
  if (num_labels() < 1) fail<DataError>("{}: the model has no labels", origin);
  if (num_labels() > kMaxLabels) fail<DataError>("{}: {} labels, more than {}", origin, num_labels(), kMaxLabels);
}

nlohmann::json BertConfig::to_json() const {
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = i;
  }
  nlohmann::json doc = {
      {"architectures", {"BertForSequenceClassification"}},
      {"model_type", "bert"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"intermediate_size", intermediate_size},
      {"hidden_act", "gelu"},
      {"hidden_dropout_prob", hidden_dropout_prob},
      {"attention_probs_dropout_prob", attention_probs_dropout_prob},
      {"classifier_dropout", classifier_dropout >= 0 ? nlohmann::json(classifier_dropout) : nlohmann::json(nullptr)},
      {"max_position_embeddings", max_position_embeddings},
      {"type_vocab_size", type_vocab_size},
      {"layer_norm_eps", layer_norm_eps},
      {"initializer_range", initializer_range},
      {"pad_token_id", pad_token_id},
      {"position_embedding_type", "absolute"},
      {"problem_type", problem_type == ProblemType::regression ? "regression" : "single_label_classification"},
      {"num_labels", num_labels()},
      {"id2label", id2label},
      {"label2id", label2id},
      {"torch_dtype", "float32"},
  };
  return doc;
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tiny", "mini", "small", "base"};
  return names;
}

BertConfig preset_config(const std::string& name) {
  // The compact BERTs of Turc et al. (google/bert_uncased_L-*_H-*): tiny L2/H128, mini L4/H256,
  // small L4/H512; base is BERT-base.
  BertConfig config;
  struct Shape {
    int64_t layers, hidden, heads;
  };
  static const std::map<std::string, Shape> shapes = {
      {"tiny", {2, 128, 2}}, {"mini", {4, 256, 4}}, {"small", {4, 512, 8}}, {"base", {12, 768, 12}}};
  auto it = shapes.find(name);
  if (it == shapes.end()) fail<UsageError>("unknown preset '{}'; choose tiny, mini, small or base", name);
  config.num_hidden_layers = it->second.layers;
  config.hidden_size = it->second.hidden;
  config.num_attention_heads = it->second.heads;
  config.intermediate_size = 4 * it->second.hidden;
  return config;
}

}  // namespace recmodel::model
