#!/usr/bin/env bash
# `recmodel serve` under wrk next to the engine's offline limit, on the same model and texts:
#
#   bench/serve_throughput.sh [--preset small] [--conns "1 16 64"] [--seconds 15] [--texts 2000]
#                             [--threads N] [--batch-size 32] [--latency-texts 200] [--device cpu]
#                             [--soak N] [--recmodel PATH] [--vocab FILE] [--keep DIR]
#
# Model: `recmodel init --preset PRESET` over bert-base-uncased's vocabulary (random weights: speed
#   does not depend on them), 5 labels.
# Texts: search queries, product titles and reviews of share/generate_sample_data.py (--seed 5),
#   mixed as in bench/onnx_throughput.sh: real lengths, with that generator's noise.
# Offline (the engine's limit): `recmodel predict --input texts.txt --batch-size B`, its own
#   "predicted N texts in S s" figure (reading, tokenizing, batching by length, the model, JSONL out;
#   not the model load), run before and again after the server runs; the ratio uses their mean, since
#   a shared 2-core machine drifts by +-15% between minutes. Batch-1 latency: one line written to a running `recmodel predict
#   --batch-size 1` on a pipe, time until its answer line comes back, median of K (the method of
#   bench/predict_throughput.sh).
# Server: `recmodel serve --port 0` with its defaults (dynamic batching, --max-batch-requests 64);
#   wrk -t1 -cC -dSs with tests/peers/serve_post.lua, which loads the texts once per thread and posts
#   them in turn as {"inputs": TEXT} to /predict; its done() prints requests/s, p50/p99 latency and
#   wrk's errors. A 3 s wrk warm-up comes first. wrk's one thread takes a core the server cannot use.
# Table: conns | req/s | p50 | p99 | offline texts/s (mean of both runs) | ratio | offline batch-1 p50.
# Targets: at 64 connections >= 0.8x offline texts/s; at 1 connection p50 <= offline batch-1 p50 + 1 ms.
# --soak N: afterwards, wrk at 16 connections in ten rounds until N requests are answered; the
#   server's VmRSS after the first round (warm) and after the last; target: growth < 5%.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
lua="$source_dir/tests/peers/serve_post.lua"
preset=small
conns="1 16 64"
seconds=15
texts=2000
threads="$(nproc)"
batch=32
latency=200
device=cpu
soak=0
recmodel=""
vocab="$source_dir/../shared/data/vocab/bert-base-uncased.txt"
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --conns) conns="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --texts) texts="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --latency-texts) latency="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --soak) soak="$2"; shift 2 ;;
    --recmodel) recmodel="$2"; shift 2 ;;
    --vocab) vocab="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "usage: $0 [--preset P] [--conns \"1 16 64\"] [--seconds S] [--texts N] [--threads N] [--batch-size B]" \
         "[--latency-texts K] [--device D] [--soak N] [--recmodel PATH] [--vocab FILE] [--keep DIR]" >&2; exit 2 ;;
  esac
done
[[ -n "$recmodel" ]] || recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
[[ -x "$recmodel" ]] || { echo "recmodel binary not found; build it or pass --recmodel" >&2; exit 1; }
[[ -f "$vocab" ]] || { echo "vocabulary $vocab not found; pass --vocab FILE" >&2; exit 1; }
for tool in wrk curl jq; do command -v "$tool" >/dev/null || { echo "needs $tool (scripts/install-deps.sh)" >&2; exit 1; }; done
python=/usr/bin/python3
server=""
if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; fi
cleanup() {
  [[ -z "$server" ]] || kill -KILL "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  [[ -n "$keep" ]] || rm -rf "$work"
}
trap cleanup EXIT

# --- model and texts -------------------------------------------------------------------------------
model="$work/$preset"
[[ -f "$model/model.safetensors" ]] ||
  "$recmodel" -q init --preset "$preset" --vocab "$vocab" --labels books,electronics,garden,toys,beauty \
    --out "$model" --seed 1 >/dev/null
"$python" "$source_dir/share/generate_sample_data.py" --out "$work/raw" --rows 3000 --seed 5 >/dev/null
"$python" - "$work" "$texts" <<'PY'
import csv, json, sys
work, n = sys.argv[1], int(sys.argv[2])
queries = [r["query"] for r in csv.DictReader(open(work + "/raw/queries.tsv", encoding="utf-8"), delimiter="\t")]
titles = [r[1] for r in csv.reader(open(work + "/raw/products.csv", encoding="utf-8", errors="replace")) if len(r) == 3][1:]
reviews = [json.loads(l)["text"] for l in open(work + "/raw/reviews.jsonl", encoding="utf-8")]
pool = [t for t in queries + titles + reviews if t.strip() and not any(c in t for c in "\t\r\n")]
mixed = [pool[(i * 7919) % len(pool)] for i in range(n)]
open(work + "/texts.txt", "w", encoding="utf-8").write("\n".join(mixed) + "\n")
PY
tokens="$("$recmodel" -q tokenize --model "$model" --input "$work/texts.txt" --ids-only |
  "$python" -c 'import json,sys; l=[len(json.loads(x)["ids"]) for x in sys.stdin]; print("%.1f" % (sum(l)/len(l)))')"

