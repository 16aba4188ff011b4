// Facts about the runtime that change speed: the BLAS behind libblas.so.3, the cores.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace recmodel {

struct BlasInfo {
  std::string library;  // the resolved shared library path, or "" when none loads
  std::string vendor;   // "OpenBLAS", "reference", ...
  std::string detail;   // e.g. OpenBLAS's build configuration
  bool fast = false;    // an optimised BLAS (not the reference implementation)
};

// Loads libblas.so.3 as libtorch will and reports which implementation it is.
BlasInfo detect_blas();

// Sets libtorch's intra-op thread count (it starts with one here, whatever the core count) and
// OpenBLAS's own pool to the same size, so --threads bounds both.
void use_threads(int threads);

// Keeps freed memory in the process: libtorch frees and reallocates every activation and gradient
// each step, and glibc's defaults return blocks over its mmap threshold to the kernel, so each
// step faulted its memory in again (1.9 M page faults and ~40% of a training run's time).
void tune_allocator();

// Returns the --version document: version, build, libtorch, BLAS, cores and threads in use.
nlohmann::json version_info();

}  // namespace recmodel
