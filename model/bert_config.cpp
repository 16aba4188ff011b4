#include "model/bert_config.h"

#include <map>

#include "common/error.h"
#include "common/files.h"

namespace recmodel::model {

namespace {

template <typename T>
void read_number(const nlohmann::json& doc, const char* key, T& target, const std::string& origin) {
  if (!doc.contains(key) || doc[key].is_null()) return;
  if (!doc[key].is_number()) fail<DataError>("{}: \"{}\" must be a number, found {}", origin, key, doc[key].dump());
  target = doc[key].get<T>();
}

}  // namespace

BertConfig BertConfig::from_json_file(const fs::path& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail<DataError>("{}: not valid JSON: {}", path.string(), e.what());
  }
  return from_json(doc, path.string());
}

BertConfig BertConfig::from_json(const nlohmann::json& doc, const std::string& origin) {
  if (!doc.is_object()) fail<DataError>("{}: expected a JSON object", origin);
  BertConfig config;
  std::string model_type = doc.value("model_type", std::string("bert"));
  if (model_type != "bert")
    fail<DataError>("{}: model_type is \"{}\"; recmodel computes BERT (model_type \"bert\") only", origin, model_type);
  std::string activation = doc.value("hidden_act", std::string("gelu"));
  if (activation != "gelu")
    fail<DataError>("{}: hidden_act is \"{}\"; recmodel supports BERT's exact erf GELU (\"gelu\") only", origin,
                    activation);
  std::string position = doc.value("position_embedding_type", std::string("absolute"));
  if (position != "absolute")
    fail<DataError>("{}: position_embedding_type is \"{}\"; only \"absolute\" position embeddings are supported",
                    origin, position);
  if (doc.value("is_decoder", false) || doc.value("add_cross_attention", false))
    fail<DataError>("{}: a BERT decoder (is_decoder/add_cross_attention) is not a sequence classifier", origin);
  read_number(doc, "vocab_size", config.vocab_size, origin);
  read_number(doc, "hidden_size", config.hidden_size, origin);
  read_number(doc, "num_hidden_layers", config.num_hidden_layers, origin);
  read_number(doc, "num_attention_heads", config.num_attention_heads, origin);
  read_number(doc, "intermediate_size", config.intermediate_size, origin);
  read_number(doc, "hidden_dropout_prob", config.hidden_dropout_prob, origin);
  read_number(doc, "attention_probs_dropout_prob", config.attention_probs_dropout_prob, origin);
  read_number(doc, "classifier_dropout", config.classifier_dropout, origin);
  read_number(doc, "max_position_embeddings", config.max_position_embeddings, origin);
  read_number(doc, "type_vocab_size", config.type_vocab_size, origin);
  read_number(doc, "layer_norm_eps", config.layer_norm_eps, origin);
  read_number(doc, "initializer_range", config.initializer_range, origin);
  read_number(doc, "pad_token_id", config.pad_token_id, origin);

  // Labels: id2label (keys are ids as strings), else num_labels generic names.
  std::map<int64_t, std::string> id2label;
  if (doc.contains("id2label") && doc["id2label"].is_object()) {
    for (const auto& [key, value] : doc["id2label"].items()) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) id = -1;
      } catch (const std::exception&) {
      }
      if (id < 0 || !value.is_string())
        fail<DataError>("{}: id2label entry \"{}\": {} is not an id → label name", origin, key, value.dump());
      id2label[id] = value.get<std::string>();
    }
  }
  int64_t num_labels = doc.contains("num_labels") && doc["num_labels"].is_number_integer()
                           ? doc["num_labels"].get<int64_t>()
                           : static_cast<int64_t>(id2label.size());
  if (num_labels == 0) num_labels = 2;  // Hugging Face's default head
  std::string problem = doc.contains("problem_type") && doc["problem_type"].is_string()
                            ? doc["problem_type"].get<std::string>()
                            : (num_labels == 1 ? "regression" : "single_label_classification");
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
                    origin, problem);
  }
  config.validate(origin);
  return config;
}

void BertConfig::validate(const std::string& origin) const {
  auto positive = [&](const char* name, int64_t value) {
    if (value <= 0) fail<DataError>("{}: {} must be positive, found {}", origin, name, value);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("intermediate_size", intermediate_size);
  positive("max_position_embeddings", max_position_embeddings);
  positive("type_vocab_size", type_vocab_size);
  if (hidden_size % num_attention_heads != 0)
    fail<DataError>("{}: hidden_size {} is not a multiple of num_attention_heads {}", origin, hidden_size,
                    num_attention_heads);
  for (double p : {hidden_dropout_prob, attention_probs_dropout_prob}) {
    if (p < 0 || p >= 1) fail<DataError>("{}: dropout probabilities must be in [0, 1), found {}", origin, p);
  }
  if (num_labels() < 1) fail<DataError>("{}: the model has no labels", origin);
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
