#!/usr/bin/env bash
# recmodel's WordPiece ids equal transformers.js's (loading the tokenizer.json recmodel writes, offline)
# on >= 2,000 varied strings, single and paired, untruncated and truncated, for the uncased, cased,
# multilingual-cased and Chinese BERT vocabularies. Fails listing the first mismatches.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
shared="${RECMODEL_SHARED_DATA:-$source_dir/../shared/data}"
recmodel="${RECMODEL:-}"
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi

if [[ ! -d "$shared/vocab" ]]; then
  echo "FAILED: tokenizer parity needs the shared BERT vocabularies in $shared/vocab" >&2
  exit 1
fi
[[ -x "$recmodel" ]] || { echo "FAIL: recmodel binary not found (set RECMODEL)" >&2; exit 1; }
command -v node >/dev/null || { echo "FAIL: node is not installed (scripts/install-deps.sh installs it)" >&2; exit 1; }
[[ -d "$here/node_modules/@huggingface/transformers" ]] \
  || { echo "FAIL: $here/node_modules lacks @huggingface/transformers (run scripts/install-deps.sh)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 "$here/parity_strings.py" --source-dir "$source_dir" --out "$work/inputs.jsonl" 2>"$work/count"
count=$(wc -l <"$work/inputs.jsonl")
(( count >= 2000 )) || { echo "FAIL: only $count parity inputs were generated" >&2; exit 1; }

status=0
# name  vocabulary file  recmodel flags  transformers.js flags
run_vocab() {
  local name=$1 vocab=$2 cased=$3
  local flags=() js=(--lowercase)
  if [[ "$cased" == cased ]]; then flags=(--cased); js=(); fi
  local model="$work/$name"
  "$recmodel" tokenize --vocab "$vocab" "${flags[@]}" --write-tokenizer "$model" >/dev/null
  local cases=()
  for max in 16 512; do
    "$recmodel" tokenize --vocab "$vocab" "${flags[@]}" --jsonl --input "$work/inputs.jsonl" \
      --max-length "$max" >"$work/$name.$max.jsonl"
    cases+=(--case "$name:$max:$work/$name.$max.jsonl")
  done
  # Untruncated, through the written model directory (its tokenizer_config.json must carry the case).
  "$recmodel" tokenize --model "$model" --jsonl --input "$work/inputs.jsonl" --max-length 0 \
    >"$work/$name.0.jsonl"
  cases+=(--case "$name(--model):0:$work/$name.0.jsonl")
  (cd "$here" && node tokenizer_parity.mjs --model-dir "$model" --vocab "$vocab" "${js[@]}" \
    --inputs "$work/inputs.jsonl" "${cases[@]}") || status=1
}

echo "tokenizer parity: $(cat "$work/count")"
run_vocab bert-base-uncased "$shared/vocab/bert-base-uncased.txt" uncased
run_vocab bert-base-cased "$shared/vocab/bert-base-cased.txt" cased
run_vocab bert-base-multilingual-cased "$shared/vocab/bert-base-multilingual-cased.txt" cased
run_vocab bert-base-chinese "$shared/vocab/bert-base-chinese.txt" cased

# Plain-text input (one text per line; --pair: TAB-separated) must give the ids --jsonl gives for the
# same texts: the inputs without line breaks or TABs, compared with the uncased run above.
uncased="$shared/vocab/bert-base-uncased.txt"
/usr/bin/python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
singles, pairs = [], []
for i, line in enumerate(open(work + "/inputs.jsonl", encoding="utf-8")):
    item = json.loads(line)
    texts = [item["text"]] + ([item["pair"]] if "pair" in item else [])
    if any(c in t for t in texts for c in "\n\r\t"):
        continue
    (pairs if "pair" in item else singles).append((i, "\t".join(texts)))
for name, rows in (("singles", singles), ("pairs", pairs)):
    with open("%s/%s.txt" % (work, name), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(text + "\n" for _, text in rows))
    with open("%s/%s.index" % (work, name), "w") as f:
        f.write("\n".join(str(i) for i, _ in rows) + "\n")
EOF
"$recmodel" tokenize --vocab "$uncased" --input "$work/singles.txt" --max-length 512 >"$work/singles.out"
"$recmodel" tokenize --vocab "$uncased" --pair --input "$work/pairs.txt" --max-length 512 >"$work/pairs.out"
/usr/bin/python3 - "$work" <<'EOF' || status=1
import json, sys
work = sys.argv[1]
reference = [json.loads(l) for l in open(work + "/bert-base-uncased.512.jsonl", encoding="utf-8")]
inputs = [l.rstrip("\n") for l in open(work + "/inputs.jsonl", encoding="utf-8")]
bad = []
for name in ("singles", "pairs"):
    index = [int(x) for x in open("%s/%s.index" % (work, name)).read().split()]
    got = [json.loads(l) for l in open("%s/%s.out" % (work, name), encoding="utf-8")]
    if len(got) != len(index):
        bad.append("%s: %d output lines for %d input lines" % (name, len(got), len(index)))
        continue
    for i, out in zip(index, got):
        want = reference[i]
        if out["ids"] != want["ids"] or out.get("type_ids") != want.get("type_ids"):
            bad.append("%s: input %s\n    line mode:  %s %s\n    --jsonl:    %s %s" % (
                name, inputs[i][:300], out["ids"], out.get("type_ids"), want["ids"], want.get("type_ids")))
if bad:
    print("MISMATCH plain-text input vs --jsonl input: %d cases; the first 5:" % len(bad))
    print("\n".join("  " + b for b in bad[:5]))
    sys.exit(1)
print("ok plain-text lines and --pair TAB lines give the --jsonl ids")
EOF

if (( status != 0 )); then
  echo "FAIL: recmodel and transformers.js tokenize differently (cases above)" >&2
fi
exit "$status"
