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

const char* duplicate_policy_name(DuplicatePolicy policy) { return policy == DuplicatePolicy::keep ? "keep" : "drop"; }

const char* conflict_policy_name(ConflictPolicy policy) {
  switch (policy) {
    case ConflictPolicy::reject: return "reject";
    case ConflictPolicy::keep: return "keep";
    case ConflictPolicy::majority: return "majority";
  }
  return "reject";
}

DuplicatePolicy parse_duplicate_policy(std::string_view text) {
  if (text == "drop") return DuplicatePolicy::drop;
  if (text == "keep") return DuplicatePolicy::keep;
  fail<UsageError>("--duplicates: \"{}\" is not one of drop, keep", text);
}

ConflictPolicy parse_conflict_policy(std::string_view text) {
  if (text == "reject") return ConflictPolicy::reject;
  if (text == "keep") return ConflictPolicy::keep;
  if (text == "majority") return ConflictPolicy::majority;
  fail<UsageError>("--conflicts: \"{}\" is not one of reject, keep, majority", text);
}

ExternalDedup::ExternalDedup(fs::path dir, DedupPolicy policy) : dir_(std::move(dir)), policy_(policy) {
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

void ExternalDedup::add(uint64_t key, uint64_t row, uint64_t origin, uint32_t label, Role role) {
  // The top bits choose the bucket; keys are well-mixed hashes, so buckets fill evenly.
  int bucket = static_cast<int>(key >> 58);
  Entry entry{key, row, origin, label, role};
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
      while (j < entries.size() && entries[j].key == entries[i].key) ++j;
      judge(entries.data() + i, entries.data() + j, verdicts);
      i = j;
    }
    std::sort(verdicts.begin(), verdicts.end(), [](const Verdict& a, const Verdict& b) { return a.row < b.row; });
    std::FILE* out = open_file(verdict_paths_[b], "w+b");
    cursors_[b].file = out;
    for (const Verdict& verdict : verdicts) {
      write_all(out, verdict_paths_[b], &verdict, sizeof(verdict));
      if (verdict.rejected()) first_conflicts_.push_back(verdict);
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

void ExternalDedup::judge(const Entry* begin, const Entry* end, std::vector<Verdict>& out) {
  if (end - begin == 1) {  // most keys: a text seen once
    if (begin->role == kHeldOut) ++counts_.held_out;
    return;
  }
  pooled_.clear();
  for (const Entry* e = begin; e != end; ++e) {
    if (e->role == kHeldOut) ++counts_.held_out;
    else pooled_.push_back(e);
  }
  auto verdict = [](const Entry& e, const Entry& against, Kind kind) {
    Verdict v;
    v.row = e.row;
    v.origin = e.origin;
    v.first_row = against.row;
    v.first_origin = against.origin;
    v.label = e.label;
    v.first_label = against.label;
    v.kind = kind;
    return v;
  };

  const Entry* kept_train = nullptr;  // the first kept row of a given train split
  const size_t n = pooled_.size();
  if (n > 0) {
    // Per row: the first row with the same label and how many rows have it. Entries come in
    // row order, so position 0 is the text's first row.
    by_label_.clear();
    for (size_t i = 0; i < n; ++i) by_label_.emplace_back(pooled_[i]->label, static_cast<uint32_t>(i));
    std::sort(by_label_.begin(), by_label_.end());
    first_same_label_.assign(n, 0);
    label_rows_.assign(n, 0);
    size_t distinct = 0, tied = 0;
    uint32_t most = 0, most_first = 0;  // the most frequent label's row count and first row
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j < n && by_label_[j].first == by_label_[i].first) ++j;
      const uint32_t count = static_cast<uint32_t>(j - i), first = by_label_[i].second;
      for (size_t k = i; k < j; ++k) {
        first_same_label_[by_label_[k].second] = first;
        label_rows_[by_label_[k].second] = count;
      }
      ++distinct;
      if (count > most) {
        most = count;
        most_first = first;
        tied = 1;
      } else if (count == most) {
        ++tied;
        most_first = std::min(most_first, first);
      }
      i = j;
    }
    const bool conflict = distinct > 1;
    const bool majority = conflict && policy_.conflicts == ConflictPolicy::majority;
    if (conflict) ++counts_.conflict_texts;

    if (majority && tied > 1) {
      // No label wins: every row of the text is rejected.
      for (size_t i = 0; i < n; ++i) {
        Verdict v = verdict(*pooled_[i], *pooled_[most_first], Kind::tie);
        v.votes = most;
        v.rows = static_cast<uint32_t>(n);
        out.push_back(v);
        ++counts_.conflicts_rejected;
      }
    } else {
      const size_t leader = majority ? most_first : 0;  // the row that is kept for sure
      const Entry& kept = *pooled_[leader];
      if (majority) ++counts_.conflicts_resolved;
      if (kept.role == kTrain) kept_train = &kept;
      bool repeats = false;
      // Rows before the leader (majority only) have another label, so every kept row comes
      // after it and kept_train ends as the first kept train row.
      for (size_t i = 0; i < n; ++i) {
        if (i == leader) continue;
        const Entry& e = *pooled_[i];
        if (e.label != kept.label && policy_.conflicts != ConflictPolicy::keep) {
          Verdict v = verdict(e, kept, majority ? Kind::outvoted : Kind::conflict);
          v.votes = most;
          v.rows = static_cast<uint32_t>(n);
          out.push_back(v);
          ++counts_.conflicts_rejected;
          continue;
        }
        const size_t same = first_same_label_[i];
        if (same != i && policy_.duplicates == DuplicatePolicy::drop) {
          out.push_back(verdict(e, *pooled_[same], Kind::duplicate));
          ++counts_.duplicates_dropped;
          continue;
        }
        if (same != i) ++counts_.duplicates_kept;
        else ++counts_.conflicts_kept;  // the first row of another label, kept by --conflicts keep
        out.push_back(verdict(e, kept, Kind::repeat));
        repeats = true;
        if (!kept_train && e.role == kTrain) kept_train = &e;
      }
      if (repeats) out.push_back(verdict(kept, kept, Kind::leader));
    }
  }

  if (!kept_train) return;
  for (const Entry* e = begin; e != end; ++e) {
    if (e->role != kHeldOut) continue;
    ++counts_.test_overlap;
    if (policy_.drop_test_overlap) {
      out.push_back(verdict(*e, *kept_train, Kind::test_overlap));
      ++counts_.test_overlap_dropped;
    }
  }
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
