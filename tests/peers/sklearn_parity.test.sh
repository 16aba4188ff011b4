#!/usr/bin/env bash
# `recmodel evaluate --predictions --labels` equals scikit-learn (Debian's python3-sklearn) to 1e-9
# on random and edge-case inputs: accuracy, per-class and averaged precision/recall/F1, support,
# confusion matrix, top-k accuracy (with ties), ROC-AUC, PR-AUC (average precision), ordinal MAE,
# MAE/RMSE/R², through the files it reads (JSONL, CSV and TSV joined by id); and it warns, naming
# the class, exactly where scikit-learn warns about zero division. (tests/metrics/sklearn_parity_test
# compares thousands more cases in-process; this one covers the command end to end.)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
recmodel="${RECMODEL:-}"
if [[ -z "$recmodel" ]]; then
  recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
fi
[[ -x "$recmodel" ]] || { echo "FAIL: recmodel binary not found (set RECMODEL)" >&2; exit 1; }
/usr/bin/python3 -c "import sklearn" 2>/dev/null \
  || { echo "FAIL: /usr/bin/python3 lacks scikit-learn (apt-get install python3-sklearn)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$here/sklearn_parity.py" "$recmodel" "$work" --cases "${SKLEARN_PARITY_CASES:-25}"
