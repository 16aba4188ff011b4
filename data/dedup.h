// Exact de-duplication in bounded memory, with the policies of `preprocess --duplicates`,
// `--conflicts` and `--drop-test-overlap`. As rows stream past, each usable row's key (a 64-bit
// hash of its cleaned texts), row number, origin, label and role go to one of 64 bucket files
// chosen by the key. resolve() then loads one bucket at a time, so memory is 1/64 of a 32-byte
// entry per row at most, and decides every row that shares its key with another: an exact
// duplicate when the labels agree, a conflict when they differ. The verdicts come back in row
// order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

namespace recmodel::data {

namespace fs = std::filesystem;

// Returns (input file index, line) packed in 64 bits: 24 bits of file, 40 of line.
inline uint64_t pack_origin(uint32_t file, uint64_t line) { return (static_cast<uint64_t>(file) << 40) | line; }
inline uint32_t origin_file(uint64_t origin) { return static_cast<uint32_t>(origin >> 40); }
inline uint64_t origin_line(uint64_t origin) { return origin & ((uint64_t{1} << 40) - 1); }

// What happens to a row that repeats the text and the label of an earlier one.
enum class DuplicatePolicy { drop, keep };
// What happens to rows with the same text and different labels.
enum class ConflictPolicy { reject, keep, majority };

// Returns "drop" or "keep".
const char* duplicate_policy_name(DuplicatePolicy policy);
// Returns "reject", "keep" or "majority".
const char* conflict_policy_name(ConflictPolicy policy);
// Parses "drop" or "keep"; throws UsageError naming --duplicates and the accepted values.
DuplicatePolicy parse_duplicate_policy(std::string_view text);
// Parses "reject", "keep" or "majority"; throws UsageError naming --conflicts and the values.
ConflictPolicy parse_conflict_policy(std::string_view text);

struct DedupPolicy {
  // drop: the first row of a text and label is kept, later ones are dropped (catalog titles);
  // keep: every row is kept (ratings, query logs: repeats carry the traffic's frequency).
  DuplicatePolicy duplicates = DuplicatePolicy::drop;
  // reject: the first row of a text is kept, later rows with another label are rejected;
  // keep: every label is kept; majority: only the most frequent label is kept (a tie rejects
  // every row of the text). Rows with the label that is kept then follow `duplicates`.
  ConflictPolicy conflicts = ConflictPolicy::reject;
  // Drop held-out (given test) rows whose text is kept in train. Held-out rows are otherwise
  // kept whole: they are never duplicates or conflicts, of train or of each other.
  bool drop_test_overlap = false;
};

class ExternalDedup {
 public:
  // How a row takes part.
  enum Role : uint32_t {
    kPooled = 0,   // subject to the policies (the --input rows, given train and dev rows)
    kTrain = 1,    // pooled, and in a given train split: what held-out rows are compared with
    kHeldOut = 2,  // a given test split: kept whole, only checked for overlap with train
  };

  enum class Kind : uint32_t {
    duplicate,     // dropped: same text and label as first_origin (--duplicates drop)
    conflict,      // rejected: same text as first_origin, another label (--conflicts reject)
    outvoted,      // rejected: first_label is the most frequent label of the text (majority)
    tie,           // rejected: the text has no single most frequent label (majority)
    test_overlap,  // dropped: a held-out row whose text is kept in train at first_origin
    repeat,        // kept: repeats the text of first_row, which is kept too
    leader,        // kept: the first kept row of a text that has kept repeats
  };

  // What happens to one row that shares its key with another.
  struct Verdict {
    uint64_t row = 0;
    uint64_t origin = 0;        // pack_origin of this row
    uint64_t first_row = 0;     // the row this one is judged against (the text's kept row)
    uint64_t first_origin = 0;  // its pack_origin
    uint32_t label = 0;         // this row's label (class id or float bits)
    uint32_t first_label = 0;   // the label of first_row (majority: the winning or a tied label)
    Kind kind = Kind::duplicate;
    uint32_t votes = 0;  // outvoted, tie: rows of the text with first_label
    uint32_t rows = 0;   // outvoted, tie: pooled rows of the text
    uint32_t reserved = 0;