echo "serve throughput: $(nproc) cores, --threads $threads, --device $device, preset $preset, $texts texts" \
  "(mean $tokens tokens), wrk -t1, ${seconds} s per run; load average $(cut -d' ' -f1 /proc/loadavg)"

# --- offline: the engine's limit -------------------------------------------------------------------
# offline_rate: texts/s of one offline `recmodel predict` over texts.txt.
offline_rate() {
  "$recmodel" --threads "$threads" predict --model "$model" --input "$work/texts.txt" --batch-size "$batch" \
    --device "$device" --top-k 0 >"$work/offline.jsonl" 2>"$work/offline.err"
  local rate
  rate="$(sed -n 's/.*predicted [0-9]* texts in [0-9.]* s (\([0-9.]*\) texts\/s.*/\1/p' "$work/offline.err")"
  [[ -n "$rate" ]] || { echo "no 'predicted N texts' line from recmodel predict: $(cat "$work/offline.err")" >&2; exit 1; }
  echo "$rate"
}
offline_before="$(offline_rate)"
read -r b1_p50 b1_p90 < <("$python" - "$recmodel" "$model" "$work/texts.txt" "$latency" "$threads" "$device" <<'PY'
import subprocess, sys, time
recmodel, model, path, k, threads, device = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
lines = open(path, encoding="utf-8").read().splitlines()[:k]
p = subprocess.Popen([recmodel, "--threads", threads, "predict", "--model", model, "--batch-size", "1", "--top-k", "0",
                      "--device", device, "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def ask(line):
    t0 = time.perf_counter()
    p.stdin.write((line + "\n").encode()); p.stdin.flush()
    p.stdout.readline()
    return (time.perf_counter() - t0) * 1000
for line in lines[:5]: ask(line)  # warm-up
times = sorted(ask(line) for line in lines)
p.stdin.close(); p.wait()
print("%.2f %.2f" % (times[len(times) // 2], times[int(len(times) * 0.9)]))
PY
)
echo "offline recmodel predict --batch-size $batch (before the server): $offline_before texts/s; batch-1 latency p50 $b1_p50 ms, p90 $b1_p90 ms"

# --- the server --------------------------------------------------------------------------------------
"$recmodel" --threads "$threads" serve --model "$model" --device "$device" --port 0 \
  >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for i in $(seq 600); do
  grep -q '^listening on http://' "$work/serve.out" && break
  kill -0 "$server" 2>/dev/null || { echo "serve exited: $(tail -n 5 "$work/serve.err")" >&2; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$work/serve.out")"
[[ -n "$url" ]] || { echo "serve did not print its 'listening on' line" >&2; exit 1; }
tokenizers="$(curl -s "$url/info" | jq -r '.tokenization_workers // "?"')"
# run_wrk CONNS SECONDS: wrk's JSON summary line.
run_wrk() {
  SERVE_TEXTS="$work/texts.txt" SERVE_TRACK=0 wrk -t1 -c"$1" -d"$2"s --timeout 10s -s "$lua" "$url" |
    grep '^{"requests"'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
run_wrk 16 3 >/dev/null  # warm-up

declare -A rate=() p50=() p99=() errors=()
for c in $conns; do
  read -r rate[$c] p50[$c] p99[$c] errors[$c] < <(run_wrk "$c" "$seconds" | jq -r '[.requests_per_s, .latency_ms.p50,
    .latency_ms.p99, (.errors | .connect + .read + .write + .status + .timeout)] | @tsv')
done
# The server stays up (idle) for the soak; offline runs again now, on the same machine minutes later.
offline_after="$(offline_rate)"
offline="$(awk -v a="$offline_before" -v b="$offline_after" 'BEGIN { printf "%.1f", (a + b) / 2 }')"
echo "offline again after the server runs: $offline_after texts/s; mean $offline texts/s"

printf '\n%5s | %9s | %8s | %8s | %15s | %5s | %19s | %s\n' conns req/s "p50 ms" "p99 ms" "offline texts/s" ratio \
  "offline batch-1 p50" "errors"
for c in $conns; do
  printf '%5s | %9.1f | %8.2f | %8.2f | %15s | %5.2f | %16s ms | %s\n' "$c" "${rate[$c]}" "${p50[$c]}" "${p99[$c]}" \
    "$offline" "$(awk -v a="${rate[$c]}" -v b="$offline" 'BEGIN { print a / b }')" "$b1_p50" "${errors[$c]}"
done
echo "(--threads $threads: the server's inference threads; $tokenizers tokenization worker(s); wrk -t1 shares the same $(nproc) cores)"

verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT met"; fi; }
if [[ -n "${rate[64]:-}" ]]; then
  echo "target c64 >= 0.8x offline: ${rate[64]} vs $(awk -v o="$offline" 'BEGIN { printf "%.1f", 0.8 * o }') req/s -> $(verdict "${rate[64]} >= 0.8 * $offline")"
fi
if [[ -n "${p50[1]:-}" ]]; then
  echo "target c1 p50 <= offline batch-1 p50 + 1 ms: ${p50[1]} vs $(awk -v b="$b1_p50" 'BEGIN { printf "%.2f", b + 1 }') ms -> $(verdict "${p50[1]} <= $b1_p50 + 1")"
fi

# --- soak ---------------------------------------------------------------------------------------------
if (( soak > 0 )); then
  rate16="${rate[16]:-}"
  [[ -n "$rate16" ]] || rate16="$(run_wrk 16 3 | jq -r .requests_per_s)"
  round=$(awk -v n="$soak" -v r="$rate16" 'BEGIN { s = n / 10 / r; printf "%d", (s < 1 ? 1 : s + 0.999) }')
  echo
  echo "soak: $soak requests at 16 connections, 10 rounds of ~${round} s"
  done_requests=0; errors=0; warm=""; series=""
  for i in $(seq 10); do
    r="$(run_wrk 16 "$round")"
    done_requests=$((done_requests + $(jq -r .requests <<<"$r")))
    errors=$((errors + $(jq -r '.errors | .connect + .read + .write + .status + .timeout' <<<"$r")))
    now="$(rss_kib)"
    [[ -n "$warm" ]] || warm="$now"
    series="$series $((now / 1024))"
    (( done_requests >= soak )) && break
  done
  # A last short round when the estimate fell short.
  while (( done_requests < soak )); do
    r="$(run_wrk 16 "$round")"
    done_requests=$((done_requests + $(jq -r .requests <<<"$r")))
    errors=$((errors + $(jq -r '.errors | .connect + .read + .write + .status + .timeout' <<<"$r")))
    now="$(rss_kib)"; series="$series $((now / 1024))"
  done
  growth="$(awk -v a="$warm" -v b="$now" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')"
  echo "soak: $done_requests requests, $errors errors; server VmRSS (MiB) after each round:$series"
  echo "soak: VmRSS warm $((warm / 1024)) MiB -> end $((now / 1024)) MiB: ${growth}% -> target < 5%: $(verdict "$growth < 5")"
fi

kill -TERM "$server"
code=0
wait "$server" || code=$?
server=""
(( code == 0 )) || echo "warning: serve exited $code after SIGTERM" >&2
