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

// Sets libtorch's intra-op thread count (it starts with one here, whatever the core count).
void use_threads(int threads);

// Returns the --version document: version, build, libtorch, BLAS, cores and threads in use.
nlohmann::json version_info();

}  // namespace recmodel
