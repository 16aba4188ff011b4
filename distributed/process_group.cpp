#include "distributed/process_group.h"

#include <cstdlib>
#include <functional>
#include <thread>

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef RECMODEL_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "common/error.h"

namespace recmodel::distributed {

namespace {

// The first line of an exception's message: c10::Error carries a C++ backtrace after it.
std::string short_message(const std::exception& error) {
  std::string message;
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error))
    message = c10_error->what_without_backtrace();
  else
    message = error.what();
  const size_t newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  return message.size() > 300 ? message.substr(0, 300) + "..." : message;
}

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// Consecutive runs of `tensors` of at most `bucket_bytes` each (a larger tensor is a bucket alone).
std::vector<std::pair<size_t, size_t>> buckets_of(const std::vector<torch::Tensor>& tensors, size_t bucket_bytes) {
  std::vector<std::pair<size_t, size_t>> buckets;
  size_t first = 0, bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t size = static_cast<size_t>(tensors[i].numel()) * tensors[i].element_size();
    if (i > first && bytes + size > bucket_bytes) {
      buckets.emplace_back(first, i);
      first = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (first < tensors.size()) buckets.emplace_back(first, tensors.size());
  return buckets;
}

}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef RECMODEL_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::chrono::milliseconds timeout{0};

  // Starts one collective over `flat` (on the backend that takes its device).
  c10::intrusive_ptr<c10d::Work> start(std::vector<at::Tensor>& flat, bool broadcast) {
#ifdef RECMODEL_WITH_NCCL
    if (nccl && flat.front().is_cuda())
      return broadcast ? nccl->broadcast(flat, c10d::BroadcastOptions{}) : nccl->allreduce(flat, c10d::AllreduceOptions{});
#endif
    return broadcast ? gloo->broadcast(flat, c10d::BroadcastOptions{}) : gloo->allreduce(flat, c10d::AllreduceOptions{});
  }
};

ProcessGroup::ProcessGroup(World world) : world_(std::move(world)), impl_(std::make_unique<Impl>()) {}

ProcessGroup::~ProcessGroup() = default;

std::unique_ptr<ProcessGroup> ProcessGroup::join(const World& world, const torch::Device& device,
                                                 std::chrono::milliseconds timeout, bool library_logs) {
  // c10d logs every retry and timeout itself; recmodel says what failed in its one error line.
  if (!library_logs) {
#ifdef C10_USE_GLOG
    FLAGS_minloglevel = google::GLOG_FATAL;
#else
    FLAGS_caffe2_log_level = 3;  // c10's FATAL
#endif
  }
  std::unique_ptr<ProcessGroup> group(new ProcessGroup(world));
  Impl& impl = *group->impl_;
  impl.timeout = timeout;
  const bool hosts_store = world.rank == 0 && !world.use_agent_store;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(world.master_port);
    options.isServer = hosts_store;
    options.numWorkers = static_cast<size_t>(world.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);
    // torchrun's agent store is shared by every restart of the workers: each attempt has its own keys.
    if (world.use_agent_store)
      impl.store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("/worker/attempt_{}", world.restart_count), store);
    else
      impl.store = store;
  } catch (const std::exception& error) {
    fail<RemoteError>("rank {} of {}: {} the rendezvous store at {} within --dist-timeout ({} s): {}", world.rank,
                      world.world_size, hosts_store ? "could not host, or not all ranks joined," : "could not reach",
                      world.master(), timeout.count() / 1000, short_message(error));
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // As torch.distributed: GLOO_SOCKET_IFNAME names the interfaces (comma-separated), else the
    // address the host name resolves to.
    const char* interfaces = std::getenv("GLOO_SOCKET_IFNAME");
    if (interfaces != nullptr && *interfaces != '\0') {
      std::string names = interfaces;
      for (size_t start = 0; start <= names.size();) {
        const size_t comma = std::min(names.find(',', start), names.size());
        if (comma > start)
          options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(names.substr(start, comma - start)));
        start = comma + 1;
      }
    }
    if (options->devices.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl.store, world.rank, world.world_size, options);
    group->backend_ = "gloo";
