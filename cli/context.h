// What every command receives: the global options and the output channels.
#pragma once

#include <cstdio>
#include <functional>
#include <iosfwd>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace recmodel {

// Global options of ../shared/CLI.md, valid before or after the subcommand.
struct GlobalOptions {
  bool json = false;         // one JSON document on stdout instead of human text
  bool quiet = false;        // warnings and errors only on stderr
  int verbose = 0;           // -v, -vv: more detail on stderr
  std::string registry;      // registry file; empty = RECMODEL_REGISTRY or the XDG default
  int threads = 0;           // worker threads; 0 = all cores
  bool no_progress = false;  // never draw progress bars
};

// Channels to the user. stdout carries results only; everything else goes to stderr.
class Console {
 public:
  explicit Console(const GlobalOptions& options) : options_(options) {}

  bool json() const { return options_.json; }
  // Returns the thread count to use: --threads, or all cores when it is 0 (shared out among the
  // LOCAL_WORLD_SIZE workers of a data-parallel job).
  int threads() const;
  // Returns whether progress bars may be drawn (stderr is a TTY, no CI, no --no-progress/--quiet).
  bool progress_enabled() const;

  // Prints a result: `document` as one JSON line under --json, else `human` writes text.
  void result(const nlohmann::json& document, const std::function<void(std::FILE*)>& human) const;

  // Prints "recmodel: warning: ..." on stderr unless --quiet... warnings are kept under --quiet.
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) const {
    fmt::print(stderr, "recmodel: warning: {}\n", fmt::format(format, std::forward<Args>(args)...));
  }
  // Prints an informational line on stderr unless --quiet.
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) const {
    if (!options_.quiet) fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
  }
  // Prints a detail line on stderr under -v.
  template <typename... Args>
  void debug(fmt::format_string<Args...> format, Args&&... args) const {
    if (options_.verbose > 0 && !options_.quiet)
      fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
  }

  const GlobalOptions& options() const { return options_; }

 private:
  const GlobalOptions& options_;
};

}  // namespace recmodel
