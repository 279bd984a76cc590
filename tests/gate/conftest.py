"""Shared by the gate tests: a running keystone + glancelite (flavor keystone) and a keystone client.

``gate`` is the environment tools/gate/run.sh wrote (GLANCELITE_GATE_ENV), or, with
GLANCELITE_GATE=1, one ``run.sh up`` started for the whole session (about 30 s; needs
``bash tools/gate/install.sh``); otherwise the tests using it skip, saying why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "tools" / "gate" / "run.sh"
START_DEADLINE = 240.0


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def gate(tmp_path_factory):
    """URLs and credentials of a running keystone + glancelite (flavor keystone)."""
    given = os.environ.get("GLANCELITE_GATE_ENV")
    if given:
        yield _read_env(Path(given))
        return
    if os.environ.get("GLANCELITE_GATE") != "1":
        pytest.skip(
            "keystone gate tests need a real keystone: run `bash tools/gate/run.sh` "
            "(or set GLANCELITE_GATE=1 after `bash tools/gate/install.sh`)"
        )
    if not (ROOT / ".venv-gate" / "bin" / "keystone-manage").exists():
        pytest.skip("GLANCELITE_GATE=1 but keystone is not installed: run `bash tools/gate/install.sh`")
    work = tmp_path_factory.mktemp("gate")
    env = dict(os.environ, GATE_WORK=str(work), GATE_SKIP_INSTALL="1")
    log = open(work / "run-up.log", "wb")
    proc = subprocess.Popen(
        ["bash", str(RUN_SH), "up"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        end = time.monotonic() + START_DEADLINE
        while not (work / "gate.env").exists():
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"run.sh up did not come up: {(work / 'run-up.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield _read_env(work / "gate.env")
    finally:
        # run.sh's EXIT trap stops keystone, glancelite and the image server by PID.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


class Keystone:
    """Just enough of keystone's v3 API, over plain HTTP."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def token(self, user: str, password: str, project: str | None, scope: dict | None = None) -> tuple[str, dict]:
        """A password token scoped to ``project``, or to ``scope`` (keystone's scope body) when given."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
                },
                "scope": scope or {"project": {"name": project, "domain": {"id": "default"}}},
            }
        }
        resp = self.session.post(f"{self.url}/v3/auth/tokens", json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"], resp.json()["token"]

    def call(self, method: str, path: str, token: str, **kwargs):
        resp = self.session.request(
            method, f"{self.url}/v3{path}", headers={"X-Auth-Token": token}, timeout=30, **kwargs
        )
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def role_id(self, token: str, name: str) -> str:
        return self.call("GET", f"/roles?name={name}", token)["roles"][0]["id"]


@pytest.fixture(scope="session")
def keystone(gate):
    return Keystone(gate["GATE_KEYSTONE_URL"])


@pytest.fixture(scope="module")
def admin(gate, keystone):
    token, body = keystone.token(gate["GATE_ADMIN_USER"], gate["GATE_ADMIN_PASSWORD"], gate["GATE_ADMIN_PROJECT"])
    return {"token": token, "project_id": body["project"]["id"], "user_id": body["user"]["id"]}
