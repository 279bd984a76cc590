"""tools/pg-start.sh and tools/pg-stop.sh: idempotent start, 127.0.0.1 only, stopped by the recorded PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import START, STOP, unavailable


def run(script: Path, directory: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GLANCELITE_PG_DIR": directory}
    env.pop("GLANCELITE_PG_PORT", None)
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)


def exported(stdout: str) -> dict[str, str]:
    return dict(line[len("export ") :].split("=", 1) for line in stdout.splitlines() if line.startswith("export "))


@pytest.fixture
def directory():
    path = tempfile.mkdtemp(prefix="glancelite-pg-script-", dir="/tmp")
    yield path
    run(STOP, path)
    shutil.rmtree(path, ignore_errors=True)


def test_start_is_idempotent_and_stop_uses_the_recorded_pid(directory):
    first = run(START, directory)
    if first.returncode != 0:
        unavailable(f"tools/pg-start.sh failed: {first.stderr.strip()[-300:]}")
    env = exported(first.stdout)
    pid = int((Path(directory) / "pids" / "postgres").read_text())
    with psycopg.connect(env["GLANCELITE_PG_URL"]) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert conn.execute("SELECT pg_backend_pid() > 0").fetchone()[0]

    again = run(START, directory)
    assert again.returncode == 0
    assert exported(again.stdout) == env, "a second start must reuse the running cluster"
    assert int((Path(directory) / "pids" / "postgres").read_text()) == pid

    assert run(STOP, directory).returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not Path(directory).exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", int(env["GLANCELITE_PG_PORT"]))) != 0
    assert run(STOP, directory).returncode == 0  # stopping twice is harmless


def test_cluster_stops_itself_when_its_owner_dies(directory):
    owner = subprocess.Popen(["sleep", "300"])
    env = {**os.environ, "GLANCELITE_PG_DIR": directory, "GLANCELITE_PG_OWNER_PID": str(owner.pid)}
    env.pop("GLANCELITE_PG_PORT", None)
    started = subprocess.run(["bash", str(START)], env=env, capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        owner.kill()
        unavailable(f"tools/pg-start.sh failed: {started.stderr.strip()[-300:]}")
    pid = int((Path(directory) / "pids" / "postgres").read_text())
    owner.kill()  # a test session killed before its teardown
    owner.wait()
    deadline = time.monotonic() + 20
    while Path(directory).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(directory).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
