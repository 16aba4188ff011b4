#!/bin/bash
# A throw-away single-node Ceph cluster (mon + memstore OSD + RADOS Gateway) on loopback, the
# real S3 server of the storage tests and benchmarks. Starts in about two seconds.
#
#   rgw_fixture.sh start DIR      start a cluster whose state lives in DIR; prints KEY=VALUE lines
#                                 (RGW_ENDPOINT, RGW_PORT, AK, SK) and writes them to DIR/env
#   rgw_fixture.sh stop DIR       stop that cluster and remove DIR
#   rgw_fixture.sh kill-rgw DIR   SIGKILL the gateway only (a server crash; the data stays in the OSD)
#   rgw_fixture.sh start-rgw DIR  start the gateway again after kill-rgw
#
# Env for start: RGW_PORT, MON_PORT (default: free ports), AK, SK (default test keys),
# MEMSTORE_BYTES (OSD capacity held in RAM, default 1 GiB), OWNER_PID (stop the cluster when
# that process exits, so a crashed or timed-out test leaves no daemons behind).
# Needs Debian's ceph-mon, ceph-osd, radosgw (scripts/install-deps.sh installs them).
set -euo pipefail

command=${1:-}
D=${2:-}
[ -n "$command" ] && [ -n "$D" ] || { sed -n '2,14p' "$0" >&2; exit 2; }
export CEPH_CONF=$D/ceph.conf

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

kill_pid_file() {  # SIGKILL is fine for a throw-away cluster and skips seconds of shutdown
  local p=$1 pid
  [ -f "$p" ] || return 0
  pid=$(cat "$p")
  kill -9 "$pid" 2>/dev/null || return 0
  while [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.02; done
  rm -f "$p"
}

wait_rgw() {
  local port
  port=$(sed -n 's/^RGW_PORT=//p' "$D/env")
  for _ in $(seq 500); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.02
  done
  echo "rgw_fixture: radosgw is not serving on port $port; see $D/log" >&2
  exit 1
}

start_rgw() {
  radosgw -n client.rgw.a
  wait_rgw
}

case "$command" in
  stop)
    for p in "$D"/run/*.pid; do kill_pid_file "$p"; done
    rm -rf "$D"
    exit 0 ;;
  kill-rgw)
    kill_pid_file "$D/run/client.rgw.a.pid"
    exit 0 ;;
  start-rgw)
    start_rgw
    exit 0 ;;
  start) ;;
  *) echo "rgw_fixture: unknown command '$command' (start, stop, kill-rgw, start-rgw)" >&2; exit 2 ;;
esac

for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
  command -v "$tool" >/dev/null || { echo "rgw_fixture: $tool not found; install ceph-mon ceph-osd radosgw" >&2; exit 3; }
done
[ -d "$D" ] && "$0" stop "$D"
mkdir -p "$D"/{mon/a,osd/0,run,log,rgw}
RGW_PORT=${RGW_PORT:-$(free_port)}
MON_PORT=${MON_PORT:-$(free_port)}
AK=${AK:-RECMODELTESTKEY}
SK=${SK:-recmodel-test-secret-key}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MON_PORT
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_bind_msgr1 = false
run_dir = $D/run
pid_file = $D/run/\$name.pid
admin_socket = $D/run/\$name.asok
log_file = $D/log/\$name.log
keyring = $D/keyring
crash_dir = $D/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_data_avail_warn = 1
paxos_propose_interval = 0.05
osd_crush_chooseleaf_type = 0
[mon]
mon_data = $D/mon/\$id
mon_cluster_log_file = $D/log/cluster.log
[osd]
osd_data = $D/osd/\$id
osd_objectstore = memstore
memstore_device_bytes = ${MEMSTORE_BYTES:-1073741824}
osd_memory_target = 536870912
[client.rgw.a]
rgw_data = $D/rgw
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
# Virtual-hosted addressing on BUCKET.localhost:PORT; small parts so tests exercise multipart.
rgw_dns_name = localhost
rgw_multipart_min_part_size = 4096
rgw_thread_pool_size = 64
CONF
: > "$D/keyring"
printf 'RGW_ENDPOINT=http://127.0.0.1:%s\nRGW_PORT=%s\nAK=%s\nSK=%s\n' "$RGW_PORT" "$RGW_PORT" "$AK" "$SK" > "$D/env"

monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap"
ceph-mon -i a
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ceph --connect-timeout 30 osd new "$OSD_UUID" >/dev/null
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>/dev/null
ceph-osd -i 0 2>/dev/null
for _ in $(seq 500); do ceph osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.1; done
radosgw -n client.rgw.a
radosgw-admin user create --uid=test --display-name=test --access-key="$AK" --secret="$SK" >/dev/null
wait_rgw
kill -0 "$(cat "$D/run/client.rgw.a.pid")" || { echo "rgw_fixture: radosgw died; see $D/log" >&2; exit 1; }
if [ -n "${OWNER_PID:-}" ]; then
  # Detached from the caller's pipes, so whoever reads our output is not kept waiting.
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; [ -d "$2" ] && "$0" stop "$2"' \
    "$0" "$OWNER_PID" "$D" </dev/null >/dev/null 2>&1 &
fi
cat "$D/env"
