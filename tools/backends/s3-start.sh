#!/usr/bin/env bash
# moto's S3 emulator on 127.0.0.1:$S3_PORT (default 9000; 5000 is keystone's). In-memory, one process.
# Idempotent: the recorded PID alive and answering -> print env and exit 0; otherwise start fresh.
# moto_server comes from .venv-tools (tools/backends/install-backends.sh) or $MOTO_BIN_DIR / PATH.
# Output: $S3_TEST_DIR/env.sh (S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
LOG_NAME=s3-start; source "$HERE/common.sh"
D=${S3_TEST_DIR:-/tmp/glancelite-s3}
PORT=${S3_PORT:-9000}
M=${MOTO_BIN_DIR:-$ROOT/.venv-tools/bin}/moto_server
[ -x "$M" ] || M=$(command -v moto_server || true)
[ -n "$M" ] && [ -x "$M" ] || die "moto_server not found: run tools/backends/install-backends.sh" 2
URL=http://127.0.0.1:$PORT

if alive "$D/pids/moto" && curl -fs -o /dev/null "$URL/moto-api/"; then
  log "moto already running"; cat "$D/env.sh"; exit 0
fi
[ -d "$D/pids" ] && "$HERE/s3-stop.sh"
rm -rf "$D"; mkdir -p "$D"/{pids,log}
start_bg "$D/pids/moto" "$D/log/moto.log" "$M" -H 127.0.0.1 -p "$PORT"
wait_http "$URL/moto-api/" 200 || die "moto_server did not come up; see $D/log/moto.log"
cat > "$D/env.sh" <<EOT
export S3_TEST_DIR=$D
export S3_ENDPOINT=$URL
export S3_PID=$(cat "$D/pids/moto")
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
EOT
log "ready; source $D/env.sh"
cat "$D/env.sh"
