// Whether a prepared dataset fits a model: the one check train, evaluate and quantize make, so
// each mismatch (vocabulary, tokenizer settings, task, labels, length) has one message and one
// exit code everywhere. Torch-free: the model is described by what the check needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/prepared_dataset.h"

namespace recmodel::data {

// What a dataset must agree with in a model (model::describe_model fills it from a model folder).
struct ModelSummary {
  std::string name;                 // the model as the user named it (--model), for messages
  bool regression = false;
  std::vector<std::string> labels;  // classification: class names in the head's order
  std::string vocab_sha256;         // Vocab::sha256 of the model's tokenizer
  uint64_t vocab_size = 0;
  TokenizerSettings tokenizer_settings;
  int64_t max_positions = 0;        // position embeddings; 0: not checked
};

// How the dataset maps onto the model.
struct Fit {
  std::vector<int32_t> label_map;  // classification: dataset class id -> model class id (by name)

  // Returns the model class of dataset class `dataset_label` of example `example` in `split_file`;
  // throws DataError when the id is outside the manifest's labels.
  int32_t model_label(int32_t dataset_label, const fs::path& split_file, size_t example) const;
  // Returns whether every dataset class id is the model's own (no remapping needed).
  bool identity() const;
};

// Checks that the model described by `model` can score or train on `dataset`, in this order: the
// vocabulary (by its canonical sha256), the tokenizer settings, the task, every dataset label
// being a label of the model (matched by name, in any order), the examples' length against the
// model's positions. Throws DataError (exit 3) naming the dataset and the model. `head_remedy`
// ("pass --reset-head ...", from train) is appended to the task and label refusals, which a new
// head would cure; the message before it is the same in every command.
Fit check_compatible(const PreparedDataset& dataset, const ModelSummary& model, const std::string& head_remedy = "");

// Returns whether the model's head answers exactly the dataset's classes: the same task and, for
// classification, the same label names (in any order). Training keeps such a head.
bool same_head(const PreparedDataset& dataset, const ModelSummary& model);

// Returns up to `limit` labels for a message, each escaped and cut short (they come from files):
// "\"a\", \"b\", … (50 in all)".
std::string label_list(const std::vector<std::string>& labels, size_t limit = 8);

}  // namespace recmodel::data
