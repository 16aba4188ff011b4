#!/usr/bin/env bash
# recmodel preprocess at 100k and 1M generated product rows: rows/s, MB/s of raw CSV and peak RSS
# (from /usr/bin/time -v), to show throughput and that memory does not grow with the row count.
#
#   bench/preprocess_scale.sh [--rows "100000 1000000"] [--threads N] [--recmodel PATH] [--vocab FILE] [--keep DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
sizes="100000 1000000"
threads=0
recmodel="${RECMODEL:-}"
vocab="${RECMODEL_SHARED_DATA:-$source_dir/../shared/data}/vocab/bert-base-uncased.txt"
keep=""
while (( $# )); do
  case "$1" in
    --rows) sizes=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --recmodel) recmodel=$2; shift 2 ;;
    --vocab) vocab=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "preprocess_scale.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
[[ -x "$recmodel" ]] || { echo "preprocess_scale.sh: no recmodel binary (build it, or pass --recmodel PATH)" >&2; exit 1; }
[[ -f "$vocab" ]] || { echo "preprocess_scale.sh: vocabulary $vocab not found (pass --vocab FILE)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "preprocess_scale.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
"$recmodel" preprocess --help >/dev/null 2>&1 \
  || { echo "preprocess_scale.sh: this recmodel has no 'preprocess' command" >&2; exit 1; }

if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi

results=()
for rows in $sizes; do
  data="$work/products-$rows"
  if [[ ! -s "$data/products.csv" ]]; then
    /usr/bin/python3 "$source_dir/share/generate_sample_data.py" --seed 1 --rows "$rows" --only products \
      --out "$data" >/dev/null
  fi
  out="$work/prepared-$rows"
  rm -rf "$out"
  cat "$data/products.csv" >/dev/null  # page cache: time the tool, not the disk
  set +e
  /usr/bin/time -v -o "$work/time-$rows.txt" "$recmodel" --no-progress --threads "$threads" preprocess \
    --input "$data/products.csv" --text-column title --label-column category --vocab "$vocab" \
    --out "$out" --max-rejected 5% >"$work/stdout-$rows.txt" 2>"$work/stderr-$rows.txt"
  rc=$?
  set -e
  if (( rc != 0 )); then
    echo "preprocess_scale.sh: recmodel preprocess failed on $rows rows (exit $rc):" >&2
    tail -n 5 "$work/stderr-$rows.txt" >&2
    exit 1
  fi
  results+=("$rows $(stat -c %s "$data/products.csv") $work/time-$rows.txt")
done

/usr/bin/python3 - "$threads" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)" "${results[@]}" <<'EOF'
import re, sys
threads, cores, load = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print("recmodel preprocess on generated products.csv (title -> category, bert-base-uncased, --max-rejected 5%%), "
      "--threads %s on %d cores, load average %.2f" % (threads or "0 (all)", cores, load))
if load > 0.5:
    print("NOTE: the machine is busy: wall times (and so rows/s, MB/s) are inflated; CPU seconds are not")
print()
print("%10s %8s %8s %8s %10s %7s %7s %12s" % ("rows", "CSV MB", "wall s", "CPU s", "rows/s", "MB/s", "CPU %",
                                            "peak RSS MB"))
peaks = []
for entry in sys.argv[4:]:
    rows, size, path = entry.split(" ", 2)
    rows, size = int(rows), int(size)
    text = open(path).read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    seconds = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    rss_mb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", text).group(1)
    cpu_seconds = sum(float(re.search(r"%s time \(seconds\): ([\d.]+)" % kind, text).group(1))
                      for kind in ("User", "System"))
    peaks.append((rows, rss_mb))
    print("%10d %8.1f %8.2f %8.2f %10s %7.1f %7s %12.1f" % (rows, size / 1e6, seconds, cpu_seconds,
                                                          "{:,.0f}".format(rows / seconds), size / 1e6 / seconds,
                                                          cpu, rss_mb))
print()
print("target: >= 20 MB/s of raw CSV on 2 cores; peak RSS independent of the row count")
if len(peaks) >= 2:
    (r0, m0), (r1, m1) = peaks[0], peaks[-1]
    print("peak RSS grows %.2fx for %.0fx the rows" % (m1 / m0, r1 / r0))
EOF
