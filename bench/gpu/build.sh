#!/usr/bin/env bash
# Builds recmodel with CUDA on a machine that has PyTorch 2.x (CUDA) in python3, a C++ compiler,
# CMake, ninja and nvcc, but neither network nor recmodel's other dependencies: it links the libtorch
# bundled with PyTorch (Torch_DIR from torch.utils.cmake_prefix_path) and takes everything else
# from the Debian 12 .deb files that bench/gpu/fetch-debs.sh downloaded into bench/gpu/debs/,
# unpacked with `dpkg -x` into a prefix. Run it in the repository root.
#
#   bench/gpu/build.sh [--build-dir build-gpu] [--debs bench/gpu/debs] [--python python3]
#                      [--torch-dir DIR] [--tests] [--jobs N] [--configure-only] [--build-type Release]
#                      [-- EXTRA CMAKE ARGUMENTS]
#
# --torch-dir: the folder holding TorchConfig.cmake of another libtorch (for example the cxx11-ABI
# libtorch zip from download.pytorch.org) instead of python3's PyTorch.
# Writes build-gpu/recmodel; the prefix's libraries are found through the binary's RPATH, so it runs
# without LD_LIBRARY_PATH. Exit 1 with one line saying why when something cannot work.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
build_dir="$source_dir/build-gpu"
debs="$here/debs"
python=python3
torch_dir=""
tests=OFF
jobs=$(nproc)
configure_only=0
build_type=Release
extra_cmake_args=()
while (( $# )); do
  case "$1" in
    --build-dir) build_dir=$(realpath -m "$2"); shift 2 ;;
    --debs) debs=$(realpath -m "$2"); shift 2 ;;
    --python) python=$2; shift 2 ;;
    --torch-dir) torch_dir=$(realpath -m "$2"); shift 2 ;;
    --tests) tests=ON; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --configure-only) configure_only=1; shift ;;
    --build-type) build_type=$2; shift 2 ;;
    --) shift; extra_cmake_args=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }
start=$(date +%s)

