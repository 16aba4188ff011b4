#!/usr/bin/env bash
# CPU training throughput: recmodel train vs a plain PyTorch training loop (bench/train_torch_loop.py,
# Debian's python3-torch) on the same model (preset), the same prepared split, batch size, optimizer and
# length bucketing, with the same thread count; then data-parallel scaling (2 processes x 1 thread vs
# 1 process x 2 threads) and peak RSS of recmodel train at two dataset sizes.
#
#   bench/train_throughput.sh [--preset small] [--rows 6000] [--batch-size 32] [--threads N] [--recmodel PATH]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
preset=small
rows=6000
batch=32
threads=$(nproc)
recmodel="${RECMODEL:-}"
vocab="${RECMODEL_SHARED_DATA:-$source_dir/../shared/data}/vocab/bert-base-uncased.txt"
while (( $# )); do
  case "$1" in
    --preset) preset=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --recmodel) recmodel=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "train_throughput.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$recmodel" ]] || recmodel="$source_dir/build/recmodel"
[[ -x "$recmodel" ]] || { echo "train_throughput.sh: no recmodel binary at $recmodel (build it, or pass --recmodel)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CI=1

prepare() {  # rows out
  /usr/bin/python3 "$source_dir/share/generate_sample_data.py" --seed 3 --rows "$1" --out "$work/raw-$1" >/dev/null
  "$recmodel" preprocess --input "$work/raw-$1/products.csv" --text-column title --label-column category \
    --vocab "$vocab" --out "$2" --max-length 64 --max-rejected 10% >/dev/null
}

prepare "$rows" "$work/data"
"$recmodel" init --preset "$preset" --data "$work/data" --out "$work/model" --seed 1 >/dev/null
"$recmodel" train --model "$work/model" --data "$work/data" --out "$work/trained" --epochs 1 \
  --batch-size "$batch" --log-every 5 --threads "$threads" >/dev/null
# Rates of the logged intervals after the first (start-up and allocation excluded, as for the peer).
read -r steps ours_sps ours_tps < <(/usr/bin/python3 - "$work/trained/train_log.jsonl" <<'PY'
import json, sys
records = [r for r in map(json.loads, open(sys.argv[1])) if "samples_per_second" in r]  # step records, not evaluations
timed = records[1:] or records
n = records[-1]["step"]
sps = sum(r["samples_per_second"] for r in timed) / len(timed)
tps = sum(r["tokens_per_second"] for r in timed) / len(timed)
print(n, f"{sps:.2f}", f"{tps:.0f}")
PY
)
peer_steps=$((steps > 60 ? 60 : steps))
rates() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f %.0f" % (d["samples_per_second"], d["tokens_per_second"]))'; }
read -r peer_sps peer_tps < <(/usr/bin/python3 "$here/train_torch_loop.py" "$work/model" "$work/data/train.bin" "$batch" "$peer_steps" "$threads" | rates)
# The same loop under the runtime settings recmodel gives itself (cli/app.cpp, cli/system_info.cpp):
# sleeping OpenMP workers, tensors kept on the heap, huge pages. Shows what is settings and what is code.
read -r tuned_sps tuned_tps < <(OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483647 \
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 /usr/bin/python3 "$here/train_torch_loop.py" "$work/model" "$work/data/train.bin" \
  "$batch" "$peer_steps" "$threads" | rates)
blas=$("$recmodel" --version | sed -n 's/^BLAS: //p')

printf '\nTraining throughput, preset %s, batch %s, %s threads, BLAS %s\n' "$preset" "$batch" "$threads" "$blas"
printf '%-30s %14s %14s\n' "" "samples/s" "tokens/s"
printf '%-30s %14s %14s\n' "recmodel train" "$ours_sps" "$ours_tps"
printf '%-30s %14s %14s\n' "PyTorch loop (python3-torch)" "$peer_sps" "$peer_tps"
printf '%-30s %14s %14s\n' "  same, recmodel's settings" "$tuned_sps" "$tuned_tps"
/usr/bin/python3 -c "print(f'ratio recmodel / PyTorch: {$ours_sps / $peer_sps:.2f}x (target >= 1.2x); '
                           f'against the loop under recmodel\'s runtime settings: {$ours_sps / $tuned_sps:.2f}x')"

# Data-parallel scaling on this machine's cores: c10d/Gloo over loopback. The same global batch and
# steps as 1 process x 1 thread, 1 process x 2 threads and 2 processes x 1 thread (--nproc-per-node 2;
# rank 0 logs the global samples/s). Scaling efficiency = 2x1 rate / (2 x the 1x1 rate).
interval_rate() {  # train_log.jsonl -> mean samples/s of the intervals after the first
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
records = [r for r in map(json.loads, open(sys.argv[1])) if "samples_per_second" in r]
timed = records[1:] or records
print(f"{sum(r['samples_per_second'] for r in timed) / len(timed):.2f}")
PY
}
scaling_run() {  # name threads [train options...]
  local name=$1 threads=$2; shift 2
  "$recmodel" --threads "$threads" train --model "$work/model" --data "$work/data" --out "$work/$name" \
    --batch-size "$batch" --log-every 5 --stop-after 60 "$@" >/dev/null 2>"$work/$name.err" || [[ $? == 130 ]] ||
    { cat "$work/$name.err" >&2; exit 1; }
  interval_rate "$work/$name.train/train_log.jsonl"
}
one_by_one=$(scaling_run dp-1x1 1)
one_by_two=$(scaling_run dp-1x2 2)
two_by_one=$(scaling_run dp-2x1 1 --nproc-per-node 2)
printf '\nData-parallel training (c10d Gloo, loopback), preset %s, global batch %s, 60 steps\n' "$preset" "$batch"
printf '%-34s %12s\n' "" "samples/s"
printf '%-34s %12s\n' "1 process x 1 thread" "$one_by_one" "1 process x 2 threads" "$one_by_two" \
  "2 processes x 1 thread" "$two_by_one"
/usr/bin/python3 -c "print(f'2 processes x 1 thread / 1 process x 2 threads: {$two_by_one / $one_by_two:.2f}x; '
                           f'scaling efficiency of 2 processes: {$two_by_one / (2 * $one_by_one):.0%}')"

# Peak RSS must not grow with the dataset: the same number of steps on 1x and 10x the rows.
printf '\nPeak RSS of recmodel train (%s preset, 40 steps)\n' "$preset"
for n in 2000 20000; do
  prepare "$n" "$work/data-$n"
  /usr/bin/time -v "$recmodel" train --model "$work/model" --data "$work/data-$n" --out "$work/rss-$n" \
    --batch-size "$batch" --stop-after 40 --threads "$threads" >/dev/null 2>"$work/time-$n" || true
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time-$n")
  printf '%8s rows: %6d MiB\n' "$n" "$((rss / 1024))"
done
