#!/usr/bin/env bash
# Installs every Debian and npm package recmodel needs to build, test and benchmark.
# Idempotent: packages already present are skipped, so re-running costs seconds.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

debian_packages=(
  build-essential cmake pkg-config
  libcli11-dev libfmt-dev doctest-dev nlohmann-json3-dev
  libutf8proc-dev libssl-dev libtomlplusplus-dev libsqlite3-dev
  libcurl4-openssl-dev libonnx-dev libprotobuf-dev ccache
  # libtorch runs its matrix products through the system BLAS: the reference
  # libblas3 is ~10x slower than OpenBLAS, which becomes libblas.so.3 once installed.
  libopenblas0-pthread
  libtorch-dev
  # Test peers: an independent BERT reference and checkpoint writer; groff and zsh
  # check the man pages and the zsh completion.
  python3-torch groff-base zsh
  # strace observes the directory fsync after each rename into place.
  strace
  # `recmodel serve`: Boost.Beast/Asio for HTTP (Debian's default Boost, 1.74: libboost1.81-dev
  # conflicts with it and would remove python3-sklearn) and prometheus-cpp for the metrics.
  libboost-dev prometheus-cpp-dev
  # Data-parallel training: c10d's ProcessGroupGloo header includes gloo's headers; torchrun (from
  # python3-torch) is the launcher the tests run it under.
  libgloo-dev
  # Serve's peers: wrk drives load, promtool (from prometheus) checks /metrics, curl and jq are
  # the plain HTTP clients.
  wrk prometheus curl jq
  # `recmodel report` in a real browser: headless chromium loads the page and takes its screenshot.
  chromium
  # scikit-learn checks the metrics; awscli/botocore check the S3 client; Ceph's RADOS
  # Gateway is the real S3 server the storage tests start.
  python3-sklearn awscli python3-botocore radosgw ceph-mon ceph-osd sqlite3
  # `recmodel drift` is checked against SciPy; encrypted remotes are decrypted by an independent
  # reader built on python3-cryptography.
  python3-scipy python3-cryptography
  # The registry on PostgreSQL: libpq to build; the server (initdb, pg_ctl) for the throw-away
  # one the tests and the benchmark start, and psql to look at it.
  libpq-dev postgresql postgresql-client
  # bench/small_data.sh: autotuned fastText, the peer of pretrain + train --autotune.
  fasttext
)

missing=()
for pkg in "${debian_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "install-deps: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # prometheus's postinst starts its daemon; we only want promtool. A policy-rc.d answering 101
  # tells invoke-rc.d not to start services (containers usually have one already).
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
    added_policy=1
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ((added_policy)) && "${sudo_cmd[@]}" rm -f "$policy"
fi

# Node.js with npm is on the machine image (NodeSource builds that bundle npm);
# Debian's npm package conflicts with it, so only Debian's nodejs is a fallback.
if ! command -v npm >/dev/null; then
  echo "install-deps: npm not found; install Node.js 18+ with npm" >&2
  exit 1
fi

# Test peers from npm (transformers.js for tokenizer parity and the ONNX checks, onnxruntime-node
# for the ONNX checks and benchmarks, @huggingface/inference as serve's Inference Endpoint
# client). The linux-x64 CPU build of onnxruntime-node ships inside the npm package;
# ONNXRUNTIME_NODE_INSTALL=skip stops its install script from fetching the CUDA provider, which
# would fail offline.
export ONNXRUNTIME_NODE_INSTALL=skip
peers="$here/tests/peers"
# Every dependency of package.json is checked, so a peer added later installs on old checkouts too.
missing_peers=$(cd "$peers" && node -e '
  const deps = Object.keys(require("./package.json").dependencies);
  const fs = require("fs");
  console.log(deps.filter(d => !fs.existsSync("node_modules/" + d + "/package.json")).join(" "));')
if [[ -n "$missing_peers" ]]; then
  echo "install-deps: installing npm test peers in tests/peers" >&2
  (cd "$peers" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
