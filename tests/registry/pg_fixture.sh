#!/bin/bash
# A throw-away PostgreSQL server on loopback, the real server of the registry's PostgreSQL
# tests and benchmark. Starts in about a second (fsync off: nothing here must survive a power cut).
#
#   pg_fixture.sh start DIR     initdb in DIR/data and start a server on 127.0.0.1 (socket in DIR);
#                               prints KEY=VALUE lines (PG_PORT, PG_USER, PG_PASSWORD, PG_DB, PG_URL
#                               without the password) and writes them to DIR/env
#   pg_fixture.sh stop DIR      stop that server and remove DIR
#   pg_fixture.sh kill DIR      SIGKILL the server (a crash; the data stays)
#   pg_fixture.sh restart DIR   start it again on the same port after kill
#
# Env for start: PG_PORT (default: a free port), PG_USER (default recmodel), PG_PASSWORD (default:
# random), OWNER_PID (stop the server when that process exits, so a crashed or timed-out test
# leaves no server behind). TCP logins need the password (scram-sha-256), as on a real server.
# Commits survive a crash of the server (kill), not of the machine (fsync is off).
# Run as root, the server runs as nobody (PostgreSQL refuses root). Needs Debian's postgresql.
set -euo pipefail

command=${1:-}
D=${2:-}
[ -n "$command" ] && [ -n "$D" ] || { sed -n '2,15p' "$0" >&2; exit 2; }

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bin" ] && [ -x "$bin/postgres" ] || { echo "pg_fixture: no PostgreSQL server; apt-get install postgresql" >&2; exit 2; }

as_server() {  # runs a command as the server's (unprivileged) user
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; else "$@"; fi
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

server_pid() { head -1 "$D/data/postmaster.pid" 2>/dev/null || true; }

wait_ready() {
  local port=$1
  for _ in $(seq 500); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.02
  done
  echo "pg_fixture: the server is not accepting connections on port $port; see $D/log:" >&2
  tail -20 "$D/log" >&2 || true
  return 1
}

start_server() {
  local port=$1
  as_server "$bin/pg_ctl" -D "$D/data" -l "$D/log" -w -t 30 \
    -o "-p $port -k $D -c listen_addresses=127.0.0.1" start >/dev/null \
    || { echo "pg_fixture: the server did not start; see $D/log:" >&2; tail -20 "$D/log" >&2 || true; return 1; }
  wait_ready "$port"
}

kill_server() {
  local pid
  pid=$(server_pid)
  [ -n "$pid" ] || return 0
  # The postmaster's children end with it (they watch its pipe); SIGKILL them too so the port and
  # shared memory are free at once.
  pkill -9 -P "$pid" 2>/dev/null || true
  kill -9 "$pid" 2>/dev/null || true
  while [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.02; done
  # A zombie postmaster (its parent may reap it late) still "exists": its lock files would stop
  # the restart.
  rm -f "$D/data/postmaster.pid" "$D"/.s.PGSQL.*
}

case "$command" in
  start)
    port=${PG_PORT:-$(free_port)}
    user=${PG_USER:-recmodel}
    password=${PG_PASSWORD:-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}
    mkdir -p "$D"
    chmod 755 "$D"
    [ "$(id -u)" = 0 ] && chown nobody:nogroup "$D"
    printf '%s\n' "$password" > "$D/password"
    chmod 644 "$D/password"
    as_server "$bin/initdb" -D "$D/data" -U "$user" --pwfile="$D/password" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 > "$D/initdb.log" 2>&1 \
      || { echo "pg_fixture: initdb failed:" >&2; tail -20 "$D/initdb.log" >&2; exit 1; }
    rm -f "$D/password"
    cat >> "$D/data/postgresql.conf" <<EOF
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 200
EOF
    start_server "$port"
    as_server "$bin/../bin/psql" -q -h "$D" -p "$port" -U "$user" -d postgres -c "CREATE DATABASE recmodel" >/dev/null
    {
      echo "PG_PORT=$port"
      echo "PG_HOST=127.0.0.1"
      echo "PG_USER=$user"
      echo "PG_PASSWORD=$password"
      echo "PG_DB=recmodel"
      echo "PG_URL=postgresql://$user@127.0.0.1:$port/recmodel"
    } > "$D/env"
    cat "$D/env"
    if [ -n "${OWNER_PID:-}" ]; then
      # A watchdog: when the owner is gone, so is the server. Its stdio is /dev/null, so a caller
      # reading this script's output through a pipe is not held open.
      nohup bash -c "while kill -0 $OWNER_PID 2>/dev/null; do sleep 1; done; '$0' stop '$D'" \
        >/dev/null 2>&1 </dev/null &
      disown
    fi
    ;;
  stop)
    [ -d "$D" ] || exit 0
    kill_server
    rm -rf "$D"
    ;;
  kill)
    kill_server
    ;;
  restart)
    port=$(sed -n 's/^PG_PORT=//p' "$D/env")
    start_server "$port"
    ;;
  *)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
