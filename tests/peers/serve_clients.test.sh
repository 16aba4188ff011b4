#!/usr/bin/env bash
# Real clients against a real `recmodel serve`:
#   - Hugging Face's JavaScript inference client (@huggingface/inference in tests/peers/node_modules)
#     with endpointUrl = the server's URL, unchanged (serve_clients.mjs): POST / answers what it
#     parses, labels and scores equal to /predict's;
#   - Text Embeddings Inference's /predict request and answer shapes with curl + jq: one text, one
#     pair ["text", "pair"], a batch [["a"], ["b", "c"], ...], raw_scores, TEI's headers;
#   - `curl /metrics | promtool check metrics`.
# Env (set by CTest): RECMODEL (the binary), RECMODEL_SHARED_DATA, RECMODEL_SOURCE_DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
recmodel="${RECMODEL:-}"
[[ -n "$recmodel" ]] || recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
[[ -x "$recmodel" ]] || { echo "FAIL: recmodel binary not found (set RECMODEL)" >&2; exit 1; }
shared="${RECMODEL_SHARED_DATA:-$source_dir/../shared/data}"
vocab="$shared/vocab/bert-base-uncased.txt"
[[ -f "$vocab" ]] || { echo "FAIL: $vocab not found (set RECMODEL_SHARED_DATA)" >&2; exit 1; }
for tool in node curl jq promtool; do
  command -v "$tool" >/dev/null || { echo "FAIL: needs $tool (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
[[ -d "$here/node_modules/@huggingface/inference" ]] ||
  { echo "FAIL: $here/node_modules/@huggingface/inference missing (npm ci in tests/peers)" >&2; exit 1; }

work="$(mktemp -d /tmp/recmodel-serve-clients.XXXXXX)"
pid=""
cleanup() {
  [[ -z "$pid" ]] || kill -KILL "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -f "$work/serve.err" ]] && { echo "--- serve's stderr (last lines)" >&2; tail -n 15 "$work/serve.err" >&2; }
  exit 1
}

"$recmodel" init --preset tiny --vocab "$vocab" --labels refund,billing,shipping,other --seed 5 \
  --out "$work/model" -q >/dev/null || fail "recmodel init failed"
"$recmodel" serve --model "$work/model" --port 0 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for i in $(seq 300); do
  grep -q '^listening on http://' "$work/serve.out" && break
  kill -0 "$pid" 2>/dev/null || fail "serve exited before listening"
  sleep 0.1
done
url="$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$work/serve.out")"
[[ -n "$url" ]] || fail "no 'listening on http://127.0.0.1:PORT' line: $(cat "$work/serve.out")"

# --- Hugging Face's inference client -------------------------------------------------------------
(cd "$here" && node serve_clients.mjs "$url") || fail "the Hugging Face inference client against POST /"

# --- TEI's shapes ----------------------------------------------------------------------------------
# post ROUTE BODY: the answer's body on stdout; status and headers in $work/status, $work/headers.
post() {
  curl -s -m 10 -D "$work/headers" -o "$work/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$2" "$url$1" >"$work/status" || fail "curl POST $1 failed"
  cat "$work/body"
}
expect_status() { [[ "$(cat "$work/status")" == "$1" ]] || fail "$2: status $(cat "$work/status"), not $1: $(cat "$work/body")"; }
# A TEI answer for one input: every label once, best first, probabilities summing to 1.
one_answer='type == "array" and length == 4 and (map(.label) | sort) == ["billing", "other", "refund", "shipping"]
  and all(.score | type == "number") and (map(.score) == (map(.score) | sort | reverse))
  and ((map(.score) | add) - 1 | fabs < 1e-4)'
# Same labels in the same order, scores within 1e-5.
same='($a | map(.label)) == ($b | map(.label)) and ([$a, $b] | transpose | all((.[0].score - .[1].score) | fabs <= 1e-5))'

single="$(post /predict '{"inputs": "i want a refund for my order"}')"
expect_status 200 "one text"
jq -e "$one_answer" <<<"$single" >/dev/null || fail "one text: not a TEI answer: $single"
headers="$(tr -d '\r' <"$work/headers" | tr 'A-Z' 'a-z')"
for h in x-model-version x-queue-time x-inference-time x-total-time; do
  grep -q "^$h: " <<<"$headers" || fail "no $h header: $headers"
