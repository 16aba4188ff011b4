#!/usr/bin/env bash
# recmodel's ONNX exports in real runtimes, offline, on a model trained on the sample queries:
#  - ONNX Runtime (onnxruntime-node) on onnx/model.onnx reproduces recmodel's fp32 logits within 1e-4
#    (max absolute difference) on 300 texts of 2-128 tokens batched 16 at a time with padding:
#    against `recmodel predict --logits`, and against the libtorch forward pass (export --verify);
#  - onnx/model_quantized.onnx agrees with the fp32 model on the top label for >= 99% of the texts,
#    and `recmodel quantize` keeps accuracy within its default gate (1 point);
#  - transformers.js, pipeline('text-classification', DIR) with env.allowRemoteModels = false, gives
#    the top label of `recmodel predict` for the fp32 model and, with dtype 'q8', for the int8 model;
#  - for the small preset, onnx/model_quantized.onnx is at most 30% of onnx/model.onnx.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
recmodel="${RECMODEL:-}"
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
python=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x "$recmodel" ]] || fail "recmodel binary not found (set RECMODEL)"
command -v node >/dev/null || fail "node is not installed (scripts/install-deps.sh installs it)"
for package in onnxruntime-node @huggingface/transformers; do
  [[ -d "$here/node_modules/$package" ]] || fail "$here/node_modules lacks $package (run scripts/install-deps.sh)"
done
export RECMODEL_ONNXRUNTIME_NODE="$here/node_modules/onnxruntime-node"
export CI=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm_q() { "$recmodel" -q "$@"; }
peers() { (cd "$here" && node onnx_peers.mjs "$@"); }
has_command() { "$recmodel" help 2>/dev/null | grep -q "^  $1 "; }

