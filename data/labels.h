// Labels and targets: classification labels mapped to ids in a stable order (or the order
// --labels fixes), regression targets parsed strictly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recmodel::data {

enum class LabelOrder { given, numeric, lexicographic };

// Returns "given", "numeric" or "lexicographic".
const char* label_order_name(LabelOrder order);

// Parses a --labels list "neg,neu,pos": names trimmed, none empty, no duplicates (UsageError).
std::vector<std::string> parse_label_list(std::string_view text);

// Sorts labels into id order and says which order was used: numeric when every label is an
// integer (so star ratings "1".."10" sort naturally), else by their UTF-8 bytes.
LabelOrder sort_labels(std::vector<std::string>& labels);

// Parses a regression target: a finite decimal number such as "4", "-0.5" or "3.2e1" that fits a
// float. Returns nullopt, with `why` saying what is wrong, for "", "abc", "nan", "inf", "0x10".
std::optional<float> parse_target(std::string_view text, std::string& why);

// Label ids of a classification dataset. With a fixed list (--labels) ids are list positions and
// unknown labels are refused. Without, labels get provisional ids in order of appearance while
// the data streams past; finalize() then gives the sorted order and the provisional-to-final map.
class LabelMap {
 public:
  // An open map that learns labels from the data.
  LabelMap() = default;
  // A fixed map: ids follow `labels`.
  explicit LabelMap(std::vector<std::string> labels);

  bool fixed() const { return fixed_; }
  size_t size() const { return labels_.size(); }
  // Returns the id of `label`, or -1 when it is not known (yet).
  int32_t find(std::string_view label) const;
  // Returns the id of `label`, adding it to an open map when new (a fixed map returns -1).
  int32_t add(std::string_view label);
  // Returns the label with (provisional) id `id`.
  const std::string& label(int32_t id) const { return labels_.at(static_cast<size_t>(id)); }
  // Returns the labels in final id order; fills `remap[provisional id] = final id` and `order`.
  // With `counts` (rows kept per provisional id), an open map drops labels no kept row has
  // (seen only in rejected rows); their remap entry is -1.
  std::vector<std::string> finalize(std::vector<int32_t>& remap, LabelOrder& order,
                                    const std::vector<uint64_t>& counts = {}) const;

 private:
  bool fixed_ = false;
  std::vector<std::string> labels_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace recmodel::data
