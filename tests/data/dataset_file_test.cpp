#include "data/dataset_file.h"

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "data/dedup.h"
#include "tests/support.h"

using namespace recmodel::data;
namespace t = recmodel::testing;

namespace {

uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

std::string error_of(const t::fs::path& path) {
  try {
    DatasetSplit::open(path);
  } catch (const recmodel::Error& e) {
    return e.what();
  }
  return "";
}

void patch(const t::fs::path& path, size_t offset, const void* bytes, size_t size) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(size));
}

}  // namespace

TEST_CASE("Split files round-trip classification examples with 16-bit ids and relabelling") {
  t::TempDir dir;
  {
    SplitWriter writer(dir / "train.bin", Task::classification, 2);
    writer.add({101, 7592, 102}, 3, 1, pack_origin(0, 2));
    writer.add({101, 2054, 102, 3000, 65535, 102}, 3, 0, pack_origin(2, 1234567));
    writer.add({101, 102}, 2, 2, pack_origin(1, 9));
    CHECK(writer.examples() == 3);
    CHECK(writer.tokens() == 11);
    writer.finish({2, 0, 1});  // provisional ids → final ids
  }
  CHECK_FALSE(t::fs::exists(dir / "train.bin.scratch"));
  DatasetSplit split = DatasetSplit::open(dir / "train.bin");
  REQUIRE(split.size() == 3);
  CHECK(split.num_tokens() == 11);
  CHECK(split.task() == Task::classification);
  CHECK(split.id_bytes() == 2);
  Example e = split.example(1);
  CHECK(e.ids == std::vector<int32_t>{101, 2054, 102, 3000, 65535, 102});
  CHECK(e.type_ids == std::vector<int32_t>{0, 0, 0, 1, 1, 1});
  CHECK(e.label == 2);
  CHECK(split.label(0) == 0);
  CHECK(split.label(2) == 1);
  CHECK(split.length(2) == 2);
  CHECK(split.token(1, 4) == 65535);
  CHECK(split.origin_file(1) == 2);
  CHECK(split.origin_line(1) == 1234567);
  CHECK(split.example(0).type_ids == std::vector<int32_t>{0, 0, 0});
}

TEST_CASE("Split files round-trip regression targets with 32-bit ids, and empty splits") {
  t::TempDir dir;
  {
    SplitWriter writer(dir / "dev.bin", Task::regression, 4);
    writer.add({2, 100000, 3}, 3, float_bits(4.5f), pack_origin(0, 3));
    writer.add({2, 5, 3, 6, 3}, 3, float_bits(-1.25f), pack_origin(0, 4));
    writer.finish({});
    SplitWriter empty(dir / "test.bin", Task::regression, 4);
    empty.finish({});
  }
  DatasetSplit split = DatasetSplit::open(dir / "dev.bin");
  REQUIRE(split.size() == 2);
  CHECK(split.task() == Task::regression);
  CHECK(split.example(0).ids == std::vector<int32_t>{2, 100000, 3});
  CHECK(split.example(0).target == 4.5f);
  CHECK(split.target(1) == -1.25f);
  CHECK(split.example(1).type_ids == std::vector<int32_t>{0, 0, 0, 1, 1});
  DatasetSplit moved = std::move(split);
  CHECK(moved.size() == 2);
  CHECK(moved.example(1).ids.size() == 5);
  DatasetSplit empty = DatasetSplit::open(dir / "test.bin");
  CHECK(empty.size() == 0);
  CHECK(empty.num_tokens() == 0);
}

TEST_CASE("DatasetSplit refuses other files, newer versions and truncated copies") {
  t::TempDir dir;
  {
    SplitWriter writer(dir / "train.bin", Task::classification, 2);
    writer.add({101, 102}, 2, 0, pack_origin(0, 2));
    writer.finish({});
  }
  const std::string path = (dir / "train.bin").string();
  REQUIRE(error_of(dir / "train.bin").empty());

  t::fs::copy_file(dir / "train.bin", dir / "newer.bin");
  uint32_t version = 2;
  patch(dir / "newer.bin", 4, &version, 4);
  CHECK(error_of(dir / "newer.bin") ==
        (dir / "newer.bin").string() +
            ": dataset format version 2 was written by a newer recmodel; this one reads up to version 1. Upgrade "
            "recmodel or re-run preprocess with this version");

  t::fs::copy_file(dir / "train.bin", dir / "magic.bin");
  patch(dir / "magic.bin", 0, "PK\x03\x04", 4);
  CHECK(error_of(dir / "magic.bin") ==
        (dir / "magic.bin").string() +
            ": not a recmodel dataset split (no RMDS signature); point --data at a directory made by recmodel "
            "preprocess");

  t::fs::copy_file(dir / "train.bin", dir / "short.bin");
  t::fs::resize_file(dir / "short.bin", t::fs::file_size(dir / "train.bin") - 8);
  CHECK(error_of(dir / "short.bin").find("truncated or altered: the header says") != std::string::npos);

  t::write_text(dir / "tiny.bin", "RMDS");
  CHECK(error_of(dir / "tiny.bin") ==
        (dir / "tiny.bin").string() + ": 4 bytes is too small to be a recmodel dataset split; re-run recmodel preprocess");

  t::fs::copy_file(dir / "train.bin", dir / "offsets.bin");
  uint64_t bad_offset = 7;  // the offsets section starts at 136: [0, 2] → [7, 2]
  patch(dir / "offsets.bin", 136, &bad_offset, 8);
  CHECK(error_of(dir / "offsets.bin") ==
        (dir / "offsets.bin").string() + ": corrupt dataset split (offsets do not span the tokens); re-run recmodel preprocess");

  CHECK_THROWS_AS(DatasetSplit::open(dir / "missing.bin"), recmodel::NotFoundError);
}
