"""The real object-store servers of a test session, started by tools/backends/*-start.sh.

Each pytest session gets its own directories and free ports, so concurrent
sessions on one machine never share, or stop, each other's servers. The first
backend asked for starts all three in the background (Ceph is the slowest);
``ensure(name)`` waits for one and returns its env.sh values, or raises
BackendUnavailable with the reason. Servers this session started are stopped
by their scripts (recorded PIDs) when the interpreter exits.

Names: ``s3`` (moto), ``swift`` (Swift AIO + memcached, tempauth), ``ceph``
(mon + memstore OSD with pools images/images2; with radosgw unless
GLANCELITE_TEST_RGW=0, giving a real S3 and a second Swift).
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.support.server import free_port, free_port_run

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tools" / "backends"
START_TIMEOUT = 240


class BackendUnavailable(RuntimeError):
    pass


def with_rgw() -> bool:
    return os.environ.get("GLANCELITE_TEST_RGW", "1") != "0"


class _Backend:
    def __init__(self, name: str, start: str, stop: str, dir_var: str, env: dict[str, str]):
        self.name, self.start_script, self.stop_script, self.dir_var = name, start, stop, dir_var
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.values: dict[str, str] | None = None
        self.error: str | None = None
        self.started_at = 0.0
        self.seconds = 0.0
        self.lock = threading.Lock()

    def launch(self) -> None:
        if self.proc is not None or self.error:
            return
        script = SCRIPTS / self.start_script
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            ["bash", str(script)],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self) -> dict[str, str]:
        with self.lock:
            if self.values is not None:
                return self.values
            if self.error:
                raise BackendUnavailable(self.error)
            self.launch()
            assert self.proc is not None
            try:
                output, _ = self.proc.communicate(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                output, _ = self.proc.communicate()
                self.error = f"{self.start_script} did not finish in {START_TIMEOUT}s"
                raise BackendUnavailable(self.error) from None
            self.seconds = time.monotonic() - self.started_at
            if self.proc.returncode != 0:
                tail = " | ".join(output.strip().splitlines()[-3:])
                self.error = f"tools/backends/{self.start_script} failed ({self.proc.returncode}): {tail}"
                raise BackendUnavailable(self.error)
            values = {}
            for line in output.splitlines():
                if line.startswith("export "):
                    key, _, value = line[len("export ") :].partition("=")
                    values[key] = shlex.split(value)[0] if value else ""
            self.values = values
            return values

    def restart(self) -> dict[str, str]:
        """Run the start script again (idempotent: restarts what is down, keeps ports and dirs)."""
        with self.lock:
            self.values, self.error, self.proc = None, None, None
        return self.wait()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(
            ["bash", str(SCRIPTS / self.stop_script)], env={**os.environ, **self.env}, timeout=60, check=False
        )
        shutil.rmtree(self.env[self.dir_var], ignore_errors=True)


SESSION_PREFIX = "glct-"  # short: Ceph's admin sockets are unix sockets (<= 107 characters)
BACKENDS: dict[str, _Backend] = {}
_session_dir: str | None = None
_launch_lock = threading.Lock()


def _build(session_dir: str) -> dict[str, _Backend]:
    swift_base = free_port_run(3)
    return {
        "s3": _Backend(
            "s3",
            "s3-start.sh",
            "s3-stop.sh",
            "S3_TEST_DIR",
            {"S3_TEST_DIR": f"{session_dir}/s3", "S3_PORT": str(free_port())},
        ),
        "swift": _Backend(
            "swift",
            "swift-start.sh",
            "swift-stop.sh",
            "SWIFT_TEST_DIR",
            {
                "SWIFT_TEST_DIR": f"{session_dir}/swift",
                "SWIFT_PROXY_PORT": str(free_port()),
                "SWIFT_SHORT_PROXY_PORT": str(free_port()),
                "SWIFT_BASE_PORT": str(swift_base),
                "SWIFT_MEMCACHE_PORT": str(free_port()),
            },
        ),
        "ceph": _Backend(
            "ceph",
            "ceph-start.sh",
            "ceph-stop.sh",
            "CEPH_TEST_DIR",
            {
                "CEPH_TEST_DIR": f"{session_dir}/ceph",
                "CEPH_MON_PORT": str(free_port()),
                "CEPH_MON_V2_PORT": str(free_port()),
                "CEPH_RGW_PORT": str(free_port()),
                "CEPH_WITH_RGW": "1" if with_rgw() else "0",
                "CEPH_MEMSTORE_BYTES": str(3 << 30),
            },
        ),
        # A cluster of its own for the test that freezes an OSD: the shared one stays healthy.
        "ceph-outage": _Backend(
            "ceph-outage",
            "ceph-start.sh",
            "ceph-stop.sh",
            "CEPH_TEST_DIR",
            {
                "CEPH_TEST_DIR": f"{session_dir}/ceph-outage",
                "CEPH_MON_PORT": str(free_port()),
                "CEPH_MON_V2_PORT": str(free_port()),
                "CEPH_WITH_RGW": "0",
                "CEPH_POOLS": "images",
                "CEPH_MEMSTORE_BYTES": str(1 << 30),
            },
        ),
    }


# Started only when a test asks for them (ensure), not with the others.
ON_DEMAND = ("ceph-outage",)


def _reap_orphans() -> None:
    """Stop the servers of earlier sessions that died without cleaning up (their owner PID is gone).

    Only through the stop scripts, which end the PIDs those sessions recorded.
    """
    for owner_file in Path("/tmp").glob(f"{SESSION_PREFIX}*/owner"):
        try:
            os.kill(int(owner_file.read_text().strip()), 0)
            continue  # still running: not ours to touch
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        session = owner_file.parent
        for script, var, sub in (
            ("s3-stop.sh", "S3_TEST_DIR", "s3"),
            ("swift-stop.sh", "SWIFT_TEST_DIR", "swift"),
            ("ceph-stop.sh", "CEPH_TEST_DIR", "ceph"),
            ("ceph-stop.sh", "CEPH_TEST_DIR", "ceph-outage"),
        ):
            if (session / sub).is_dir():
                subprocess.run(
                    ["bash", str(SCRIPTS / script)],
                    env={**os.environ, var: str(session / sub)},
                    timeout=60,
                    check=False,
                    capture_output=True,
                )
        shutil.rmtree(session, ignore_errors=True)


_launched_all = False


def _session() -> None:
    """This session's directory and backends (none started yet)."""
    global _session_dir
    with _launch_lock:
        if _session_dir is not None:
            return
        _reap_orphans()
        _session_dir = tempfile.mkdtemp(prefix=SESSION_PREFIX, dir="/tmp")
        Path(_session_dir, "owner").write_text(str(os.getpid()))
        BACKENDS.update(_build(_session_dir))


