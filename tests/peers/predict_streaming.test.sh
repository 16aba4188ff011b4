#!/usr/bin/env bash
# `recmodel predict` streams: with stdin still open, the answer to each line arrives before the
# next line is written (usable in a shell pipe), and peak memory stays flat when the input grows
# tenfold. Uses a tiny model made by `recmodel init`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
recmodel="${RECMODEL:-}"
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
[[ -x "$recmodel" ]] || { echo "FAIL: recmodel binary not found (set RECMODEL)" >&2; exit 1; }
python=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A vocabulary of specials and a few hundred words, and a tiny random classifier over it.
{
  printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'
  for w in red blue green shoe shirt phone case cable lamp desk chair book pen cheap best for with; do echo "$w"; done
  for i in $(seq 0 300); do echo "w$i"; done
} >"$work/vocab.txt"
"$recmodel" init --preset tiny --vocab "$work/vocab.txt" --labels books,electronics,toys --out "$work/model" \
  --seed 3 -q >/dev/null || fail "recmodel init failed"

"$python" - "$recmodel" "$work/model" <<'PY' || exit 1
import json, select, subprocess, sys, time
recmodel, model = sys.argv[1], sys.argv[2]
p = subprocess.Popen([recmodel, "predict", "--model", model, "--batch-size", "32", "-q"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
for i, text in enumerate(["red shoe", "blue phone case", "cheap desk lamp"]):
    p.stdin.write((text + "\n").encode()); p.stdin.flush()
    ready, _, _ = select.select([p.stdout], [], [], 30)
    if not ready:
        p.kill(); print("FAIL: no answer to line %d within 30 s while stdin stays open" % (i + 1)); sys.exit(1)
    answer = json.loads(p.stdout.readline())
    if answer.get("label") not in ("books", "electronics", "toys"):
        p.kill(); print("FAIL: unexpected answer %r" % answer); sys.exit(1)
p.stdin.close()
rest = p.stdout.read()
if p.wait() != 0 or rest.strip():
    print("FAIL: exit %d, trailing output %r, stderr %s" % (p.returncode, rest, p.stderr.read())); sys.exit(1)
print("ok each answer arrived while stdin was still open (3 lines, one at a time)")
PY

# Peak memory for 2,000 and 20,000 lines: flat, not ten times.
"$python" - "$work" <<'PY'
import random, sys
words = "red blue green shoe shirt phone case cable lamp desk chair book pen cheap best for with".split()
rng = random.Random(5)
lines = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(20000)]
open(sys.argv[1] + "/big.txt", "w").write("\n".join(lines) + "\n")
open(sys.argv[1] + "/small.txt", "w").write("\n".join(lines[:2000]) + "\n")
PY
rss() { /usr/bin/time -f %M "$recmodel" predict --model "$work/model" --input "$1" --top-k 0 -q --threads 1 \
  2>"$work/time" >"$work/out"; tail -n1 "$work/time"; }
small=$(rss "$work/small.txt"); [[ $(wc -l <"$work/out") -eq 2000 ]] || fail "2,000 lines gave $(wc -l <"$work/out") answers"
big=$(rss "$work/big.txt"); [[ $(wc -l <"$work/out") -eq 20000 ]] || fail "20,000 lines gave $(wc -l <"$work/out") answers"
echo "peak RSS: ${small} KiB for 2,000 lines, ${big} KiB for 20,000 lines"
(( big < small * 12 / 10 + 20000 )) || fail "peak memory grew with the input: ${small} KiB -> ${big} KiB"
echo "ok memory flat"
