#!/usr/bin/env bash
# Install what the devstack-style gate needs, apart from glancelite's own .venv:
#   .venv-gate  keystone, tempest, python-openstackclient and gunicorn (keystone's WSGI server)
#   qemu-img    (Debian's qemu-utils) to make the small real qcow2 the gate serves to tempest
#   chromium    (Debian's chromium and chromium-driver) for tests/gate/test_cors_browser.py, a
#               browser page doing Horizon's direct upload (selenium comes with the test extras)
# Idempotent and quiet; a second run with everything in place takes a few seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GATE_VENV="$ROOT/.venv-gate"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# Versions the Glance 33 comparison run (tools/gate/README.md, Results) was measured with.
PACKAGES=(
  "keystone==30.0.0"
  "tempest==47.0.0"
  "python-openstackclient==10.5.0"
  "gunicorn>=22"
)

# glancelite itself (.venv, with its test extras for tests/gate) — the same script tools/test.sh uses.
LOG_DIR="${GATE_WORK:-/tmp/glancelite-gate}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/install.log"
: >"$LOG"
quietly() { "$@" >>"$LOG" 2>&1 || { echo "install.sh: '$*' failed; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }; }
# shellcheck source=../venv.sh
GLANCELITE_EXTRAS=${GLANCELITE_EXTRAS:-test,lint,postgresql} quietly bash -c "source '$ROOT/tools/venv.sh'"

if ! command -v qemu-img >/dev/null; then
  echo "install.sh: installing qemu-utils" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq qemu-utils >>"$LOG" 2>&1 || {
    quietly apt-get update -qq
    quietly apt-get install -y -qq qemu-utils
  }
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "install.sh: installing chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Other installs may hold the dpkg lock (the backends' script, a second gate): wait for it.
  apt-get -o DPkg::Lock::Timeout=1200 install -y -qq chromium chromium-driver >>"$LOG" 2>&1 || {
    quietly apt-get -o DPkg::Lock::Timeout=1200 update -qq
    quietly apt-get -o DPkg::Lock::Timeout=1200 install -y -qq chromium chromium-driver
  }
fi

if [ ! -x "$GATE_VENV/bin/python" ]; then
  quietly "$PY" -m venv "$GATE_VENV"
  quietly "$GATE_VENV/bin/pip" install -q --upgrade pip
fi
stamp="$GATE_VENV/.gate-installed-$(printf '%s\n' "${PACKAGES[@]}" | sha1sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  echo "install.sh: installing ${PACKAGES[*]} into .venv-gate" >&2
  quietly "$GATE_VENV/bin/pip" install -q "${PACKAGES[@]}"
  touch "$stamp"
fi
