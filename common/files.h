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

// A directory created beside `final_path` that is removed on destruction unless
// commit() renamed it into place — so failed runs leave nothing half-written.
class StagingDir {
 public:
  // Creates `<final_path>.tmp-XXXXXX` next to the final path. With `replace`, an
  // existing final directory is swapped out on commit; without, it is an error.
  StagingDir(const fs::path& final_path, bool replace);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const fs::path& path() const { return staging_; }
  // Renames the staging directory to the final path, then fsyncs the parent directory.
  void commit();

 private:
  fs::path final_;
  fs::path staging_;
  bool replace_;
  bool committed_ = false;
};

}  // namespace recmodel
