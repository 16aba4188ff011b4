#include "model/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/text.h"
#include "common/files.h"
#include "common/json.h"
#include "model/safetensors.h"
#include "model/torch_checkpoint.h"

namespace recmodel::model {

namespace {

// Maps a checkpoint name to recmodel's: adds the "bert." prefix of a bare encoder and
// renames TF-era LayerNorm gamma/beta.
std::string canonical_name(std::string name) {
  auto replace_suffix = [&](const std::string& from, const std::string& to) {
    if (name.size() >= from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0)
      name = name.substr(0, name.size() - from.size()) + to;
  };
  replace_suffix("LayerNorm.gamma", "LayerNorm.weight");
  replace_suffix("LayerNorm.beta", "LayerNorm.bias");
  for (const char* prefix : {"embeddings.", "encoder.", "pooler."}) {
    if (name.rfind(prefix, 0) == 0) return "bert." + name;
  }
  return name;
}

// --- int8 models (recmodel quantize) ---
// config.json's "recmodel_quantization" section lists the modules stored as int8: each has
// "<module>.weight_int8" (I8) and "<module>.weight_scale" (F32) in model.safetensors instead of
// "<module>.weight". Hugging Face loaders ignore the section; they cannot run such a directory
// (use its ONNX export, onnx/model_quantized.onnx, or the fp32 model it came from).
constexpr const char* kInt8Section = "recmodel_quantization";
constexpr int kInt8FormatVersion = 1;

nlohmann::json int8_section(const BertForSequenceClassificationImpl& model, const std::vector<std::string>& modules) {
  bool per_channel = true;
  for (const auto& item : model.named_modules()) {
    if (const auto* linear = dynamic_cast<const QuantizableLinearImpl*>(item.value().get()))
      if (linear->is_int8() && linear->weight_scale.numel() == 1 && linear->weight_int8.size(0) > 1) per_channel = false;
  }
  return {{"format_version", kInt8FormatVersion},
          {"method", "dynamic-int8"},
          {"weights", per_channel ? "int8 symmetric, per output channel" : "int8 symmetric, per tensor"},
          {"embeddings", "int8 symmetric, per row"},
          {"activations", "uint8 asymmetric, per tensor, computed per call (ONNX DynamicQuantizeLinear)"},
          {"modules", modules}};
}

// Switches the modules config.json lists to int8 and takes their tensors out of `tensors`.
void load_int8_modules(const nlohmann::json& doc, const std::string& origin, const fs::path& weights_file,
                       NamedTensors& tensors, BertForSequenceClassificationImpl& model) {
  auto found = doc.find(kInt8Section);
  if (found == doc.end()) return;
  const nlohmann::json& section = *found;
  if (!section.is_object() || !section.contains("format_version") || !section["format_version"].is_number_integer())
    fail<DataError>("{}: \"{}\" must be an object with an integer format_version", origin, kInt8Section);
  const int64_t version = section["format_version"].get<int64_t>();
  if (version > kInt8FormatVersion)
    fail<DataError>("{}: int8 format version {} was written by a newer recmodel (this one reads up to {}); "
                    "upgrade recmodel",
                    origin, version, kInt8FormatVersion);
  const bool method_ok = section.contains("method") && section["method"].is_string() &&
                         section["method"].get_ref<const std::string&>() == "dynamic-int8";
  if (version < 1 || !method_ok || !section.contains("modules") || !section["modules"].is_array())
    fail<DataError>("{}: \"{}\" is not a recmodel int8 section (format_version 1, method \"dynamic-int8\", "
                    "modules [...])",
                    origin, kInt8Section);
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [name, tensor] : tensors) by_name[name] = tensor;
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& item : model.named_modules()) modules[item.key()] = item.value();
  std::set<std::string> used;
  for (const auto& entry : section["modules"]) {
    const std::string name = entry.is_string() ? entry.get<std::string>() : json_excerpt(entry);
    auto module = modules.find(name);
    auto* linear = module == modules.end() ? nullptr : dynamic_cast<QuantizableLinearImpl*>(module->second.get());
    auto* embedding =
        module == modules.end() ? nullptr : dynamic_cast<QuantizableEmbeddingImpl*>(module->second.get());
    if (!linear && !embedding)
      fail<DataError>("{}: \"{}\" lists {}, which is not a Linear or word-embedding module of this BERT", origin,
                      kInt8Section, printable(name));
    const std::vector<int64_t> shape = (linear ? linear->weight : embedding->weight).sizes().vec();
    auto tensor = [&](const std::string& suffix, torch::ScalarType dtype) {
      auto it = by_name.find(name + suffix);
      if (it == by_name.end())
        fail<DataError>("{}: int8 module {} has no tensor {}{}", weights_file.string(), name, name, suffix);
      if (it->second.scalar_type() != dtype)
        fail<DataError>("{}: tensor {}{} has type {}, expected {}", weights_file.string(), name, suffix,
                        std::string(c10::toString(it->second.scalar_type())), std::string(c10::toString(dtype)));
      used.insert(name + suffix);
      return it->second;
    };
    torch::Tensor values = tensor(".weight_int8", torch::kChar);
    torch::Tensor scales = tensor(".weight_scale", torch::kFloat);
    const bool scales_fit = scales.dim() == 1 && (scales.size(0) == shape[0] || (linear && scales.size(0) == 1));
    if (values.sizes().vec() != shape || !scales_fit)
      fail<DataError>("{}: int8 tensors of {} have shapes [{}] and [{}]; config.json implies [{}] and [{}]{}",
                      weights_file.string(), name, fmt::join(values.sizes().vec(), ", "),
                      fmt::join(scales.sizes().vec(), ", "), fmt::join(shape, ", "), shape[0],
                      linear ? " or [1]" : "");
    if (!torch::isfinite(scales).all().item<bool>() || !(scales > 0).all().item<bool>())
      fail<DataError>("{}: tensor {}.weight_scale holds zero, negative or non-finite scales", weights_file.string(),
                      name);
    if (linear) linear->to_int8(values, scales);
    else embedding->to_int8(values, scales);
  }
  NamedTensors rest;
  for (auto& item : tensors)
    if (!used.count(item.first)) rest.push_back(std::move(item));
  tensors = std::move(rest);
}
// --- end int8 ---

