#!/usr/bin/env bash
# `recmodel drift` against NumPy and SciPy (Debian's python3-scipy): a small model is trained (its
# reference profile lands in recmodel.json), serve-style prediction logs are written (one like the
# reference, one shifted, with a second served model and times over two hours), and every
# statistic drift prints — PSI, Jensen-Shannon distance, chi-square and KS statistics and
# p-values, the bins and their proportions — must equal what numpy.histogram_bin_edges,
# numpy.histogram, scipy.spatial.distance.jensenshannon, scipy.stats.chisquare and
# scipy.stats.ks_2samp give on the same values, to 1e-9. Also checked: --since and --window pick the
# records NumPy picks, --served-name, --fail-over exits 1 naming the feature (0 when nothing
# drifts), and texts predicted by drift itself give the numbers of `recmodel predict`'s output.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
recmodel="${RECMODEL:-}"
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x "$recmodel" ]] || fail "recmodel binary not found (set RECMODEL)"
python=/usr/bin/python3
"$python" -c 'import numpy, scipy.stats, scipy.spatial' 2>/dev/null ||
  fail "needs NumPy and SciPy for /usr/bin/python3 (Debian's python3-scipy; scripts/install-deps.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A labelled set where words tell the label, a vocabulary of those words, and a trained tiny model.
"$python" - "$work" <<'PY'
import csv, random, sys
work = sys.argv[1]
rng = random.Random(11)
words = {"books": ["novel", "story", "author", "paperback", "poems"],
         "electronics": ["phone", "cable", "charger", "laptop", "screen"],
         "toys": ["puzzle", "doll", "lego", "blocks", "robot"]}
common = ["red", "blue", "new", "best", "for", "with", "kids", "set"]
with open(f"{work}/vocab.txt", "w") as v:
    v.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    for w in common + sum(words.values(), []):
        v.write(w + "\n")
