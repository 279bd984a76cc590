#!/usr/bin/env bash
# A private, throw-away PostgreSQL cluster for the test suite on 127.0.0.1 (never the distro cluster).
#   tools/pg-start.sh            start (idempotent: already up -> print env and exit 0)
#   tools/pg-start.sh --install  only make sure the server binaries are installed (apt), then exit
# Env: GLANCELITE_PG_DIR (/tmp/glancelite-pg), GLANCELITE_PG_PORT (a free port, else 5433),
#      GLANCELITE_PG_OWNER_PID: stop the cluster when that process is gone (a killed test session leaks nothing).
# Writes $GLANCELITE_PG_DIR/env.sh (GLANCELITE_PG_URL = superuser URL, GLANCELITE_PG_PORT),
# records the postmaster PID in $GLANCELITE_PG_DIR/pids/postgres; tools/pg-stop.sh stops that PID.
# Runs postgres as user 'postgres' when invoked as root (postgres refuses to run as root).
set -euo pipefail

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_server() {
  pg_bin >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "pg-start: PostgreSQL server not installed and not root: apt-get install postgresql" >&2; return 2; }
  export DEBIAN_FRONTEND=noninteractive
  echo "pg-start: installing the PostgreSQL server (apt-get install postgresql)" >&2
  if ! apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q --no-install-recommends postgresql >/dev/null
  fi
  # The package starts the distro cluster; ours is private, that one is not needed.
  pg_bin >/dev/null
}

if [ "${1:-}" = "--install" ]; then install_server; exit $?; fi

D=${GLANCELITE_PG_DIR:-/tmp/glancelite-pg}
if [ -z "${GLANCELITE_PG_PORT:-}" ]; then
  GLANCELITE_PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 5433)
fi
PORT=$GLANCELITE_PG_PORT
install_server
BIN=$(pg_bin)
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); else AS=(); fi

if [ -s "$D/pids/postgres" ] && kill -0 "$(cat "$D/pids/postgres")" 2>/dev/null && [ -s "$D/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$D/env.sh"
  if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$GLANCELITE_PG_PORT"; then cat "$D/env.sh"; exit 0; fi
fi
# Half-up or stale: stop what we recorded, start fresh.
if [ -d "$D/pids" ]; then GLANCELITE_PG_DIR=$D "$(dirname "$0")/pg-stop.sh" || true; fi
rm -rf "$D/data" "$D/run" "$D/pids" "$D/env.sh"
mkdir -p "$D/pids" "$D/run"
if [ "$(id -u)" = 0 ]; then chown postgres: "$D" "$D/run"; chmod 0755 "$D"; fi
"${AS[@]}" "$BIN/initdb" -D "$D/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$D/initdb.log" 2>&1 \
  || { cat "$D/initdb.log" >&2; exit 1; }
"${AS[@]}" "$BIN/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 30 -o \
  "-c listen_addresses=127.0.0.1 -p $PORT -k $D/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { tail -20 "$D/server.log" >&2; exit 1; }
head -1 "$D/data/postmaster.pid" >"$D/pids/postgres"
if [ -n "${GLANCELITE_PG_OWNER_PID:-}" ]; then
  STOP_SCRIPT="$(cd "$(dirname "$0")" && pwd)/pg-stop.sh"
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; rm -f "$2/pids/watchdog"; GLANCELITE_PG_DIR=$2 "$3"' \
    pg-watchdog "$GLANCELITE_PG_OWNER_PID" "$D" "$STOP_SCRIPT" </dev/null >/dev/null 2>&1 &
  echo $! >"$D/pids/watchdog"
fi
cat >"$D/env.sh" <<ENV
export GLANCELITE_PG_DIR=$D
export GLANCELITE_PG_PORT=$PORT
export GLANCELITE_PG_URL=postgresql://postgres@127.0.0.1:$PORT/postgres
ENV
cat "$D/env.sh"