// Refuses a config.json whose sizes disagree with the checkpoint's tensors, naming the field:
// the model is allocated from the config, so a crafted vocab_size or hidden_size must not get
// that far. Only the tensors that fix each size are looked at (int8 ones under their int8 name);
// every other shape is compared, tensor by tensor, once the model exists.
void check_config_against_weights(const BertConfig& config, const std::string& config_file, const NamedTensors& tensors,
                                  const std::string& weights_file, bool new_head) {
  std::map<std::string, const torch::Tensor*> by_name;
  int64_t layers = 0;  // 1 + the highest bert.encoder.layer.<i> present
  const std::string layer_prefix = "bert.encoder.layer.";
  for (const auto& [raw_name, tensor] : tensors) {
    std::string name = canonical_name(raw_name);
    if (name.rfind(layer_prefix, 0) == 0) {
      const std::string index = name.substr(layer_prefix.size(), name.find('.', layer_prefix.size()) - layer_prefix.size());
      if (!index.empty() && index.size() <= 6 && index.find_first_not_of("0123456789") == std::string::npos)
        layers = std::max<int64_t>(layers, std::stoll(index) + 1);
    }
    by_name.emplace(std::move(name), &tensor);
  }
  auto check = [&](const char* field, int64_t value, const std::string& module, int64_t dim, bool required) {
    const torch::Tensor* tensor = nullptr;
    std::string name = module + ".weight";
    for (const char* suffix : {".weight", ".weight_int8"}) {
      auto it = by_name.find(module + suffix);
      if (it == by_name.end()) continue;
      name = it->first;
      tensor = it->second;
      break;
    }
    if (!tensor) {
      if (required) fail<DataError>("{}: the checkpoint lacks encoder tensor {}", weights_file, name);
      return;
    }
    if (tensor->dim() != 2)
      fail<DataError>("{}: tensor {} has shape [{}], expected 2 dimensions", weights_file, name,
                      fmt::join(tensor->sizes().vec(), ", "));
    if (tensor->size(dim) != value)
      fail<DataError>("{}: {} {} does not match the weights ({} in {} has {} {})", config_file, field, value, name,
                      weights_file, tensor->size(dim), dim == 0 ? "rows" : "columns");
  };
  check("hidden_size", config.hidden_size, "bert.embeddings.word_embeddings", 1, true);
  check("vocab_size", config.vocab_size, "bert.embeddings.word_embeddings", 0, true);
  check("max_position_embeddings", config.max_position_embeddings, "bert.embeddings.position_embeddings", 0, true);
  check("type_vocab_size", config.type_vocab_size, "bert.embeddings.token_type_embeddings", 0, true);
  check("intermediate_size", config.intermediate_size, "bert.encoder.layer.0.intermediate.dense", 0, true);
  // More layers in the file than in the config are ignored, as Hugging Face does; fewer cannot run.
  if (config.num_hidden_layers > layers)
    fail<DataError>("{}: num_hidden_layers {} does not match the weights ({} holds {} layer(s))", config_file,
                    config.num_hidden_layers, weights_file, layers);
  const bool head_in_file = by_name.count("classifier.weight") || by_name.count("classifier.weight_int8");
  if (!new_head)
    check(config.problem_type == ProblemType::regression ? "num_labels (regression)" : "num_labels",
          config.num_labels(), "classifier", 0, false);

  // The fields above are each matched by one tensor; together (num_attention_heads aside, which
  // allocates nothing) they size every matrix of the model. A checkpoint holds at least one byte
  // per parameter (int8), so a config that implies more parameters than the file holds bytes
  // would allocate memory no weights will fill. Tensors sharing a storage count once.
  std::set<const void*> storages;
  int64_t held_bytes = 0;
  for (const auto& [name, tensor] : tensors)
    if (storages.insert(tensor.storage().unsafeGetStorageImpl()).second)
      held_bytes += static_cast<int64_t>(tensor.storage().nbytes());
  // Every factor is bounded by BertConfig::validate, so none of these products overflows int64.
  const int64_t h = config.hidden_size, i = config.intermediate_size;
  const int64_t embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size + 2) * h;
  const int64_t layer = 4 * (h * h + h) + 2 * h + (i * h + i) + (h * i + h) + 2 * h;
  const int64_t encoder = embeddings + config.num_hidden_layers * layer + (h * h + h);
  const int64_t head = config.num_labels() * (h + 1);
  const bool head_from_file = head_in_file && !new_head;
  if (encoder + (head_from_file ? head : 0) > held_bytes)
    fail<DataError>("{}: vocab_size {}, hidden_size {}, num_hidden_layers {}, intermediate_size {} and "
                    "max_position_embeddings {} imply {} parameters, but {} holds {} bytes of tensors",
                    config_file, config.vocab_size, h, config.num_hidden_layers, i, config.max_position_embeddings,
                    encoder + (head_from_file ? head : 0), weights_file, held_bytes);
  // A new head is drawn at random; it may not outweigh the encoder the file holds.
  if (!head_from_file && head > encoder)
    fail<DataError>("{}: num_labels {} makes a classification head of {} parameters, larger than the encoder",
                    config_file, config.num_labels(), head);
}

