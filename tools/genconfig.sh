#!/usr/bin/env bash
# Regenerate etc/glance-api.conf.sample with the project's .venv (no tox needed):
#   bash tools/genconfig.sh [oslo-config-generator arguments...]
# The namespaces are etc/oslo-config-generator/glance-api.conf's: glancelite's options and those of
# the libraries that read its other groups (keystonemiddleware, oslo.limit, oslo.policy).
# tests/unit/test_sample_config.py fails while the committed sample differs from what this writes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GENERATOR="$ROOT/.venv/bin/oslo-config-generator"
if [ ! -x "$GENERATOR" ]; then
  echo "genconfig.sh: $ROOT/.venv lacks oslo-config-generator; create it once with" >&2
  echo "  bash -c 'source tools/venv.sh'   (or bash tools/test.sh)" >&2
  exit 2
fi
cd "$ROOT"
exec "$GENERATOR" --config-file etc/oslo-config-generator/glance-api.conf "$@"
