#!/usr/bin/env bash
# Install glancelite and its test dependencies into .venv, then lint and run the whole test suite.
# Extra arguments go to pytest (for example: bash tools/test.sh tests/unit -x).
# One tier without the set-up: bash tools/tier.sh unit|api|store|functional|backends|faults|lint.
set -euo pipefail
export GLANCELITE_EXTRAS=test,lint,postgresql
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
# PostgreSQL server binaries for the database tier (apt, only when missing); the tests start their own cluster.
bash tools/pg-start.sh --install || echo "test.sh: PostgreSQL server not installable; its tests will skip (fail under CI=true)" >&2
# Object-store test servers (Ceph + radosgw, Swift AIO, moto), RabbitMQ (tests/notifications), Redis (tests/cluster) and the rados/rbd bindings in .venv;
# the tests start and stop the servers themselves (tests/backends/servers.py).
bash tools/backends/install-backends.sh || echo "test.sh: object-store backends not installable; their tests will skip (fail under CI=true)" >&2
"$VENV/bin/ruff" check glancelite tests
"$VENV/bin/lint-imports"
if [ $# -gt 0 ]; then
  exec "$VENV/bin/pytest" -q -ra "$@"
fi
"$VENV/bin/pytest" -q -ra
# The API again on PostgreSQL: every api and functional test's `service` runs on the session's private cluster.
GLANCELITE_TEST_DATABASE=postgresql "$VENV/bin/pytest" -q -ra tests/api tests/functional tests/fuzz