// A vocabulary with more entries than the embedding matrix would index past it.
void check_vocab_fits(const fs::path& dir, const BertConfig& config) {
  if (!fs::exists(dir / "vocab.txt")) return;
  const size_t entries = tokenizer::Vocab::load(dir / "vocab.txt").size();
  if (static_cast<int64_t>(entries) > config.vocab_size)
    fail<DataError>("{}: vocab.txt has {} entries but config.json's vocab_size is {}", dir.string(), entries,
                    config.vocab_size);
}

// Copies checkpoint tensor `raw_name` into `parameter` once it is floating point, of the
// parameter's shape and finite (DataError naming `weights_file` otherwise).
void copy_checked(const torch::Tensor& tensor, torch::Tensor& parameter, const std::string& raw_name,
                  const fs::path& weights_file) {
  if (!tensor.is_floating_point())
    fail<DataError>("{}: tensor {} has integer type {}, expected floating point", weights_file.string(), raw_name,
                    std::string(c10::toString(tensor.scalar_type())));
  if (tensor.sizes() != parameter.sizes())
    fail<DataError>("{}: tensor {} has shape [{}], config.json implies [{}]", weights_file.string(), raw_name,
                    fmt::join(tensor.sizes().vec(), ", "), fmt::join(parameter.sizes().vec(), ", "));
  torch::Tensor value = tensor.to(torch::kFloat);
  if (!torch::isfinite(value).all().item<bool>())
    fail<DataError>("{}: tensor {} holds NaN or infinite values", weights_file.string(), raw_name);
  parameter.copy_(value);
}

}  // namespace

