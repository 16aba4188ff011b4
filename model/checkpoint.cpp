#include "model/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
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
void load_int8_modules(const fs::path& config_path, const fs::path& weights_file, NamedTensors& tensors,
                       BertForSequenceClassificationImpl& model) {
  nlohmann::json doc = nlohmann::json::parse(read_file(config_path), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains(kInt8Section)) return;
  const nlohmann::json& section = doc[kInt8Section];
  const std::string origin = config_path.string();
  if (!section.is_object() || !section.value("format_version", nlohmann::json()).is_number_integer())
    fail<DataError>("{}: \"{}\" must be an object with an integer format_version", origin, kInt8Section);
  int version = section["format_version"].get<int>();
  if (version > kInt8FormatVersion)
    fail<DataError>("{}: int8 format version {} was written by a newer recmodel (this one reads up to {}); "
                    "upgrade recmodel",
                    origin, version, kInt8FormatVersion);
  if (version < 1 || section.value("method", std::string()) != "dynamic-int8" || !section["modules"].is_array())
    fail<DataError>("{}: \"{}\" is not a recmodel int8 section (format_version 1, method \"dynamic-int8\", "
                    "modules [...])",
                    origin, kInt8Section);
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [name, tensor] : tensors) by_name[name] = tensor;
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& item : model.named_modules()) modules[item.key()] = item.value();
  std::set<std::string> used;
  for (const auto& entry : section["modules"]) {
    const std::string name = entry.is_string() ? entry.get<std::string>() : entry.dump();
    auto module = modules.find(name);
    auto* linear = module == modules.end() ? nullptr : dynamic_cast<QuantizableLinearImpl*>(module->second.get());
    auto* embedding =
        module == modules.end() ? nullptr : dynamic_cast<QuantizableEmbeddingImpl*>(module->second.get());
    if (!linear && !embedding)
      fail<DataError>("{}: \"{}\" lists {}, which is not a Linear or word-embedding module of this BERT", origin,
                      kInt8Section, name);
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

}  // namespace

// Reads a sharded checkpoint: `index` maps each tensor name to its shard file (weight_map).
static NamedTensors read_sharded(const fs::path& index, const std::function<NamedTensors(const fs::path&)>& read_shard) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file(index));
  } catch (const nlohmann::json::exception& e) {
    fail<DataError>("{}: not valid JSON: {}", index.string(), e.what());
  }
  if (!doc.contains("weight_map") || !doc["weight_map"].is_object())
    fail<DataError>("{}: has no weight_map object", index.string());
  std::vector<std::string> shards;  // in first-use order, each once
  for (const auto& [name, shard] : doc["weight_map"].items()) {
    if (!shard.is_string()) fail<DataError>("{}: weight_map[\"{}\"] is not a file name", index.string(), name);
    const std::string file = shard.get<std::string>();
    if (file.find('/') != std::string::npos || file == "..")
      fail<DataError>("{}: shard {} is not a file beside the index", index.string(), file);
    if (std::find(shards.begin(), shards.end(), file) == shards.end()) shards.push_back(file);
  }
  NamedTensors tensors;
  for (const auto& file : shards) {
    const fs::path shard = index.parent_path() / file;
    if (!fs::exists(shard)) fail<DataError>("{}: names shard {}, which is missing", index.string(), file);
    for (auto& entry : read_shard(shard)) tensors.push_back(std::move(entry));
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
  loaded.config = BertConfig::from_json_file(dir / "config.json");
  const std::vector<std::string> checkpoint_labels = loaded.config.labels;
  const ProblemType checkpoint_problem = loaded.config.problem_type;
  if (labels) {
    loaded.config.labels = *labels;
    loaded.config.problem_type = problem;
  }
  // A vocabulary with more entries than the embedding matrix would index past it.
  if (fs::exists(dir / "vocab.txt")) {
    size_t entries = tokenizer::Vocab::load(dir / "vocab.txt").size();
    if (static_cast<int64_t>(entries) > loaded.config.vocab_size)
      fail<DataError>("{}: vocab.txt has {} entries but config.json's vocab_size is {}", dir.string(), entries,
                      loaded.config.vocab_size);
  }

  NamedTensors tensors = read_checkpoint_tensors(dir, &loaded.weights_file);
  loaded.model = BertForSequenceClassification(loaded.config);
  load_int8_modules(dir / "config.json", loaded.weights_file, tensors, *loaded.model);
  // Other labels, even as many, mean another head: the old rows would answer for other classes.
  const bool head_changed = labels && (checkpoint_labels != *labels || checkpoint_problem != problem);

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
    if (!tensor.is_floating_point())
      fail<DataError>("{}: tensor {} has integer type {}, expected floating point", loaded.weights_file.string(),
                      raw_name, std::string(c10::toString(tensor.scalar_type())));
    if (tensor.sizes() != it->second.sizes())
      fail<DataError>("{}: tensor {} has shape [{}], config.json implies [{}]", loaded.weights_file.string(), raw_name,
                      fmt::join(tensor.sizes().vec(), ", "), fmt::join(it->second.sizes().vec(), ", "));
    torch::Tensor value = tensor.to(torch::kFloat);
    if (!torch::isfinite(value).all().item<bool>())
      fail<DataError>("{}: tensor {} holds NaN or infinite values", loaded.weights_file.string(), raw_name);
    it->second.copy_(value);
    assigned.insert(name);
  }
  std::vector<std::string> missing_encoder;
  for (const auto& [name, parameter] : parameters) {
    if (assigned.count(name)) continue;
    if (name.rfind("classifier.", 0) == 0) loaded.initialized.push_back(name);
    else missing_encoder.push_back(name);
  }
  if (!missing_encoder.empty())
    fail<DataError>("{}: the checkpoint lacks {} encoder tensor(s), e.g. {}", loaded.weights_file.string(),
                    missing_encoder.size(), missing_encoder.front());
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
  write_file_atomic(dir / "recmodel.json", lineage.dump(2) + "\n");
}

}  // namespace recmodel::model
