#include "data/compatibility.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "common/json.h"

namespace recmodel::data {

namespace {

const char* task_word(bool regression) { return regression ? "regression" : "classification"; }

std::string settings_text(const TokenizerSettings& s) {
  return fmt::format("lowercase {}, strip accents {}, split CJK characters {}", s.lowercase, s.strip_accents,
                     s.chinese_chars);
}

}  // namespace

std::string label_list(const std::vector<std::string>& labels, size_t limit) {
  std::string out;
  for (size_t i = 0; i < labels.size() && i < limit; ++i) {
    if (i) out += ", ";
    out += json_excerpt(nlohmann::json(labels[i]), 24);
  }
  if (labels.size() > limit) out += fmt::format(", … ({} in all)", labels.size());
  return out;
}

int32_t Fit::model_label(int32_t dataset_label, const fs::path& split_file, size_t example) const {
  if (dataset_label < 0 || static_cast<size_t>(dataset_label) >= label_map.size())
    fail<DataError>("{}: example {} has class id {}, outside the manifest's {} labels", split_file.string(), example,
                    dataset_label, label_map.size());
  return label_map[static_cast<size_t>(dataset_label)];
}

bool Fit::identity() const {
  for (size_t i = 0; i < label_map.size(); ++i)
    if (label_map[i] != static_cast<int32_t>(i)) return false;
  return true;
}

Fit check_compatible(const PreparedDataset& dataset, const ModelSummary& model, const std::string& head_remedy) {
  const std::string data = dataset.dir.string();
  const std::string remedy = head_remedy.empty() ? std::string() : "; " + head_remedy;
  if (dataset.vocab_sha256 != model.vocab_sha256) {
    std::string sizes = dataset.vocab_size > 0 ? fmt::format(", {} vs {} tokens", dataset.vocab_size, model.vocab_size)
                                               : std::string();
    fail<DataError>("{} was tokenized with another vocabulary than {} (vocabulary sha256 {}… vs {}…{}); prepare the "
                    "data again with 'recmodel preprocess --model {}'",
                    data, model.name, dataset.vocab_sha256.substr(0, 12), model.vocab_sha256.substr(0, 12), sizes,
                    model.name);
  }
  if (dataset.tokenizer_settings != model.tokenizer_settings)
    fail<DataError>("{} was tokenized with other settings ({}) than {} ({}); prepare the data again with 'recmodel "
                    "preprocess --model {}'",
                    data, settings_text(dataset.tokenizer_settings), model.name,
                    settings_text(model.tokenizer_settings), model.name);
  const bool regression = dataset.task == Task::regression;
  if (regression != model.regression)
    fail<DataError>("{} is a {} model but {} is a {} dataset{}", model.name, task_word(model.regression), data,
                    task_word(regression), remedy);
  Fit fit;
  if (!regression) {
    for (const std::string& label : dataset.labels) {
      auto found = std::find(model.labels.begin(), model.labels.end(), label);
      if (found == model.labels.end())
        fail<DataError>("{}: label {} of the dataset is not a label of {} (its labels: {}){}", data,
                        json_excerpt(nlohmann::json(label), 40), model.name, label_list(model.labels), remedy);
      fit.label_map.push_back(static_cast<int32_t>(found - model.labels.begin()));
    }
  }
  if (model.max_positions > 0 && dataset.max_length > static_cast<uint64_t>(model.max_positions))
    fail<DataError>("{}: examples of up to {} tokens, but the model {} has {} positions; preprocess with "
                    "--max-length {}",
                    data, dataset.max_length, model.name, model.max_positions, model.max_positions);
  return fit;
}

bool same_head(const PreparedDataset& dataset, const ModelSummary& model) {
  if ((dataset.task == Task::regression) != model.regression) return false;
  if (model.regression) return true;
  return std::set<std::string>(dataset.labels.begin(), dataset.labels.end()) ==
             std::set<std::string>(model.labels.begin(), model.labels.end()) &&
         dataset.labels.size() == model.labels.size();
}

}  // namespace recmodel::data
