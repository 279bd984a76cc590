"""glancelite-api refuses a bad configuration before it serves: one line, non-zero exit, nothing left running."""

from __future__ import annotations

import configparser
import socket
import subprocess
import time

import pytest
import requests

from glancelite.db import engine as db_engine
from glancelite.db import migration
from glancelite.settings import DatabaseSettings
from tests.support.server import BIN, Server, manage, write_config

BAD_CONFIGS = {
    "unknown-store-type": ({"DEFAULT": {"enabled_backends": "fast:file, slow:floppy"}}, "[DEFAULT] enabled_backends"),
    "default-backend-missing": ({"glance_store": {"default_backend": None}}, "[glance_store] default_backend"),
    "default-backend-not-enabled": (
        {"glance_store": {"default_backend": "elsewhere"}},
        "[glance_store] default_backend",
    ),
    "reserved-store-id": (
        {"DEFAULT": {"enabled_backends": "fast:file, os_glance_x:file"}},
        "[DEFAULT] enabled_backends",
    ),
    "file-stores-share-a-dir": (
        {"slow": {"filesystem_store_datadir": "{root}/fast"}},
        "[slow] filesystem_store_datadir",
    ),
    "two-http-stores": (
        {"DEFAULT": {"enabled_backends": "fast:file, slow:file, a:http, b:http"}},
        "[DEFAULT] enabled_backends",
    ),
    "bad-database-url": ({"database": {"connection": "nonsense"}}, "[database] connection"),
}


def port_of(conf) -> int:
    cp = configparser.RawConfigParser()
    cp.read(conf)
    return int(cp["DEFAULT"]["bind_port"])


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_api(*conf_args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "glancelite-api"), *conf_args],
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )
    return proc, time.monotonic() - start


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configuration_stops_the_service(tmp_path, case):
    sections, where = BAD_CONFIGS[case]
    sections = {s: {k: v.format(root=tmp_path) if v else v for k, v in o.items()} for s, o in sections.items()}
    conf = write_config(tmp_path, sections)
    proc, elapsed = run_api("--config-file", str(conf))
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("glancelite: invalid configuration: " + where)
    assert elapsed < 10, f"took {elapsed:.1f}s to refuse"
    assert not listening(port_of(conf)), "a server is listening after a refused start"


def test_unreadable_config_file_stops_the_service(tmp_path):
    proc, _ = run_api("--config-file", str(tmp_path / "missing.conf"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"glancelite: invalid configuration: [DEFAULT] config_file: cannot read configuration file "
        f"'{tmp_path / 'missing.conf'}'"
    ]


def test_unsupported_option_is_logged_once_by_a_multi_worker_service(tmp_path):
    conf = write_config(tmp_path, {"DEFAULT": {"workers": "2", "enable_v1_api": "true"}})
    server = Server(conf).start()
    try:
        assert requests.get(server.url + "/versions", timeout=5).status_code == 200
        # gunicorn forks the second worker up to 0.1 s after the first, which may already answer.
        deadline = time.monotonic() + 10
        while len(server.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        api_pids = {server.proc.pid, *server.worker_pids()}
        assert len(api_pids) == 3
    finally:
        assert server.stop() == 0
    logged = "".join(p.read_text() for p in (tmp_path / "api.stderr", server.log) if p.exists())
    # oslo.log's lines carry the pid after the time; glancelite-manage db sync (same file) has its own.
    warned_by = [
        int(line.split()[2])
        for line in logged.splitlines()
        if "[DEFAULT] enable_v1_api is not supported" in line and int(line.split()[2]) in api_pids
    ]
    assert len(warned_by) == 1, logged


def test_a_never_synced_database_is_refused_in_one_line_naming_db_sync(tmp_path):
    conf = write_config(tmp_path)
    proc, elapsed = run_api("--config-file", str(conf))
    assert proc.returncode == 1, proc
    assert proc.stderr.strip().splitlines() == [
        f"glancelite: the database sqlite:///{tmp_path / 'glance.sqlite'} has no glancelite schema: "
        "run `glancelite-manage db sync` first"
    ]
    assert elapsed < 10, f"took {elapsed:.1f}s to refuse"
    assert not listening(port_of(conf))
    assert not (tmp_path / "glance.sqlite").exists(), "the check created the database"
    logged = (tmp_path / "api.log").read_text()
    assert "Traceback" not in logged and "Worker failed to boot" not in logged and "Booting worker" not in logged


def test_a_database_behind_the_code_is_refused_with_what_db_check_says(tmp_path):
    url = f"sqlite:///{tmp_path / 'glance.sqlite'}"
    conf = write_config(tmp_path, database=url)
    engine = db_engine.create_engine(DatabaseSettings(connection=url))
    migration.upgrade(engine, "expand01")  # an older release's schema: expand02 onwards still to run
    engine.dispose()
    check = manage(conf, "db", "check", check=False)
    assert check.returncode == migration.Status.EXPAND_NEEDED
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1, proc
    assert proc.stderr.strip().splitlines() == [
        f"glancelite: the database {url} is behind this code: {check.stdout.strip()}"
    ]
    assert "`glancelite-manage db expand`" in check.stdout
    assert not listening(port_of(conf))


def test_an_expanded_database_serves_during_a_rolling_upgrade_with_a_warning(tmp_path):
    """expand done, contract not yet (old nodes may still run): Glance's new code serves; so does glancelite."""
    conf = write_config(tmp_path)
    expanded = manage(conf, "db", "expand", check=False)
    assert expanded.returncode == 0, expanded.stderr
    check = manage(conf, "db", "check", check=False)
    assert check.returncode in (migration.Status.MIGRATE_NEEDED, migration.Status.CONTRACT_NEEDED), check
    server = Server(conf).start(sync=False)
    try:
        assert requests.get(server.url + "/v2/images", timeout=5).status_code == 200
    finally:
        assert server.stop() == 0
    warned = [line for line in server.log.read_text().splitlines() if "schema upgrade is not finished" in line]
    assert len(warned) == 1 and check.stdout.strip() in warned[0], warned
