#include "cli/context.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace recmodel {

int Console::threads() const {
  if (options_.threads > 0) return options_.threads;
  unsigned cores = std::thread::hardware_concurrency();
  if (cores == 0) return 1;
  // A worker of a data-parallel job (torchrun, train --nproc-per-node) shares the cores with the
  // other workers on its machine.
  const char* local_world = std::getenv("LOCAL_WORLD_SIZE");
  const int workers = local_world ? std::atoi(local_world) : 1;
  return workers > 1 ? std::max(1, static_cast<int>(cores) / workers) : static_cast<int>(cores);
}

bool Console::progress_enabled() const {
  if (options_.no_progress || options_.quiet) return false;
  const char* ci = std::getenv("CI");
  if (ci && *ci) return false;
  return isatty(STDERR_FILENO) == 1;
}

void Console::result(const nlohmann::json& document, const std::function<void(std::FILE*)>& human) const {
  if (options_.json) {
    std::string text = document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    human(stdout);
  }
  std::fflush(stdout);
}

}  // namespace recmodel
