#!/usr/bin/env bash
# Data-parallel `recmodel train` on c10d/Gloo over loopback, started by recmodel's own launcher and
# by Debian's torchrun (python3-torch 1.13):
#   1. world size 2 (--nproc-per-node 2) after an epoch of a tiny model with dropout 0 gives the
#      world-size-1 logits within 1e-4; torchrun's 2 workers give the --nproc-per-node model bit for bit.
#   2. torchrun --max_restarts 1, one worker killed (SIGKILL) after a checkpoint: the restarted
#      workers resume by themselves and the model is bit-identical to the uninterrupted run.
#   3. SIGINT to the job: every rank stops at the same step (exit 130), one checkpoint; --resume at
#      world size 1 finishes it.
#   4. refusals: ranks with other settings exit 3 on every rank naming the field; an unreachable
#      master exits 5 naming the address; a global batch not divisible by the world exits 2; a
#      killed rank stops the others at once (the launcher exits with its code, 137), and without a
#      launcher the survivor stops within --dist-timeout with one line; ranks that would resume from
#      different checkpoints exit 3.
# Env (set by CTest): RECMODEL (the binary), RECMODEL_SHARED_DATA, RECMODEL_SOURCE_DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
recmodel="${RECMODEL:-}"
[[ -n "$recmodel" ]] || recmodel="$(ls -t "$source_dir"/build*/recmodel 2>/dev/null | head -n1 || true)"
[[ -x "$recmodel" ]] || { echo "FAIL: recmodel binary not found (set RECMODEL)" >&2; exit 1; }
python=/usr/bin/python3
[[ -x /usr/bin/torchrun ]] || { echo "FAIL: needs Debian's torchrun (python3-torch; scripts/install-deps.sh)" >&2; exit 1; }
work="$(mktemp -d /tmp/recmodel-train-dist.XXXXXX)"
# Background launchers and torchrun are stopped on any exit; their workers follow them.
trap 'jobs -p | xargs -r kill -TERM 2>/dev/null || true; sleep 1; jobs -p | xargs -r kill -KILL 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- a tiny task ---------------------------------------------------------------------------------
"$python" - <<'PY'
import random
random.seed(1)
words = {"books": "novel author chapter story read page", "toys": "lego doll puzzle game kid play",
         "garden": "hose rake seed plant soil grow"}
rows = ["text,label"]
for i in range(300):
    label = random.choice(sorted(words)); w = words[label].split()
    rows.append(" ".join(random.choice(w) for _ in range(random.randint(3, 9))) + "," + label)
open("raw.csv", "w").write("\n".join(rows) + "\n")
open("texts.txt", "w").write("\n".join(r.split(",")[0] for r in rows[1:61]) + "\n")
PY
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n' > vocab.txt
tr ' ' '\n' <<<"novel author chapter story read page lego doll puzzle game kid play hose rake seed plant soil grow" >> vocab.txt
"$recmodel" -q preprocess --input raw.csv --vocab vocab.txt --out data --max-length 16 >/dev/null
"$recmodel" -q init --preset tiny --data data --out m0 --seed 1 >/dev/null
cp -r m0 md  # md keeps dropout 0.1; m0 gets dropout 0 for the world-size comparison
sed -i 's/"hidden_dropout_prob": [0-9.]*/"hidden_dropout_prob": 0.0/; s/"attention_probs_dropout_prob": [0-9.]*/"attention_probs_dropout_prob": 0.0/' m0/config.json
grep -q '"hidden_dropout_prob": 0.0' m0/config.json || fail "could not set dropout 0 in m0/config.json"
base=(--threads 1 train --data data --epochs 1 --batch-size 16 --lr 1e-3)
common=("${base[@]}" --seed 3)

# --- 1. world size 1 vs 2 ------------------------------------------------------------------------
"$recmodel" "${common[@]}" --model m0 --out w1 >/dev/null 2>w1.err || fail "world size 1: $(cat w1.err)"
"$recmodel" "${common[@]}" --model m0 --out w2 --nproc-per-node 2 >/dev/null 2>w2.err || fail "world size 2: $(cat w2.err)"
for m in w1 w2; do "$recmodel" -q predict --model $m --input texts.txt --logits --top-k 0 > $m.jsonl; done
"$python" - <<'PY' || fail "world size 2 logits differ from world size 1"
import json
a = [json.loads(l)["logits"] for l in open("w1.jsonl")]
b = [json.loads(l)["logits"] for l in open("w2.jsonl")]
assert len(a) == len(b) == 60, (len(a), len(b))
diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
moved = max(abs(x) for r in a for x in r)
print("world size 1 vs 2: max logit difference %.2e (logits up to %.2f)" % (diff, moved))
assert diff <= 1e-4, diff
PY
/usr/bin/torchrun --nproc_per_node 2 --no_python --tee 1 --redirects 1 --log_dir logs1 \
  "$recmodel" "${common[@]}" --model m0 --out t2 >t2.log 2>&1 || fail "torchrun: $(tail -5 t2.log)"
