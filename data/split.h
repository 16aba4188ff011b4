// Deterministic train/dev/test assignment: stratified by label as rows stream past, or by
// group so that all rows of one group (a query, a product) land in the same split.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recmodel::data {

constexpr int kSplitCount = 3;
enum Split : int { kTrain = 0, kDev = 1, kTest = 2 };

// Returns "train", "dev" or "test".
const char* split_name(int split);

// The share of rows each split gets.
struct SplitRatios {
  std::array<double, kSplitCount> values{0.8, 0.1, 0.1};

  // Parses "train,dev,test" ("0.8,0.1,0.1") or "train,dev" ("0.9,0.1", no test split): non-negative
  // numbers summing to 1 with a non-zero train share. Throws UsageError saying what is wrong.
  static SplitRatios parse(std::string_view text);
  // Returns the ratios as written in manifests, e.g. "0.8,0.1,0.1".
  std::string text() const;
};

// Assigns rows to splits label by label as they stream past. Each label's k-th row takes slot
// k mod N of a cycle of N slots, where N is the smallest cycle whose slot counts match the
// ratios exactly (10 for 0.8,0.1,0.1; up to 1000, else rounded). Every cycle's slots are shuffled
// from the seed, the label and the cycle number, so each label is divided by the ratios exactly
// after every N of its rows, the result does not depend on how labels interleave, and another
// seed gives another assignment.
class StratifiedSplitter {
 public:
  StratifiedSplitter(const SplitRatios& ratios, uint64_t seed);
  // Returns the split of the next row of `stratum` (the label; "" when not stratified).
  int assign(std::string_view stratum);
  // Returns the cycle length N.
  size_t cycle_length() const { return base_slots_.size(); }

 private:
  struct Stratum {
    uint64_t key = 0;
    uint64_t count = 0;
    std::vector<uint8_t> slots;
  };
  uint64_t seed_;
  std::vector<uint8_t> base_slots_;
  std::unordered_map<std::string, Stratum> strata_;
};

// Returns the split of a group: a seeded hash of the group value placed on the cumulative
// ratios. Every row of the group gets the same split wherever it appears; the split sizes
// follow the ratios only approximately (by group count, not row count).
int assign_group(std::string_view group, const SplitRatios& ratios, uint64_t seed);

}  // namespace recmodel::data