def _launch_all() -> None:
    global _launched_all
    _session()
    with _launch_lock:
        if _launched_all:
            return
        _launched_all = True
        for name, backend in BACKENDS.items():
            if name not in ON_DEMAND:
                backend.launch()


def ensure(name: str, *, alone: bool = False) -> dict[str, str]:
    """The env.sh values of a running backend (started on first use); BackendUnavailable otherwise.

    ``alone``: start only this one (the faults tier needs one backend per module; starting Ceph
    and radosgw beside it would cost the 2-core machine for nothing).
    """
    if alone:
        _session()
    else:
        _launch_all()
    return BACKENDS[name].wait()


def stop(name: str) -> None:
    """Stop one backend now (its start script may run again later)."""
    backend = BACKENDS.get(name)
    if backend is not None:
        backend.stop()
        with backend.lock:
            backend.values, backend.error, backend.proc = None, None, None


def restart(name: str) -> dict[str, str]:
    _launch_all()
    return BACKENDS[name].restart()


def unavailable(name: str, reason: str):
    """Skip the test with the reason, or fail it under CI=true (CI must run every backend)."""
    message = f"{name} backend unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: every backend must start)", pytrace=False)
    pytest.skip(message)


def launch(*names: str) -> None:
    """Start these backends in the background now (``ensure(name, alone=True)`` waits for each later)."""
    _session()
    for name in names:
        BACKENDS[name].launch()


def require(name: str, *, alone: bool = False) -> dict[str, str]:
    """``ensure`` for tests: the backend's env values, or skip/fail via ``unavailable``."""
    try:
        return ensure(name, alone=alone)
    except BackendUnavailable as exc:
        unavailable(name, str(exc))
        raise  # not reached: unavailable always raises


def timings() -> dict[str, float]:
    return {name: round(b.seconds, 1) for name, b in BACKENDS.items() if b.values is not None}


@atexit.register
def _stop_all() -> None:
    for backend in BACKENDS.values():
        try:
            backend.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    if _session_dir:
        shutil.rmtree(_session_dir, ignore_errors=True)