done
grep -q '^content-type: application/json' <<<"$headers" || fail "content type: $headers"
echo "ok /predict one text -> [{label, score} x 4] best first, with x-model-version and TEI's timing headers"

pair="$(post /predict '{"inputs": ["i want a refund for my order", "it arrived broken"]}')"
expect_status 200 "one pair"
jq -e "$one_answer" <<<"$pair" >/dev/null || fail "one pair: not a TEI answer for one input: $pair"
jq -n -e --argjson a "$pair" --argjson b "$single" "$same" >/dev/null &&
  fail "the pair answers exactly like its first text alone: the second text was not used"
echo "ok /predict [text, pair] -> one answer (not a batch of two), different from the text alone"

batch="$(post /predict '{"inputs": [["i want a refund for my order"], ["i want a refund for my order", "it arrived broken"], ["where is my parcel"]]}')"
expect_status 200 "a batch"
jq -e "type == \"array\" and length == 3 and all(.[]; $one_answer)" <<<"$batch" >/dev/null ||
  fail "a batch of 3: not 3 TEI answers: $batch"
jq -n -e --argjson a "$(jq -c '.[0]' <<<"$batch")" --argjson b "$single" "$same" >/dev/null ||
  fail "batch element 0 differs from the same text alone: $(jq -c '.[0]' <<<"$batch") vs $single"
jq -n -e --argjson a "$(jq -c '.[1]' <<<"$batch")" --argjson b "$pair" "$same" >/dev/null ||
  fail "batch element 1 differs from the same pair alone: $(jq -c '.[1]' <<<"$batch") vs $pair"
parcel="$(post /predict '{"inputs": "where is my parcel"}')"
jq -n -e --argjson a "$(jq -c '.[2]' <<<"$batch")" --argjson b "$parcel" "$same" >/dev/null ||
  fail "batch element 2 differs from the same text alone"
echo "ok /predict [[text], [text, pair], [text]] -> 3 answers in order, equal to the inputs sent alone"

raw="$(post /predict '{"inputs": "i want a refund for my order", "raw_scores": true}')"
expect_status 200 "raw_scores"
jq -n -e --argjson raw "$raw" --argjson p "$single" '
  ($raw | map(.score) | max) as $m | ($raw | map(.score - $m | exp) | add) as $z
  | ($raw | map({(.label): ((.score - $m | exp) / $z)}) | add) as $soft
  | ($raw | map(.score) | add) - 1 | fabs > 1e-3
  and ($p | all(. as $e | ($soft[$e.label] - $e.score) | fabs < 1e-5))' >/dev/null ||
  fail "raw_scores: softmax of $raw is not $single"
echo "ok raw_scores: true -> logits whose softmax is the default answer"

root="$(post / '{"inputs": "i want a refund for my order"}')"
expect_status 200 "POST /"
jq -n -e --argjson r "$root" --argjson b "$single" "(\$r | type == \"array\" and length == 1) and (\$r[0] as \$a | $same)" >/dev/null ||
  fail "POST / is not [the /predict answer]: $root vs $single"
echo "ok POST / -> [[{label, score}, ...]] (Inference Endpoints' shape) for one text"

post /predict '{"inputs": [["ok"], [""]]}' >/dev/null
expect_status 422 "an empty text in a batch"
jq -e '(.error | type == "string" and test("input 1")) and (.error_type | type == "string")' "$work/body" >/dev/null ||
  fail "an empty text at index 1: the error does not name input 1: $(cat "$work/body")"
echo "ok an empty text at index 1 -> $(cat "$work/status") $(cat "$work/body")"

# --- promtool ----------------------------------------------------------------------------------------
curl -s "$url/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" >"$work/promtool.txt" 2>&1 ||
  fail "promtool check metrics failed: $(cat "$work/promtool.txt")"
[[ ! -s "$work/promtool.txt" ]] || fail "promtool check metrics complains: $(cat "$work/promtool.txt")"
grep -q '^recmodel_http_requests_total{method="POST",route="/",status="200"} ' "$work/metrics.txt" ||
  fail "no POST / 200 in recmodel_http_requests_total: $(grep http_requests_total "$work/metrics.txt")"
echo "ok promtool check metrics accepts /metrics"

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[[ $code -eq 0 ]] || fail "serve exited $code after SIGTERM"
echo "PASS serve_clients"
