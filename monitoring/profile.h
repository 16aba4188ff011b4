// The reference profile of a model: what the data it was chosen on looked like to it, recorded
// in recmodel.json's "profile" by `train` (and computed by `recmodel drift --reference DATA` for
// older models), so `recmodel drift` can compare live traffic with it without the dataset.
//
//   "profile": {"format_version": 1, "split": "dev", "examples": N, "task": "classification",
//     "labels": {"train": {label: n}, "dev": {label: n}, "predicted": {label: n}},
//     "score_histogram": {"edges": [0, 0.1, ..., 1], "counts": [...]},
//     "token_histogram": {"edges": [...], "counts": [...]},
//     "unk_rate": r, "truncation_rate": t,
//     "samples": {"score": [...], "tokens": [...], "unk_rate": [...]}}
//
// "samples" holds the per-input values of up to kMaxProfileSamples inputs (evenly spaced over the
// split when it has more): the Kolmogorov-Smirnov test and the binned statistics need the values,
// not a histogram. "tokens" is what the model saw ([CLS]/[SEP] included, after truncation), the
// score is the top label's probability (regression: the predicted value).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace recmodel::monitoring {

inline constexpr int kProfileFormatVersion = 1;
inline constexpr size_t kMaxProfileSamples = 10000;

// What the model made of one input.
struct ScoredInput {
  std::string label;     // classification: the predicted label
  double score = 0;      // the top label's probability; regression: the value
  size_t tokens = 0;     // tokens the model saw
  size_t unk_tokens = 0;  // [UNK] among them
  bool truncated = false;
};

struct ReferenceProfile {
  std::string split = "dev";
  bool regression = false;
  uint64_t examples = 0;
  std::vector<std::string> labels;                    // the model's labels, in its order
  std::map<std::string, uint64_t> train_label_counts;  // true labels of the train split
  std::map<std::string, uint64_t> label_counts;        // true labels of the profiled split
  std::map<std::string, uint64_t> predicted_counts;    // predicted labels on the profiled split
  double unk_rate = 0;         // [UNK] tokens / tokens, over the split
  double truncation_rate = 0;  // share of inputs that were truncated
  std::vector<double> scores, tokens, unk_rates;  // samples, one per sampled input

  nlohmann::json to_json() const;
  // Reads a "profile" object; throws DataError naming `source` when it is malformed or written
  // by a newer recmodel.
  static ReferenceProfile from_json(const nlohmann::json& value, const std::string& source);
};

// Builds a profile from the inputs of a split, in order. Keeps every input's value until
// finish(), which takes the evenly spaced sample.
class ProfileBuilder {
 public:
  ProfileBuilder(std::vector<std::string> labels, bool regression, std::string split);
  void add_true_label(const std::string& label) { ++profile_.label_counts[label]; }
  void add_train_label(const std::string& label, uint64_t count = 1) { profile_.train_label_counts[label] += count; }
  void add(const ScoredInput& input);
  // Overrides the truncation rate measured from add()'s inputs (a prepared split stores only the
  // truncated ids: its manifest knows the rate).
  void set_truncation_rate(double rate) { truncation_rate_ = rate; }
  ReferenceProfile finish();

 private:
  ReferenceProfile profile_;
  uint64_t tokens_ = 0, unk_tokens_ = 0, truncated_ = 0;
  double truncation_rate_ = -1;
};

// Returns the indices of `count` values evenly spaced over `total` (all of them when total <= count).
std::vector<size_t> evenly_spaced(size_t total, size_t count);

// Reads the profile of the model directory `dir` (recmodel.json's "profile"); false when it has none.
bool read_model_profile(const std::string& dir, ReferenceProfile& profile);

}  // namespace recmodel::monitoring
