#!/usr/bin/env bash
# The registry under load: register/s with a pre-hashed manifest in one process and in N processes
# at once, and list/show latency with 10,000 versions — in-process (bench/registry_bench.cpp, built
# here against registry/ and common/) and through the recmodel binary (start-up included); on
# SQLite, then on a throw-away PostgreSQL server on loopback (tests/registry/pg_fixture.sh).
#
#   bench/registry_bench.sh [--count 2000] [--processes 16] [--versions 10000] [--recmodel PATH] [--keep DIR]
#                           [--backend sqlite|postgresql|both]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
count=2000
processes=16
versions=10000
recmodel="${RECMODEL:-}"
keep=""
backend=both
while (( $# )); do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --processes) processes=$2; shift 2 ;;
    --versions) versions=$2; shift 2 ;;
    --recmodel) recmodel=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "registry_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
case "$backend" in sqlite|postgresql|both) ;; *) echo "registry_bench.sh: --backend is sqlite, postgresql or both" >&2; exit 2 ;; esac
if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; fi
pg_dir="$work/pg"
chmod 711 "$work"  # the PostgreSQL server runs as another user (pg_fixture.sh) and must reach $pg_dir
cleanup() {
  bash "$source_dir/tests/registry/pg_fixture.sh" stop "$pg_dir" 2>/dev/null || true
  [[ -n "$keep" ]] || rm -rf "$work"
}
trap cleanup EXIT
rm -f "$work"/*.db "$work"/*.db-*

echo "building the benchmark driver (registry/ + common/, -O2)..." >&2
c++ -std=c++17 -O2 -I"$source_dir" -DRECMODEL_VERSION='"bench"' -o "$work/registry_bench" \
  "$here/registry_bench.cpp" "$source_dir"/registry/*.cpp "$source_dir"/common/*.cpp \
  "$source_dir/cli/suggest.cpp" -I/usr/include/postgresql -lsqlite3 -lpq -lfmt -lcrypto -pthread

have_binary=0
[[ -x "$recmodel" ]] && "$recmodel" registry --help >/dev/null 2>&1 && have_binary=1
time_ms() {  # median wall ms of 5 runs of "$@"
  local runs=() start end
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N); "$@" >/dev/null 2>&1; end=$(date +%s%N)
    runs+=($(( (end - start) / 1000000 )))
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p
}
through_binary() {  # CLI latency on the large registry at $1
  local db=$1 startup list list50 show
  if (( ! have_binary )); then
    echo "  (no recmodel binary with 'registry' found; CLI latency not measured: build it, or pass --recmodel PATH)"
    return
  fi
  echo "  through the binary ($recmodel), median of 5 wall times:"
  startup=$(time_ms "$recmodel" registry --help)
  list=$(time_ms "$recmodel" --registry "$db" --json registry list intent)
  list50=$(time_ms "$recmodel" --registry "$db" registry list intent --limit 50)
  show=$(time_ms "$recmodel" --registry "$db" --json registry show intent@production)
  printf '  recmodel registry --help (start-up):%5d ms\n' "$startup"
  printf '  registry list NAME --json (all): %5d ms  (%d ms over start-up)\n' "$list" $((list - startup))
  printf '  registry list NAME --limit 50:   %5d ms  (%d ms over start-up)\n' "$list50" $((list50 - startup))
  printf '  registry show NAME@production:   %5d ms  (%d ms over start-up)\n' "$show" $((show - startup))
}

echo "== recmodel registry: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
if [[ $backend != postgresql ]]; then
  echo "== SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1), in-process (the library the CLI uses)"
  "$work/registry_bench" "$work" "$count" "$processes" "$versions"
  through_binary "$work/large.db"
fi
if [[ $backend != sqlite ]]; then
  OWNER_PID=$$ bash "$source_dir/tests/registry/pg_fixture.sh" start "$pg_dir" > "$work/pg.env"
  pg_port=$(sed -n 's/^PG_PORT=//p' "$work/pg.env")
  pg_user=$(sed -n 's/^PG_USER=//p' "$work/pg.env")
  export PGPASSWORD=$(sed -n 's/^PG_PASSWORD=//p' "$work/pg.env")
  for db in single multi large; do
    psql -q -h 127.0.0.1 -p "$pg_port" -U "$pg_user" -d recmodel -c "CREATE DATABASE $db" >/dev/null
  done
  url="postgresql://$pg_user@127.0.0.1:$pg_port/"
  echo "== PostgreSQL $(psql -h 127.0.0.1 -p "$pg_port" -U "$pg_user" -d recmodel -Atc 'SHOW server_version' | cut -d' ' -f1) on loopback (fsync off), in-process"
  REGISTRY_BENCH_AFTER_FILL="psql -q -h 127.0.0.1 -p $pg_port -U $pg_user -d large -c ANALYZE" \
    "$work/registry_bench" "$url" "$count" "$processes" "$versions"
  through_binary "${url}large"
fi
echo "targets: register >= 500/s in one process; list < 50 ms with 10,000 versions"
echo "peer: MLflow's model registry is not installable here (no PyPI); see bench/README.md"