    // Returns whether the row is left out of the dataset.
    bool dropped() const { return kind != Kind::repeat && kind != Kind::leader; }
    // Returns whether the row counts as rejected (against --max-rejected).
    bool rejected() const { return kind == Kind::conflict || kind == Kind::outvoted || kind == Kind::tie; }
  };

  // What resolve() decided, row by row (texts for conflict_texts and conflicts_resolved).
  struct Counts {
    uint64_t duplicates_dropped = 0;  // rows repeating an earlier row's text and label, dropped
    uint64_t duplicates_kept = 0;     // such rows kept (--duplicates keep)
    uint64_t conflict_texts = 0;      // texts seen with more than one label
    uint64_t conflicts_rejected = 0;  // rows rejected for a conflicting label
    uint64_t conflicts_kept = 0;      // rows kept with a label other than the text's first row's
    uint64_t conflicts_resolved = 0;  // texts whose conflict the majority decided
    uint64_t held_out = 0;            // held-out rows
    uint64_t test_overlap = 0;        // held-out rows whose text is kept in train
    uint64_t test_overlap_dropped = 0;
  };

  // Creates the bucket files in `dir` (which must exist); they are removed on destruction.
  explicit ExternalDedup(fs::path dir, DedupPolicy policy = {});
  ~ExternalDedup();
  ExternalDedup(const ExternalDedup&) = delete;
  ExternalDedup& operator=(const ExternalDedup&) = delete;

  // Records a usable row; rows must be added in increasing `row` order.
  void add(uint64_t key, uint64_t row, uint64_t origin, uint32_t label, Role role = kPooled);
  // Decides the duplicates and conflicts, bucket by bucket. Call once, after the last add().
  void resolve();
  // Returns the verdict of `row` if it has one; ask for rows in increasing order.
  std::optional<Verdict> verdict(uint64_t row);

  const Counts& counts() const { return counts_; }
  // Returns the rows dropped as exact duplicates.
  uint64_t duplicates() const { return counts_.duplicates_dropped; }
  // Returns the rows rejected for conflicting labels.
  uint64_t conflicts() const { return counts_.conflicts_rejected; }
  // Returns up to kFirstConflicts rejected rows with the lowest row numbers, in row order (for
  // error messages).
  const std::vector<Verdict>& first_conflicts() const { return first_conflicts_; }

  static constexpr int kBuckets = 64;
  static constexpr size_t kFirstConflicts = 5;

 private:
  struct Entry {
    uint64_t key;
    uint64_t row;
    uint64_t origin;
    uint32_t label;
    uint32_t role;
  };
  struct Cursor {  // one bucket's verdict file while merging
    std::FILE* file = nullptr;
    Verdict next{};
  };
  bool advance(int bucket);
  // Appends the verdicts of the rows of one key, in row order, to `out`.
  void judge(const Entry* begin, const Entry* end, std::vector<Verdict>& out);

  fs::path dir_;
  DedupPolicy policy_;
  std::vector<std::FILE*> buckets_;
  std::vector<fs::path> bucket_paths_, verdict_paths_;
  std::vector<Cursor> cursors_;
  // Min-heap of (row, bucket) over the cursors.
  std::priority_queue<std::pair<uint64_t, int>, std::vector<std::pair<uint64_t, int>>, std::greater<>> heap_;
  Counts counts_;
  std::vector<Verdict> first_conflicts_;
  bool resolved_ = false;
  // Scratch space of judge().
  std::vector<const Entry*> pooled_;
  std::vector<std::pair<uint32_t, uint32_t>> by_label_;
  std::vector<uint32_t> first_same_label_, label_rows_;
};

}  // namespace recmodel::data
