#!/usr/bin/env bash
# Install glancelite and its test dependencies into .venv, then lint and run the whole test suite.
# Extra arguments go to pytest (for example: bash tools/test.sh tests/unit -x).
set -euo pipefail
export GLANCELITE_EXTRAS=test,lint,postgresql
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
# PostgreSQL server binaries for the database tier (apt, only when missing); the tests start their own cluster.
bash tools/pg-start.sh --install || echo "test.sh: PostgreSQL server not installable; its tests will skip (fail under CI=true)" >&2
"$VENV/bin/ruff" check glancelite tests
"$VENV/bin/lint-imports"
"$VENV/bin/pytest" -q -ra "$@"
