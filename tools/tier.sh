#!/usr/bin/env bash
# Run one test tier with the .venv that tools/test.sh (or tools/venv.sh) made: no install, no apt.
#   bash tools/tier.sh unit|api|store|functional|backends|fuzz|faults|notifications|cluster|lint [pytest arguments...]
# GLANCELITE_TEST_DATABASE=postgresql runs the api, functional and fuzz tiers' services on the session's
# private PostgreSQL (needs the server binaries that `tools/pg-start.sh --install` puts in place).
# README.rst, "Test tiers", says what each tier needs and how long it takes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
usage() { echo "usage: bash tools/tier.sh unit|api|store|functional|backends|fuzz|faults|notifications|cluster|lint [pytest arguments...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
tier=$1
shift
if [ ! -x "$VENV/bin/pytest" ] || [ ! -x "$VENV/bin/ruff" ]; then
  echo "tier.sh: $VENV lacks the test tools; create it once with" >&2
  echo "  GLANCELITE_EXTRAS=test,lint,postgresql bash -c 'source tools/venv.sh'   (or bash tools/test.sh)" >&2
  exit 2
fi
cd "$ROOT"
case "$tier" in
  unit | api | store | functional | backends | fuzz | faults | notifications | cluster)
    exec "$VENV/bin/pytest" -q -ra "tests/$tier" "$@"
    ;;
  lint)
    [ $# -eq 0 ] || usage
    "$VENV/bin/ruff" check glancelite tests
    exec "$VENV/bin/lint-imports"
    ;;
  *)
    usage
    ;;
esac
