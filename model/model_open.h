// The one way the model commands open a model folder: evaluate, predict, quantize and export
// call open_for_inference, train calls open_for_training, so a missing folder, an untrained
// head or a dataset that does not fit reads the same in each.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "data/compatibility.h"
#include "data/prepared_dataset.h"
#include "model/checkpoint.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::model {

namespace fs = std::filesystem;

using Warn = std::function<void(const std::string&)>;

// A model folder, opened: weights and config, its tokenizer (read once), the torch-free
// description data::check_compatible takes and, when opened with a dataset, how they fit.
struct OpenedModel {
  LoadedModel loaded;
  tokenizer::BertTokenizer tokenizer;
  data::ModelSummary summary;
  data::Fit fit;  // with a dataset: its class ids -> the model's
};

// Returns what a dataset must agree with in the model of `config` and `tokenizer`; `name` is
// the model as the user gave it, for messages.
data::ModelSummary describe_model(const std::string& name, const BertConfig& config,
                                  const tokenizer::BertTokenizer& tokenizer);

// Opens `dir` (a --model already resolved from the registry; `name` as the user gave it) to
// run it. Reads config.json and the tokenizer first and, when `dataset` is given, checks the
// fit (data::check_compatible) before any weight is read. Throws NotFoundError for a missing
// folder and DataError for a checkpoint without a trained classification head.
OpenedModel open_for_inference(const fs::path& dir, const std::string& name, const Warn& warn,
                               const data::PreparedDataset* dataset = nullptr);

// Opens `dir` to train it on `dataset`. Keeps the head when it answers the dataset's classes
// (the same names, in any order: fit.label_map maps them); otherwise initializes a new head for
// the dataset's labels when `reset_head` is set, and refuses (DataError) when it is not: a task or
// label mismatch reads as open_for_inference's, with "; pass --reset-head ..." added. Refuses
// int8 models. A new head is drawn from torch's current seed.
OpenedModel open_for_training(const fs::path& dir, const std::string& name, const data::PreparedDataset& dataset,
                              bool reset_head, const Warn& warn);

// Returns `like` with a new random model of architecture `preset` (tiny, mini, small, base) in
// place of its weights: the same vocabulary, labels and task, drawn from torch's current seed.
OpenedModel with_preset(OpenedModel like, const std::string& preset);

// Returns the lineage (recmodel.json) of model folder `dir`, an empty object when there is none.
// It comes from a model folder: bounded in size and nesting, so it can be copied into the lineage
// of a model made from this one. Throws DataError when it is not a JSON object.
nlohmann::json read_lineage(const fs::path& dir);

}  // namespace recmodel::model