# --- tools -------------------------------------------------------------------------------------
for tool in cmake ninja; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH (pip install $tool, or apt-get install $tool)"
done
cxx=${CXX:-$(command -v c++ || command -v g++ || true)}
[[ -n "$cxx" ]] || die "no C++ compiler (c++ or g++) on PATH; set CXX"
command -v dpkg >/dev/null || command -v ar >/dev/null || die "neither dpkg nor ar is there to unpack the .debs"
ls "$debs"/*.deb >/dev/null 2>&1 || die "no .deb files in $debs; run bench/gpu/fetch-debs.sh on Debian 12 first and carry that folder"
arch=x86_64-linux-gnu
[[ "$(uname -m)" == x86_64 ]] || die "the carried .debs are amd64; this machine is $(uname -m)"

# --- libtorch and its C++ ABI ------------------------------------------------------------------
torch_version="" torch_cuda="" torch_abi=""
if [[ -z "$torch_dir" ]]; then
  info=$("$python" - <<'PY'
import torch, os
print(torch.utils.cmake_prefix_path)
print(torch.__version__)
print(torch.version.cuda or "")
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
PY
) || die "$python cannot import torch; pass --python or --torch-dir"
  { read -r torch_prefix; read -r torch_version; read -r torch_cuda; read -r torch_abi; } <<<"$info"
  torch_dir="$torch_prefix/Torch"
else
  torch_prefix=$(dirname "$torch_dir")
fi
[[ -f "$torch_dir/TorchConfig.cmake" ]] || die "no TorchConfig.cmake in $torch_dir"
if [[ -z "$torch_abi" ]]; then
  flag=$(grep -o '_GLIBCXX_USE_CXX11_ABI=[01]' "$torch_dir/TorchConfig.cmake" | head -1 || true)
  torch_abi=${flag##*=}
  torch_abi=${torch_abi:-1}
fi
say "libtorch: ${torch_version:-(from $torch_dir)} CUDA ${torch_cuda:-none} C++11 ABI ${torch_abi} ($torch_dir)"
if [[ "$torch_abi" == 0 ]]; then
  die "this libtorch is built with the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0), but Debian's libraries \
(fmt, protobuf, ONNX, ...) use the C++11 ABI: std::string crosses between them, so they cannot be linked \
together. Use a libtorch built with the C++11 ABI: PyTorch >= 2.7 wheels, or the 'cxx11 ABI' libtorch zip \
from download.pytorch.org unpacked and passed as --torch-dir DIR/share/cmake/Torch"
fi
torch_minor=0
if [[ "$torch_version" =~ ^([0-9]+)\.([0-9]+) ]]; then
  torch_major=${BASH_REMATCH[1]} torch_minor=${BASH_REMATCH[2]}
  (( torch_major >= 2 )) || say "warning: libtorch $torch_version is older than 2.0; the CUDA paths expect 2.x"
fi

# --- the prefix: Debian packages unpacked -------------------------------------------------------
prefix="$build_dir/prefix"
stamp="$prefix/.debs.sha256"
wanted=$(cd "$debs" && sha256sum ./*.deb | sha256sum | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for deb in "$debs"/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$prefix"
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$prefix")
      rm -rf "$tmp"
    fi
  done
  # Debian 12 keeps some libraries in /lib (not merged into /usr): merge them, as merged-/usr does.
  if [[ -d "$prefix/lib" && ! -L "$prefix/lib" ]]; then
    cp -a "$prefix/lib/." "$prefix/usr/lib/"
    rm -rf "$prefix/lib"
  fi
  # Absolute symlinks (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) point into the prefix or go.
  while IFS= read -r link; do
    target=$(readlink "$link")
    [[ "$target" == /* ]] || continue
    inside="$prefix/usr${target#/usr}"
    if [[ -e "$inside" ]]; then ln -sfn "$inside" "$link"; else rm -f "$link"; fi
  done < <(find "$prefix" -type l)
  # Development links whose library was not carried (it is the machine's own, e.g. libz.so.1) are
  # dropped, so the linker takes the machine's copy.
  find "$prefix" -xtype l -delete
  # doctest's export hard-codes /usr as its prefix.
  if [[ -f "$prefix/usr/lib/cmake/doctest/doctestTargets.cmake" ]]; then
    sed -i "s|set(_IMPORT_PREFIX \"/usr\")|set(_IMPORT_PREFIX \"$prefix/usr\")|" \
      "$prefix/usr/lib/cmake/doctest/doctestTargets.cmake"
  fi
  echo "$wanted" >"$stamp"
  say "unpacked $(ls "$debs"/*.deb | wc -l) packages into $prefix"
fi
libdir="$prefix/usr/lib/$arch"

# --- libraries PyTorch carries itself that may clash with Debian's ------------------------------
torch_root=$(cd "$torch_dir/../../.." && pwd)  # torch/ (wheel) or libtorch/ (zip)
header_version() {  # file macro...
  local file=$1; shift
  [[ -f "$file" ]] || return 0
  local out="" m
  for m in "$@"; do out+="$(sed -n "s/^#define $m \([0-9]*\).*/\1/p" "$file" | head -1)."; done
  echo "${out%.}"
}
for pair in "fmt:include/fmt/base.h:include/fmt/core.h" "protobuf:include/google/protobuf/stubs/common.h:" "onnx:include/onnx/onnx.pb.h:" "nlohmann_json:include/nlohmann/json.hpp:"; do
  IFS=: read -r name first second <<<"$pair"
  for rel in $first $second; do
    if [[ -f "$torch_root/$rel" ]]; then
      case $name in
        fmt) v=$(header_version "$torch_root/$rel" FMT_VERSION) ;;
        protobuf) v=$(header_version "$torch_root/$rel" GOOGLE_PROTOBUF_VERSION) ;;
        *) v="present" ;;
      esac
      say "note: libtorch ships $name headers ($rel, version ${v:-?}); recmodel compiles against Debian's, which come first on the include path"
      break
    fi
  done
done
if command -v nm >/dev/null && [[ -f "$torch_root/lib/libtorch_cpu.so" ]]; then
  exported=$(nm -D --defined-only "$torch_root/lib/libtorch_cpu.so" 2>/dev/null | grep -c 'google8protobuf\|N4onnx\|fmt[0-9]*v[0-9]' || true)
  if (( exported > 0 )); then
    say "warning: libtorch_cpu.so exports $exported protobuf/ONNX/fmt symbols; they may interpose Debian's libprotobuf/libonnx at run time (recmodel export is the command to watch)"
  fi
fi

# --- CUDA compiler (PyTorch's CMake config enables the CUDA language) --------------------------
if [[ -n "$torch_cuda" || -z "$torch_version" ]]; then
  nvcc=$(command -v nvcc || true)
  for candidate in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
    [[ -z "$nvcc" && -n "$candidate" && -x "$candidate/bin/nvcc" ]] && nvcc="$candidate/bin/nvcc"
  done
  if [[ -n "$nvcc" ]]; then
    cuda_home=$(cd "$(dirname "$nvcc")/.." && pwd)
    export CUDA_HOME="$cuda_home" CUDACXX="$nvcc" PATH="$cuda_home/bin:$PATH"
    say "nvcc: $nvcc ($("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"
  elif [[ -n "$torch_cuda" ]]; then
    say "warning: PyTorch is built for CUDA $torch_cuda but no nvcc was found (PATH, CUDA_HOME, /usr/local/cuda); TorchConfig may fail"
  fi
  # Hopper (H100/H200) unless the caller chose; skips PyTorch's GPU architecture probe.
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
fi

