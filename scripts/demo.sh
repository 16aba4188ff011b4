#!/usr/bin/env bash
# The lifecycle demo on shipped sample data: generate a synthetic e-commerce set, build a
# WordPiece vocabulary from it, prepare every task's dataset, and show what the model sees.
# Each later stage of recmodel (train, evaluate, export, registry, push) adds its step here.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh" >/dev/null
recmodel="${RECMODEL_BUILD_DIR:-$here/build}/recmodel"
out="${1:-$here/demo-out}"
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n==> %s\n' "$*" >&2; }

step "recmodel --version"
"$recmodel" --version

step "Generating the sample e-commerce data (seeded, deterministic)"
/usr/bin/python3 "$here/share/generate_sample_data.py" --seed 7 --rows 4000 --out "$out/raw"
ls -l "$out/raw" >&2

step "Building a 6,000-token WordPiece vocabulary from the product titles, queries and reviews"
/usr/bin/python3 - "$out/raw" "$out/corpus.txt" <<'PY'
import csv, json, sys
raw, corpus = sys.argv[1], sys.argv[2]
with open(corpus, "w", encoding="utf-8") as out:
    for name, column in (("products.csv", "title"), ("relevance.csv", "title")):
        with open(f"{raw}/{name}", encoding="utf-8", errors="replace", newline="") as f:
            for row in csv.DictReader(f):
                out.write((row.get(column) or "").replace("\n", " ") + "\n")
    with open(f"{raw}/queries.tsv", encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) > 1:
                out.write(parts[1] + "\n")
    with open(f"{raw}/reviews.jsonl", encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                out.write(str(json.loads(line).get("text", "")).replace("\n", " ") + "\n")
            except ValueError:
                pass
PY
"$recmodel" vocab --input "$out/corpus.txt" --size 6000 --lowercase --out "$out/vocab.txt"

step "Preprocessing: product titles -> category (classification, stratified split)"
"$recmodel" preprocess --input "$out/raw/products.csv" --text-column title --label-column category \
  --vocab "$out/vocab.txt" --out "$out/products" --max-length 64 --seed 7 --max-rejected 5%

step "Preprocessing: search queries -> intent"
"$recmodel" preprocess --input "$out/raw/queries.tsv" --text-column query --label-column intent \
  --vocab "$out/vocab.txt" --out "$out/queries" --max-length 32 --max-rejected 5%

step "Preprocessing: reviews -> 1-5 stars (regression)"
"$recmodel" preprocess --input "$out/raw/reviews.jsonl" --text-column text --label-column stars \
  --task regression --vocab "$out/vocab.txt" --out "$out/reviews" --max-length 128 --max-rejected 5%

step "Preprocessing: query + product title -> relevance (pairs, grouped by query so no query spans splits)"
"$recmodel" preprocess --input "$out/raw/relevance.csv" --text-column query --text-pair-column title \
  --label-column label --group-column query --vocab "$out/vocab.txt" --out "$out/relevance" \
  --max-length 96 --max-rejected 5%

step "Rows that were not used, with file, line and reason (first 5 of the products set)"
head -n 5 "$out/products/rejected.jsonl" >&2 || true

step "What the model sees for two queries"
printf 'Red running shoes, size 42\nnike air max 90 &amp; socks\n' | "$recmodel" tokenize --model "$out/products/tokenizer"

step "A randomly initialised BERT (tiny preset) with the product categories as labels"
"$recmodel" init --preset tiny --data "$out/products" --out "$out/models/products-init" --seed 7

step "Fine-tuning it on the product titles (all cores, dev accuracy checked every epoch)"
"$recmodel" train --model "$out/models/products-init" --data "$out/products" --out "$out/models/products" \
  --epochs 4 --batch-size 32 --lr 1e-3 --warmup-ratio 0.1 --seed 7

printf '\nDemo finished; artifacts are in %s\n' "$out" >&2
