#!/usr/bin/env bash
# The sample-data generator is deterministic (same seed -> byte-identical files, another seed ->
# other files), writes exactly --rows records per file, and really contains the defects the demo
# and preprocess tests rely on.
set -euo pipefail

source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
generator="$source_dir/share/generate_sample_data.py"
python=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

rows=3000
"$python" "$generator" --seed 7 --rows "$rows" --out "$work/a" >/dev/null
"$python" "$generator" --seed 7 --rows "$rows" --out "$work/b" >/dev/null
"$python" "$generator" --seed 8 --rows "$rows" --out "$work/c" >/dev/null
"$python" "$generator" --seed 7 --rows "$rows" --out "$work/d" --only products >/dev/null

for f in products.csv queries.tsv reviews.jsonl relevance.csv; do
  [[ -s "$work/a/$f" ]] || fail "$f was not written"
  a=$(sha256sum <"$work/a/$f") b=$(sha256sum <"$work/b/$f") c=$(sha256sum <"$work/c/$f")
  [[ "$a" == "$b" ]] || fail "$f differs between two runs with --seed 7"
  [[ "$a" != "$c" ]] || fail "$f is the same for --seed 7 and --seed 8"
done
[[ "$(sha256sum <"$work/a/products.csv")" == "$(sha256sum <"$work/d/products.csv")" ]] \
  || fail "--only products wrote another products.csv than a full run"
[[ ! -e "$work/d/queries.tsv" ]] || fail "--only products also wrote queries.tsv"

# Counts and defects, checked with Python's own CSV/JSON readers (independent of recmodel).
"$python" - "$work/a" "$rows" <<'EOF'
import collections, csv, io, json, os, sys
out, rows = sys.argv[1], int(sys.argv[2])
errors = []

def check(cond, what):
    if not cond:
        errors.append(what)

raw = open(os.path.join(out, "products.csv"), "rb").read()
def decodes(line):
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
bad_utf8 = [l for l in raw.split(b"\n") if not decodes(l)]
check(len(bad_utf8) >= 1, "products.csv has no row with invalid UTF-8")
records = list(csv.reader(io.StringIO(raw.decode("utf-8", "replace"), newline="")))
check(records[0] == ["id", "title", "category"], "products.csv header is %r" % records[0])
check(len(records) == rows + 1, "products.csv has %d records, expected %d" % (len(records) - 1, rows))
check(raw.rstrip(b"\n").count(b'"') % 2 == 1, "products.csv does not end inside an unterminated quote")
good = [r for r in records[1:-1] if len(r) == 3 and r[1].strip() and r[2]]
cats = collections.Counter(r[2] for r in good)
check(9 <= len(cats) <= 12, "products.csv has %d categories: %s" % (len(cats), sorted(cats)))
check(any(len(r) != 3 for r in records[1:]), "products.csv has no row with a wrong field count")
check(any(len(r) == 3 and not r[1].strip() for r in records[1:]), "products.csv has no empty title")
check(any(len(r) == 3 and r[1].strip() and not r[2] for r in records[1:]), "products.csv has no missing label")
check(any("\n" in r[1] for r in good), "products.csv has no quoted field with a line break")
check(any("&amp;" in r[1] or "<b>" in r[1] or "&nbsp;" in r[1] or "<br>" in r[1] for r in good),
      "products.csv has no HTML remnants")
check(any(any(0x4E00 <= ord(c) <= 0x9FFF or 0x3040 <= ord(c) <= 0x30FF for c in r[1]) for r in good),
      "products.csv has no CJK titles")
check(any(any(ord(c) >= 0x1F300 for c in r[1]) for r in good), "products.csv has no emoji")
by_title = collections.defaultdict(set)
for r in good:
    by_title[r[1]].add(r[2])
check(len(good) - len(by_title) > 0, "products.csv has no duplicate titles")
check(any(len(v) > 1 for v in by_title.values()), "products.csv has no conflicting-label duplicates")

lines = open(os.path.join(out, "queries.tsv"), encoding="utf-8").read().split("\n")
check(lines[-1] == "", "queries.tsv does not end with a newline")
lines = lines[:-1]
check(lines[0] == "id\tquery\tintent", "queries.tsv header is %r" % lines[0])
check(len(lines) == rows + 1, "queries.tsv has %d rows, expected %d" % (len(lines) - 1, rows))
fields = [l.split("\t") for l in lines[1:]]
intents = collections.Counter(f[2] for f in fields if len(f) == 3 and f[2])
check(len(intents) >= 6, "queries.tsv has only intents %s" % sorted(intents))
check(any(len(f) == 3 and not f[1] for f in fields), "queries.tsv has no empty query")
check(any(len(f) == 3 and f[1] and not f[2] for f in fields), "queries.tsv has no missing intent")

lines = open(os.path.join(out, "reviews.jsonl"), encoding="utf-8").read().split("\n")[:-1]
check(len(lines) == rows, "reviews.jsonl has %d rows, expected %d" % (len(lines), rows))
reviews = [json.loads(l) for l in lines]
check(all(set(r) <= {"id", "text", "stars"} for r in reviews), "reviews.jsonl has unexpected keys")
stars = collections.Counter(r.get("stars") for r in reviews if isinstance(r.get("stars"), int))
check(sorted(stars) == [1, 2, 3, 4, 5], "reviews.jsonl stars are %s" % sorted(stars))
check(any(isinstance(r.get("stars"), str) for r in reviews), "reviews.jsonl has no non-numeric stars")
check(any("stars" not in r for r in reviews), "reviews.jsonl has no review without stars")
check(any(not r["text"].strip() for r in reviews), "reviews.jsonl has no empty text")

raw = open(os.path.join(out, "relevance.csv"), "rb").read()
check(raw.startswith(b"\xef\xbb\xbf"), "relevance.csv does not start with a UTF-8 BOM")
records = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
check(records[0] == ["id", "query", "title", "label"], "relevance.csv header is %r" % records[0])
check(len(records) == rows + 1, "relevance.csv has %d records, expected %d" % (len(records) - 1, rows))
labels = collections.Counter(r[3] for r in records[1:] if len(r) == 4)
for label in ("exact", "substitute", "complement", "irrelevant"):
    check(labels[label] > rows // 20, "relevance.csv has only %d %r rows" % (labels[label], label))

for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF

# Big enough to matter, small enough for a test: 200k products must stream out in seconds.
start=$(date +%s%N)
"$python" "$generator" --seed 1 --rows 200000 --out "$work/big" --only products >/dev/null
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
(( elapsed_ms < 20000 )) || fail "200,000 product rows took ${elapsed_ms} ms (expected well under 20 s)"
echo "sample data: deterministic, $rows rows per file, defects present; 200k products in ${elapsed_ms} ms"
