// Exact de-duplication in bounded memory. As rows stream past, each usable row's key (a 64-bit
// hash of its cleaned texts), row number, origin and label go to one of 64 bucket files chosen by
// the key. resolve() then loads one bucket at a time, so memory is 1/64 of a 32-byte entry per
// row at most, and finds every row whose key an earlier row already had: a duplicate when the
// labels agree, a conflict when they differ. The verdicts come back in row order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <queue>
#include <vector>

namespace recmodel::data {

namespace fs = std::filesystem;

// Returns (input file index, line) packed in 64 bits: 24 bits of file, 40 of line.
inline uint64_t pack_origin(uint32_t file, uint64_t line) { return (static_cast<uint64_t>(file) << 40) | line; }
inline uint32_t origin_file(uint64_t origin) { return static_cast<uint32_t>(origin >> 40); }
inline uint64_t origin_line(uint64_t origin) { return origin & ((uint64_t{1} << 40) - 1); }

class ExternalDedup {
 public:
  // A row that repeats the key of an earlier one.
  struct Verdict {
    uint64_t row = 0;
    uint64_t origin = 0;        // pack_origin of this row
    uint64_t first_origin = 0;  // pack_origin of the earliest row with the key
    uint32_t label = 0;         // this row's label (class id or float bits)
    uint32_t first_label = 0;   // the earliest row's label
    uint32_t conflict = 0;      // 1: the labels differ; 0: an exact duplicate
    uint32_t reserved = 0;
  };

  // Creates the bucket files in `dir` (which must exist); they are removed on destruction.
  explicit ExternalDedup(fs::path dir);
  ~ExternalDedup();
  ExternalDedup(const ExternalDedup&) = delete;
  ExternalDedup& operator=(const ExternalDedup&) = delete;

  // Records a usable row; rows must be added in increasing `row` order.
  void add(uint64_t key, uint64_t row, uint64_t origin, uint32_t label);
  // Finds the duplicates and conflicts, bucket by bucket. Call once, after the last add().
  void resolve();
  // Returns the verdict of `row` if it has one; ask for rows in increasing order.
  std::optional<Verdict> verdict(uint64_t row);

  uint64_t duplicates() const { return duplicates_; }
  uint64_t conflicts() const { return conflicts_; }
  // Returns up to `n` conflicts with the lowest row numbers, in row order (for error messages).
  const std::vector<Verdict>& first_conflicts() const { return first_conflicts_; }

  static constexpr int kBuckets = 64;
  static constexpr size_t kFirstConflicts = 5;

 private:
  struct Entry {
    uint64_t key;
    uint64_t row;
    uint64_t origin;
    uint32_t label;
    uint32_t reserved;
  };
  struct Cursor {  // one bucket's verdict file while merging
    std::FILE* file = nullptr;
    Verdict next{};
  };
  bool advance(int bucket);

  fs::path dir_;
  std::vector<std::FILE*> buckets_;
  std::vector<fs::path> bucket_paths_, verdict_paths_;
  std::vector<Cursor> cursors_;
  // Min-heap of (row, bucket) over the cursors.
  std::priority_queue<std::pair<uint64_t, int>, std::vector<std::pair<uint64_t, int>>, std::greater<>> heap_;
  uint64_t duplicates_ = 0;
  uint64_t conflicts_ = 0;
  std::vector<Verdict> first_conflicts_;
  bool resolved_ = false;
};

}  // namespace recmodel::data
