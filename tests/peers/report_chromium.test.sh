#!/usr/bin/env bash
# `recmodel report` in a real browser: Debian's chromium loads the page of a small trained,
# registered model (with a drift result) from disk, headless, with no console error; its DOM, as
# chromium parsed it, holds the charts (training curves, the confusion matrix with one cell per
# pair of classes, score histogram, reliability diagram, drift histograms) and the accuracy and
# F1 that `recmodel evaluate --json` gives on the same split; and a screenshot is taken.
# Env (set by CTest): RECMODEL (the binary), RECMODEL_SOURCE_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
recmodel="${RECMODEL:-$here/../../build/recmodel}"
python=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v chromium >/dev/null || fail "needs chromium (Debian's chromium; scripts/install-deps.sh)"
[[ -x "$recmodel" ]] || fail "no recmodel binary at $recmodel (set RECMODEL)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Three product categories told apart by their nouns (the CLI tests' task), deterministic.
"$python" - <<'EOF'
nouns = [["shoe", "shirt", "size"], ["lamp", "sofa", "cable"], ["apple", "bread", "cheese"]]
names = ["clothing", "home", "grocery"]
filler = ["red", "blue", "green", "big", "small", "new", "cheap", "best", "for", "with"]
words = filler + [n for group in nouns for n in group] + ["phone"]
open("vocab.txt", "w").write("".join(w + "\n" for w in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
state = 11
def draw():
    global state
    state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
    return state >> 8
rows = ["id,title,category"]
for i in range(600):
    label = draw() % 3
    title = " ".join(filler[draw() % 10] for _ in range(2 + draw() % 5)) + " " + nouns[label][draw() % 3]
    rows.append(f"{i},{title},{names[label]}")
open("raw.csv", "w").write("\n".join(rows) + "\n")
EOF
export RECMODEL_REGISTRY="$work/registry.db" CI=1
"$recmodel" preprocess --input raw.csv --text-column title --label-column category --vocab vocab.txt \
  --out data --max-length 16 -q >/dev/null
"$recmodel" init --preset tiny --data data --out init --seed 3 -q >/dev/null
"$recmodel" train --model init --data data --out model --epochs 2 --batch-size 16 --lr 2e-3 --seed 5 \
  --register products -q >/dev/null
"$recmodel" registry promote models:/products/1 --alias production --reason "peer test" -q >/dev/null
cat > drift.json <<'EOF'
{"model": "models:/products/1", "input": "served.jsonl", "input_kind": "log",
 "reference": {"source": "recmodel.json", "examples": 480},
 "window": {"records": 500, "first": "2026-12-04T10:00:00.000Z", "last": "2026-12-04T11:00:00.000Z"},
 "thresholds": {"psi": 0.2, "js": 0.1},
 "features": {
  "predicted_label": {"kind": "categorical", "test": "chi_square", "psi": 0.0312, "js": 0.0101, "statistic": 3.2,
    "p_value": 0.2019, "severity": "none", "drift": false,
    "bins": {"labels": ["clothing", "grocery", "home"], "reference": [0.35, 0.33, 0.32], "live": [0.3, 0.4, 0.3]}},
  "score": {"kind": "numeric", "test": "ks", "psi": 0.4321, "js": 0.1502, "statistic": 0.31, "p_value": 0.00002,
    "severity": "major", "drift": true, "reference_mean": 0.81, "live_mean": 0.62,
    "bins": {"edges": [0, 0.25, 0.5, 0.75, 1], "reference": [0.05, 0.1, 0.25, 0.6], "live": [0.1, 0.3, 0.3, 0.3]}},
  "unk_rate": {"available": false, "reason": "a predictions file has no token counts"}},
 "truncation_rate": {"reference": 0.01, "live": 0.02}, "drift": true, "drifted": ["score"]}
EOF

"$recmodel" report models:/products@production --data data --drift drift.json --out report.html --json -q \
  > report.json || fail "recmodel report exited $?"
"$recmodel" evaluate --model models:/products@production --data data --json -q > evaluate.json \
  || fail "recmodel evaluate exited $?"

# Headless chromium, its own profile; console messages (and uncaught errors) go to stderr.
browse() {
  timeout 120 chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile" \
    --enable-logging=stderr --v=0 "$@" "file://$work/report.html"
}
browse --dump-dom > dom.html 2> dom.err || { cat dom.err >&2; fail "chromium --dump-dom exited $?"; }
browse --screenshot="$work/report.png" --window-size=1280,2400 > shot.out 2> shot.err \
  || { cat shot.err >&2; fail "chromium --screenshot exited $?"; }
if grep -E 'CONSOLE|Uncaught' dom.err shot.err >&2; then fail "chromium logged console messages for the report"; fi
[[ -s report.png ]] || fail "chromium wrote no screenshot"
[[ "$(head -c 8 report.png | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "the screenshot is not a PNG"
(( $(stat -c %s report.png) > 20000 )) || fail "the screenshot is suspiciously small ($(stat -c %s report.png) bytes)"

# The DOM chromium built, checked with Python's HTML parser (not with recmodel's own strings).
"$python" - report.html dom.html report.json evaluate.json <<'EOF'
import html.parser, json, sys
source, dom, report, evaluate = (open(p, encoding="utf-8").read() for p in sys.argv[1:5])
report, evaluate = json.loads(report), json.loads(evaluate)
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.svgs, self.cells, self.text = [], {}, [], []
        self.external = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "id" in a:
            self.svgs[a["id"]] = 0
        svg = next((s for _, s in reversed(self.stack) if s), None)
        if svg:
            self.svgs[svg] += 1
        if tag == "rect" and svg == "confusion-matrix" and a.get("class") == "cell":
            self.cells.append(int(a["data-count"]))
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag == "link" or tag == "script" or tag == "iframe":
            self.external.append(tag)
        if tag not in VOID:
            self.stack.append((tag, a.get("id") if tag == "svg" else None))
    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass
    def handle_data(self, data):
        self.text.append(data)

page = Page()
page.feed(dom)
text = " ".join(page.text)
check(report["sections"] == ["model", "training", "evaluation", "calibration", "drift", "registry"],
      "sections are %s" % report["sections"])
check(report["bytes"] == len(source.encode("utf-8")), "bytes %s is not the file's size" % report["bytes"])
for svg in ("training-curves", "confusion-matrix", "score-histogram", "reliability", "drift-score",
            "drift-predicted_label"):
    check(page.svgs.get(svg, 0) > 5, "no (or an empty) <svg id=%s> in the DOM" % svg)
labels = evaluate["confusion_matrix"]["labels"]
matrix = evaluate["confusion_matrix"]["matrix"]
check(len(page.cells) == len(labels) ** 2, "%d heatmap cells for %d classes" % (len(page.cells), len(labels)))
check(page.cells == [v for row in matrix for v in row], "heatmap counts %s, evaluate says %s" % (page.cells, matrix))
for metric in ("accuracy", "f1_macro", "f1_weighted"):
    shown = "%.4f" % evaluate[metric]
    check(shown in text, "%s %s (from recmodel evaluate) is not on the page" % (metric, shown))
for label, scores in evaluate["per_class"].items():
    check(label in text and "%.4f" % scores["f1"] in text, "class %s or its F1 is not on the page" % label)
check("0.4321" in text and "major" in text, "the drift table's numbers are not on the page")
check("models:/products/1" in text and "peer test" in text, "the registry lineage or alias history is missing")
check("ECE" in text, "the calibration error is not on the page")
check(not page.external, "the page loads external resources: %s" % page.external)
for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
echo "PASS: chromium loaded the report with no console message; charts and evaluate's numbers in its DOM"
