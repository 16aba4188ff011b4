// The preprocess pipeline: read → clean → label → tokenize → de-duplicate → split → write a
// prepared dataset directory (manifest.json, train/dev/test.bin, rejected.jsonl, tokenizer/).
//
// Two passes keep memory flat however large the input: the first streams rows in batches
// through all threads (clean, tokenize) into a spool file and hands their keys to the bucketed
// ExternalDedup; the second reads the spool back in order, drops duplicates and conflicts as
// config.policy says, assigns splits and writes the split files. Only the label list, the split
// counters, one dedup bucket at a time and the split of each text kept more than once are held
// in memory. Rows with the same text land in the same split, so keeping repeats never puts a
// text in both train and test; a given test split is kept whole and its overlap with train
// reported.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset_file.h"
#include "data/dedup.h"
#include "data/readers.h"
#include "data/split.h"
#include "tokenizer/bert_tokenizer.h"

namespace recmodel::data {

constexpr const char* kDatasetFormatName = "recmodel-dataset";

// One input file and where its rows go.
struct InputFile {
  fs::path path;
  Format format = Format::csv;
  int split = -1;  // -1: split by the ratios; kTrain/kDev/kTest: a given split
};

// How many unusable rows are tolerated: a count ("10") or a share of the rows read ("0.5%").
struct RejectLimit {
  double value = 0;
  bool percent = false;

  // Parses "N" or "P%"; throws UsageError.
  static RejectLimit parse(std::string_view text);
  // Returns whether `rejected` of `rows` rows is more than allowed.
  bool exceeded(uint64_t rejected, uint64_t rows) const;
  // Returns the limit as written ("0", "2.5%").
  std::string text() const;
};

struct PreprocessConfig {
  std::vector<InputFile> inputs;
  fs::path out;
  bool force = false;  // replace an existing output directory
  std::string text_column = "text";
  std::string pair_column;   // empty: single texts
  std::string label_column = "label";
  std::string group_column;  // empty: stratified split by label
  Task task = Task::classification;
  std::vector<std::string> labels;  // fixed label order (--labels); empty: learnt from the data
  size_t max_length = 128;
  SplitRatios ratios;
  uint64_t seed = 42;
  RejectLimit max_rejected;
  DedupPolicy policy;  // --duplicates, --conflicts, --drop-test-overlap
  int threads = 1;
  std::string tokenizer_source;  // how the tokenizer was chosen, for the manifest ("--vocab FILE")
};

// Called now and then with the bytes of input consumed and the total.
using ProgressFn = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

struct PreprocessResult {
  nlohmann::ordered_json manifest;
  std::vector<std::string> warnings;  // worth telling the user, not worth failing for
};

// Checks the configuration without reading data: columns, tasks, labels, lengths, and that
// every input exists and has a usable format. Throws UsageError or NotFoundError.
void validate_config(const PreprocessConfig& config);

// Prepares the dataset in config.out (built in a staging directory and renamed into place).
// Throws DataError when more rows are unusable than config.max_rejected allows, naming the
// first few; nothing is left behind then.
PreprocessResult preprocess(const PreprocessConfig& config, const tokenizer::BertTokenizer& tokenizer,
                            const ProgressFn& progress = {});

}  // namespace recmodel::data
