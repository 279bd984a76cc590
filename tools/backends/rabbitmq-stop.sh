#!/usr/bin/env bash
# Stop the RabbitMQ and the epmd started by rabbitmq-start.sh (only the PIDs it recorded: the
# start script, the Erlang VM and epmd). RABBITMQ_KEEP_DIR=1 (or the argument "keep") keeps the directory.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
D=${RABBITMQ_TEST_DIR:-/tmp/glancelite-rabbitmq}
[ -d "$D/pids" ] || exit 0
# The VM first (it deregisters from epmd as it goes), then epmd.
stop_pidfiles "$D/pids/rabbit" "$D/pids/vm"
stop_pidfiles "$D/pids/epmd"
[ "${RABBITMQ_KEEP_DIR:-0}" = 1 ] || [ "${1:-}" = keep ] || rm -rf "$D"
exit 0