// Reads a sharded checkpoint: `index` maps each tensor name to its shard file (weight_map).
static NamedTensors read_sharded(const fs::path& index, const std::function<NamedTensors(const fs::path&)>& read_shard) {
  const nlohmann::json doc = read_json_file(index);
  if (!doc.is_object() || !doc.contains("weight_map") || !doc["weight_map"].is_object())
    fail<DataError>("{}: has no weight_map object", index.string());
  std::vector<std::string> shards;  // in first-use order, each once
  for (const auto& [name, shard] : doc["weight_map"].items()) {
    if (!shard.is_string())
      fail<DataError>("{}: weight_map[\"{}\"] is {}, not a file name", index.string(), printable(name),
                      json_excerpt(shard));
    const std::string& file = shard.get_ref<const std::string&>();
    if (file.empty() || file.find('/') != std::string::npos || file.find('\0') != std::string::npos ||
        file == "." || file == "..")
      fail<DataError>("{}: shard {} is not a file beside the index", index.string(), printable(file));
    if (std::find(shards.begin(), shards.end(), file) == shards.end()) shards.push_back(file);
  }
  NamedTensors tensors;
  std::map<std::string, std::string> shard_of;  // tensor name → the shard that held it first
  for (const auto& file : shards) {
    const fs::path shard = index.parent_path() / file;
    if (!fs::is_regular_file(shard))
      fail<DataError>("{}: names shard {}, which is missing", index.string(), printable(file));
    for (auto& entry : read_shard(shard)) {
      auto [it, added] = shard_of.emplace(entry.first, file);
      if (!added)
        fail<DataError>("{}: tensor {} is in two shards, {} and {}", index.string(), printable(entry.first),
                        printable(it->second), printable(file));
      tensors.push_back(std::move(entry));
    }
  }
  return tensors;
}

NamedTensors read_checkpoint_tensors(const fs::path& dir, fs::path* used_file) {
  // Hugging Face's order of preference: safetensors first, then pickles; whole files, then shards.
  const std::pair<std::string, std::function<NamedTensors(const fs::path&)>> formats[] = {
      {"model.safetensors", read_safetensors}, {"pytorch_model.bin", read_torch_checkpoint}};
  for (const auto& [file, read] : formats) {
    if (fs::exists(dir / file)) {
      if (used_file) *used_file = dir / file;
      return read(dir / file);
    }
    const fs::path index = dir / (file + ".index.json");
    if (fs::exists(index)) {
      if (used_file) *used_file = index;
      return read_sharded(index, read);
    }
  }
  fail<NotFoundError>("{}: no model.safetensors or pytorch_model.bin in the model directory", dir.string());
}

LoadedModel load_model(const fs::path& dir, const std::function<void(const std::string&)>& warn,
                       const std::vector<std::string>* labels, ProblemType problem) {
  if (!fs::is_directory(dir)) fail<NotFoundError>("{}: no such model directory", dir.string());
  LoadedModel loaded;
  const fs::path config_path = dir / "config.json";
  const nlohmann::json config_doc = read_json_file(config_path);
  loaded.config = BertConfig::from_json(config_doc, config_path.string());
  const std::vector<std::string> checkpoint_labels = loaded.config.labels;
  const ProblemType checkpoint_problem = loaded.config.problem_type;
  if (labels) {
    loaded.config.labels = *labels;
    loaded.config.problem_type = problem;
  }
  check_vocab_fits(dir, loaded.config);

  NamedTensors tensors = read_checkpoint_tensors(dir, &loaded.weights_file);
  // Sizes come from config.json but memory is allocated by them: check them against the tensors
  // the checkpoint really holds before the model is built.
  // Other labels, even as many, mean another head: the old rows would answer for other classes.
  const bool head_changed = labels && (checkpoint_labels != *labels || checkpoint_problem != problem);
  check_config_against_weights(loaded.config, config_path.string(), tensors, loaded.weights_file.string(),
                               head_changed);
  loaded.model = BertForSequenceClassification(loaded.config);
  load_int8_modules(config_doc, config_path.string(), loaded.weights_file, tensors, *loaded.model);

  std::map<std::string, torch::Tensor> parameters;
  for (auto& item : loaded.model->named_parameters()) parameters.emplace(item.key(), item.value());
  std::set<std::string> assigned;
  torch::NoGradGuard no_grad;
  for (auto& [raw_name, tensor] : tensors) {
    std::string name = canonical_name(raw_name);
    auto it = parameters.find(name);
    if (it == parameters.end() || (head_changed && name.rfind("classifier.", 0) == 0)) {
      loaded.ignored.push_back(raw_name);
      continue;
    }
    copy_checked(tensor, it->second, raw_name, loaded.weights_file);
    assigned.insert(name);
  }
  std::vector<std::string> missing_encoder;
  bool pooler_missing = false;
  for (const auto& [name, parameter] : parameters) {
    if (assigned.count(name)) continue;
    // A pretrained encoder (BertForMaskedLM, BertModel without pooling) has no pooler: it is
    // drawn with the head, as Hugging Face does.
    const bool pooler = name.rfind("bert.pooler.", 0) == 0;
    pooler_missing |= pooler;
    if (pooler || name.rfind("classifier.", 0) == 0) loaded.initialized.push_back(name);
    else missing_encoder.push_back(name);
  }
  if (!missing_encoder.empty())
    fail<DataError>("{}: the checkpoint lacks {} encoder tensor(s), e.g. {}", loaded.weights_file.string(),
                    missing_encoder.size(), missing_encoder.front());
  if (pooler_missing) loaded.model->initialize_pooler();
  if (!loaded.initialized.empty()) {
    loaded.model->initialize_head();
    warn(fmt::format("{} has no classification head for these labels; initialized {} (train it before use)",
                     dir.string(), fmt::join(loaded.initialized, ", ")));
  }
  return loaded;
}

