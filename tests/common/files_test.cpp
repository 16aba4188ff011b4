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

TEST_CASE("StagingDir --force replaces a directory or a link but refuses a regular file, even the input") {
  namespace fs = std::filesystem;
  t::TempDir dir;
  t::write_text(dir / "input.csv", "text,label\n");
  CHECK_THROWS_WITH_AS(StagingDir(dir / "input.csv", /*replace=*/true),
                       doctest::Contains("input.csv: is a regular file, not a directory"), recmodel::UsageError);
  CHECK(t::read_text(dir / "input.csv") == "text,label\n");
  // A file that appears at the final path while working is not replaced either.
  {
    StagingDir staging(dir / "model", /*replace=*/true);
    t::write_text(staging.path() / "w.bin", "w");
    t::write_text(dir / "model", "appeared");
    CHECK_THROWS_AS(staging.commit(), recmodel::UsageError);
  }
  CHECK(t::read_text(dir / "model") == "appeared");
  // A link is replaced, never followed: its target keeps its contents.
  fs::create_directories(dir / "elsewhere");
  t::write_text(dir / "elsewhere/keep.txt", "keep");
  fs::create_directory_symlink(dir / "elsewhere", dir / "linked");
  {
    StagingDir staging(dir / "linked", /*replace=*/true);
    t::write_text(staging.path() / "new.txt", "new");
    staging.commit();
  }
  CHECK_FALSE(fs::is_symlink(dir / "linked"));
  CHECK(t::read_text(dir / "linked/new.txt") == "new");
  CHECK(t::read_text(dir / "elsewhere/keep.txt") == "keep");
}

TEST_CASE("StagingDir with a trailing slash stages beside the final path, never inside it") {
  namespace fs = std::filesystem;
  t::TempDir dir;
  for (bool replace : {false, true}) {
    CAPTURE(replace);
    {
      StagingDir staging((dir / "new").string() + "//", replace);
      CHECK(staging.path().parent_path() == dir.path());
      if (!replace) CHECK_FALSE(fs::exists(dir / "new"));
      t::write_text(staging.path() / "f.txt", "f");
      staging.commit();
    }
    CHECK(t::read_text(dir / "new/f.txt") == "f");
    CHECK(std::distance(fs::directory_iterator(dir / "new"), fs::directory_iterator()) == 1);
    CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
  }
  for (const std::string& bad :
       std::vector<std::string>{".", "/", "", "..", "//", (dir / "x/..").string(), (dir / "x/./").string()}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(StagingDir(bad, true), doctest::Contains("names no new directory"), recmodel::UsageError);
  }
  CHECK(recmodel::directory_to_create("a/b///") == std::filesystem::path("a/b"));
}

TEST_CASE("commit_directory never replaces what appeared meanwhile without replace, and swaps it out with it") {
  namespace fs = std::filesystem;
  t::TempDir dir;
  fs::create_directories(dir / "staged");
  t::write_text(dir / "staged/new.txt", "new");
  fs::create_directories(dir / "final");  // an empty directory: rename(2) alone would replace it
  CHECK_THROWS_WITH_AS(recmodel::commit_directory(dir / "staged", dir / "final", false),
                       doctest::Contains("appeared while working"), recmodel::UsageError);
  CHECK(fs::is_empty(dir / "final"));
  CHECK(fs::exists(dir / "staged/new.txt"));
  t::write_text(dir / "final/old.txt", "old");
  recmodel::commit_directory(dir / "staged", dir / "final", true);
  CHECK(t::read_text(dir / "final/new.txt") == "new");
  CHECK_FALSE(fs::exists(dir / "final/old.txt"));
  CHECK_FALSE(fs::exists(dir / "staged"));  // the old tree, swapped out, is removed
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("write_file_atomic refuses a path with a trailing slash instead of writing inside a directory") {
  t::TempDir dir;
  std::filesystem::create_directories(dir / "v");
  CHECK_THROWS_WITH_AS(recmodel::write_file_atomic((dir / "v").string() + "/", "x"),
                       doctest::Contains("names a directory, not a file"), recmodel::UsageError);
  CHECK(std::filesystem::is_empty(dir / "v"));
  CHECK_THROWS_AS(recmodel::write_file_atomic(dir / ".", "x"), recmodel::UsageError);
}
