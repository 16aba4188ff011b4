#!/usr/bin/env bash
# The drift alerting rules of share/prometheus/ under Prometheus's own tools: `promtool check rules`
# parses them (PromQL included), `promtool test rules` replays a week of traffic and a two-hour shift
# (tests/peers/prometheus/recmodel-drift.test.yml) and checks that each signal fires for the model
# that shifted only; and the metric names the rules use are ones `recmodel serve` exports.
# Env (set by CTest): RECMODEL_SOURCE_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${RECMODEL_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v promtool >/dev/null || fail "needs promtool (Debian's prometheus; scripts/install-deps.sh)"
rules="$source_dir/share/prometheus/recmodel-drift.rules.yml"
promtool check rules "$rules" || fail "promtool check rules refused $rules"
(cd "$here/prometheus" && promtool test rules recmodel-drift.test.yml) || fail "promtool test rules failed"
# Every recmodel_* series the rules read (histogram suffixes stripped) is a family serve registers.
for name in $(grep -o 'recmodel_[a-z_]*' "$rules" | sed 's/_\(sum\|count\|bucket\)$//' | sort -u); do
  grep -q "\"$name\"" "$source_dir/serving/metrics.cpp" || fail "$rules reads $name, which recmodel serve does not export"
done
echo PASS
