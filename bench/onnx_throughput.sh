#!/usr/bin/env bash
# ONNX Runtime fp32 vs int8 on recmodel's exports, and recmodel predict vs ONNX Runtime fp32, on CPU,
# in one run. For the small and base presets (random weights: speed does not depend on them):
#   - throughput (inputs/s) at --batch inputs per run, and batch-1 latency (p50, p90), for
#     onnx/model.onnx and onnx/model_quantized.onnx in onnxruntime-node (tests/peers);
#   - `recmodel predict --batch-size B` over the same texts (wall time, process start and model load
#     included) against ONNX Runtime fp32.
# Texts: sample search queries, product titles and reviews (share/generate_sample_data.py),
# WordPiece-tokenized by recmodel (average ~20 tokens). Target: int8 >= 1.5x fp32.
#
#   bench/onnx_throughput.sh [--presets "small base"] [--threads N] [--batch 32] [--seconds 5]
#                            [--texts 2000] [--recmodel PATH] [--keep DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
peers="$source_dir/tests/peers"
presets="small base"
threads=$(nproc)
batch=32
seconds=5
texts=2000
recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
keep=""
while (($#)); do
  case "$1" in
    --presets) presets="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --texts) texts="$2"; shift 2 ;;
    --recmodel) recmodel="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "usage: $0 [--presets LIST] [--threads N] [--batch N] [--seconds S] [--texts N] [--recmodel PATH] [--keep DIR]" >&2; exit 2 ;;
  esac
done
[[ -x "$recmodel" ]] || { echo "recmodel binary not found (build it or pass --recmodel)" >&2; exit 1; }
[[ -d "$peers/node_modules/onnxruntime-node" ]] || { echo "run scripts/install-deps.sh (onnxruntime-node)" >&2; exit 1; }
export CI=1

if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi

/usr/bin/python3 "$source_dir/share/generate_sample_data.py" --out "$work/raw" --rows 3000 --seed 5 >/dev/null
/usr/bin/python3 - "$work" "$texts" <<'EOF'
import csv, json, sys
work, n = sys.argv[1], int(sys.argv[2])
queries = [r["query"] for r in csv.DictReader(open(work + "/raw/queries.tsv", encoding="utf-8"), delimiter="\t")]
titles = [r[1] for r in csv.reader(open(work + "/raw/products.csv", encoding="utf-8", errors="replace")) if len(r) == 3][1:]
reviews = [json.loads(l)["text"] for l in open(work + "/raw/reviews.jsonl", encoding="utf-8")]
pool = [t for t in queries + titles + reviews if t.strip() and not any(c in t for c in "\t\r\n")]
mixed = [pool[(i * 7919) % len(pool)] for i in range(n)]
open(work + "/texts.txt", "w", encoding="utf-8").write("\n".join(mixed) + "\n")
open(work + "/corpus.txt", "w", encoding="utf-8").write("\n".join(pool) + "\n")
EOF
[[ -f "$work/vocab.txt" ]] || "$recmodel" -q vocab --input "$work/corpus.txt" --size 8000 --lowercase --out "$work/vocab.txt" >/dev/null

has_predict=0
"$recmodel" help 2>/dev/null | grep -q "^  predict " && has_predict=1

printf 'ONNX Runtime (onnxruntime-node %s) on %s threads, batch %s, %s texts; load average %s\n' \
  "$(cd "$peers" && node -e "console.log(require('onnxruntime-node/package.json').version)" 2>/dev/null || echo '?')" \
  "$threads" "$batch" "$texts" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-6s %-5s %10s %12s %12s %10s\n' preset model "MB" "inputs/s" "b1 p50 ms" "b1 p90 ms"
for preset in $presets; do
  model="$work/$preset"
  if [[ ! -f "$model/onnx/model_quantized.onnx" ]]; then
    rm -rf "$model"
    "$recmodel" -q init --preset "$preset" --vocab "$work/vocab.txt" --labels a,b,c,d,e,f --out "$model" >/dev/null
    "$recmodel" -q export --model "$model" --quantize int8 >/dev/null
  fi
  "$recmodel" -q tokenize --model "$model" --input "$work/texts.txt" --max-length 128 --ids-only >"$work/tokens.jsonl"
  declare -A rate=()
  for kind in fp32 int8; do
    file="$model/onnx/model.onnx"; [[ $kind == int8 ]] && file="$model/onnx/model_quantized.onnx"
    result=$(cd "$peers" && node onnx_peers.mjs bench "$file" "$work/tokens.jsonl" --batch "$batch" \
      --threads "$threads" --seconds "$seconds")
    read -r throughput p50 p90 < <(/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.1f %.2f %.2f" % (r["throughput"], r["latency_ms"]["p50"], r["latency_ms"]["p90"]))' "$result")
    rate[$kind]=$throughput
    printf '%-6s %-5s %10.1f %12s %12s %10s\n' "$preset" "$kind" "$(($(stat -c %s "$file") / 100000))e-1" \
      "$throughput" "$p50" "$p90"
  done
  printf '%-6s int8/fp32 throughput: %.2fx (target >= 1.5x)\n' "$preset" \
    "$(/usr/bin/python3 -c "print(${rate[int8]} / ${rate[fp32]})")"
  if ((has_predict)); then
    start=$(date +%s.%N)
    "$recmodel" -q --threads "$threads" predict --model "$model" --input "$work/texts.txt" --batch-size "$batch" >/dev/null
    end=$(date +%s.%N)
    predict_rate=$(/usr/bin/python3 -c "print(round($texts / ($end - $start), 1))")
    printf '%-6s recmodel predict: %s inputs/s (load included); ONNX Runtime fp32 / recmodel = %.2fx\n' \
      "$preset" "$predict_rate" "$(/usr/bin/python3 -c "print(${rate[fp32]} / $predict_rate)")"
  else
    printf '%-6s recmodel predict: not built yet, no comparison\n' "$preset"
  fi
done
