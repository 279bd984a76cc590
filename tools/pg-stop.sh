#!/usr/bin/env bash
# Stop the cluster tools/pg-start.sh started: fast shutdown of the recorded postmaster PID, then remove its directory.
# Env: GLANCELITE_PG_DIR (/tmp/glancelite-pg); GLANCELITE_PG_KEEP_DIR=1 keeps the files for a post-mortem.
set -u
D=${GLANCELITE_PG_DIR:-/tmp/glancelite-pg}
[ -d "$D" ] || exit 0
if [ -s "$D/pids/postgres" ]; then
  pid=$(cat "$D/pids/postgres")
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid"  # postgres "fast" shutdown: abort sessions, checkpoint, exit
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -QUIT "$pid"
  fi
  rm -f "$D/pids/postgres"
fi
if [ -s "$D/pids/watchdog" ]; then
  kill "$(cat "$D/pids/watchdog")" 2>/dev/null
  rm -f "$D/pids/watchdog"
fi
[ "${GLANCELITE_PG_KEEP_DIR:-0}" = 1 ] || rm -rf "$D"
exit 0
