#include "model/model_open.h"

#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/json.h"

namespace recmodel::model {

namespace {

// Reads config.json and the tokenizer: enough to describe the model without its weights.
std::pair<BertConfig, tokenizer::BertTokenizer> read_description(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<NotFoundError>("{}: no such model directory (--model)", dir.string());
  BertConfig config = BertConfig::from_json_file(dir / "config.json");
  return {std::move(config), tokenizer::BertTokenizer::from_model_dir(dir)};
}

// The architecture config.json names when it is an encoder without a classification head
// (BertForMaskedLM from recmodel pretrain, BertModel, BertForPreTraining); "" otherwise.
std::string pretrained_encoder_architecture(const fs::path& dir) {
  const nlohmann::json doc = read_json_file(dir / "config.json");
  const auto it = doc.find("architectures");
  if (it == doc.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) return "";
  const std::string name = (*it)[0].get<std::string>();
  for (const char* encoder : {"BertForMaskedLM", "BertModel", "BertForPreTraining"})
    if (name == encoder) return name;
  return "";
}

std::string names_in_brief(const std::vector<std::string>& names) {
  if (names.empty()) return "nothing";
  std::map<std::string, size_t> groups;  // "cls.predictions.*" -> tensors
  for (const std::string& name : names) {
    const size_t first = name.find('.'), second = first == std::string::npos ? first : name.find('.', first + 1);
    groups[second == std::string::npos ? name : name.substr(0, second) + ".*"]++;
  }
  std::vector<std::string> parts;
  for (const auto& [group, count] : groups) parts.push_back(fmt::format("{} ({})", group, count));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string describe_head(const data::ModelSummary& summary) {
  if (summary.regression) return "a regression head";
  return fmt::format("labels [{}]", data::label_list(summary.labels, 20));
}

}  // namespace

data::ModelSummary describe_model(const std::string& name, const BertConfig& config,
                                  const tokenizer::BertTokenizer& tokenizer) {
  data::ModelSummary summary;
  summary.name = name;
  summary.regression = config.problem_type == ProblemType::regression;
  if (!summary.regression) summary.labels = config.labels;
  summary.vocab_sha256 = tokenizer.vocab().sha256();
  summary.vocab_size = tokenizer.vocab().size();
  const auto& settings = tokenizer.config();
  summary.tokenizer_settings = {settings.do_lower_case, settings.strips_accents(), settings.tokenize_chinese_chars};
  summary.max_positions = config.max_position_embeddings;
  return summary;
}

OpenedModel open_for_inference(const fs::path& dir, const std::string& name, const Warn& warn,
                               const data::PreparedDataset* dataset) {
  auto [config, tokenizer] = read_description(dir);
  data::ModelSummary summary = describe_model(name, config, tokenizer);
  data::Fit fit;
  if (dataset) fit = data::check_compatible(*dataset, summary);
  LoadedModel loaded = load_model(dir, warn);
  // A head drawn at random answers at random: only train may start from such a checkpoint.
  if (!loaded.initialized.empty())
    fail<DataError>("{}: the checkpoint lacks {} (e.g. {}); train the model first ('recmodel train')",
                    loaded.weights_file.string(), loaded.initialized.size() == 1 ? "a parameter" : "parameters",
                    loaded.initialized.front());
  return {std::move(loaded), std::move(tokenizer), std::move(summary), std::move(fit)};
}

OpenedModel open_for_training(const fs::path& dir, const std::string& name, const data::PreparedDataset& dataset,
                              bool reset_head, const Warn& warn) {
  auto [config, tokenizer] = read_description(dir);
  const data::ModelSummary checkpoint = describe_model(name, config, tokenizer);
  // A pretrained encoder has no head to keep: it gets one for the dataset's labels.
  const std::string encoder = pretrained_encoder_architecture(dir);
  const bool keep_head = encoder.empty() && data::same_head(dataset, checkpoint);
  if (!keep_head && !reset_head && encoder.empty()) {
    // The checkpoint as it is, checked as evaluate and quantize check it: the same message for
    // another vocabulary, task or a label the head lacks (with the remedy train has).
    constexpr const char* kRemedy = "pass --reset-head to train a new head";
    data::check_compatible(dataset, checkpoint, kRemedy);
    // Every dataset label is the head's, but the head answers more classes.
    fail<DataError>("the model {} has {} but the dataset {} has labels [{}]; {}", name, describe_head(checkpoint),
                    dataset.dir.string(), data::label_list(dataset.labels, 20), kRemedy);
  }
  // The model as it will be trained: its own head, or a new one for the dataset's classes.
  data::ModelSummary target = checkpoint;
  if (!keep_head) {
    target.regression = dataset.task == data::Task::regression;
    target.labels = target.regression ? std::vector<std::string>{} : dataset.labels;
  }
  // Vocabulary, settings and length: another head does not fix those.
  data::Fit fit = data::check_compatible(dataset, target);
  LoadedModel loaded;
  if (keep_head) {
    loaded = load_model(dir, warn);
  } else {
    const std::vector<std::string> labels =
        target.regression ? std::vector<std::string>{config.labels.empty() ? "LABEL_0" : config.labels.front()}
                          : target.labels;
    auto quiet = [](const std::string&) {};
    loaded = load_model(dir, encoder.empty() ? warn : Warn(quiet), &labels,
                        target.regression ? ProblemType::regression : ProblemType::single_label_classification);
    if (!encoder.empty())
      warn(fmt::format("{} is a pretrained encoder ({}): dropped {}; added a new {}: {}", name, encoder,
                       names_in_brief(loaded.ignored),
                       target.regression ? std::string("regression head") : "head for labels [" + data::label_list(target.labels, 20) + "]",
                       names_in_brief(loaded.initialized)));
  }
  if (!loaded.model->int8_modules().empty())
    fail<DataError>("{}: is an int8 model (recmodel quantize), which cannot be trained; train its fp32 source and "
                    "quantize again",
                    name);
  return {std::move(loaded), std::move(tokenizer), std::move(target), std::move(fit)};
}

OpenedModel with_preset(OpenedModel like, const std::string& preset) {
  BertConfig config = preset_config(preset);
  const BertConfig& old = like.loaded.config;
  config.vocab_size = old.vocab_size;
  config.pad_token_id = old.pad_token_id;
  config.labels = old.labels;
  config.problem_type = old.problem_type;
  config.validate("preset " + preset);
  like.loaded.model = BertForSequenceClassification(config);
  like.loaded.model->initialize_weights();
  like.loaded.config = config;
  like.loaded.initialized.clear();
  like.loaded.ignored.clear();
  return like;
}

nlohmann::json read_lineage(const fs::path& dir) {
  // Lineage records parameters, metrics and a few reports: kilobytes.
  constexpr uintmax_t kMaxLineageBytes = 16u << 20;
  const fs::path file = dir / "recmodel.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) return nlohmann::json::object();
  const uintmax_t bytes = fs::file_size(file, ec);
  if (!ec && bytes > kMaxLineageBytes)
    fail<DataError>("{}: {} bytes, more than a model's lineage holds ({} MiB at most); fix or remove it", file.string(),
                    bytes, kMaxLineageBytes >> 20);
  nlohmann::json lineage = read_json_file(file);
  if (!lineage.is_object())
    fail<DataError>("{}: not a JSON object; recmodel.json holds the model's lineage (fix or remove it)", file.string());
  return lineage;
}

}  // namespace recmodel::model
