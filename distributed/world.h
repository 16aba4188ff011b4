// Where this process stands in a data-parallel job, read from the environment torchrun, a
// Kubeflow PyTorchJob or `recmodel train --nproc-per-node` set: RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT and
// TORCHELASTIC_USE_AGENT_STORE, with the meanings torch.distributed's env:// rendezvous gives them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace recmodel::distributed {

struct World {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;  // "" at world size 1
  int master_port = 0;
  int restart_count = 0;         // TORCHELASTIC_RESTART_COUNT: how often torchrun restarted the workers
  bool use_agent_store = false;  // torchrun's agent hosts the TCPStore; every rank is its client

  bool distributed() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
  // "127.0.0.1:29500", for messages.
  std::string master() const;
};

// Returns the world the environment describes; world size 1 when WORLD_SIZE is unset. Throws
// UsageError naming the variable when a value is malformed or the values contradict each other.
// `getenv` is injectable for tests.
World read_world(const std::function<const char*(const char*)>& getenv);
World read_world();

}  // namespace recmodel::distributed
