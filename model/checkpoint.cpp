#include "model/checkpoint.h"

#include <torch/serialize.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "common/error.h"
#include "common/files.h"
#include "model/safetensors.h"

namespace recmodel::model {

namespace {

NamedTensors read_torch_pickle(const fs::path& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 4 || bytes.compare(0, 2, "PK") != 0)
    fail<DataError>("{}: not a torch.save zip archive (legacy or corrupt); re-save it with a recent PyTorch or "
                    "convert it to model.safetensors",
                    path.string());
  torch::IValue value;
  try {
    value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    fail<DataError>("{}: cannot read the checkpoint (truncated or corrupt): {}", path.string(),
                    what.substr(0, what.find('\n')));
  }
  if (!value.isGenericDict()) fail<DataError>("{}: expected a state dict (name → tensor)", path.string());
  NamedTensors tensors;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) continue;
    tensors.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  }
  return tensors;
}

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

}  // namespace

NamedTensors read_checkpoint_tensors(const fs::path& dir, fs::path* used_file) {
  fs::path safetensors = dir / "model.safetensors";
  fs::path pickle = dir / "pytorch_model.bin";
  if (fs::exists(safetensors)) {
    if (used_file) *used_file = safetensors;
    return read_safetensors(safetensors);
  }
  if (fs::exists(pickle)) {
    if (used_file) *used_file = pickle;
    return read_torch_pickle(pickle);
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
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomic(dir / "config.json", model->config.to_json().dump(2) + "\n");
  tokenizer.save(dir);
  write_file_atomic(dir / "recmodel.json", lineage.dump(2) + "\n");
}

}  // namespace recmodel::model
