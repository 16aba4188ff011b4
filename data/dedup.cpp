#include "data/dedup.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/error.h"

namespace recmodel::data {

namespace {

std::FILE* open_file(const fs::path& path, const char* mode) {
  std::FILE* file = std::fopen(path.c_str(), mode);
  if (!file) fail<DataError>("{}: cannot open: {}", path.string(), std::strerror(errno));
  return file;
}

void write_all(std::FILE* file, const fs::path& path, const void* data, size_t bytes) {
  if (std::fwrite(data, 1, bytes, file) != bytes)
    fail<DataError>("{}: write failed: {}; is the disk full?", path.string(), std::strerror(errno));
}

}  // namespace

ExternalDedup::ExternalDedup(fs::path dir) : dir_(std::move(dir)) {
  for (int b = 0; b < kBuckets; ++b) {
    bucket_paths_.push_back(dir_ / fmt::format("dedup-{:02}.keys", b));
    verdict_paths_.push_back(dir_ / fmt::format("dedup-{:02}.verdicts", b));
    buckets_.push_back(open_file(bucket_paths_.back(), "w+b"));
  }
}

ExternalDedup::~ExternalDedup() {
  for (std::FILE* file : buckets_)
    if (file) std::fclose(file);
  for (Cursor& cursor : cursors_)
    if (cursor.file) std::fclose(cursor.file);
  std::error_code ec;
  for (const auto& path : bucket_paths_) fs::remove(path, ec);
  for (const auto& path : verdict_paths_) fs::remove(path, ec);
}

void ExternalDedup::add(uint64_t key, uint64_t row, uint64_t origin, uint32_t label) {
  // The top bits choose the bucket; keys are well-mixed hashes, so buckets fill evenly.
  int bucket = static_cast<int>(key >> 58);
  Entry entry{key, row, origin, label, 0};
  write_all(buckets_[bucket], bucket_paths_[bucket], &entry, sizeof(entry));
}

void ExternalDedup::resolve() {
  std::vector<Entry> entries;
  std::vector<Verdict> verdicts;
  cursors_.resize(kBuckets);
  for (int b = 0; b < kBuckets; ++b) {
    std::FILE* file = buckets_[b];
    if (std::fflush(file) != 0)
      fail<DataError>("{}: write failed: {}; is the disk full?", bucket_paths_[b].string(), std::strerror(errno));
    long bytes = std::ftell(file);
    std::rewind(file);
    entries.resize(static_cast<size_t>(bytes) / sizeof(Entry));
    if (!entries.empty() && std::fread(entries.data(), sizeof(Entry), entries.size(), file) != entries.size())
      fail<DataError>("{}: cannot read back: {}", bucket_paths_[b].string(), std::strerror(errno));
    std::fclose(file);
    buckets_[b] = nullptr;
    fs::remove(bucket_paths_[b]);

    // Entries arrive in row order, so a stable sort by key leaves each key's earliest row first.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
    verdicts.clear();
    for (size_t i = 0; i < entries.size();) {
      size_t j = i + 1;
      for (; j < entries.size() && entries[j].key == entries[i].key; ++j) {
        const Entry& first = entries[i];
        const Entry& later = entries[j];
        Verdict verdict{later.row, later.origin, first.origin, later.label, first.label, later.label != first.label, 0};
        verdicts.push_back(verdict);
      }
      i = j;
    }
    std::sort(verdicts.begin(), verdicts.end(), [](const Verdict& a, const Verdict& b) { return a.row < b.row; });
    std::FILE* out = open_file(verdict_paths_[b], "w+b");
    cursors_[b].file = out;
    for (const Verdict& verdict : verdicts) {
      write_all(out, verdict_paths_[b], &verdict, sizeof(verdict));
      if (verdict.conflict) {
        ++conflicts_;
        first_conflicts_.push_back(verdict);
      } else {
        ++duplicates_;
      }
    }
    // Only the lowest few conflict rows are kept for the error message.
    std::sort(first_conflicts_.begin(), first_conflicts_.end(),
              [](const Verdict& a, const Verdict& b) { return a.row < b.row; });
    if (first_conflicts_.size() > kFirstConflicts) first_conflicts_.resize(kFirstConflicts);
    if (std::fflush(out) != 0)
      fail<DataError>("{}: write failed: {}; is the disk full?", verdict_paths_[b].string(), std::strerror(errno));
    std::rewind(out);
    if (advance(b)) heap_.emplace(cursors_[b].next.row, b);
  }
  entries = {};
  resolved_ = true;
}

bool ExternalDedup::advance(int bucket) {
  Cursor& cursor = cursors_[bucket];
  if (std::fread(&cursor.next, sizeof(Verdict), 1, cursor.file) == 1) return true;
  std::fclose(cursor.file);
  cursor.file = nullptr;
  return false;
}

std::optional<ExternalDedup::Verdict> ExternalDedup::verdict(uint64_t row) {
  if (!resolved_) throw Error(ExitCode::internal, "ExternalDedup::verdict before resolve");
  if (heap_.empty() || heap_.top().first != row) return std::nullopt;
  int bucket = heap_.top().second;
  heap_.pop();
  Verdict found = cursors_[bucket].next;
  if (advance(bucket)) heap_.emplace(cursors_[bucket].next.row, bucket);
  return found;
}

}  // namespace recmodel::data
