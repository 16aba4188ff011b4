#!/usr/bin/env bash
# Everything issue 8 measures on the lent GPU machine, in one device call (the tool allows 600 s a
# command): build recmodel with CUDA (bench/gpu/build.sh), the Hugging Face parity checks
# (bench/gpu/hf_parity.py), then the training and predict speed benchmark (bench/gpu/train_speed.py),
# each under a timeout taken from one budget, with logs and results written to $OUT.
#
# Prepare here first (Debian 12): bench/gpu/fetch-debs.sh. Then the device call is
#   run  command: bash bench/gpu/run-all.sh
#        carry:   ["bench/gpu/debs", "bench/gpu/vocab"]     timeout_s: 600
# On a machine still warm from an earlier call the build is incremental (seconds).
#
# Environment: RECMODEL_BINARY (default build-gpu/recmodel), RUN_ALL_BUDGET (seconds for all stages, default 560), RUN_ALL_STAGES (default
# "build parity speed"), HF_PARITY_ARGS, TRAIN_SPEED_ARGS (extra arguments for those scripts).
# Files in $OUT: env.txt, build.log, hf_parity.md, hf_parity.log, train_speed.md, train_speed.log,
# summary.md (the bench/RESULTS.md section) and, after a failed build, build-failure.log.
set -uo pipefail

cd "$(dirname "$0")/../.."
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
budget=${RUN_ALL_BUDGET:-560}
stages=${RUN_ALL_STAGES:-build parity speed}
start=$(date +%s)
export PYTHONUNBUFFERED=1 CI=1
status=()

left() { echo $(( budget - ($(date +%s) - start) )); }

# stage NAME CAP COMMAND...: runs COMMAND with stdout and stderr in $out/NAME.log (or as told),
# for at most CAP seconds and never past the budget.
stage() {
  local name=$1 cap=$2; shift 2
  local t; t=$(left)
  (( t > cap )) && t=$cap
  if (( t < 30 )); then
    status+=("$name: skipped (budget spent)")
    return 1
  fi
  local began; began=$(date +%s)
  timeout -k 10 "$t" "$@"
  local rc=$?
  local took=$(( $(date +%s) - began ))
  (( rc == 124 || rc == 137 )) && status+=("$name: stopped at its ${t}-s limit") || status+=("$name: exit $rc in ${took} s")
  echo "run-all: ${status[-1]}" >&2
  return $rc
}

{
  date -u '+%Y-%m-%d %H:%M:%S UTC'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)' 2>&1
  python3 -c 'import transformers, tokenizers; print("transformers", transformers.__version__, "tokenizers", tokenizers.__version__)' 2>&1
  { cmake --version | head -1; ninja --version; c++ --version | head -1; nvcc --version | tail -1; } 2>&1
  uname -srm; nproc
} >"$out/env.txt"
cat "$out/env.txt" >&2

binary=${RECMODEL_BINARY:-build-gpu/recmodel}
if [[ " $stages " == *" build "* ]]; then
  if ! stage build 330 bash bench/gpu/build.sh >"$out/build.log" 2>&1; then
    { tail -60 build-gpu/configure.log; grep -E -B3 -A12 "error:|FAILED" build-gpu/build.log | head -150; } \
      >"$out/build-failure.log" 2>/dev/null
    rm -f "$binary"
  fi
fi

if [[ -x "$binary" ]]; then
  if [[ " $stages " == *" parity "* ]]; then
    # shellcheck disable=SC2086
    stage hf_parity 170 python3 bench/gpu/hf_parity.py --recmodel "$binary" ${HF_PARITY_ARGS:-} \
      >"$out/hf_parity.md" 2>"$out/hf_parity.log"
  fi
  if [[ " $stages " == *" speed "* ]]; then
    # shellcheck disable=SC2086
    stage train_speed 600 python3 bench/gpu/train_speed.py --recmodel "$binary" ${TRAIN_SPEED_ARGS:-} \
      >"$out/train_speed.md" 2>"$out/train_speed.log"
  fi
else
  status+=("no $binary: parity and speed not run")
fi

{
  echo "## GPU: CUDA build, Hugging Face parity and training speed"
  echo
  echo '```'
  cat "$out/env.txt"
  echo '```'
  printf -- '- %s\n' "${status[@]}"
  for part in hf_parity train_speed; do
    [[ -s "$out/$part.md" ]] && { echo; cat "$out/$part.md"; }
  done
} >"$out/summary.md"
cat "$out/summary.md"
echo "run-all: $(( $(date +%s) - start )) s in all" >&2
