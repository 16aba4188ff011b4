// Hugging Face model folders in and out: config.json + model.safetensors (or
// pytorch_model.bin) + tokenizer files, plus recmodel.json with lineage.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/bert.h"
#include "model/safetensors.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::model {

namespace fs = std::filesystem;

struct LoadedModel {
  BertForSequenceClassification model{nullptr};
  BertConfig config;
  fs::path weights_file;
  std::vector<std::string> initialized;  // parameters not in the checkpoint (a new head)
  std::vector<std::string> ignored;      // checkpoint tensors the classifier does not use
};

// Loads a model directory. `labels`, when given, replaces the checkpoint's labels (a new
// head is then initialized if the count differs). Warnings (e.g. initialized head) go to `warn`.
LoadedModel load_model(const fs::path& dir, const std::function<void(const std::string&)>& warn,
                       const std::vector<std::string>* labels = nullptr, ProblemType problem = ProblemType::single_label_classification);

// Reads the tensors of model.safetensors or pytorch_model.bin in `dir` with Hugging Face names.
NamedTensors read_checkpoint_tensors(const fs::path& dir, fs::path* used_file = nullptr);

// Writes config.json, model.safetensors, the tokenizer files and recmodel.json into `dir`
// (which must exist; callers stage it and rename).
void save_model(const fs::path& dir, BertForSequenceClassification& model, const tokenizer::BertTokenizer& tokenizer,
                const nlohmann::json& lineage);

// A masked-LM model folder (recmodel pretrain's, or any Hugging Face BERT) opened to pretrain
// further: what the checkpoint lacks of the MLM head is drawn fresh (`added`), what the MLM model
// does not use (a pooler, a classifier, BertForPreTraining's next-sentence head) is `dropped`.
struct LoadedMaskedLM {
  BertForMaskedLM model{nullptr};
  BertConfig config;
  fs::path weights_file;
  std::vector<std::string> added, dropped;
};

LoadedMaskedLM load_masked_lm(const fs::path& dir);

// Writes the Hugging Face BertForMaskedLM layout (config.json with architectures
// ["BertForMaskedLM"], model.safetensors with cls.predictions.* and the tied decoder stored once),
// the tokenizer files and recmodel.json into `dir` (which must exist).
void save_masked_lm(const fs::path& dir, BertForMaskedLM& model, const tokenizer::BertTokenizer& tokenizer,
                    const nlohmann::json& lineage);

}  // namespace recmodel::model
