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
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.server import free_port, free_port_run

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "tools" / "gate" / "run.sh"
START_DEADLINE = 240.0
SCRIPTS = ROOT / "tools" / "backends"
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"


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


def service_authtoken(gate: dict[str, str]) -> dict[str, str]:
    """``[keystone_authtoken]`` of a glancelite the tests start against the gate's keystone."""
    url = gate["GATE_KEYSTONE_URL"]
    return {
        "www_authenticate_uri": url,
        "auth_url": url,
        "auth_type": "password",
        "username": gate["GATE_SERVICE_USER"],
        "password": gate["GATE_SERVICE_PASSWORD"],
        "project_name": gate["GATE_SERVICE_PROJECT"],
        "user_domain_id": "default",
        "project_domain_id": "default",
    }


def object_store_url(token_body: dict, region: str) -> str:
    """The public object-store endpoint of ``region`` in a token's catalog (exactly one)."""
    urls = [
        endpoint["url"]
        for entry in token_body["catalog"]
        if entry["type"] == "object-store"
        for endpoint in entry["endpoints"]
        if endpoint["region_id"] == region and endpoint["interface"] == "public"
    ]
    assert len(urls) == 1, token_body["catalog"]
    return urls[0]


def _backend_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing backend fails)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def swift_keystone(gate, keystone, admin, tmp_path_factory):
    """A keystone-mode Swift AIO and the keystone objects around it; all removed afterwards."""
    if not (ROOT / ".venv-tools" / "bin" / "swift-proxy-server").exists():
        _backend_missing("Swift is not installed: run `bash tools/backends/install-backends.sh`")
    probe = subprocess.run([str(TOOLS_PYTHON), "-c", "import keystonemiddleware.auth_token"], capture_output=True)
    if probe.returncode != 0:
        _backend_missing("keystonemiddleware is not in .venv-tools: run `bash tools/backends/install-backends.sh`")

    token = admin["token"]
    suffix = uuid.uuid4().hex[:8]
    created: list[str] = []  # keystone paths to DELETE at teardown, newest first

    def create(path: str, kind: str, body: dict) -> dict:
        obj = keystone.call("POST", path, token, json={kind: body})[kind]
        created.insert(0, f"{path}/{obj['id']}")
        return obj

    def user_in_project(name: str, *roles: str) -> tuple[dict, dict, str]:
        project = create("/projects", "project", {"name": f"{name}-{suffix}", "domain_id": "default"})
        password = uuid.uuid4().hex
        user = create("/users", "user", {"name": f"{name}-{suffix}", "password": password, "domain_id": "default"})
        for role in roles:
            role_id = keystone.role_id(token, role)
            keystone.call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role_id}", token)
        return project, user, password

    swift_dir = tmp_path_factory.mktemp("swift-keystone")
    env = None
    try:
        region = create("/regions", "region", {"id": f"swift-gate-{suffix}"})["id"]
        # keystone's default policy lets the `service` role validate others' tokens (authtoken's job).
        service_project, service_user, service_password = user_in_project("swift-service", "service")
        project, user, password = user_in_project("glance-swift", "member")
        proxy_port = free_port()
        storage_template = f"http://127.0.0.1:{proxy_port}/v1/AUTH_$(project_id)s"
        service = create("/services", "service", {"type": "object-store", "name": f"swift-{suffix}"})
        for interface in ("public", "internal"):
            create(
                "/endpoints",
                "endpoint",
                {"service_id": service["id"], "interface": interface, "url": storage_template, "region_id": region},
            )
        env = {
            **os.environ,
            "SWIFT_TEST_DIR": str(swift_dir / "aio"),
            "SWIFT_PROXY_PORT": str(free_port()),
            "SWIFT_SHORT_PROXY_PORT": str(free_port()),
            "SWIFT_BASE_PORT": str(free_port_run(3)),
            "SWIFT_MEMCACHE_PORT": str(free_port()),
            "SWIFT_KEYSTONE_URL": gate["GATE_KEYSTONE_URL"],
            "SWIFT_KEYSTONE_PROXY_PORT": str(proxy_port),
            "SWIFT_KEYSTONE_USER": service_user["name"],
            "SWIFT_KEYSTONE_PASSWORD": service_password,
            "SWIFT_KEYSTONE_PROJECT": service_project["name"],
        }
        started = subprocess.run(
            ["bash", str(SCRIPTS / "swift-start.sh")], env=env, capture_output=True, text=True, timeout=180
        )
        assert started.returncode == 0, f"swift-start.sh failed:\n{started.stdout}\n{started.stderr}"
        assert f"SWIFT_KEYSTONE_PROXY_URL=http://127.0.0.1:{proxy_port}" in started.stdout, started.stdout
        yield {
            "keystone_url": gate["GATE_KEYSTONE_URL"],
            "region": region,
            "proxy_url": f"http://127.0.0.1:{proxy_port}",
            "project": project,
            "user": user,
            "password": password,
            "suffix": suffix,
            # More projects with a user each, removed with the rest: user_in_project(name, *roles).
            "user_in_project": user_in_project,
        }
    finally:
        if env is not None:
            subprocess.run(["bash", str(SCRIPTS / "swift-stop.sh")], env=env, timeout=60, check=False)
        for path in created:
            resp = keystone.session.delete(f"{keystone.url}/v3{path}", headers={"X-Auth-Token": token}, timeout=30)
            assert resp.status_code in (204, 404), f"DELETE {path}: {resp.status_code} {resp.text}"
