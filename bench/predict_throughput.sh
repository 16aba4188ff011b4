#!/usr/bin/env bash
# Predict throughput (texts/s) and batch-1 latency on the CPU, recmodel vs a plain PyTorch
# (Python) inference loop on the same model and the same inputs, for the small and base presets.
#
#   bench/predict_throughput.sh [--presets "small base"] [--texts N] [--threads N] [--batch-size B]
#                               [--latency-texts K] [--recmodel PATH] [--vocab FILE]
#
# recmodel: `recmodel predict --input texts.txt` — its own "predicted N texts in S s" figure, which
#   covers reading, tokenizing, batching by length, the model and writing JSONL (not the model
#   load). Latency: one line written to a running `recmodel predict` on a pipe, time until its
#   answer line comes back (tokenization and I/O included), median of K.
# PyTorch: bench/predict_torch.py — Hugging Face's BERT structure in plain torch, the same
#   model.safetensors, batches of B in input order padded to their longest text (the usual loop),
#   token ids made beforehand by `recmodel tokenize` (so its time has no tokenization). Latency:
#   one forward of batch 1, median of K.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
presets="small base"
texts=""
threads="$(nproc)"
batch=32
latency=100
recmodel=""
vocab="$source_dir/../shared/data/vocab/bert-base-uncased.txt"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --presets) presets="$2"; shift 2 ;;
    --texts) texts="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --latency-texts) latency="$2"; shift 2 ;;
    --recmodel) recmodel="$2"; shift 2 ;;
    --vocab) vocab="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$recmodel" ]] || recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
[[ -x "$recmodel" ]] || { echo "recmodel binary not found; build it or pass --recmodel" >&2; exit 1; }
[[ -f "$vocab" ]] || { echo "vocabulary $vocab not found; pass --vocab FILE" >&2; exit 1; }
python=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "predict throughput: $(nproc) cores, --threads $threads, batch $batch; $(basename "$vocab")"
printf '%-6s %6s  %-9s %12s %14s %14s\n' preset texts tool texts/s "batch-1 p50" "batch-1 p90"
for preset in $presets; do
  n="$texts"
  [[ -n "$n" ]] || { [[ "$preset" == base ]] && n=400 || n=2000; }
  model="$work/$preset"
  "$recmodel" init --preset "$preset" --vocab "$vocab" --labels books,electronics,garden,toys,beauty --out "$model" \
    --seed 1 -q >/dev/null
  # Product titles and queries of 2-40 words from the vocabulary's whole words.
  "$python" - "$vocab" "$n" "$work/texts.txt" <<'PY'
import random, sys
words = [w.strip() for w in open(sys.argv[1], encoding="utf-8")][2000:12000]
words = [w for w in words if w.isalpha()]
rng = random.Random(7)
with open(sys.argv[3], "w") as f:
    for _ in range(int(sys.argv[2])):
        f.write(" ".join(rng.choice(words) for _ in range(rng.choice([2, 3, 4, 6, 8, 12, 20, 30, 40]))) + "\n")
PY
  "$recmodel" tokenize --model "$model" --input "$work/texts.txt" --ids-only >"$work/ids.jsonl"

  "$recmodel" --threads "$threads" predict --model "$model" --input "$work/texts.txt" --batch-size "$batch" \
    --top-k 0 >"$work/ours.jsonl" 2>"$work/ours.err"
  ours_rate=$(sed -n 's/.*predicted [0-9]* texts in [0-9.]* s (\([0-9.]*\) texts\/s.*/\1/p' "$work/ours.err")
  ours_latency=$("$python" - "$recmodel" "$model" "$work/texts.txt" "$latency" "$threads" <<'PY'
import subprocess, sys, time
recmodel, model, path, k, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
lines = open(path).read().splitlines()[:k]
p = subprocess.Popen([recmodel, "--threads", threads, "predict", "--model", model, "--batch-size", "1", "--top-k", "0",
                      "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def ask(line):
    t0 = time.perf_counter()
    p.stdin.write((line + "\n").encode()); p.stdin.flush()
    p.stdout.readline()
    return (time.perf_counter() - t0) * 1000
ask(lines[0]); ask(lines[1])  # warm-up
times = sorted(ask(line) for line in lines)
p.stdin.close(); p.wait()
print("%.2f %.2f" % (times[len(times) // 2], times[int(len(times) * 0.9)]))
PY
)
  "$python" "$here/predict_torch.py" "$model" "$work/ids.jsonl" --threads "$threads" --batch-size "$batch" \
    --latency-texts "$latency" >"$work/torch.json"
  read -r torch_rate torch_p50 torch_p90 agree < <("$python" - "$work/torch.json" "$work/ours.jsonl" "$model" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
labels = [v for k, v in sorted(json.load(open(sys.argv[3] + "/config.json"))["id2label"].items(), key=lambda kv: int(kv[0]))]
ours = [json.loads(l)["label"] for l in open(sys.argv[2])]
agree = sum(labels[p] == o for p, o in zip(t["predictions"], ours)) / len(ours)
print("%.1f %.2f %.2f %.4f" % (t["texts_per_s"], t["latency_ms_p50"], t["latency_ms_p90"], agree))
PY
)
  printf '%-6s %6s  %-9s %12s %11s ms %11s ms\n' "$preset" "$n" recmodel "$ours_rate" ${ours_latency% *} ${ours_latency#* }
  printf '%-6s %6s  %-9s %12s %11s ms %11s ms\n' "$preset" "$n" pytorch "$torch_rate" "$torch_p50" "$torch_p90"
  "$python" -c "import sys; o,t=float(sys.argv[1]),float(sys.argv[2]); print('%-6s throughput recmodel/pytorch = %.2fx; batch-1 p50 pytorch/recmodel = %.2fx; same top label on %.2f%% of texts' % (sys.argv[5], o/t, float(sys.argv[4])/float(sys.argv[3]), 100*float(sys.argv[6])))" \
    "$ours_rate" "$torch_rate" "${ours_latency% *}" "$torch_p50" "$preset" "$agree"
done
