#include "common/files.h"

#include <doctest/doctest.h>

#include "common/error.h"
#include "common/parallel.h"
#include "tests/support.h"

namespace t = recmodel::testing;
using recmodel::StagingDir;

TEST_CASE("sha256 of a buffer and of a file agree with the standard test vector") {
  CHECK(recmodel::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  t::TempDir dir;
  t::write_text(dir / "abc.txt", "abc");
  CHECK(recmodel::sha256_file(dir / "abc.txt") == recmodel::sha256_hex("abc"));
}

TEST_CASE("write_file_atomic replaces the file and leaves no temp file behind") {
  t::TempDir dir;
  recmodel::write_file_atomic(dir / "out.json", "first");
  recmodel::write_file_atomic(dir / "out.json", "second");
  CHECK(t::read_text(dir / "out.json") == "second");
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("fsync_directory flushes a directory and names one it cannot open") {
  t::TempDir dir;
  CHECK_NOTHROW(recmodel::fsync_directory(dir.path()));
  CHECK_THROWS_AS(recmodel::fsync_directory(dir / "missing"), recmodel::DataError);
  t::write_text(dir / "file", "x");
  CHECK_THROWS_WITH_AS(recmodel::fsync_directory(dir / "file"), doctest::Contains("file: cannot open the directory"),
                       recmodel::DataError);
}

TEST_CASE("StagingDir commit refuses a final directory that appeared meanwhile, without --force") {
  t::TempDir dir;
  auto final_path = dir / "model";
  StagingDir staging(final_path, /*replace=*/false);
  t::write_text(staging.path() / "weights.bin", "w");
  // A directory that appears where the final path goes is not replaced without permission.
  std::filesystem::create_directories(final_path);
  CHECK_THROWS_AS(staging.commit(), recmodel::UsageError);
  CHECK(std::filesystem::is_empty(final_path));
}

TEST_CASE("read_file names a missing file with exit code 4") {
  t::TempDir dir;
  CHECK_THROWS_AS(recmodel::read_file(dir / "missing"), recmodel::NotFoundError);
  CHECK_THROWS_WITH(recmodel::read_file(dir / "missing"), doctest::Contains("missing: no such file"));
}

TEST_CASE("StagingDir removes its work unless committed, and refuses to replace without permission") {
  t::TempDir dir;
  auto final_path = dir / "dataset";
  {
    StagingDir staging(final_path, /*replace=*/false);
    t::write_text(staging.path() / "half-written", "x");
  }  // not committed: nothing may remain
  CHECK_FALSE(std::filesystem::exists(final_path));
  CHECK(std::filesystem::is_empty(dir.path()));
  {
    StagingDir staging(final_path, false);
    t::write_text(staging.path() / "manifest.json", "{}");
    staging.commit();
  }
  CHECK(std::filesystem::exists(final_path / "manifest.json"));
  CHECK_THROWS_AS(StagingDir(final_path, false), recmodel::UsageError);
  {
    StagingDir staging(final_path, /*replace=*/true);
    t::write_text(staging.path() / "new.json", "{}");
    staging.commit();
  }
  CHECK(std::filesystem::exists(final_path / "new.json"));
  CHECK_FALSE(std::filesystem::exists(final_path / "manifest.json"));
}

TEST_CASE("parallel_ranges covers every index once and rethrows a worker's error") {
  std::vector<int> hits(1000, 0);
  recmodel::parallel_ranges(hits.size(), 4, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) ++hits[i];
  });
  CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
  CHECK_THROWS_WITH(recmodel::parallel_ranges(10, 3, [](size_t begin, size_t) {
                      if (begin > 0) throw recmodel::DataError("bad row");
                    }),
                    "bad row");
}
