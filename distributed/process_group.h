// PyTorch's c10d collectives for data-parallel training: a TCPStore for the rendezvous (rank 0's,
// or torchrun's agent store under its per-attempt prefix), ProcessGroupGloo on the CPU and
// ProcessGroupNCCL for CUDA tensors when this build has NCCL. libtorch's C++ has no DDP reducer,
// so gradients are reduced here in flat buckets in a fixed parameter order.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "distributed/world.h"

namespace recmodel::distributed {

class ProcessGroup {
 public:
  // Joins the job `world` describes: connects to (or, as rank 0 without an agent store, hosts)
  // the TCPStore at MASTER_ADDR:MASTER_PORT and builds the process group for `device`. Throws
  // RemoteError (exit 5) naming the address when the store cannot be reached within `timeout`,
  // which also bounds every later collective (a rank that died stops the others). c10d's own log
  // lines (retries, timeouts) go to stderr only with `library_logs` (recmodel -v).
  static std::unique_ptr<ProcessGroup> join(const World& world, const torch::Device& device,
                                            std::chrono::milliseconds timeout, bool library_logs = false);
  ~ProcessGroup();

  int rank() const { return world_.rank; }
  int world_size() const { return world_.world_size; }
  const World& world() const { return world_; }
  // "gloo" or "nccl".
  const std::string& backend() const { return backend_; }

  // Sums `tensors` element-wise over all ranks, in place, in flat buckets of about
  // `bucket_bytes` (one collective per bucket, in the order given). Tensors of one call share
  // a dtype and device.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, size_t bucket_bytes = size_t{25} << 20);
  // Copies rank 0's `tensors` into every rank's, in place, bucketed the same way.
  void broadcast_from_main(const std::vector<torch::Tensor>& tensors, size_t bucket_bytes = size_t{25} << 20);
  void barrier();

  // Every rank posts `mine` under `topic`; returns all ranks' values, by rank. Through the store:
  // for small documents (settings, fingerprints, errors), not tensors.
  std::vector<std::string> exchange(const std::string& topic, const std::string& mine);

  struct Impl;  // c10d's store and process groups, in process_group.cpp

 private:
  explicit ProcessGroup(World world);
  void run(const std::string& what, const std::function<void()>& collective);

  World world_;
  std::string backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recmodel::distributed
