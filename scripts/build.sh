#!/usr/bin/env bash
# Configures and builds recmodel (and its tests) into build/; incremental on re-runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${RECMODEL_BUILD_DIR:-$here/build}"
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs"
