// A prepared dataset directory as `recmodel preprocess` writes it: manifest.json, one split
// file per split and the tokenizer it was encoded with. The one way train, evaluate, quantize
// and init open a dataset, so each refusal (missing, not a dataset, written by a newer
// recmodel, incomplete) reads the same in every command.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset_file.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::data {

// The tokenizer settings that change the ids (tokenizer_config.json's do_lower_case, ...).
struct TokenizerSettings {
  bool lowercase = true;
  bool strip_accents = true;
  bool chinese_chars = true;

  bool operator==(const TokenizerSettings& other) const {
    return lowercase == other.lowercase && strip_accents == other.strip_accents &&
           chinese_chars == other.chinese_chars;
  }
  bool operator!=(const TokenizerSettings& other) const { return !(*this == other); }
};

struct PreparedDataset {
  fs::path dir;
  nlohmann::json manifest;
  std::string manifest_sha256;  // identifies the dataset in lineage records
  Task task = Task::classification;
  std::vector<std::string> labels;  // classification: class names in id order
  std::string vocab_sha256;         // Vocab::sha256 of the vocabulary the ids come from
  uint64_t vocab_size = 0;          // 0 when the manifest does not say
  TokenizerSettings tokenizer_settings;
  size_t max_length = 0;
  std::map<std::string, uint64_t> split_examples;  // split name -> examples, as the manifest lists them

  // Reads and checks `dir`/manifest.json (bounded JSON; format name and version; task, labels,
  // vocabulary, max_length, splits). Throws NotFoundError when the directory or manifest is
  // missing and DataError when it is not a prepared dataset this recmodel reads.
  static PreparedDataset open(const fs::path& dir);

  // Returns the split file of `name` (train, dev, test).
  fs::path split_path(const std::string& name) const { return dir / (name + ".bin"); }
  // Returns whether the split exists and has at least one example.
  bool has_split(const std::string& name) const;
  // Maps split `name`; throws NotFoundError naming the file when it is missing.
  DatasetSplit open_split(const std::string& name) const;
  // Maps the split a command scores (--split of evaluate and quantize): train, dev or test, with
  // examples. Throws UsageError for another name and NotFoundError, listing the splits that
  // have examples, when this one is missing or empty.
  DatasetSplit require_split(const std::string& name) const;
  // Returns the directory holding the tokenizer the dataset was encoded with.
  fs::path tokenizer_dir() const { return dir / "tokenizer"; }
  // Loads the tokenizer in tokenizer_dir() and checks that it is the one the manifest names
  // (vocabulary sha256, settings); throws IntegrityError when it is not.
  tokenizer::BertTokenizer load_tokenizer() const;
};

}  // namespace recmodel::data
