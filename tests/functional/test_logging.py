"""Logging through oslo.log from Glance's [DEFAULT] options, on a real glancelite-api under gunicorn.

Every case starts its own service (the options are read at start) and reads what it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import identity
from tests.functional.test_startup import listening, port_of, run_api
from tests.support.server import BIN, Server, write_config

ALICE = identity("project-a", "reader,member", "user-a")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def lines_with(text: str, log: str) -> list[str]:
    return [line for line in log.splitlines() if text in line]


def create_and_upload(url: str, data: bytes = b"some image bytes") -> str:
    made = requests.post(f"{url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=ALICE)
    assert made.status_code == 201, made.text
    image_id = made.json()["id"]
    put = requests.put(
        f"{url}/v2/images/{image_id}/file",
        data=data,
        headers={**ALICE, "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert put.status_code == 204, put.text
    return image_id


def test_lines_logged_in_a_request_carry_its_id_user_and_project(tmp_path):
    """oslo.log's context format, as Glance logs: ``[global_request_id request_id user project ...]``."""
    server = Server(write_config(tmp_path, {"DEFAULT": {"workers": "1"}})).start()
    try:
        image_id = create_and_upload(server.url)
        # Data already gone at delete time: the service logs an INFO line inside the request.
        (tmp_path / "fast" / image_id).unlink()
        rid = new_request_id()
        gone = requests.delete(f"{server.url}/v2/images/{image_id}", headers={**ALICE, "X-Openstack-Request-Id": rid})
        assert gone.status_code == 204 and gone.headers["x-openstack-request-id"] == rid
        # Served by the same worker's threads just after: no line may claim the previous request.
        for _ in range(3):
            assert requests.get(f"{server.url}/healthcheck", timeout=5).text == "OK"
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    prefix = f"[None {rid} user-a project-a - - - -]"
    service_line = lines_with(f"location of file not deleted: Image file {tmp_path / 'fast' / image_id}", log)
    assert len(service_line) == 1 and prefix in service_line[0], log[-3000:]
    assert " INFO glancelite.store.stores " in service_line[0]
    access = lines_with(f'"DELETE /v2/images/{image_id} HTTP/1.1" 204 ', log)
    assert len(access) == 1, log[-3000:]
    assert prefix in access[0] and access[0].endswith(f"request_id: {rid}")
    health = lines_with('"GET /healthcheck HTTP/1.1" 200 ', log)
    assert len(health) == 3 and all(" gunicorn.access [-] " in line for line in health), health


def test_log_dir_gets_a_file_per_program(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    conf = write_config(tmp_path, {"DEFAULT": {"log_file": None, "log_dir": str(logs)}})
    server = Server(conf).start()  # runs glancelite-manage db sync first
    try:
        assert requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=5).status_code == 200
    finally:
        assert server.stop() == 0
    assert sorted(p.name for p in logs.iterdir()) == ["glancelite-api.log", "glancelite-manage.log"]
    api_log = (logs / "glancelite-api.log").read_text()
    assert lines_with("Starting gunicorn", api_log) and lines_with('"GET /v2/images HTTP/1.1" 200 ', api_log)
    assert "alembic.runtime.migration" in (logs / "glancelite-manage.log").read_text()


def test_use_json_writes_one_object_per_line_with_the_request_context(tmp_path):
    server = Server(write_config(tmp_path, {"DEFAULT": {"use_json": "true"}})).start()
    rid = new_request_id()
    try:
        headers = {**ALICE, "X-Openstack-Request-Id": rid}
        assert requests.get(f"{server.url}/v2/images", headers=headers, timeout=5).status_code == 200
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in server.log.read_text().splitlines()]
    assert any(r["name"] == "gunicorn.error" and r["message"].startswith("Starting gunicorn") for r in records)
    access = [r for r in records if r["name"] == "gunicorn.access" and r["context"].get("request_id") == rid]
    assert len(access) == 1, records[-5:]
    context = access[0]["context"]
    assert (context["user"], context["project"]) == ("user-a", "project-a")
    assert '"GET /v2/images HTTP/1.1" 200 ' in access[0]["message"]


def test_log_config_append_replaces_the_other_logging_options(tmp_path):
    custom = tmp_path / "custom.log"
    logging_conf = tmp_path / "logging.conf"
    logging_conf.write_text(
        "[loggers]\nkeys = root\n\n"
        "[handlers]\nkeys = file\n\n"
        "[formatters]\nkeys = plain\n\n"
        "[logger_root]\nlevel = INFO\nhandlers = file\n\n"
        f"[handler_file]\nclass = FileHandler\nformatter = plain\nargs = ({str(custom)!r},)\n\n"
        "[formatter_plain]\nformat = CUSTOM %(levelname)s %(name)s %(message)s\n"
    )
    # use_json and log_file stay set: log_config_append wins over them, as in oslo.log.
    sections = {"DEFAULT": {"log_config_append": str(logging_conf), "use_json": "true"}}
    server = Server(write_config(tmp_path, sections))
    server.start()
    try:
        assert requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=5).status_code == 200
    finally:
        assert server.stop() == 0
    written = custom.read_text()
    assert lines_with("CUSTOM INFO gunicorn.error Starting gunicorn", written), written
    access = lines_with('"GET /v2/images HTTP/1.1" 200 ', written)
    assert len(access) == 1 and access[0].startswith("CUSTOM INFO gunicorn.access 127.0.0.1 - - ["), written
    # glancelite-manage db sync (same configuration) wrote there too; api.log received nothing.
    assert not server.log.exists() or not server.log.read_text(), server.log.read_text()