# --- configure ---------------------------------------------------------------------------------
mkdir -p "$build_dir"
cmake_args=(
  -S "$source_dir" -B "$build_dir" -G Ninja
  -DCMAKE_BUILD_TYPE="$build_type"
  -DCMAKE_CXX_COMPILER="$cxx"
  -DRECMODEL_BUILD_TESTS="$tests"
  # Config packages live in usr/lib/<arch>/cmake, usr/lib/cmake and usr/share/cmake; naming those
  # folders too keeps the search working where CMAKE_LIBRARY_ARCHITECTURE is not detected.
  "-DCMAKE_PREFIX_PATH=$prefix/usr;$libdir/cmake;$prefix/usr/lib/cmake;$prefix/usr/share/cmake;$torch_prefix"
  "-DCMAKE_LIBRARY_PATH=$libdir"
  "-DCMAKE_INCLUDE_PATH=$prefix/usr/include/$arch;$prefix/usr/include"
  -DTorch_DIR="$torch_dir"
  -DPYTHON_EXECUTABLE="$(command -v "$python" || echo "$python")"
  # OpenSSL's and curl's multiarch headers (configuration.h, curlbuild) live in include/<arch>,
  # which is a default include folder only for the machine's own /usr.
  "-DCMAKE_CXX_FLAGS=-isystem $prefix/usr/include/$arch"
  # DT_RPATH (not RUNPATH) also serves the prefix libraries' own dependencies (libcurl -> libldap).
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -Wl,-rpath-link,$libdir"
  "-DCMAKE_BUILD_RPATH=$libdir"
)
if (( torch_minor >= 12 )); then
  # PyTorch >= 2.12 headers need C++20; CMakeLists.txt asks for 17, so its flag is swapped here.
  printf 'set(CMAKE_CXX17_STANDARD_COMPILE_OPTION "-std=c++20")\nset(CMAKE_CXX17_EXTENSION_COMPILE_OPTION "-std=gnu++20")\n' \
    >"$build_dir/cxx20.cmake"
  cmake_args+=("-DCMAKE_PROJECT_INCLUDE=$build_dir/cxx20.cmake")
  say "PyTorch $torch_version needs C++20: compiling with -std=c++20"
else
  cmake_args+=(-UCMAKE_PROJECT_INCLUDE)
fi
say "configuring $build_dir"
if ! cmake "${cmake_args[@]}" "${extra_cmake_args[@]}" >"$build_dir/configure.log" 2>&1; then
  tail -40 "$build_dir/configure.log" >&2
  die "CMake configure failed; the whole log is $build_dir/configure.log"
fi
grep -E "Found (OpenSSL|CURL|SQLite3|Protobuf)|Caffe2: CUDA|Found CUDA|CUDA detected|cuDNN|Torch" "$build_dir/configure.log" | sed 's/^/  /' >&2 || true
(( configure_only )) && { say "configured (--configure-only) in $(( $(date +%s) - start )) s"; exit 0; }

# --- build ----------------------------------------------------------------------------------------
targets=(recmodel)
[[ "$tests" == ON ]] && targets=(all)
say "building ${targets[*]} with $jobs jobs"
if ! cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}" >"$build_dir/build.log" 2>&1; then
  grep -E -B2 -A8 "error:|Error [0-9]|undefined reference" "$build_dir/build.log" | head -80 >&2
  die "the build failed; the whole log is $build_dir/build.log"
fi
binary="$build_dir/recmodel"
missing=$(ldd "$binary" | grep 'not found' || true)
[[ -z "$missing" ]] || die "$binary cannot find libraries at run time: $(echo $missing)"
"$binary" --version | sed 's/^/  /' >&2
if [[ -n "$torch_cuda" ]] && ! "$binary" --json --version | grep -q '"cuda":true'; then
  say "warning: $binary does not see CUDA (no GPU here, or libtorch_cuda.so was dropped by --as-needed): ldd says"
  ldd "$binary" | grep -E 'torch|c10|cuda' | sed 's/^/  /' >&2
fi
say "built $binary in $(( $(date +%s) - start )) s"
