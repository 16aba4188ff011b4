#!/usr/bin/env bash
# `recmodel serve` following a registry alias with a real registry, a real server and real clients
# (wrk, curl, promtool):
#   1. models:/m@prod --poll 1 under wrk load: promote m/2, then `registry rollback m@prod`; the
#      new version answers within poll + load time, wrk sees no non-2xx answer and no socket error,
#      /metrics counts the loads, stderr says "now serves m/2".
#   2. m/3 with a same-size corruption of model.safetensors, promoted: refused (full re-hash), m/1
#      keeps answering, /info last_error names version 3, the failure metrics say 1, and one error
#      line on stderr however many polls follow. promtool accepts /metrics.
#   3. --poll 3600: a promotion is not picked up until SIGHUP, then at once.
#   4. --from: versions whose directories are gone are pulled from a file:// remote into
#      $XDG_CACHE_HOME/recmodel/serve/NAME/VERSION (at start and when the alias moves); without
#      --from the server refuses to start with exit 4 and one error line.
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
for tool in wrk curl jq promtool sha256sum; do
  command -v "$tool" >/dev/null || { echo "FAIL: needs $tool (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

work="$(mktemp -d /tmp/recmodel-serve-swap.XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  local f
  for f in "$work"/*.err; do [[ -f "$f" ]] && { echo "--- $f (last lines)" >&2; tail -n 15 "$f" >&2; }; done
  exit 1
}
export RECMODEL_REGISTRY="$work/registry.db" RECMODEL_CONFIG="$work/config.toml" XDG_CACHE_HOME="$work/cache"
probe='{"inputs": "i was charged twice and want my money back"}'

# --- helpers -------------------------------------------------------------------------------------
# start_server NAME ARGS...: starts `recmodel serve ARGS --port 0`, waits for its "listening on"
# line; sets $pid and $url. stdout/stderr go to $work/NAME.out / NAME.err.
start_server() {
  local name="$1"; shift
  "$recmodel" serve "$@" --port 0 >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  local i
  for i in $(seq 300); do
    if grep -q '^listening on http://' "$work/$name.out"; then
      [[ $(wc -l <"$work/$name.out") -eq 1 ]] || fail "$name: stdout is not exactly one line: $(cat "$work/$name.out")"
      url="$(sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$work/$name.out")"
      [[ "$url" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "$name: odd listening line: $(cat "$work/$name.out")"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || fail "$name: serve exited before listening"
    sleep 0.1
  done
  fail "$name: no 'listening on' line within 30 s"
}
# stop_server: SIGTERM $pid, expect exit 0.
stop_server() {
  kill -TERM "$pid"
  local code=0
  wait "$pid" || code=$?
  [[ $code -eq 0 ]] || fail "serve exited $code after SIGTERM"
}
# version_of URL: the x-model-version of a /predict answer (and the body in $work/last.json).
version_of() {
  curl -s -m 5 -D "$work/last.headers" -o "$work/last.json" -H 'Content-Type: application/json' \
    -d "$probe" "$1/predict" || true
  tr -d '\r' <"$work/last.headers" | sed -n 's/^x-model-version: *//Ip' | tail -n1
}
# wait_version URL VERSION SECONDS: polls until /predict answers from VERSION; prints the seconds.
wait_version() {
  local start now v
  start=$(date +%s.%N)
  while :; do
    v="$(version_of "$1")"
    now=$(date +%s.%N)
    if [[ "$v" == "$2" ]]; then awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }'; return 0; fi
    awk -v a="$start" -v b="$now" -v l="$3" 'BEGIN { exit !(b - a > l) }' &&
      fail "$2 not served within $3 s (still '$v')"
    sleep 0.2
  done
}
# same_answer A B: two /predict answers (lists of {label, score}) agree: same labels in the same
# order, scores within 1e-5 (a probe may share a batch with wrk's requests).
same_answer() {
  jq -n -e --argjson a "$1" --argjson b "$2" \
    '($a | map(.label)) == ($b | map(.label)) and
     ([$a, $b] | transpose | all((.[0].score - .[1].score) | fabs <= 1e-5))' >/dev/null
}
# metric URL SERIES: the value of one exact series of /metrics (empty when absent).
metric() { curl -s -m 5 "$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'; }

# --- models and registry -------------------------------------------------------------------------
for i in 1 2 3 4; do
  "$recmodel" init --preset tiny --vocab "$vocab" --labels refund,billing,shipping --seed "$((i * 11))" \
    --out "$work/m$i" -q >/dev/null || fail "recmodel init m$i failed"
  "$recmodel" registry register m --path "$work/m$i" -q >/dev/null || fail "register m$i failed"
done
"$recmodel" registry promote m/1 --alias prod -q >/dev/null

# --- 1. promote and roll back under wrk ----------------------------------------------------------
start_server swap --model models:/m@prod --poll 1
[[ "$(version_of "$url")" == m/1 ]] || fail "serves '$(version_of "$url")', not m/1, at start"
answer1="$(cat "$work/last.json")"
loads0="$(metric "$url" 'recmodel_model_loads_total{model="m"}')"
[[ -n "$loads0" ]] || fail "no recmodel_model_loads_total{model=\"m\"} in /metrics"

SERVE_TEXT="i was charged twice and want my money back" \
  wrk -t1 -c4 -d12s --timeout 5s -s "$here/serve_post.lua" "$url" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
sleep 1
"$recmodel" registry promote m/2 --alias prod --reason "test swap" -q >/dev/null || fail "promote m/2 failed"
took="$(wait_version "$url" m/2 15)"
echo "ok m/2 served ${took} s after the promotion (--poll 1), under wrk load"
answer2="$(cat "$work/last.json")"
! same_answer "$answer1" "$answer2" || fail "m/1 and m/2 answer the same ($answer1): the test cannot tell them apart"
"$recmodel" registry rollback m@prod --reason "test rollback" -q >/dev/null || fail "registry rollback m@prod failed"
took="$(wait_version "$url" m/1 15)"
echo "ok m/1 served again ${took} s after the rollback"
same_answer "$(cat "$work/last.json")" "$answer1" || fail "m/1 answers differently after the rollback: $(cat "$work/last.json") vs $answer1"
kill -0 "$wrk_pid" 2>/dev/null || fail "wrk finished before the rollback was served: the swaps did not happen under load"
wait "$wrk_pid" || fail "wrk failed: $(cat "$work/wrk.txt")"
summary="$(grep '^{"requests"' "$work/wrk.txt")" || fail "no summary from wrk: $(cat "$work/wrk.txt")"
echo "wrk: $summary"
jq -e '.requests > 1000 and .non2xx == 0 and .errors.connect == 0 and .errors.read == 0 and .errors.write == 0
       and .errors.status == 0 and .errors.timeout == 0' <<<"$summary" >/dev/null ||
  fail "wrk saw failures during the swaps: $summary"
jq -e '.versions | index("m/1") != null and index("m/2") != null' <<<"$summary" >/dev/null ||
  fail "wrk's answers did not come from both m/1 and m/2: $summary"
loads1="$(metric "$url" 'recmodel_model_loads_total{model="m"}')"
[[ "$loads1" == "$((loads0 + 2))" ]] || fail "recmodel_model_loads_total{model=\"m\"} went $loads0 -> $loads1, not +2"
grep -q 'm now serves m/2 (models:/m@prod, was m/1)' "$work/swap.err" || fail "no 'now serves m/2' line on stderr"
grep -q 'm now serves m/1 (models:/m@prod, was m/2)' "$work/swap.err" || fail "no 'now serves m/1' line on stderr"
# Read whole first: `curl | grep -q` fails under pipefail when grep stops reading before curl is done.
metrics_text="$(curl -s "$url/metrics")"
grep -q '^recmodel_model_info{model="m",ref="models:/m@prod",version="1"} 1$' <<<"$metrics_text" ||
  fail "recmodel_model_info does not say m/1: $(grep '^recmodel_model_info' <<<"$metrics_text")"
echo "ok zero non-2xx and zero socket errors; loads_total +2; 'now serves' logged"

# --- 2. a corrupted version is refused -----------------------------------------------------------
weights="$work/m3/model.safetensors"
size_before=$(stat -c %s "$weights")
/usr/bin/python3 - "$weights" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(-4096, 2)
    data = bytearray(f.read(64))
    f.seek(-4096, 2)
    f.write(bytes(b ^ 0x5A for b in data))
PY
[[ $(stat -c %s "$weights") -eq $size_before ]] || fail "the corruption changed the size"
"$recmodel" registry promote m/3 --alias prod -q >/dev/null
for i in $(seq 150); do
  [[ "$(curl -s "$url/info" | jq -r '.models[0].last_error')" != null ]] && break
  sleep 0.1
done
info="$(curl -s "$url/info")"
jq -e '.models[0].last_error.version == 3' <<<"$info" >/dev/null ||
  fail "/info models[0].last_error does not name version 3: $(jq -c '.models[0]' <<<"$info")"
echo "ok /info last_error: $(jq -c '.models[0].last_error' <<<"$info")"
sleep 3.5  # several more polls: no retry, no second error line
[[ "$(version_of "$url")" == m/1 ]] || fail "serves '$(version_of "$url")' after the corrupt m/3, not m/1"
same_answer "$(cat "$work/last.json")" "$answer1" || fail "m/1 answers differently after the refused m/3: $(cat "$work/last.json") vs $answer1"
[[ "$(metric "$url" 'recmodel_model_load_failures_total{model="m"}')" == 1 ]] ||
  fail "recmodel_model_load_failures_total is $(metric "$url" 'recmodel_model_load_failures_total{model="m"}'), not 1"
[[ "$(metric "$url" 'recmodel_model_load_failed{model="m"}')" == 1 ]] ||
  fail "recmodel_model_load_failed is $(metric "$url" 'recmodel_model_load_failed{model="m"}'), not 1"
errors="$(grep -c 'error.*models:/m/3' "$work/swap.err" || true)"
[[ "$errors" -eq 1 ]] || fail "$errors error lines for m/3 on stderr, not 1: $(grep 'm/3' "$work/swap.err")"
grep 'error.*models:/m/3' "$work/swap.err" | grep -q -i 'still serving m/1' ||
  fail "the error line does not say m/1 keeps serving: $(grep 'models:/m/3' "$work/swap.err")"
echo "ok corrupt m/3 refused, m/1 keeps serving; one error line: $(grep 'error.*models:/m/3' "$work/swap.err")"
curl -s "$url/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" >"$work/promtool.txt" 2>&1 ||
  fail "promtool check metrics failed: $(cat "$work/promtool.txt")"
[[ ! -s "$work/promtool.txt" ]] || fail "promtool check metrics complains: $(cat "$work/promtool.txt")"
echo "ok promtool check metrics accepts /metrics ($(grep -c '^recmodel_' "$work/metrics.txt") series)"
stop_server

# --- 3. SIGHUP checks at once --------------------------------------------------------------------
"$recmodel" registry promote m/1 --alias prod -q >/dev/null
start_server hup --model models:/m@prod --poll 3600
[[ "$(version_of "$url")" == m/1 ]] || fail "hup: serves '$(version_of "$url")', not m/1"
"$recmodel" registry promote m/2 --alias prod -q >/dev/null
sleep 2
[[ "$(version_of "$url")" == m/1 ]] || fail "--poll 3600 swapped to '$(version_of "$url")' without SIGHUP"
kill -HUP "$pid"
took="$(wait_version "$url" m/2 5)"
echo "ok --poll 3600: no swap for 2 s, m/2 ${took} s after SIGHUP"
stop_server

# --- 4. --from: pulled from a file:// remote into the cache --------------------------------------
"$recmodel" remote add store "file://$work/remote" --create-bucket -q >/dev/null || fail "remote add failed"
"$recmodel" push models:/m/2 --to store -q >/dev/null || fail "push m/2 failed"
"$recmodel" push models:/m/4 --to store -q >/dev/null || fail "push m/4 failed"
mv "$work/m2" "$work/m2.moved"
rm -rf "$work/m4"
set +e
timeout 30 "$recmodel" serve --model models:/m@prod --port 0 >"$work/nofrom.out" 2>"$work/nofrom.err"
code=$?
set -e
[[ $code -eq 4 ]] || fail "without --from a missing version gave exit $code, not 4: $(cat "$work/nofrom.err")"
[[ $(grep -c 'recmodel: error:' "$work/nofrom.err") -eq 1 ]] ||
  fail "not exactly one 'recmodel: error:' line: $(cat "$work/nofrom.err")"
[[ ! -s "$work/nofrom.out" ]] || fail "it printed on stdout: $(cat "$work/nofrom.out")"
echo "ok without --from: exit 4, $(grep 'recmodel: error:' "$work/nofrom.err")"
[[ ! -e "$work/cache/recmodel/serve/m/2" ]] || fail "without --from something was put into the cache"

start_server from --model models:/m@prod --from store --poll 1
[[ "$(version_of "$url")" == m/2 ]] || fail "--from: serves '$(version_of "$url")', not m/2"
same_answer "$(cat "$work/last.json")" "$answer2" || fail "the pulled m/2 answers differently from m/2: $(cat "$work/last.json") vs $answer2"
cached="$work/cache/recmodel/serve/m/2/model.safetensors"
[[ -f "$cached" ]] || fail "m/2 not pulled into $work/cache/recmodel/serve/m/2: $(find "$work/cache" | head)"
cmp -s "$cached" "$work/m2.moved/model.safetensors" || fail "the cached m/2 differs from what was registered"
echo "ok --from store: m/2 pulled at start into \$XDG_CACHE_HOME/recmodel/serve/m/2 and served"
"$recmodel" registry promote m/4 --alias prod -q >/dev/null
took="$(wait_version "$url" m/4 15)"
[[ -f "$work/cache/recmodel/serve/m/4/model.safetensors" ]] || fail "m/4 not pulled into the cache"
echo "ok alias moved to m/4 (only on the remote): pulled and served ${took} s after the promotion"
stop_server
echo "PASS serve_swap"
