#!/usr/bin/env bash
# Install what the backend test servers need on a fresh Debian 12 box (idempotent; fast when done).
#   apt : memcached (Swift tempauth), ceph-mon ceph-osd ceph-common radosgw python3-rados python3-rbd,
#         qemu-utils (qemu-img: the import plugin and format tests make real images with it),
#         gdisk (sgdisk: the format tests make real GPT disks with it)
#         rabbitmq-server (the notification tests' broker, tools/backends/rabbitmq-start.sh)
#         redis-server (the job board of tests/cluster and benchmarks/cluster.py, tools/backends/redis-start.sh)
#   .venv-tools : a separate venv with PyPI `swift` (Swift AIO), `keystonemiddleware` (its keystone-mode
#                 proxy) and `moto[s3]` (moto_server), so their pins (eventlet, lxml, werkzeug...)
#                 never fight the application's own requirements.
#   APP_VENV (default .venv): Debian's rados/rbd .so files are linked into it (CPython 3.11 only).
# BACKENDS_SKIP_APT=1 skips the apt step (a box without root / without Debian).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_VENV=${TOOLS_VENV:-$ROOT/.venv-tools}
APP_VENV=${APP_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
T0=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
log() { echo "[install-backends $(( $(date +%s) - T0 ))s] $*"; }

APT=(memcached ceph-mon ceph-osd ceph-common radosgw python3-rados python3-rbd uuid-runtime curl qemu-utils gdisk rabbitmq-server redis-server)
if [ "${BACKENDS_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -q >/dev/null
    # policy-rc.d on these images keeps the distro services (memcached, ceph) from starting;
    # our scripts run private instances on other ports anyway.
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  log "apt packages present"
fi

if [ ! -x "$TOOLS_VENV/bin/swift-proxy-server" ] || [ ! -x "$TOOLS_VENV/bin/moto_server" ]; then
  log "creating tools venv $TOOLS_VENV"
  "$PY" -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check swift 'moto[s3]' flask flask-cors keystonemiddleware
fi
# keystonemiddleware: the keystone-mode Swift proxy (authtoken); added later, so an older venv gets it here.
if ! "$TOOLS_VENV/bin/python" -c 'import keystonemiddleware.auth_token' 2>/dev/null; then
  log "installing keystonemiddleware into $TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check keystonemiddleware
fi
log "tools venv ready ($TOOLS_VENV)"

if [ -x "$APP_VENV/bin/python" ] && [ -e /usr/lib/python3/dist-packages/rados.cpython-311-x86_64-linux-gnu.so ]; then
  if "$APP_VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    # Only the two .so files, not all of dist-packages (Debian's requests/urllib3 would shadow ours).
    SP=$("$APP_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir -p "$APP_VENV/ceph-bindings"
    for m in rados rbd; do
      ln -sf "/usr/lib/python3/dist-packages/$m.cpython-311-x86_64-linux-gnu.so" "$APP_VENV/ceph-bindings/"
    done
    echo "$APP_VENV/ceph-bindings" > "$SP/debian-ceph-bindings.pth"
    "$APP_VENV/bin/python" -c 'import rados, rbd' && log "rados/rbd importable in $APP_VENV"
  else
    log "WARNING: $APP_VENV is not CPython 3.11; Debian's rados/rbd cannot load there (rbd tests will skip)"
  fi
fi
log "done"