#ifdef RECMODEL_WITH_NCCL
    if (device.is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      impl.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl/", impl.store), world.rank, world.world_size, nccl_options);
      group->backend_ = "nccl";
    }
#endif
  } catch (const std::exception& error) {
    fail<RemoteError>("rank {} of {}: could not build the {} process group over the store at {}: {}", world.rank,
                      world.world_size, device.is_cuda() ? "NCCL" : "Gloo", world.master(), short_message(error));
  }
  return group;
}

void ProcessGroup::run(const std::string& what, const std::function<void()>& collective) {
  try {
    collective();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    fail<RemoteError>("rank {} of {}: {} failed (another rank stopped, or the network between ranks failed): {}",
                      world_.rank, world_.world_size, what, short_message(error));
  }
}

namespace {

// Runs one collective per bucket: all are started, then each is waited on and copied back.
void bucketed(ProcessGroup::Impl& impl, const std::vector<torch::Tensor>& tensors, size_t bucket_bytes, bool broadcast,
              bool gloo_only) {
  struct Pending {
    size_t first = 0, last = 0;
    std::vector<at::Tensor> flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  torch::NoGradGuard no_grad;  // parameters are copied in place
  std::vector<Pending> pending;
  for (const auto& [first, last] : buckets_of(tensors, bucket_bytes)) {
    std::vector<torch::Tensor> views;
    for (size_t i = first; i < last; ++i) views.push_back(tensors[i].reshape({-1}));
    torch::Tensor flat = torch::cat(views);
    if (gloo_only && flat.is_cuda()) flat = flat.cpu();
    Pending bucket;
    bucket.first = first;
    bucket.last = last;
    bucket.flat.push_back(flat);
    pending.push_back(std::move(bucket));
    pending.back().work = impl.start(pending.back().flat, broadcast);
  }
  for (auto& bucket : pending) {
    bucket.work->wait(impl.timeout);
    const torch::Tensor& flat = bucket.flat.front();
    int64_t offset = 0;
    for (size_t i = bucket.first; i < bucket.last; ++i) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(flat.narrow(0, offset, n).view(tensors[i].sizes()));
      offset += n;
    }
  }
}

}  // namespace

void ProcessGroup::all_reduce_sum(const std::vector<torch::Tensor>& tensors, size_t bucket_bytes) {
  if (tensors.empty()) return;
  run("summing gradients across ranks", [&] { bucketed(*impl_, tensors, bucket_bytes, false, backend_ == "gloo"); });
}

void ProcessGroup::broadcast_from_main(const std::vector<torch::Tensor>& tensors, size_t bucket_bytes) {
  if (tensors.empty()) return;
  run("broadcasting rank 0's parameters", [&] { bucketed(*impl_, tensors, bucket_bytes, true, backend_ == "gloo"); });
}

void ProcessGroup::barrier() {
  run("the barrier after rank 0's writes", [&] { impl_->gloo->barrier()->wait(impl_->timeout); });
}

std::vector<std::string> ProcessGroup::exchange(const std::string& topic, const std::string& mine) {
  std::vector<std::string> values(static_cast<size_t>(world_.world_size));
  run(fmt::format("exchanging {} through the store at {}", topic, world_.master()), [&] {
    const std::string prefix = "recmodel/" + topic + "/";
    impl_->store->set(prefix + std::to_string(world_.rank), bytes_of(mine));
    for (int r = 0; r < world_.world_size; ++r) {
      const std::vector<uint8_t> value = impl_->store->get(prefix + std::to_string(r));
      values[static_cast<size_t>(r)].assign(value.begin(), value.end());
    }
    // Rank 0 may host the store: it leaves only when every rank has read (they may all stop next).
    impl_->store->add(prefix + "read", 1);
    if (world_.rank == 0) {
      const auto deadline = std::chrono::steady_clock::now() + impl_->timeout;
      while (impl_->store->add(prefix + "read", 0) < world_.world_size) {
        if (std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error("not every rank read the exchange within --dist-timeout");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  });
  return values;
}

}  // namespace recmodel::distributed
