// Typed errors: each carries the exit code of ../shared/CLI.md. Only cli/main catches
// them, prints one `recmodel: error: ...` line and returns that code.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace recmodel {

enum class ExitCode : int {
  ok = 0,
  quality_gate = 1,
  usage = 2,
  bad_input = 3,
  not_found = 4,
  remote = 5,
  integrity = 6,
  internal = 70,
  interrupted = 130,  // SIGINT/SIGTERM: work saved where it can be resumed
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Bad flags or option values (exit 2).
struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(ExitCode::usage, m) {}
};
// Malformed dataset, corrupt file, wrong shapes (exit 3).
struct DataError : Error {
  explicit DataError(const std::string& m) : Error(ExitCode::bad_input, m) {}
};
// A model, version, alias, file or remote object that does not exist (exit 4).
struct NotFoundError : Error {
  explicit NotFoundError(const std::string& m) : Error(ExitCode::not_found, m) {}
};
// Remote, network or authentication failure (exit 5).
struct RemoteError : Error {
  explicit RemoteError(const std::string& m) : Error(ExitCode::remote, m) {}
};
// Checksum mismatch or concurrent modification (exit 6).
struct IntegrityError : Error {
  explicit IntegrityError(const std::string& m) : Error(ExitCode::integrity, m) {}
};
// A quality gate that was not met (exit 1).
struct QualityGateError : Error {
  explicit QualityGateError(const std::string& m) : Error(ExitCode::quality_gate, m) {}
};

// Ends a command with `code` and no line of its own: the failure was already reported (by the
// workers of `train --nproc-per-node`, each with its own line).
struct AlreadyReported : Error {
  explicit AlreadyReported(int code) : Error(static_cast<ExitCode>(code), "") {}
};

// Formats a message and throws the given error type: fail<DataError>("{}: line {}", f, n).
template <typename E, typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw E(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace recmodel