def test_default_log_levels_sets_a_library_loggers_level(tmp_path):
    sections = {"DEFAULT": {"default_log_levels": "gunicorn.access=WARN, alembic=WARN"}}
    server = Server(write_config(tmp_path, sections)).start()
    try:
        assert requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=5).status_code == 200
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert lines_with("INFO gunicorn.error", log), log
    assert not lines_with("gunicorn.access", log) and not lines_with(" alembic.", log), log


def _private_dev_with_log_socket(root: Path, socket_path: Path) -> tuple[str, ...]:
    """A command prefix running its arguments in a private mount namespace whose /dev is a tmpfs
    holding the usual device nodes and ``/dev/log`` pointing at ``socket_path``: glibc's syslog()
    always writes to /dev/log, so this is how a test receives what oslo.log's syslog handler sends
    without touching the host's /dev."""
    real_dev = root / "real-dev"
    real_dev.mkdir()
    script = f"""set -e
mount --bind /dev {real_dev}
mount -t tmpfs -o mode=755 tmpfs /dev
for node in null zero full random urandom tty; do
  touch /dev/$node && mount --bind {real_dev}/$node /dev/$node
done
mkdir /dev/shm && mount --bind {real_dev}/shm /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
ln -s {socket_path} /dev/log
exec "$@"
"""
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh")


def _mount_namespaces_available() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a mount namespace ({probe.stderr.strip()}); needs root/CAP_SYS_ADMIN"
    return None


def test_use_syslog_sends_each_line_to_dev_log_with_the_facility(tmp_path):
    why_not = _mount_namespaces_available()
    if why_not:
        pytest.skip(why_not)
    socket_path = tmp_path / "syslog.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(socket_path))
    received: list[str] = []
    # A syslog daemon's part: read every datagram (a full queue would block the sender's syslog()).
    reader = threading.Thread(target=_read_datagrams, args=(receiver, received), daemon=True)
    reader.start()
    sections = {"DEFAULT": {"use_syslog": "true", "syslog_log_facility": "LOG_LOCAL3"}}
    server = Server(write_config(tmp_path, sections), wrapper=_private_dev_with_log_socket(tmp_path, socket_path))
    rid = new_request_id()
    try:
        server.start()
        headers = {**ALICE, "X-Openstack-Request-Id": rid}
        assert requests.get(f"{server.url}/v2/images", headers=headers, timeout=5).status_code == 200
        deadline = time.monotonic() + 10
        while not any(rid in m for m in received) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
        receiver.shutdown(socket.SHUT_RDWR)
        receiver.close()
    assert any(rid in m for m in received), received[-5:]
    access = next(m for m in received if rid in m)
    # <PRI> = facility local3 (19) * 8 + severity info (6); the ident is the program's name.
    assert access.startswith("<158>") and " glancelite-api: " in access, access
    assert f"[None {rid} user-a project-a" in access and '"GET /v2/images HTTP/1.1" 200 ' in access
    # The log file is still written as well: syslog is one more destination, as in oslo.log.
    assert lines_with(f"request_id: {rid}", server.log.read_text())


def _read_datagrams(receiver: socket.socket, into: list[str]) -> None:
    while True:
        try:
            data = receiver.recv(65536)
        except OSError:
            return
        if not data:
            return
        into.append(data.decode())


@pytest.mark.parametrize("program", ["glancelite-api", "glancelite-manage"])
def test_use_journal_without_the_systemd_bindings_refuses_in_one_line(tmp_path, program):
    # The bindings made unimportable whether or not this host has them: oslo.log imports
    # ``systemd.journal`` and treats an ImportError as "no journal".
    shadow = tmp_path / "no-systemd" / "systemd"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('systemd bindings hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    conf = write_config(tmp_path, {"DEFAULT": {"use_journal": "true"}})
    args = ["--config-file", str(conf)] + (["db", "sync"] if program == "glancelite-manage" else [])
    proc = subprocess.run(
        [str(BIN / program), *args], capture_output=True, text=True, env=env, timeout=60, start_new_session=True
    )
    assert proc.returncode == 1, proc
    assert proc.stderr.strip().splitlines() == [
        "glancelite: invalid configuration: [DEFAULT] use_journal: the systemd journal bindings are not "
        "installed (the python3-systemd package, or systemd-python from PyPI, in glancelite's environment)"
    ]
    assert not listening(port_of(conf))


def test_unwritable_log_file_refuses_in_one_line(tmp_path):
    conf = write_config(tmp_path, {"DEFAULT": {"log_file": str(tmp_path / "missing-dir" / "api.log")}})
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"glancelite: invalid configuration: [DEFAULT] log_file: cannot open {tmp_path / 'missing-dir' / 'api.log'}: "
        "No such file or directory"
    ]


def test_broken_log_config_append_refuses_in_one_line(tmp_path):
    (tmp_path / "logging.conf").write_text("[loggers]\nkeys = root\n")  # no [logger_root]
    conf = write_config(tmp_path, {"DEFAULT": {"log_config_append": str(tmp_path / "logging.conf")}})
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"glancelite: invalid configuration: [DEFAULT] log_config_append: Error loading logging config {tmp_path}"
    ), proc.stderr
    assert not listening(port_of(conf))


def test_two_instances_on_one_host_share_no_log_file_or_control_socket(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["HOME"] = str(home)
    servers = [Server(write_config(tmp_path / name), env=env) for name in ("a", "b")]
    try:
        for server in servers:
            server.start()
        for server in servers:
            assert requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=5).status_code == 200
    finally:
        codes = [server.stop() for server in servers]
    assert codes == [0, 0]
    for server, other in (servers, servers[::-1]):
        log = server.log.read_text()
        assert lines_with(f"Listening at: {server.url}", log) and not lines_with(other.url, log)
        assert not lines_with("Control socket", log), log
    assert not (home / ".gunicorn").exists(), "gunicorn opened its per-user control socket"
