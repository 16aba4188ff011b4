#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, CLI, interop with peers).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh"
build="${RECMODEL_BUILD_DIR:-$here/build}"
export CI="${CI:-1}"  # no progress bars in test logs
ctest --test-dir "$build" --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
