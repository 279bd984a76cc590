# Sourced by tools/serve.sh and tools/test.sh: one virtualenv at .venv with glancelite installed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
# Re-install only when the project's metadata changed since the last install.
stamp="$VENV/.glancelite-installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)-${GLANCELITE_EXTRAS:-base}"
if [ ! -e "$stamp" ]; then
  "$VENV/bin/pip" install -q -e "$ROOT${GLANCELITE_EXTRAS:+[$GLANCELITE_EXTRAS]}"
  touch "$stamp"
fi
