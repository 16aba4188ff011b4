#!/usr/bin/env bash
# The registry under load: register/s with a pre-hashed manifest in one process and in N processes
# at once, and list/show latency with 10,000 versions — in-process (bench/registry_bench.cpp, built
# here against registry/ and common/) and through the recmodel binary (start-up included).
#
#   bench/registry_bench.sh [--count 2000] [--processes 16] [--versions 10000] [--recmodel PATH] [--keep DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
count=2000
processes=16
versions=10000
recmodel="${RECMODEL:-}"
keep=""
while (( $# )); do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --processes) processes=$2; shift 2 ;;
    --versions) versions=$2; shift 2 ;;
    --recmodel) recmodel=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "registry_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
rm -f "$work"/*.db "$work"/*.db-*

echo "building the benchmark driver (registry/ + common/, -O2)..." >&2
c++ -std=c++17 -O2 -I"$source_dir" -DRECMODEL_VERSION='"bench"' -o "$work/registry_bench" \
  "$here/registry_bench.cpp" "$source_dir"/registry/*.cpp "$source_dir/common/files.cpp" \
  "$source_dir/cli/suggest.cpp" -lsqlite3 -lfmt -lcrypto -pthread

echo "== recmodel registry: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg), SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)"
echo "== in-process (the library the CLI uses)"
"$work/registry_bench" "$work" "$count" "$processes" "$versions"

if [[ -x "$recmodel" ]] && "$recmodel" registry --help >/dev/null 2>&1; then
  echo "== through the binary ($recmodel), median of 5 wall times"
  time_ms() {  # median wall ms of 5 runs of "$@"
    local runs=() start end
    for _ in 1 2 3 4 5; do
      start=$(date +%s%N); "$@" >/dev/null 2>&1; end=$(date +%s%N)
      runs+=($(( (end - start) / 1000000 )))
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p
  }
  db="$work/large.db"
  startup=$(time_ms "$recmodel" registry --help)
  list=$(time_ms "$recmodel" --registry "$db" --json registry list intent)
  list50=$(time_ms "$recmodel" --registry "$db" registry list intent --limit 50)
  show=$(time_ms "$recmodel" --registry "$db" --json registry show intent@production)
  printf '  recmodel registry --help (start-up):%5d ms\n' "$startup"
  printf '  registry list NAME --json (all): %5d ms  (%d ms over start-up)\n' "$list" $((list - startup))
  printf '  registry list NAME --limit 50:   %5d ms  (%d ms over start-up)\n' "$list50" $((list50 - startup))
  printf '  registry show NAME@production:   %5d ms  (%d ms over start-up)\n' "$show" $((show - startup))
else
  echo "== no recmodel binary with 'registry' found; CLI latency not measured (build it, or pass --recmodel PATH)"
fi
echo "targets: register >= 500/s in one process; list < 50 ms with 10,000 versions"
echo "peer: MLflow's model registry is not installable here (no PyPI); see bench/README.md"
