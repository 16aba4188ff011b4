// The binary split files of a prepared dataset (train.bin, dev.bin, test.bin): written
// incrementally by preprocess, memory-mapped by training and evaluation.
//
// Format version 1, all integers little-endian, every section 8-byte aligned:
//
//   offset  size  field
//        0     4  magic "RMDS"
//        4     4  format version (1)
//        8     8  header size in bytes (128)
//       16     8  example count N
//       24     8  token count T (all examples, special tokens included)
//       32     4  task: 0 classification (int32 class ids), 1 regression (float32 targets)
//       36     4  bytes per token id: 2 (uint16, vocabularies up to 65,536) or 4 (int32)
//       40     8  ids section offset       T token ids, example after example
//       48     8  offsets section offset   uint64[N+1]: example i is ids[offsets[i], offsets[i+1])
//       56     8  segments section offset uint32[N]: tokens of the first segment ([CLS] a [SEP]),
//                                          type id 0; the rest (b [SEP]) has type id 1
//       64     8  labels section offset    int32[N] class ids or float32[N] targets
//       72     8  origins section offset   uint64[N]: input file index << 40 | line (1-based),
//                                          the index into manifest.json's "inputs"
//       80     8  file size in bytes (detects truncated copies)
//       88    40  reserved, zero
//
// Attention masks are all ones (no padding is stored); batches pad at load time.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace recmodel::data {

namespace fs = std::filesystem;

enum class Task : uint32_t { classification = 0, regression = 1 };

// Returns "classification" or "regression".
const char* task_name(Task task);
// Parses "classification" or "regression"; throws UsageError otherwise.
Task parse_task(std::string_view name);

constexpr uint32_t kDatasetFormatVersion = 1;
constexpr char kDatasetMagic[4] = {'R', 'M', 'D', 'S'};
constexpr size_t kDatasetHeaderBytes = 128;

// Writes one split file. Token ids go straight into the file; the small per-example records
// go to a scratch file beside it and become the index sections in finish(), so memory does not
// grow with the number of examples.
class SplitWriter {
 public:
  // Creates `path` (and `path`.scratch). `id_bytes` is 2 or 4.
  SplitWriter(fs::path path, Task task, uint32_t id_bytes);
  ~SplitWriter();
  SplitWriter(const SplitWriter&) = delete;
  SplitWriter& operator=(const SplitWriter&) = delete;

  // Appends one example: its ids, the length of its first segment, its label (class id, or
  // the bit pattern of a float target) and its origin (pack_origin).
  void add(const std::vector<int32_t>& ids, uint32_t segment_a, uint32_t label, uint64_t origin);
  // Writes the index sections and the header and closes the file. For classification,
  // `remap[id]` replaces each class id (empty: ids kept as written).
  void finish(const std::vector<int32_t>& remap);

  uint64_t examples() const { return examples_; }
  uint64_t tokens() const { return tokens_; }
  const fs::path& path() const { return path_; }

 private:
  void write(std::FILE* file, const fs::path& name, const void* data, size_t bytes);
  void pad(std::FILE* file, const fs::path& name);

  fs::path path_;
  fs::path scratch_path_;
  Task task_;
  uint32_t id_bytes_;
  std::FILE* file_ = nullptr;
  std::FILE* scratch_ = nullptr;
  uint64_t examples_ = 0;
  uint64_t tokens_ = 0;
  uint64_t position_ = 0;  // bytes written to file_
  std::vector<uint16_t> narrow_;
};

// One example as the model sees it.
struct Example {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  int32_t label = -1;   // classification
  float target = 0.0f;  // regression
};

// A memory-mapped split file.
class DatasetSplit {
 public:
  // Maps `path` and checks it: magic, format version (a newer one is refused with a sentence
  // saying so), sizes and index. Throws NotFoundError or DataError naming the file.
  static DatasetSplit open(const fs::path& path);

  DatasetSplit(DatasetSplit&& other) noexcept;
  DatasetSplit& operator=(DatasetSplit&& other) noexcept;
  ~DatasetSplit();

  size_t size() const { return static_cast<size_t>(examples_); }
  uint64_t num_tokens() const { return tokens_; }
  Task task() const { return task_; }
  uint32_t id_bytes() const { return id_bytes_; }
  const fs::path& path() const { return path_; }

  // Returns the number of tokens of example i.
  size_t length(size_t i) const { return static_cast<size_t>(offsets_[i + 1] - offsets_[i]); }
  // Returns the token id at position j of example i.
  int32_t token(size_t i, size_t j) const;
  // Returns the length of example i's first segment (type id 0).
  uint32_t segment_a(size_t i) const { return segments_[i]; }
  // Returns the class id of example i (classification).
  int32_t label(size_t i) const;
  // Returns the target of example i (regression).
  float target(size_t i) const;
  // Returns the input file index (into the manifest's "inputs") example i came from.
  uint32_t origin_file(size_t i) const;
  // Returns the 1-based line example i came from.
  uint64_t origin_line(size_t i) const;

  // Fills `out` with example i, reusing its buffers.
  void example(size_t i, Example& out) const;
  // Returns example i.
  Example example(size_t i) const;

 private:
  DatasetSplit() = default;
  void release();

  fs::path path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  uint64_t examples_ = 0;
  uint64_t tokens_ = 0;
  Task task_ = Task::classification;
  uint32_t id_bytes_ = 4;
  const unsigned char* ids_ = nullptr;
  const uint64_t* offsets_ = nullptr;
  const uint32_t* segments_ = nullptr;
  const unsigned char* labels_ = nullptr;
  const uint64_t* origins_ = nullptr;
};

}  // namespace recmodel::data
