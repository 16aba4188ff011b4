#include "data/dedup.h"

#include <doctest/doctest.h>

#include <vector>

#include "common/error.h"
#include "data/hashing.h"
#include "tests/support.h"

using namespace recmodel::data;
namespace t = recmodel::testing;

TEST_CASE("pack_origin keeps file and line apart") {
  uint64_t origin = pack_origin(7, 987654321098);
  CHECK(origin_file(origin) == 7);
  CHECK(origin_line(origin) == 987654321098);
}

TEST_CASE("ExternalDedup reports later repeats as duplicates or conflicts, in row order") {
  t::TempDir dir;
  std::vector<ExternalDedup::Verdict> verdicts;
  {
    ExternalDedup dedup(dir.path());
    // Keys differ in their top bits too, so they land in different buckets.
    const uint64_t a = mix64(1), b = mix64(2), c = mix64(3);
    dedup.add(a, 0, pack_origin(0, 2), 1);
    dedup.add(b, 1, pack_origin(0, 3), 1);
    dedup.add(a, 2, pack_origin(0, 4), 1);  // duplicate of row 0
    dedup.add(c, 4, pack_origin(1, 2), 0);  // row 3 was invalid and never added
    dedup.add(b, 5, pack_origin(1, 3), 2);  // conflict with row 1
    dedup.add(a, 6, pack_origin(1, 4), 2);  // conflict with row 0, not with row 2
    dedup.resolve();
    CHECK(dedup.duplicates() == 1);
    CHECK(dedup.conflicts() == 2);
    for (uint64_t row = 0; row < 7; ++row)
      if (auto verdict = dedup.verdict(row)) verdicts.push_back(*verdict);
    REQUIRE(dedup.first_conflicts().size() == 2);
    CHECK(dedup.first_conflicts()[0].row == 5);
    CHECK(dedup.first_conflicts()[1].row == 6);
  }
  REQUIRE(verdicts.size() == 3);
  CHECK(verdicts[0].row == 2);
  CHECK(verdicts[0].kind == ExternalDedup::Kind::duplicate);
  CHECK(verdicts[0].first_origin == pack_origin(0, 2));
  CHECK(verdicts[1].row == 5);
  CHECK(verdicts[1].kind == ExternalDedup::Kind::conflict);
  CHECK(verdicts[1].origin == pack_origin(1, 3));
  CHECK(verdicts[1].first_origin == pack_origin(0, 3));
  CHECK(verdicts[1].first_label == 1);
  CHECK(verdicts[1].label == 2);
  CHECK(verdicts[2].row == 6);
  CHECK(verdicts[2].first_origin == pack_origin(0, 2));
  CHECK(t::fs::is_empty(dir.path()));  // scratch files are gone
}

TEST_CASE("ExternalDedup handles many rows across all buckets") {
  t::TempDir dir;
  ExternalDedup dedup(dir.path());
  const uint64_t rows = 200000;
  // Every 4th row repeats the key of the row 1000 before it (same label), every 10th of those
  // repeats with another label.
  std::vector<uint64_t> keys(rows);
  for (uint64_t row = 0; row < rows; ++row) {
    bool repeat = row >= 1000 && row % 4 == 0;
    keys[row] = repeat ? keys[row - 1000] : mix64(row + 1);
    uint32_t label = repeat && row % 40 == 0 ? 1 : 0;
    dedup.add(keys[row], row, row, label);
  }
  dedup.resolve();
  uint64_t duplicates = 0, conflicts = 0, last = 0;
  bool ordered = true;
  for (uint64_t row = 0; row < rows; ++row) {
    if (auto verdict = dedup.verdict(row)) {
      ordered = ordered && verdict->row >= last;
      last = verdict->row;
      (verdict->kind == ExternalDedup::Kind::conflict ? conflicts : duplicates)++;
    }
  }
  CHECK(ordered);
  CHECK(duplicates + conflicts == (rows - 1000) / 4);
  CHECK(conflicts == dedup.conflicts());
  CHECK(duplicates == dedup.duplicates());
  CHECK(conflicts > 0);
}

namespace {

using Kind = ExternalDedup::Kind;

struct Judged {
  std::vector<ExternalDedup::Verdict> verdicts;
  ExternalDedup::Counts counts;
};

// Adds rows (label, role) that all share one key, one bucket apart from a second key, and
// returns the verdicts in row order.
Judged judge(DedupPolicy policy, const std::vector<std::pair<uint32_t, ExternalDedup::Role>>& rows) {
  t::TempDir dir;
  ExternalDedup dedup(dir.path(), policy);
  const uint64_t key = mix64(42);
  for (size_t i = 0; i < rows.size(); ++i)
    dedup.add(key, i, pack_origin(0, i + 2), rows[i].first, rows[i].second);
  dedup.add(mix64(7), rows.size(), pack_origin(0, rows.size() + 2), 0);  // another text, alone
  dedup.resolve();
  Judged judged;
  for (uint64_t row = 0; row <= rows.size(); ++row)
    if (auto verdict = dedup.verdict(row)) judged.verdicts.push_back(*verdict);
  judged.counts = dedup.counts();
  return judged;
}

std::vector<std::pair<uint32_t, ExternalDedup::Role>> pooled(std::vector<uint32_t> labels) {
  std::vector<std::pair<uint32_t, ExternalDedup::Role>> rows;
  for (uint32_t label : labels) rows.emplace_back(label, ExternalDedup::kPooled);
  return rows;
}

std::vector<Kind> kinds(const Judged& judged) {
  std::vector<Kind> out;
  for (const auto& v : judged.verdicts) out.push_back(v.kind);
  return out;
}

}  // namespace

