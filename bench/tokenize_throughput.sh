#!/usr/bin/env bash
# Tokenization throughput: recmodel (1 thread, all threads) vs transformers.js (single-threaded) on
# the same >= 20 MB corpus of generated e-commerce text and the same 30,522-entry bert-base-uncased
# vocabulary, in one run. Prints MB/s, tokens/s and the ratios.
#
#   bench/tokenize_throughput.sh [--mb 24] [--runs 3] [--recmodel PATH] [--vocab FILE] [--keep DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
mb=24
runs=3
recmodel="${RECMODEL:-}"
vocab="${RECMODEL_SHARED_DATA:-$source_dir/../shared/data}/vocab/bert-base-uncased.txt"
keep=""
while (( $# )); do
  case "$1" in
    --mb) mb=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --recmodel) recmodel=$2; shift 2 ;;
    --vocab) vocab=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "tokenize_throughput.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
[[ -x "$recmodel" ]] || { echo "tokenize_throughput.sh: no recmodel binary (build it, or pass --recmodel PATH)" >&2; exit 1; }
[[ -f "$vocab" ]] || { echo "tokenize_throughput.sh: vocabulary $vocab not found (pass --vocab FILE)" >&2; exit 1; }
[[ -d "$source_dir/tests/peers/node_modules/@huggingface/transformers" ]] \
  || { echo "tokenize_throughput.sh: transformers.js missing; run scripts/install-deps.sh" >&2; exit 1; }

if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
corpus="$work/corpus-${mb}mb.txt"

# A deterministic corpus: review texts, product titles and search queries from the sample-data
# generator, one per line (line breaks inside a text become spaces).
if [[ ! -s "$corpus" ]]; then
  /usr/bin/python3 - "$source_dir" "$corpus" "$mb" <<'EOF'
import importlib.util, os, sys
source_dir, out_path, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = importlib.util.spec_from_file_location("g", os.path.join(source_dir, "share", "generate_sample_data.py"))
g = importlib.util.module_from_spec(spec)
spec.loader.exec_module(g)
gen = g.Generator(20240601, 1)
rng = gen.rng
intents = g.INTENTS
target = mb * 1000 * 1000
written = 0
with open(out_path, "w", encoding="utf-8", newline="\n") as out:
    batch = []
    while written < target:
        r = rng.random()
        if r < 0.5:
            text = gen.review(1 + int(rng.random() * 5))
            if rng.random() < 0.5:  # real reviews run longer than one template
                text += " " + gen.review(1 + int(rng.random() * 5))
        elif r < 0.85:
            text = gen.noisy_title()[0]
        else:
            text = gen.query(intents[int(rng.random() * len(intents))])
        line = " ".join(text.split("\n")).replace("\r", " ") + "\n"
        batch.append(line)
        written += len(line.encode("utf-8"))
        if len(batch) >= 4096:
            out.write("".join(batch))
            batch = []
    out.write("".join(batch))
EOF
fi

bytes=$(stat -c %s "$corpus")
lines=$(wc -l <"$corpus")
cores=$(nproc)
ids_only=()
if "$recmodel" tokenize --help | grep -q -- '--ids-only'; then ids_only=(--ids-only); fi

# The tokenizer.json transformers.js loads is the one recmodel writes for this vocabulary.
"$recmodel" tokenize --vocab "$vocab" --write-tokenizer "$work/model" >/dev/null

# Warm-up run (page cache, and the token count recmodel reports).
"$recmodel" --no-progress tokenize --vocab "$vocab" --input "$corpus" --no-special --max-length 0 \
  "${ids_only[@]}" >"$work/ids.jsonl"
tokens=$(/usr/bin/python3 -c '
import json, sys
print(sum(len(json.loads(l)["ids"]) for l in open(sys.argv[1], encoding="utf-8")))' "$work/ids.jsonl")
rm -f "$work/ids.jsonl"

# Best wall time and best CPU time (user + system) of $runs runs, output to /dev/null. CPU time is
# the fairer figure on a machine that other processes share.
time_recmodel() {
  local threads=$1 best_wall="" best_cpu="" wall cpu
  for ((i = 0; i < runs; ++i)); do
    /usr/bin/time -f "%e %U %S" -o "$work/time.txt" \
      "$recmodel" --no-progress --threads "$threads" tokenize --vocab "$vocab" --input "$corpus" \
      --no-special --max-length 0 "${ids_only[@]}" >/dev/null
    read -r wall cpu <<<"$(awk '{print $1, $2 + $3}' "$work/time.txt")"
    if [[ -z "$best_wall" ]] || awk "BEGIN{exit !($wall < $best_wall)}"; then best_wall=$wall; fi
    if [[ -z "$best_cpu" ]] || awk "BEGIN{exit !($cpu < $best_cpu)}"; then best_cpu=$cpu; fi
  done
  echo "$best_wall $best_cpu"
}
read -r wall_1 cpu_1 <<<"$(time_recmodel 1)"
read -r wall_n cpu_n <<<"$(time_recmodel "$cores")"
load=$(cut -d' ' -f1 /proc/loadavg)

js_json=$(cd "$here" && node tokenize_throughput.mjs --model-dir "$work/model" --corpus "$corpus")

/usr/bin/python3 - "$bytes" "$lines" "$tokens" "$cores" "$wall_1" "$cpu_1" "$wall_n" "$cpu_n" "$js_json" \
  "$load" "${ids_only[*]:-}" <<'EOF'
import json, sys
size, lines, tokens, cores = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wall_1, cpu_1, wall_n, cpu_n = (float(x) for x in sys.argv[5:9])
js = json.loads(sys.argv[9])
load, ids_only = float(sys.argv[10]), sys.argv[11]
mb = size / 1e6
print("corpus: %.1f MB, %d lines, %d tokens (bert-base-uncased, no [CLS]/[SEP]); %d cores, load average %.2f"
      % (mb, lines, tokens, cores, load))
if load > 0.5:
    print("NOTE: the machine is busy (load %.2f): wall times are inflated; compare CPU times" % load)
if js["tokens"] != tokens:
    print("WARNING: transformers.js counted %d tokens, recmodel %d: the tokenizers disagree on this corpus"
          % (js["tokens"], tokens))
rows = [
    ("recmodel, 1 thread", wall_1, cpu_1),
    ("recmodel, %d threads" % cores, wall_n, cpu_n),
    ("transformers.js %s, 1 thread" % js["version"], js["seconds"], js["cpu_seconds"]),
]
print()
print("%-32s %8s %8s %9s %12s %9s" % ("tokenizer", "wall s", "CPU s", "MB/s", "tokens/s", "vs js"))
for name, wall, cpu in rows:
    print("%-32s %8.2f %8.2f %9.1f %12s %8.1fx" % (name, wall, cpu, mb / wall, "{:,.0f}".format(tokens / wall),
                                                js["seconds"] / wall))
print("(MB/s, tokens/s and 'vs js' use wall time. recmodel's time covers the whole process: start-up,")
print(" reading the file, tokenizing, writing JSON%s. transformers.js's covers its encode() loop only.)"
      % (" with --ids-only" if ids_only else ""))
print()
print("recmodel vs transformers.js, single-threaded: %.1fx wall, %.1fx CPU time (target >= 10x)"
      % (js["seconds"] / wall_1, js["cpu_seconds"] / cpu_1))
print("recmodel thread scaling 1 -> %d threads: %.2fx wall (ideal %dx); CPU time %.2fx that of 1 thread"
      % (cores, wall_1 / wall_n, cores, cpu_n / cpu_1))
EOF