cmp -s w2/model.safetensors t2/model.safetensors || fail "torchrun's 2 workers trained another model than --nproc-per-node 2"
echo "ok: torchrun 2 workers = --nproc-per-node 2, bit for bit"

# --- 2. elastic restart ----------------------------------------------------------------------------
long=(--threads 1 train --model md --data data --epochs 8 --batch-size 16 --lr 1e-3 --seed 3 --checkpoint-every 10)
"$recmodel" "${long[@]}" --nproc-per-node 2 --out straight >/dev/null 2>straight.err || fail "straight: $(cat straight.err)"
/usr/bin/torchrun --nproc_per_node 2 --max_restarts 1 --no_python --tee 1 --redirects 1 --log_dir logs2 \
  "$recmodel" --json "${long[@]}" --out restarted >restart.log 2>&1 &
job=$!
for _ in $(seq 600); do
  grep -qs '"step": [2-9][0-9]' restarted.train/checkpoint/state.json && break
  sleep 0.05
done
victim="$(pgrep -f -- "^$recmodel --json --threads 1 train --model md.*--out restarted" | tail -n1)"
[[ -n "$victim" ]] || fail "no worker to kill"
kill -KILL "$victim"
wait "$job" || fail "torchrun did not recover: $(tail -5 restart.log)"
grep -q '"resumed_from_step":[1-9]' restart.log || fail "the restarted workers did not resume from the checkpoint: $(grep resumed restart.log)"
cmp -s straight/model.safetensors restarted/model.safetensors || fail "the restarted job's model differs from the uninterrupted one"
echo "ok: killed worker, torchrun restart, resumed: bit-identical"

# --- 3. SIGINT to the job; resume 2 -> 1 ---------------------------------------------------------------
slow=(--threads 1 train --model md --data data --epochs 30 --batch-size 16 --lr 1e-3 --seed 3)
"$recmodel" "${slow[@]}" --nproc-per-node 2 --out interrupted >/dev/null 2>int.err &
job=$!
for _ in $(seq 600); do [[ "$(grep -cs loss interrupted.train/train_log.jsonl)" -ge 2 ]] && break; sleep 0.05; done
kill -INT "$job"
code=0; wait "$job" || code=$?
[[ $code == 130 ]] || fail "SIGINT: launcher exited $code, not 130: $(cat int.err)"
[[ "$(grep -c 'recmodel: error: training stopped at step' int.err)" == 2 ]] || fail "both ranks should say where they stopped: $(cat int.err)"
[[ "$(sed -n 's/.*stopped at step \([0-9]*\) .*/\1/p' int.err | sort -u | wc -l)" == 1 ]] || fail "ranks stopped at other steps: $(cat int.err)"
cp -r interrupted.train ck_a && cp -r interrupted.train ck_b && echo >> ck_b/checkpoint/state.json  # same step, other bytes
"$recmodel" "${slow[@]}" --out interrupted --resume >/dev/null 2>resume.err || fail "resume at world size 1: $(cat resume.err)"
echo "ok: SIGINT stops both ranks at one step, exit 130; resumed at world size 1"

# --- 4. refusals ---------------------------------------------------------------------------------------
port="$(free_port)"
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$recmodel" "${base[@]}" --model m0 --out d$r \
    --dist-timeout 30 --seed $((3 + r)) >/dev/null 2>d$r.err &
  eval "pid$r=\$!"
done
c0=0; wait "$pid0" || c0=$?
c1=0; wait "$pid1" || c1=$?
[[ $c0 == 3 && $c1 == 3 ]] || fail "ranks that disagree: exit $c0 and $c1, not 3: $(cat d0.err d1.err)"
for r in 0 1; do
  [[ "$(cat d$r.err)" == "recmodel: error: rank 1 of 2 disagrees with rank 0 on seed: 4 there, 3 on rank 0; every rank must be started with the same data, model and settings" ]] ||
    fail "rank $r's message: $(cat d$r.err)"
