#!/usr/bin/env bash
# Stop the Swift AIO started by swift-start.sh: only the PIDs recorded in $SWIFT_TEST_DIR/pids/.
# SWIFT_KEEP_DIR=1 keeps $SWIFT_TEST_DIR (logs, data).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
D=${SWIFT_TEST_DIR:-/tmp/glancelite-swift}
[ -d "$D/pids" ] || exit 0
stop_pidfiles "$D"/pids/*
[ "${SWIFT_KEEP_DIR:-0}" = 1 ] || rm -rf "$D"
exit 0
