// Helpers shared by the tests: temp directories, the shared data folder, running the binary.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace recmodel::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Writes `contents` to `path` (creating parent directories).
void write_text(const fs::path& path, const std::string& contents);
// Reads a whole file.
std::string read_text(const fs::path& path);
// Returns `size` pseudo-random bytes, the same for the same `seed` (incompressible test payloads).
std::string random_bytes(size_t size, unsigned seed);

// Returns ../shared/data/<relative>, or an empty path when the shared folder is absent
// (a user's own clone); callers then skip with a message saying so.
fs::path shared_data(const std::string& relative);

// Returns the recmodel binary the tests run (the build's, else $RECMODEL, else PATH's).
std::string recmodel_binary();
// Returns this process's environment for a child: CI=1 (no progress bars) and then `extra`
// (NAME=VALUE) added.
std::vector<std::string> child_environment(const std::vector<std::string>& extra = {});

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the recmodel binary with `args`, feeding `stdin_text`, with the environment
// variables `env` (NAME=VALUE) added; CI=1 is always set so no progress bars appear.
RunResult run_recmodel(const std::vector<std::string>& args, const std::string& stdin_text = "",
                       const std::vector<std::string>& env = {});

// The address-space limit crafted (hostile) inputs run under: 4 GiB, as `ulimit -v`.
constexpr long kHostileMemoryLimitKiB = 4L * 1024 * 1024;

// run_recmodel under `ulimit -v kHostileMemoryLimitKiB`: a crafted file must be refused with
// a clear error, not exhaust memory. Use with REQUIRE_REFUSED (tests/hostile.h).
RunResult run_recmodel_limited(const std::vector<std::string>& args, const std::string& stdin_text = "",
                               const std::vector<std::string>& env = {});

// How many "recmodel: error:" lines `err` holds.
int error_line_count(const std::string& err);

}  // namespace recmodel::testing
