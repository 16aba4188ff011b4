#include "cli/system_info.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <thread>

#include <torch/torch.h>

namespace recmodel {

BlasInfo detect_blas() {
  BlasInfo info;
  void* handle = dlopen("libblas.so.3", RTLD_LAZY | RTLD_LOCAL);
  if (!handle) {
    info.vendor = "none";
    return info;
  }
  link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name) {
    char resolved[4096];
    info.library = realpath(map->l_name, resolved) ? resolved : map->l_name;
  }
  using ConfigFn = char* (*)();
  if (auto config = reinterpret_cast<ConfigFn>(dlsym(handle, "openblas_get_config"))) {
    info.vendor = "OpenBLAS";
    info.detail = config();
    info.fast = true;
  } else if (dlsym(handle, "MKL_Get_Max_Threads") || dlsym(handle, "mkl_get_max_threads")) {
    info.vendor = "MKL";
    info.fast = true;
  } else if (dlsym(handle, "bli_info_get_version_str")) {
    info.vendor = "BLIS";
    info.fast = true;
  } else {
    info.vendor = "reference";
  }
  dlclose(handle);
  return info;
}

void use_threads(int threads) {
  threads = threads > 0 ? threads : 1;
  torch::set_num_threads(threads);
  // libtorch calls sgemm from its own threads and OpenBLAS runs a second pool inside it.
  using SetThreadsFn = void (*)(int);
  if (auto set = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
}

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // serve tensors from the heap, not fresh mmaps
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // and keep the heap's top instead of trimming it each step
}

nlohmann::json version_info() {
  BlasInfo blas = detect_blas();
  using GetThreadsFn = int (*)();
  auto blas_threads = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  return {
      {"version", RECMODEL_VERSION},
      {"compiler", __VERSION__},
      {"cores", std::thread::hardware_concurrency()},
      {"threads", torch::get_num_threads()},
      {"libtorch", TORCH_VERSION},
      {"cuda", torch::cuda::is_available()},
      {"blas",
       {{"vendor", blas.vendor},
        {"library", blas.library},
        {"detail", blas.detail},
        {"fast", blas.fast},
        {"threads", blas_threads ? nlohmann::json(blas_threads()) : nlohmann::json(nullptr)}}},
      {"openmp_wait_policy", wait_policy ? wait_policy : ""},
  };
}

}  // namespace recmodel