TEST_CASE("ExternalDedup --duplicates keep keeps every repeat, following the first row") {
  DedupPolicy policy;
  policy.duplicates = DuplicatePolicy::keep;
  Judged judged = judge(policy, pooled({3, 3, 3}));
  CHECK(kinds(judged) == std::vector<Kind>{Kind::leader, Kind::repeat, Kind::repeat});
  CHECK(judged.verdicts[2].first_row == 0);
  CHECK(judged.counts.duplicates_kept == 2);
  CHECK(judged.counts.duplicates_dropped == 0);
  for (const auto& v : judged.verdicts) CHECK_FALSE(v.dropped());
}

TEST_CASE("ExternalDedup --conflicts keep keeps every label, and exact repeats still follow --duplicates") {
  DedupPolicy policy;
  policy.conflicts = ConflictPolicy::keep;
  // Rows 0..3: labels 4, 5, 5, 4 of one text ("Good" rated 4 and 5).
  Judged judged = judge(policy, pooled({4, 5, 5, 4}));
  REQUIRE(judged.verdicts.size() == 4);
  CHECK(kinds(judged) == std::vector<Kind>{Kind::leader, Kind::repeat, Kind::duplicate, Kind::duplicate});
  CHECK(judged.verdicts[2].first_origin == pack_origin(0, 3));  // the first row with label 5
  CHECK(judged.verdicts[3].first_origin == pack_origin(0, 2));
  CHECK(judged.counts.conflict_texts == 1);
  CHECK(judged.counts.conflicts_kept == 1);
  CHECK(judged.counts.conflicts_rejected == 0);
  CHECK(judged.counts.duplicates_dropped == 2);
}

TEST_CASE("ExternalDedup --conflicts majority keeps the most frequent label and rejects a tie") {
  DedupPolicy policy;
  policy.conflicts = ConflictPolicy::majority;
  // 4, 5, 5, 3: label 5 wins with 2 of 4; its first row (row 1) is kept, not row 0.
  Judged judged = judge(policy, pooled({4, 5, 5, 3}));
  REQUIRE(judged.verdicts.size() == 3);
  CHECK(judged.verdicts[0].row == 0);
  CHECK(judged.verdicts[0].kind == Kind::outvoted);
  CHECK(judged.verdicts[0].first_label == 5);
  CHECK(judged.verdicts[0].votes == 2);
  CHECK(judged.verdicts[0].rows == 4);
  CHECK(judged.verdicts[0].first_origin == pack_origin(0, 3));
  CHECK(judged.verdicts[1].row == 2);
  CHECK(judged.verdicts[1].kind == Kind::duplicate);
  CHECK(judged.verdicts[2].row == 3);
  CHECK(judged.verdicts[2].kind == Kind::outvoted);
  CHECK(judged.counts.conflicts_resolved == 1);
  CHECK(judged.counts.conflicts_rejected == 2);

  Judged tie = judge(policy, pooled({4, 5, 5, 4}));
  CHECK(kinds(tie) == std::vector<Kind>{Kind::tie, Kind::tie, Kind::tie, Kind::tie});
  CHECK(tie.verdicts[0].votes == 2);
  CHECK(tie.counts.conflicts_rejected == 4);
  CHECK(tie.counts.conflicts_resolved == 0);
  for (const auto& v : tie.verdicts) CHECK(v.rejected());
}

TEST_CASE("ExternalDedup keeps held-out rows whole and counts their overlap with kept train rows") {
  using R = ExternalDedup::Role;
  std::vector<std::pair<uint32_t, R>> rows = {{1, R::kTrain}, {1, R::kPooled}, {1, R::kHeldOut}, {2, R::kHeldOut}};
  Judged kept = judge(DedupPolicy(), rows);
  // Only the dev row (pooled) is a duplicate; the test rows, one with another label, stay.
  REQUIRE(kept.verdicts.size() == 1);
  CHECK(kept.verdicts[0].row == 1);
  CHECK(kept.verdicts[0].kind == Kind::duplicate);
  CHECK(kept.counts.held_out == 2);
  CHECK(kept.counts.test_overlap == 2);
  CHECK(kept.counts.test_overlap_dropped == 0);
  CHECK(kept.counts.conflicts_rejected == 0);

  DedupPolicy drop;
  drop.drop_test_overlap = true;
  Judged dropped = judge(drop, rows);
  CHECK(kinds(dropped) == std::vector<Kind>{Kind::duplicate, Kind::test_overlap, Kind::test_overlap});
  CHECK(dropped.verdicts[1].first_origin == pack_origin(0, 2));
  CHECK(dropped.counts.test_overlap_dropped == 2);

  // A held-out row whose text is only in dev, or alone, is not an overlap.
  Judged dev_only = judge(drop, {{1, R::kPooled}, {1, R::kHeldOut}});
  CHECK(dev_only.verdicts.empty());
  CHECK(dev_only.counts.test_overlap == 0);
}

TEST_CASE("Policy names parse strictly, naming the flag and the accepted values") {
  CHECK(parse_duplicate_policy("keep") == DuplicatePolicy::keep);
  CHECK(parse_conflict_policy("majority") == ConflictPolicy::majority);
  CHECK(std::string(conflict_policy_name(ConflictPolicy::keep)) == "keep");
  CHECK_THROWS_WITH_AS(parse_duplicate_policy("Keep"), "--duplicates: \"Keep\" is not one of drop, keep",
                       recmodel::UsageError);
  CHECK_THROWS_WITH_AS(parse_conflict_policy("vote"), "--conflicts: \"vote\" is not one of reject, keep, majority",
                       recmodel::UsageError);
}