with open(f"{work}/train.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["text", "label"])
    for i in range(900):
        label = rng.choice(list(words))
        n = rng.randint(2, 9)
        text = [rng.choice(words[label] if rng.random() < 0.6 else common) for _ in range(n)]
        out.writerow([" ".join(text) + f" item{i}", label])  # item{i}: an [UNK], and no duplicate rows
PY
"$recmodel" -q preprocess --input "$work/train.csv" --vocab "$work/vocab.txt" --out "$work/data" --seed 3 >/dev/null \
  || fail "preprocess failed"
"$recmodel" -q init --preset tiny --data "$work/data" --out "$work/init" --seed 3 >/dev/null || fail "init failed"
"$recmodel" -q train --model "$work/init" --data "$work/data" --out "$work/model" --epochs 2 --batch-size 32 \
  --lr 2e-3 --seed 3 >/dev/null || fail "train failed"

# Logs as serve writes them: a like-the-reference one and a shifted one, each with a second model.
"$python" - "$work" <<'PY'
import datetime, json, random, sys
work = sys.argv[1]
profile = json.load(open(f"{work}/model/recmodel.json"))["profile"]
labels = list(profile["labels"]["predicted"])
weights = [profile["labels"]["predicted"][l] for l in labels]
samples = profile["samples"]
rng = random.Random(5)
start = datetime.datetime(2026, 12, 4, 8, 0, tzinfo=datetime.timezone.utc)
def write(path, shifted):
    with open(path, "w") as f:
        for i in range(2600):
            t = start + datetime.timedelta(seconds=i * 3)
            j = rng.randrange(len(samples["score"]))
            seen = int(samples["tokens"][j]) + (rng.randint(2, 9) if shifted else 0)
            unk = min(seen - 2, int(round(samples["unk_rate"][j] * seen)) + (rng.randint(0, 3) if shifted else 0))
            truncated = rng.randint(1, 5) if shifted and rng.random() < 0.1 else 0
            score = samples["score"][j] * (0.7 if shifted else 1.0)
            label = labels[0] if shifted and rng.random() < 0.5 else rng.choices(labels, weights)[0]
            name = "other" if i % 7 == 3 else "intent"
            record = {"time": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z", "model": name,
                      "version": 0, "tokens": seen + truncated, "truncated": truncated, "unk_tokens": unk,
                      "label": label, "score": round(score, 6)}
            f.write(json.dumps(record) + "\n")
write(f"{work}/same.jsonl", False)
write(f"{work}/shifted.jsonl", True)
PY

check() {  # check LOG JSON_OUT [python filter args...]: recomputes JSON_OUT from LOG's records with SciPy
  "$python" - "$work/model/recmodel.json" "$@" <<'PY'
import datetime, json, math, sys
import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp
profile = json.load(open(sys.argv[1]))["profile"]
log, result_path, served, window, since = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
got = json.load(open(result_path))
def ms(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
records = [json.loads(line) for line in open(log)]
records = [r for r in records if r["model"] == served and (since == "-" or ms(r["time"]) >= ms(since))][-window:]
assert got["window"]["records"] == len(records), (got["window"], len(records))
seen = [r["tokens"] - r["truncated"] for r in records]
live = {"score": [r["score"] for r in records], "tokens": seen,
        "unk_rate": [r["unk_tokens"] / s for r, s in zip(records, seen)]}
ref = {k: np.array(profile["samples"][k], dtype=float) for k in live}
def close(a, b, what):
    if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
        sys.exit(f"FAIL: {what}: recmodel {a!r}, SciPy {b!r}")
def psi(e, a):
    e = np.where(e == 0, 1e-4, e); a = np.where(a == 0, 1e-4, a)
    return float(np.sum((a - e) * np.log(a / e)))
worst = []
for name, values in live.items():
    f = got["features"][name]
    cur = np.array(values, dtype=float)
    edges = np.histogram_bin_edges(np.concatenate([ref[name], cur]), bins=30)
    r = np.histogram(ref[name], edges)[0] / len(ref[name]); c = np.histogram(cur, edges)[0] / len(cur)
    for i, (x, y) in enumerate(zip(f["bins"]["edges"], edges)): close(x, float(y), f"{name} edge {i}")
    for i, (x, y) in enumerate(zip(f["bins"]["reference"], r)): close(x, float(y), f"{name} reference bin {i}")
    for i, (x, y) in enumerate(zip(f["bins"]["live"], c)): close(x, float(y), f"{name} live bin {i}")
    close(f["psi"], psi(r, c), f"{name} psi")
    close(f["js"], float(jensenshannon(r, c)), f"{name} js")
    ks = ks_2samp(ref[name], cur)
    close(f["statistic"], float(ks.statistic), f"{name} ks statistic")
    close(f["p_value"], float(ks.pvalue), f"{name} ks p-value")
    worst.append(f["psi"])
f = got["features"]["predicted_label"]
labels = f["bins"]["labels"]
e = np.array([profile["labels"]["predicted"].get(l, 0) for l in labels], dtype=float)
o = np.array([sum(1 for r in records if r["label"] == l) for l in labels], dtype=float)
ep, op = e / e.sum(), o / o.sum()
close(f["psi"], psi(ep, op), "predicted_label psi")
close(f["js"], float(jensenshannon(ep, op)), "predicted_label js")
ep = np.where(ep == 0, 1e-4, ep)
chi = chisquare(o, ep / ep.sum() * o.sum())
close(f["statistic"], float(chi.statistic), "chi-square statistic")
close(f["p_value"], float(chi.pvalue), "chi-square p-value")
trunc = sum(1 for r in records if r["truncated"] > 0) / len(records)
close(got["truncation_rate"]["live"], trunc, "live truncation rate")
print(f"  {log.rsplit('/', 1)[-1]}: {len(records)} records, psi " + ", ".join(f"{p:.4f}" for p in worst))
PY
}

run() {  # run OUT ARGS...: drift --json into OUT, exit code into $rc
  set +e
  "$recmodel" drift --json --model "$work/model" "${@:2}" >"$1" 2>"$work/stderr"
  rc=$?
  set -e
}

run "$work/same.json" --input "$work/same.jsonl" --served-name intent
[[ $rc == 0 ]] || fail "drift on the like-the-reference log exited $rc: $(cat "$work/stderr")"
check "$work/same.jsonl" "$work/same.json" intent 10000 -
"$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["drift"])' "$work/same.json" ||
  fail "the like-the-reference log was judged drifted: $(cat "$work/same.json")"

run "$work/shifted.json" --input "$work/shifted.jsonl" --served-name intent --window 1500 --since 2026-12-04T08:20:00Z
[[ $rc == 0 ]] || fail "drift on the shifted log exited $rc: $(cat "$work/stderr")"
check "$work/shifted.jsonl" "$work/shifted.json" intent 1500 2026-12-04T08:20:00.000Z
"$python" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["drift"] and {"score", "tokens"} <= set(d["drifted"]), d["drifted"]
' "$work/shifted.json" || fail "the shifted log was not judged drifted on score and tokens"

# Gates: exit 1 with one line per drifted feature; exit 0 when nothing is over.
run "$work/gate.json" --input "$work/shifted.jsonl" --served-name intent --fail-over psi=0.2,js=0.1
[[ $rc == 1 ]] || fail "--fail-over on the shifted log exited $rc, not 1"
grep -q '^recmodel: error: drift gate failed: tokens (psi ' "$work/stderr" || fail "no gate line for tokens: $(cat "$work/stderr")"
run "$work/gate.json" --input "$work/same.jsonl" --served-name other --fail-over psi=5,js=0.9
[[ $rc == 0 ]] || fail "--fail-over psi=5,js=0.9 exited $rc: $(cat "$work/stderr")"

# A log of two served models needs --served-name; refused naming both.
run "$work/x.json" --input "$work/same.jsonl"
[[ $rc == 2 ]] && grep -q "'intent', 'other'" "$work/stderr" || fail "two served models without --served-name: rc $rc, $(cat "$work/stderr")"

# Texts predicted by drift itself equal `recmodel predict`'s predictions on label and score.
cut -d, -f1 "$work/train.csv" | tail -n 400 >"$work/texts.txt"
"$recmodel" predict --model "$work/model" --input "$work/texts.txt" >"$work/predictions.jsonl" 2>/dev/null
run "$work/texts.json" --input "$work/texts.txt"
[[ $rc == 0 ]] || fail "drift on texts exited $rc: $(cat "$work/stderr")"
run "$work/preds.json" --input "$work/predictions.jsonl"
[[ $rc == 0 ]] || fail "drift on predictions exited $rc: $(cat "$work/stderr")"
"$python" - "$work/texts.json" "$work/preds.json" <<'PY' || exit 1
import json, math, sys
texts, preds = (json.load(open(p)) for p in sys.argv[1:])
assert texts["input_kind"] == "texts" and preds["input_kind"] == "predictions", (texts["input_kind"], preds["input_kind"])
for name in ("predicted_label", "score"):
    for key in ("psi", "js", "statistic", "p_value"):
        a, b = texts["features"][name][key], preds["features"][name][key]
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), (name, key, a, b)
assert texts["features"]["tokens"]["psi"] is not None and preds["features"]["tokens"]["available"] is False
PY
echo PASS
