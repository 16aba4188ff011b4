// File helpers: whole-file reads with clear errors, atomic writes, temp directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace recmodel {

namespace fs = std::filesystem;

// Reads a whole file; throws NotFoundError / DataError naming the path.
std::string read_file(const fs::path& path);

// Writes `contents` to `path` atomically: a temp file beside it (created exclusively, never
// through a link), fsync, rename, then fsync of the parent directory so the rename is durable.
void write_file_atomic(const fs::path& path, std::string_view contents);

// Flushes a directory's entries (after a rename or create in it) to disk; throws DataError
// naming the directory when it cannot be opened or flushed. Filesystems that cannot fsync a
// directory (EINVAL) are not an error.
void fsync_directory(const fs::path& dir);

// Returns the lowercase hex SHA-256 of a file's bytes, streamed.
std::string sha256_file(const fs::path& path);

// Returns the lowercase hex SHA-256 of a buffer.
std::string sha256_hex(std::string_view bytes);

// Returns `path` as a directory to create: trailing slashes stripped, so names derived from it
// ("<out>.tmp-XXXXXX") are siblings, never inside it. "", ".", "..", "/" and paths ending in
// "/." or "/.." name no new directory: UsageError (exit 2).
fs::path directory_to_create(const fs::path& path);

// Checks what is at `final_path` before work starts: nothing is fine; a directory or a link
// (never followed) is fine with `replace` and a UsageError "already exists" without; anything
// else (a regular file, a device, a socket) is always a UsageError naming it, never replaced.
void check_replaceable(const fs::path& final_path, bool replace);

// Moves the finished directory `staged` to `final_path` (a sibling on the same filesystem),
// then fsyncs the parent. Without `replace`, an entry that appeared at `final_path` meanwhile
// is never replaced (RENAME_NOREPLACE): UsageError "appeared while working". With it, a
// directory or link there is swapped out atomically (RENAME_EXCHANGE) and only then removed;
// a file is refused as check_replaceable does, and one that keeps changing under concurrent
// writers is an IntegrityError (exit 6). On any error `staged` is left for the caller to remove.
void commit_directory(const fs::path& staged, const fs::path& final_path, bool replace);

// A directory created beside `final_path` that is removed on destruction unless
// commit() renamed it into place — so failed runs leave nothing half-written.
class StagingDir {
 public:
  // Creates `<final_path>.tmp-XXXXXX` next to the final path (after directory_to_create and
  // check_replaceable). With `replace`, an existing final directory is swapped out on
  // commit; without, it is an error.
  StagingDir(const fs::path& final_path, bool replace);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const fs::path& path() const { return staging_; }
  // Renames the staging directory to the final path (commit_directory).
  void commit();

 private:
  fs::path final_;
  fs::path staging_;
  bool replace_;
  bool committed_ = false;
};

}  // namespace recmodel
