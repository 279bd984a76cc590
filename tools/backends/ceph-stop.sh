#!/usr/bin/env bash
# Stop the cluster of ceph-start.sh: only the PIDs recorded in $CEPH_TEST_DIR/pids/.
# Daemons first (an OSD's shutdown waits for the mon), then the mon; TERM, 3 s, then KILL
# (memstore data is throw-away). CEPH_KEEP_DIR=1 keeps the directory (logs).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
D=${CEPH_TEST_DIR:-/tmp/glancelite-ceph}
[ -d "$D/pids" ] || exit 0
others=(); for f in "$D"/pids/*; do [ "$f" = "$D/pids/mon.a" ] || others+=("$f"); done
[ ${#others[@]} -eq 0 ] || stop_pidfiles "${others[@]}"
stop_pidfiles "$D/pids/mon.a"
[ "${CEPH_KEEP_DIR:-0}" = 1 ] || rm -rf "$D"
exit 0
