#!/usr/bin/env bash
# Stop the moto_server started by s3-start.sh (only the PID it recorded). S3_KEEP_DIR=1 keeps logs.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
D=${S3_TEST_DIR:-/tmp/glancelite-s3}
[ -d "$D/pids" ] || exit 0
stop_pidfiles "$D"/pids/*
[ "${S3_KEEP_DIR:-0}" = 1 ] || rm -rf "$D"
exit 0
