#!/usr/bin/env bash
# The lifecycle demo on shipped sample data: generate a synthetic e-commerce set, build a
# WordPiece vocabulary from it, prepare every task's dataset, train a small BERT on product
# categories, gate it on the test split, predict, register and promote it, watch its traffic for
# drift and draw its report page, quantize to int8,
# export to ONNX (checked in ONNX Runtime), and move it between an on-prem S3 (a real Ceph
# gateway started here) and a public-cloud bucket, keeping private versions private; then the
# whole retraining loop again as one `recmodel pipeline run`.
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

export RECMODEL_REGISTRY="$out/registry.db" RECMODEL_CONFIG="$out/config.toml"
model="$out/models/products"

step "Evaluating on the held-out test split, with the quality gate a CI step would use"
"$recmodel" evaluate --model "$model" --data "$out/products" --split test \
  --fail-under accuracy=0.8,f1_macro=0.7 --report "$out/products-test.json"

step "Predicting the categories of a few product titles from a pipe (JSONL, top 2 labels)"
printf 'wireless noise cancelling headphones\norganic green tea 100 bags\nkids winter jacket size 8\n' |
  "$recmodel" predict --model "$model" --top-k 2

step "Registering the model (version 1 of 'products'), promoting it to production, recording its test metrics"
"$recmodel" registry register products --path "$model" --description "demo: tiny BERT on product titles"
"$recmodel" registry promote models:/products/1 --alias production --reason "passed the demo gate"
"$recmodel" evaluate --model models:/products@production --data "$out/products" --split test --record -q
"$recmodel" registry show models:/products@production

step "Monitoring: a batch of catalogue titles against the profile train recorded (no drift expected)"
"$recmodel" drift --model models:/products@production --input "$out/raw/products.csv" --text-column title

step "Monitoring: search queries sent to the product model by mistake: the drift gate a cron job would alert on"
rc=0
"$recmodel" drift --model models:/products@production --input "$out/raw/queries.tsv" --text-column query \
  --fail-over psi=0.2,js=0.1 --json >"$out/products-drift.json" || rc=$?
[[ $rc == 1 ]] || { echo "recmodel drift exited $rc on the queries, not 1 (drift)" >&2; exit 1; }
echo "exit 1: the drift gate failed, as it should" >&2

step "One HTML page about the production model: training curves, test metrics, confusion matrix, calibration, drift, lineage"
"$recmodel" report models:/products@production --data "$out/products" --drift "$out/products-drift.json" \
  --out "$out/products-report.html"

step "int8: quantizing the production model and checking the accuracy it loses (gate: 1 point)"
"$recmodel" quantize --model models:/products@production --data "$out/products" --out "$out/models/products-int8"

step "ONNX: exporting fp32 and int8 graphs in the layout ONNX Runtime, Optimum and transformers.js load"
export RECMODEL_ONNXRUNTIME_NODE="$here/tests/peers/node_modules/onnxruntime-node"  # installed by install-deps.sh
"$recmodel" export --model models:/products@production --quantize int8 --out "$out/models/products-onnx" --verify
ls -l "$out/models/products-onnx/onnx" >&2

step "Storage: an on-prem S3 (a real Ceph RADOS Gateway started here) and a public-cloud bucket"
cluster="$out/ceph"
trap '"$here/tests/storage/rgw_fixture.sh" stop "$cluster" >/dev/null 2>&1 || true' EXIT
eval "$(OWNER_PID=$$ MEMSTORE_BYTES=$((256 << 20)) "$here/tests/storage/rgw_fixture.sh" start "$cluster")"
export AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK"
"$recmodel" remote add onprem s3://models-onprem/recmodel --endpoint "$RGW_ENDPOINT" --private --create-bucket
"$recmodel" remote keygen "$out/cloud.key"
"$recmodel" remote add cloud s3://models-cloud/recmodel --endpoint "$RGW_ENDPOINT" --public --create-bucket \
  --encrypt --key-file "$out/cloud.key"
"$recmodel" remote list

step "Pushing production to the on-prem store, then syncing it to the public cloud"
"$recmodel" push models:/products@production --to onprem
"$recmodel" sync models:/products@production --from onprem --to cloud
"$recmodel" ls cloud

step "What the public cloud holds: ciphertext under HMAC names (no model name, no file hash, no plaintext)"
AWS_REGION=us-east-1 /usr/bin/aws --endpoint-url "$RGW_ENDPOINT" s3 ls --recursive s3://models-cloud/recmodel/ \
  >"$out/cloud-listing.txt"
head -n 5 "$out/cloud-listing.txt"
if grep -q -e products -e models/ "$out/cloud-listing.txt"; then
  echo "demo: the public bucket shows a model name" >&2; exit 1
fi

step "Data that must stay private: a version tagged classification=private is refused by the public remote"
"$recmodel" registry register products --path "$out/models/products-int8" --tag classification=private \
  --parent models:/products/1 --description "int8 of version 1, trained on private data"
"$recmodel" push models:/products/2 --to onprem
if "$recmodel" push models:/products/2 --to cloud; then
  echo "demo: the public remote accepted a private version" >&2; exit 1
else
  echo "(refused with exit $?, as it should be)" >&2
fi

step "Pulling production back from the cloud: every file's SHA-256 is checked before it is moved into place"
"$recmodel" pull models:/products@production --from cloud --out "$out/models/products-pulled"
printf 'wireless noise cancelling headphones\n' | "$recmodel" predict --model "$out/models/products-pulled" --top-k 1
"$recmodel" registry lineage models:/products/1

step "The nightly retraining loop as one pipeline run: train a challenger, gate it, quantize, export, register it with lineage, promote it only if it beats production, publish"
cat > "$out/nightly.toml" <<TOML
[data]
input = "raw/products.csv"
split = "0.8,0.1,0.1"
seed = 7
text_column = "title"
label_column = "category"
max_length = 64
max_rejected = "5%"
[model]
preset = "tiny"
vocab = "vocab.txt"
seed = 11
[train]
epochs = 6
batch_size = 32
lr = 1e-3
warmup_ratio = 0.1
seed = 11
[gates]
fail_under = { accuracy = 0.8, f1_macro = 0.7 }
[quantize]
max_drop = 0.02
[export]
int8 = true
[register]
name = "products"
tags = { team = "search", trigger = "nightly" }
classification = "internal"
[promotion]
alias = "production"
metric = "f1_macro"
min_improvement = 0.002
[publish]
remotes = ["onprem", "cloud"]
TOML
"$recmodel" pipeline status "$out/nightly.toml"
code=0
"$recmodel" pipeline run "$out/nightly.toml" || code=$?
# 1: the challenger did not beat production (registered, not promoted); anything else is a failure.
[[ $code == 0 || $code == 1 ]] || { echo "demo: the pipeline failed with exit $code" >&2; exit 1; }
cat "$out"/nightly.pipeline/runs/*/summary.md >&2
"$recmodel" registry history models:/products@production

step "The same pipeline again: nothing changed, so no stage runs"
"$recmodel" pipeline run "$out/nightly.toml" || [[ $? == "$code" ]]

printf '\nDemo finished; artifacts are in %s\n' "$out" >&2
