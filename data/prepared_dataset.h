// A prepared dataset directory as `recmodel preprocess` writes it: manifest.json, one split
// file per split and the tokenizer it was encoded with. Opened by train and evaluate.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset_file.h"

namespace recmodel::data {

struct PreparedDataset {
  fs::path dir;
  nlohmann::json manifest;
  std::string manifest_sha256;  // identifies the dataset in lineage records
  Task task = Task::classification;
  std::vector<std::string> labels;  // classification: class names in id order
  std::string vocab_sha256;         // of the vocab.txt the ids come from
  size_t max_length = 0;

  // Reads and checks `dir`/manifest.json (format name and version). Throws NotFoundError when
  // the directory or manifest is missing and DataError when it is not a prepared dataset.
  static PreparedDataset open(const fs::path& dir);

  // Returns the split file of `name` (train, dev, test).
  fs::path split_path(const std::string& name) const { return dir / (name + ".bin"); }
  // Returns whether the split exists and has at least one example.
  bool has_split(const std::string& name) const;
  // Maps split `name`; throws NotFoundError naming the file when it is missing.
  DatasetSplit open_split(const std::string& name) const;
  // Returns the directory holding the tokenizer the dataset was encoded with.
  fs::path tokenizer_dir() const { return dir / "tokenizer"; }
};

}  // namespace recmodel::data