done
code=0
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$(free_port)" "$recmodel" "${common[@]}" --model m0 --out u \
  --dist-timeout 1 >/dev/null 2>u.err || code=$?
[[ $code == 5 ]] || fail "unreachable master: exit $code: $(cat u.err)"
[[ "$(grep -c . u.err)" == 1 ]] && grep -q '^recmodel: error: rank 1 of 2: could not reach the rendezvous store at 127.0.0.1:' u.err ||
  fail "unreachable master message: $(cat u.err)"
code=0; "$recmodel" --threads 1 train --data data --model m0 --out b --nproc-per-node 2 --batch-size 15 2>b.err || code=$?
[[ $code == 2 ]] && grep -q 'is the global batch: it must divide evenly over --nproc-per-node 2' b.err || fail "batch 15 over 2: $code $(cat b.err)"
code=0; WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$recmodel" --threads 1 train --data data --model m0 --out b --batch-size 15 2>b.err || code=$?
[[ $code == 2 ]] && grep -q 'must divide evenly over the world size 2' b.err || fail "batch 15 over WORLD_SIZE 2: $code $(cat b.err)"
"$recmodel" "${slow[@]}" --nproc-per-node 2 --out killed >/dev/null 2>killed.err &
job=$!
for _ in $(seq 600); do [[ "$(pgrep -fc -- "--out killed")" -ge 3 ]] && grep -qs loss killed.train/train_log.jsonl && break; sleep 0.05; done
kill -KILL "$(pgrep -f -- "recmodel-torch --threads 1 train --model md.*--out killed" | tail -n1)"
start=$(date +%s)
code=0; wait "$job" || code=$?
(( $(date +%s) - start < 20 )) || fail "the other rank took $(( $(date +%s) - start )) s to stop"
[[ $code == 137 ]] || fail "killed rank: launcher exited $code, not 137: $(cat killed.err)"
grep -q 'recmodel: warning: worker [0-9]* (rank 1) was killed by signal 9 (Killed); stopping the other 1' killed.err || fail "the launcher should name the killed worker: $(cat killed.err)"
# Without a launcher (a PyTorchJob's pods): a rank that dies stops the other within --dist-timeout.
port="$(free_port)"
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$recmodel" "${slow[@]}" --out alone$r \
    --dist-timeout 15 >/dev/null 2>alone$r.err &
  eval "pid$r=\$!"
done
for _ in $(seq 600); do grep -qs loss alone0.train/train_log.jsonl && break; sleep 0.05; done
kill -KILL "$pid1"
start=$(date +%s)
code=0; wait "$pid0" || code=$?
(( $(date +%s) - start <= 20 )) || fail "rank 0 took $(( $(date +%s) - start )) s to notice its peer died"
[[ $code != 0 && $code != 137 ]] || fail "rank 0 exited $code after its peer died: $(cat alone0.err)"
[[ "$(grep -c . alone0.err)" == 1 ]] && grep -q '^recmodel: error: ' alone0.err || fail "rank 0 should say why in one line: $(cat alone0.err)"
echo "  rank 0 after its peer died: exit $code: $(cat alone0.err)"
# Ranks that would resume from different checkpoints (a shared filesystem that lagged) are refused.
port="$(free_port)"
for r in 0 1; do
  ck=$([[ $r == 0 ]] && echo ck_a || echo ck_b)
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$recmodel" "${slow[@]}" --out res$r --work-dir $ck \
    --resume --dist-timeout 30 >/dev/null 2>res$r.err &
  eval "pid$r=\$!"
done
c0=0; wait "$pid0" || c0=$?
c1=0; wait "$pid1" || c1=$?
[[ $c0 == 3 && $c1 == 3 ]] || fail "ranks resuming other checkpoints: exit $c0 and $c1, not 3: $(cat res0.err res1.err)"
grep -q 'rank 1 of 2 disagrees with rank 0 on checkpoint_sha256' res0.err || fail "checkpoint disagreement message: $(cat res0.err)"
echo "ok: disagreement (3), unreachable master (5), indivisible batch (2), killed rank (137 under the launcher; rank 0 alone stops), other checkpoints (3)"
echo "PASS"
