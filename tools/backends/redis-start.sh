#!/usr/bin/env bash
# A private Redis (Debian's redis-server) for the job board tests (tests/cluster) and the cluster
# benchmark: 127.0.0.1:$REDIS_PORT (default 6380), its own directory, append-only file on (a
# restart keeps the job board: the Redis restart test stops and starts it with the data kept).
#   tools/backends/redis-start.sh            start (idempotent: recorded PID alive and answering -> print env)
#   tools/backends/redis-start.sh --install  only make sure redis-server is installed (apt), then exit
# Output: $REDIS_TEST_DIR/env.sh (REDIS_URL, REDIS_PORT, REDIS_PID). tools/backends/redis-stop.sh stops that PID.
# REDIS_KEEP_DATA=1 starts on the data a previous run left (the restart case); otherwise the directory starts empty.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LOG_NAME=redis-start; source "$HERE/common.sh"
install_server() {
  command -v redis-server >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "redis-server not installed and not root: apt-get install redis-server" 2
  log "apt-get install redis-server"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null; }
  # The package starts the distro's own instance on 6379; ours is private and that one is left alone.
  command -v redis-server >/dev/null
}
if [ "${1:-}" = "--install" ]; then install_server; exit $?; fi
install_server
D=${REDIS_TEST_DIR:-/tmp/glancelite-redis}
PORT=${REDIS_PORT:-6380}
answers() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }
if alive "$D/pids/redis" && answers; then
  log "redis already running"; cat "$D/env.sh"; exit 0
fi
[ -d "$D/pids" ] && "$HERE/redis-stop.sh" keep
[ "${REDIS_KEEP_DATA:-0}" = 1 ] || rm -rf "$D/data"
mkdir -p "$D"/{pids,data}
start_bg "$D/pids/redis" "$D/redis.log" redis-server --bind 127.0.0.1 --port "$PORT" --dir "$D/data" \
  --appendonly yes --appendfsync everysec --save "" --daemonize no --protected-mode yes --logfile ""
for _ in $(seq 1 100); do answers && break; alive "$D/pids/redis" || break; sleep 0.1; done
answers || { tail -20 "$D/redis.log" >&2; die "redis did not answer on $PORT; see $D/redis.log"; }
cat > "$D/env.sh" <<EOT
export REDIS_TEST_DIR=$D
export REDIS_PORT=$PORT
export REDIS_PID=$(cat "$D/pids/redis")
export REDIS_URL=redis://127.0.0.1:$PORT/0
EOT
log "ready; source $D/env.sh"
cat "$D/env.sh"