# Data: sample search queries labelled with their intent; a vocabulary learned from them.
"$python" "$source_dir/share/generate_sample_data.py" --out "$work/raw" --rows 2000 --seed 11 >/dev/null
"$python" - "$work" <<'EOF'
import csv, json, sys
work = sys.argv[1]
queries = [row["query"] for row in csv.DictReader(open(work + "/raw/queries.tsv", encoding="utf-8"), delimiter="\t")]
titles = [row[1] for row in csv.reader(open(work + "/raw/products.csv", encoding="utf-8", errors="replace")) if len(row) == 3][1:]
reviews = [json.loads(line)["text"] for line in open(work + "/raw/reviews.jsonl", encoding="utf-8")]
clean = lambda texts: [t for t in texts if t.strip() and not any(c in t for c in "\t\r\n")]
with open(work + "/corpus.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(clean(queries + titles + reviews)) + "\n")
# 300 texts of varied lengths: queries (short), product titles (medium), runs of 1-6 reviews (long).
r = clean(reviews)
runs = [" ".join(r[i:i + 1 + i % 6]) for i in range(len(r) - 400, len(r) - 100)][:100]
texts = clean(queries)[-100:] + clean(titles)[-100:] + runs
with open(work + "/texts.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(texts) + "\n")
EOF
rm_q vocab --input "$work/corpus.txt" --size 3000 --lowercase --out "$work/vocab.txt" >/dev/null
rm_q preprocess --input "$work/raw/queries.tsv" --text-column query --label-column intent \
  --vocab "$work/vocab.txt" --max-length 32 --max-rejected 5% --out "$work/data" >/dev/null

# A tiny model trained for a few epochs, so that its answers are decisive like a real one's.
rm_q init --preset tiny --data "$work/data" --seed 3 --out "$work/init" >/dev/null
rm_q train --model "$work/init" --data "$work/data" --out "$work/model" --epochs 3 --batch-size 32 --lr 1e-3 \
  --seed 3 >/dev/null

# int8 model directory, gated on the test split (default gate: accuracy may drop 1 point at most).
rm_q --json quantize --model "$work/model" --data "$work/data" --out "$work/int8" >"$work/quantize.json" \
  || fail "recmodel quantize failed its gate: $(cat "$work/quantize.json")"
"$python" - "$work/quantize.json" "$work/data" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
acc = r["metrics"]["accuracy"]
print("quantize: accuracy %.4f -> %.4f, top labels agree on %.2f%% of %d test examples, size %.0f%%"
      % (acc["before"], acc["after"], 100 * r["top_label_agreement"], r["data"]["examples"], 100 * r["size"]["ratio"]))
# The agreement checks mean something only for a model that tells the classes apart.
manifest = json.load(open(sys.argv[2] + "/manifest.json"))
test_labels = manifest["splits"]["test"]["labels"]
majority = max(test_labels.values()) / sum(test_labels.values())
assert acc["before"] > majority + 0.1, "the trained model (accuracy %.3f) is no better than always answering the most frequent class (%.3f)" % (acc["before"], majority)
assert r["gate"][0]["passed"]
EOF

# ONNX export, checked by recmodel itself against libtorch on 240 generated inputs.
rm_q --json export --model "$work/model" --quantize int8 --verify --verify-inputs 240 >"$work/export.json"
"$recmodel" -q export --model "$work/int8" >/dev/null  # the int8 directory's own model_quantized.onnx
"$python" - "$work/export.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["verify"]
assert "skipped" not in v, v
fp32, int8 = (f["outputs"]["logits"] for f in v["files"])
print("export --verify (%s, %d inputs of %d-%d tokens): fp32 max |diff| %.2e, int8 max |diff| %.2e (top label %.1f%%)"
      % (v["runtime"], v["inputs"], v["tokens"]["min"], v["tokens"]["max"], fp32["max_abs_diff"],
         int8["max_abs_diff"], 100 * int8["top_label_agreement"]))
assert fp32["max_abs_diff"] <= 1e-4 and fp32["ok"] and int8["ok"]
EOF

# ONNX Runtime on the 300 texts, tokenized by recmodel, 16 per batch with padding.
rm_q tokenize --model "$work/model" --input "$work/texts.txt" --max-length 128 --ids-only >"$work/tokens.jsonl"
peers ort "$work/model/onnx/model.onnx" "$work/tokens.jsonl" "$work/ort_fp32.jsonl" --batch 16
peers ort "$work/model/onnx/model_quantized.onnx" "$work/tokens.jsonl" "$work/ort_int8.jsonl" --batch 16

have_predict=0
if has_command predict; then
  have_predict=1
  rm_q predict --model "$work/model" --input "$work/texts.txt" --logits --batch-size 16 >"$work/predict_fp32.jsonl"
  rm_q predict --model "$work/int8" --input "$work/texts.txt" --batch-size 1 >"$work/predict_int8.jsonl"
else
  echo "note: recmodel predict is not built yet; comparing with export --verify's libtorch logits only"
fi

# transformers.js, offline, one text per call.
head -n 60 "$work/texts.txt" >"$work/texts60.txt"
sed -n '101,120p;201,220p' "$work/texts.txt" >>"$work/texts60.txt"
peers pipeline "$work/model" "$work/texts60.txt" "$work/tjs_fp32.jsonl" --dtype fp32
peers pipeline "$work/int8" "$work/texts60.txt" "$work/tjs_q8.jsonl" --dtype q8

"$python" - "$work" "$have_predict" <<'EOF'
import json, sys
work, have_predict = sys.argv[1], sys.argv[2] == "1"
load = lambda name: [json.loads(l) for l in open("%s/%s" % (work, name), encoding="utf-8")]
texts = open(work + "/texts.txt", encoding="utf-8").read().split("\n")[:-1]
tokens = load("tokens.jsonl")
lengths = [len(t["ids"]) for t in tokens]
ort_fp32, ort_int8 = load("ort_fp32.jsonl"), load("ort_int8.jsonl")
config = json.load(open(work + "/model/config.json"))
labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
argmax = lambda v: max(range(len(v)), key=lambda i: v[i])
assert len(ort_fp32) == len(texts) == 300 and len(ort_int8) == len(texts)
assert min(lengths) <= 6 and max(lengths) >= 60, "lengths %d-%d are not varied enough" % (min(lengths), max(lengths))
errors = []

agree = sum(argmax(a["logits"]) == argmax(b["logits"]) for a, b in zip(ort_fp32, ort_int8)) / len(texts)
print("ONNX Runtime int8 vs fp32 on %d texts of %d-%d tokens: top labels agree on %.2f%%"
      % (len(texts), min(lengths), max(lengths), 100 * agree))
if agree < 0.99:
    errors.append("int8 top labels agree with fp32 on only %.2f%% of the texts (< 99%%)" % (100 * agree))

tjs_fp32, tjs_q8 = load("tjs_fp32.jsonl"), load("tjs_q8.jsonl")
n = len(tjs_fp32)
sample = [texts.index(t) for t in open(work + "/texts60.txt", encoding="utf-8").read().split("\n")[:-1]]
if have_predict:
    pred = load("predict_fp32.jsonl")
    diff = max(abs(x - y) for p, o in zip(pred, ort_fp32) for x, y in zip(p["logits"], o["logits"]))
    print("ONNX Runtime fp32 vs recmodel predict --logits on %d texts: max |diff| %.2e" % (len(texts), diff))
    if diff > 1e-4:
        errors.append("ONNX Runtime's fp32 logits differ from recmodel predict's by %.3g (> 1e-4)" % diff)
    reference_fp32 = [pred[i]["label"] for i in sample]
    pred8 = load("predict_int8.jsonl")
    reference_q8 = [pred8[i]["label"] for i in sample]
else:
    reference_fp32 = [labels[argmax(ort_fp32[i]["logits"])] for i in sample]
    reference_q8 = [labels[argmax(ort_int8[i]["logits"])] for i in sample]
for name, got, want in (("fp32", tjs_fp32, reference_fp32), ("q8", tjs_q8, reference_q8)):
    same = sum(g["label"] == w for g, w in zip(got, want))
    print("transformers.js pipeline (dtype %s) vs recmodel%s: same top label on %d of %d texts"
          % (name, " predict" if have_predict else " (ONNX Runtime)", same, len(want)))
    if same != len(want):
        bad = [(texts[sample[i]], g["label"], w) for i, (g, w) in enumerate(zip(got, want)) if g["label"] != w]
        errors.append("transformers.js %s top labels differ on %d texts, e.g. %r" % (name, len(bad), bad[:3]))
for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF

# Size: the small preset's int8 file against its fp32 file.
rm_q init --preset small --data "$work/data" --out "$work/small" >/dev/null
rm_q export --model "$work/small" --quantize int8 >/dev/null
fp32=$(stat -c %s "$work/small/onnx/model.onnx")
int8=$(stat -c %s "$work/small/onnx/model_quantized.onnx")
echo "small preset: model.onnx $((fp32 / 1000000)) MB, model_quantized.onnx $((int8 / 1000000)) MB ($((100 * int8 / fp32))%)"
(( 100 * int8 <= 30 * fp32 )) || fail "the int8 file is $((100 * int8 / fp32))% of the fp32 file (> 30%)"
echo "onnx runtime checks: ok"
