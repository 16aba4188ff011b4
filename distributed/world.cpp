#include "distributed/world.h"

#include <cerrno>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "common/error.h"

namespace recmodel::distributed {

namespace {

std::optional<long long> integer_variable(const std::function<const char*(const char*)>& getenv, const char* name,
                                          long long low, long long high) {
  const char* raw = getenv(name);
  if (raw == nullptr || *raw == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(raw, &end, 10);
  if (errno != 0 || *end != '\0' || end == raw || value < low || value > high)
    fail<UsageError>("environment variable {}='{}' is not a whole number in [{}, {}]", name, std::string(raw).substr(0, 40),
                     low, high);
  return value;
}

}  // namespace

std::string World::master() const { return fmt::format("{}:{}", master_addr, master_port); }

World read_world(const std::function<const char*(const char*)>& getenv) {
  World world;
  const auto world_size = integer_variable(getenv, "WORLD_SIZE", 1, 1 << 20);
  if (!world_size) return world;
  world.world_size = static_cast<int>(*world_size);
  const auto rank = integer_variable(getenv, "RANK", 0, world.world_size - 1);
  if (!rank && world.world_size > 1)
    fail<UsageError>("WORLD_SIZE={} is set but RANK is not; start the workers with torchrun, a PyTorchJob or "
                     "recmodel train --nproc-per-node",
                     world.world_size);
  world.rank = static_cast<int>(rank.value_or(0));
  world.local_world_size = static_cast<int>(integer_variable(getenv, "LOCAL_WORLD_SIZE", 1, world.world_size).value_or(1));
  world.local_rank = static_cast<int>(integer_variable(getenv, "LOCAL_RANK", 0, world.local_world_size - 1).value_or(0));
  world.restart_count = static_cast<int>(integer_variable(getenv, "TORCHELASTIC_RESTART_COUNT", 0, 1 << 30).value_or(0));
  const char* agent_store = getenv("TORCHELASTIC_USE_AGENT_STORE");
  world.use_agent_store = agent_store != nullptr && std::string(agent_store) == "True";  // Python's str(True)
  if (!world.distributed()) return world;
  const char* addr = getenv("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0')
    fail<UsageError>("WORLD_SIZE={} needs MASTER_ADDR (the host of rank 0 or of torchrun's store)", world.world_size);
  world.master_addr = addr;
  const auto port = integer_variable(getenv, "MASTER_PORT", 1, 65535);
  if (!port) fail<UsageError>("WORLD_SIZE={} needs MASTER_PORT", world.world_size);
  world.master_port = static_cast<int>(*port);
  return world;
}

World read_world() {
  return read_world([](const char* name) { return std::getenv(name); });
}

}  // namespace recmodel::distributed