void save_model(const fs::path& dir, BertForSequenceClassification& model, const tokenizer::BertTokenizer& tokenizer,
                const nlohmann::json& lineage) {
  NamedTensors tensors;
  for (const auto& item : model->named_parameters()) tensors.emplace_back(item.key(), item.value());
  for (const auto& item : model->named_buffers()) tensors.emplace_back(item.key(), item.value());  // int8 weights
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  nlohmann::json config = model->config.to_json();
  std::vector<std::string> int8 = model->int8_modules();
  if (!int8.empty()) config[kInt8Section] = int8_section(*model, int8);
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
  tokenizer.save(dir);
  write_file_atomic(dir / "recmodel.json", pretty_json(lineage) + "\n");
}

LoadedMaskedLM load_masked_lm(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail<NotFoundError>("{}: no such model directory", dir.string());
  LoadedMaskedLM loaded;
  const fs::path config_path = dir / "config.json";
  loaded.config = BertConfig::from_json(read_json_file(config_path), config_path.string());
  check_vocab_fits(dir, loaded.config);
  NamedTensors tensors = read_checkpoint_tensors(dir, &loaded.weights_file);
  check_config_against_weights(loaded.config, config_path.string(), tensors, loaded.weights_file.string(),
                               /*new_head=*/true);
  loaded.model = BertForMaskedLM(loaded.config);
  loaded.model->initialize_weights();  // what the checkpoint lacks (a head) starts as Hugging Face draws it
  std::map<std::string, torch::Tensor> parameters;
  for (auto& item : loaded.model->named_parameters()) parameters.emplace(item.key(), item.value());
  std::set<std::string> assigned;
  torch::NoGradGuard no_grad;
  for (auto& [raw_name, tensor] : tensors) {
    const std::string name = canonical_name(raw_name);
    // The decoder is the word-embedding matrix (tied) and its bias cls.predictions.bias.
    if (name == "cls.predictions.decoder.weight" || name == "cls.predictions.decoder.bias") continue;
    auto it = parameters.find(name);
    if (it == parameters.end()) {
      loaded.dropped.push_back(raw_name);
      continue;
    }
    copy_checked(tensor, it->second, raw_name, loaded.weights_file);
    assigned.insert(name);
  }
  std::vector<std::string> missing_encoder;
  for (const auto& [name, parameter] : parameters) {
    if (assigned.count(name)) continue;
    if (name.rfind("cls.", 0) == 0) loaded.added.push_back(name);
    else missing_encoder.push_back(name);
  }
  if (!missing_encoder.empty())
    fail<DataError>("{}: the checkpoint lacks {} encoder tensor(s), e.g. {}", loaded.weights_file.string(),
                    missing_encoder.size(), missing_encoder.front());
  return loaded;
}

void save_masked_lm(const fs::path& dir, BertForMaskedLM& model, const tokenizer::BertTokenizer& tokenizer,
                    const nlohmann::json& lineage) {
  NamedTensors tensors;
  // The tied decoder is stored once, as bert.embeddings.word_embeddings.weight (Hugging Face's
  // safetensors files drop cls.predictions.decoder.weight the same way).
  for (const auto& item : model->named_parameters()) tensors.emplace_back(item.key(), item.value());
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  // No classes: Hugging Face's default two generic labels, as its own BertForMaskedLM configs carry.
  BertConfig described = model->config;
  described.labels = {"LABEL_0", "LABEL_1"};
  described.problem_type = ProblemType::single_label_classification;
  nlohmann::json config = described.to_json();
  config["architectures"] = {"BertForMaskedLM"};
  config.erase("problem_type");
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
  tokenizer.save(dir);
  write_file_atomic(dir / "recmodel.json", pretty_json(lineage) + "\n");
}

}  // namespace recmodel::model
