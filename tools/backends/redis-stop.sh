#!/usr/bin/env bash
# Stop the Redis that redis-start.sh started (only the PID it recorded; SIGTERM: Redis flushes its
# append-only file first). REDIS_KEEP_DIR=1 (or the argument "keep") keeps the directory and its data.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
D=${REDIS_TEST_DIR:-/tmp/glancelite-redis}
[ -d "$D/pids" ] || exit 0
stop_pidfiles "$D/pids/redis"
[ "${REDIS_KEEP_DIR:-0}" = 1 ] || [ "${1:-}" = keep ] || rm -rf "$D"
exit 0
