#include "data/dedup.h"

#include <doctest/doctest.h>

#include <vector>

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
  CHECK_FALSE(verdicts[0].conflict);
  CHECK(verdicts[0].first_origin == pack_origin(0, 2));
  CHECK(verdicts[1].row == 5);
  CHECK(verdicts[1].conflict);
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
      (verdict->conflict ? conflicts : duplicates)++;
    }
  }
  CHECK(ordered);
  CHECK(duplicates + conflicts == (rows - 1000) / 4);
  CHECK(conflicts == dedup.conflicts());
  CHECK(duplicates == dedup.duplicates());
  CHECK(conflicts > 0);
}
