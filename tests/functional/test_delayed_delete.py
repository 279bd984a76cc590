"""Delayed delete with the real API under gunicorn and the real glancelite-scrubber command.

The service runs with ``delayed_delete = true`` and ``scrub_time = 3600``; a scrubber
run with the service's configuration alone therefore finds nothing due, and one given
a second configuration file with ``scrub_time = 0`` (as an operator's
glance-scrubber.conf would override it) scrubs at once. Image data lives in two real
file stores (fast, slow) under the service's directory.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from glancelite.db import engine as db_engine
from glancelite.db import tables
from glancelite.settings import DatabaseSettings
from tests.conftest import ADMIN, identity
from tests.support import postgres
from tests.support.imports import start_import, wait_task
from tests.support.server import BIN, Server, write_config

DATA = b"delayed delete " * 100
QUOTA_BYTES = 4096  # user_storage_quota: room for two of DATA, not three


@pytest.fixture(scope="module")
def service(request, tmp_path_factory):
    database = None
    if postgres.wanted_backend() == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = cluster.create_database()
    root = tmp_path_factory.mktemp("delayed-delete")
    sections = {
        "DEFAULT": {
            "delayed_delete": "true",
            "scrub_time": "3600",
            "user_storage_quota": str(QUOTA_BYTES),
            "workers": "1",
        }
    }
    server = Server(write_config(root, sections, database=database)).start()
    yield server
    server.stop()
    if database:
        cluster.drop_database(database)


@pytest.fixture(scope="module")
def engine(service):
    cp = configparser.RawConfigParser()
    cp.read(service.config)
    eng = db_engine.create_engine(DatabaseSettings(connection=cp["database"]["connection"]))
    yield eng
    eng.dispose()


def override(service, name: str, **options: str) -> Path:
    """A second configuration file for the scrubber ([DEFAULT] options), as glance-scrubber.conf."""
    path = service.config.parent / f"{name}.conf"
    cp = configparser.RawConfigParser()
    cp.optionxform = str
    cp["DEFAULT"] = options
    with open(path, "w") as fh:
        cp.write(fh)
    return path


def scrubber_cmd(service, *args: str, extra: Path | None = None) -> list[str]:
    files = ["--config-file", str(service.config)]
    if extra is not None:
        files += ["--config-file", str(extra)]
    return [str(BIN / "glancelite-scrubber"), *files, *args]


def scrub(service, *args: str, extra: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(scrubber_cmd(service, *args, extra=extra), capture_output=True, text=True, timeout=120)


def scrub_now(service, name: str = "scrub-now", **options: str) -> subprocess.CompletedProcess:
    """A pass that finds every pending image due, logging to ``<name>.log`` beside the service."""
    log = service.config.parent / f"{name}.log"
    proc = scrub(service, extra=override(service, name, scrub_time="0", log_file=str(log), **options))
    assert proc.returncode == 0, proc.stderr
    return proc


def image_with_data(service, who: dict) -> str:
    resp = requests.post(
        f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=who
    )
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    resp = requests.put(
        f"{service.url}/v2/images/{image_id}/file",
        data=DATA,
        headers={**who, "Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    return image_id


def data_file(service, image_id: str, store: str = "fast") -> Path:
    return service.config.parent / store / image_id


def status_in_db(engine, image_id: str) -> str:
    """The image row's status, deleted rows included (the API shows none of them)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(tables.images.c.status).where(tables.images.c.id == image_id)).scalar_one()


# ---------------------------------------------------------------- the API


def test_delete_leaves_the_image_pending_with_its_data(service, engine):
    who = identity("dd-project")
    image_id = image_with_data(service, who)
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204
    # As Glance: a pending_delete image is deleted for every caller, admins included.
    for caller in (who, ADMIN):
        assert requests.get(f"{service.url}/v2/images/{image_id}", headers=caller).status_code == 404
        listed = requests.get(f"{service.url}/v2/images", headers=caller).json()["images"]
        assert image_id not in {i["id"] for i in listed}
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 404
    assert data_file(service, image_id).read_bytes() == DATA
    assert status_in_db(engine, image_id) == "pending_delete"


def test_an_image_without_data_is_deleted_at_once(service, engine):
    who = identity("dd-project")
    resp = requests.post(f"{service.url}/v2/images", json={"disk_format": "raw"}, headers=who)
    image_id = resp.json()["id"]
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204
    assert status_in_db(engine, image_id) == "deleted"


def test_a_deactivated_image_with_data_answers_400_as_glance(service, engine):
    who = identity("dd-deactivated")
    image_id = image_with_data(service, who)
    assert requests.post(f"{service.url}/v2/images/{image_id}/actions/deactivate", headers=ADMIN).status_code == 204
    resp = requests.delete(f"{service.url}/v2/images/{image_id}", headers={**ADMIN, "Accept": "application/json"})
    assert resp.status_code == 400
    assert "deactivated to pending_delete is not allowed" in resp.text
    assert data_file(service, image_id).exists()


def test_pending_images_do_not_count_against_the_storage_quota(service):
    who = identity("dd-quota")
    first, second = image_with_data(service, who), image_with_data(service, who)
    resp = requests.post(
        f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=who
    )
    third = resp.json()["id"]
    resp = requests.put(
        f"{service.url}/v2/images/{third}/file", data=DATA, headers={**who, "Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 413, resp.text
    # Glance's usage leaves pending_delete images out, although their data is still stored.
    assert requests.delete(f"{service.url}/v2/images/{first}", headers=who).status_code == 204
    resp = requests.put(
        f"{service.url}/v2/images/{third}/file", data=DATA, headers={**who, "Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 204, resp.text
    assert data_file(service, first).exists() and data_file(service, second).exists()


# ---------------------------------------------------------------- the scrubber


def test_scrubber_waits_for_scrub_time_then_deletes_every_copy(service, engine):
    who = identity("dd-project")
    image_id = image_with_data(service, who)
    resp = start_import(service, requests, image_id, {"name": "copy-image"}, stores=["slow"], headers=ADMIN)
    assert resp.status_code == 202, resp.text
    assert wait_task(service, requests, image_id)["status"] == "success"
    copies = [data_file(service, image_id, "fast"), data_file(service, image_id, "slow")]
    assert all(p.read_bytes() == DATA for p in copies)
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204

    proc = scrub(service)  # scrub_time = 3600: not due
    assert proc.returncode == 0, proc.stderr
    assert all(p.exists() for p in copies)
    assert status_in_db(engine, image_id) == "pending_delete"

    scrub_now(service, "after-scrub-time")
    assert not any(p.exists() for p in copies)
    assert status_in_db(engine, image_id) == "deleted"
    assert requests.get(f"{service.url}/v2/images/{image_id}", headers=ADMIN).status_code == 404


def test_restore_brings_the_image_back_with_its_data(service, engine):
    who = identity("dd-restore")
    image_id = image_with_data(service, who)
    requests.patch(
        f"{service.url}/v2/images/{image_id}",
        json=[{"op": "add", "path": "/os_distro", "value": "debian"}, {"op": "add", "path": "/tags", "value": ["x"]}],
        headers={**who, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    ).raise_for_status()
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204

    proc = scrub(service, "--restore", image_id, "--daemon")
    assert proc.returncode == 1 and "restore and daemon options should not be set together" in proc.stderr
    proc = scrub(service, "--restore", image_id)
    assert proc.returncode == 0, proc.stderr
    assert f"Image {image_id} restored to active." in proc.stdout

    image = requests.get(f"{service.url}/v2/images/{image_id}", headers=who).json()
    assert (image["status"], image["os_distro"], image["tags"]) == ("active", "debian", ["x"])
    assert image["checksum"] == hashlib.md5(DATA).hexdigest()  # noqa: S324 - Glance's checksum
    assert requests.get(f"{service.url}/v2/images/{image_id}/file", headers=who).content == DATA

    proc = scrub(service, "--restore", image_id)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "ERROR: cannot restore the image from active to active (wanted from_state=pending_delete)"
    )
    proc = scrub(service, "--restore", "00000000-0000-0000-0000-000000000000")
    assert proc.returncode == 1 and proc.stderr.startswith("ERROR: No image found with ID")
    # Restored, it is an ordinary image again: a later scrub leaves it alone.
    scrub_now(service, "after-restore")
    assert data_file(service, image_id).read_bytes() == DATA


def test_two_scrubbers_at_once_delete_each_image_once(service, engine):
    who = identity("dd-concurrent")
    image_ids = []
    for _ in range(10):  # one at a time: a pending image no longer counts against the quota
        image_ids.append(image_with_data(service, who))
        assert requests.delete(f"{service.url}/v2/images/{image_ids[-1]}", headers=who).status_code == 204
    logs = [service.config.parent / f"concurrent-{n}.log" for n in range(2)]
    procs = [
        subprocess.Popen(
            scrubber_cmd(
                service,
                extra=override(service, f"concurrent-{n}", scrub_time="0", scrub_pool_size="3", log_file=str(logs[n])),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    attempts = [
        line.split("image ", 1)[1].split(":", 1)[0]
        for log in logs
        for line in log.read_text().splitlines()
        if "deleting the data of location" in line
    ]
    assert sorted(attempts) == sorted(image_ids)  # each image's data deleted once, by one of them
    assert not any(data_file(service, i).exists() for i in image_ids)
    assert {status_in_db(engine, i) for i in image_ids} == {"deleted"}


def test_a_failing_store_is_retried_on_the_next_pass(service, engine):
    who = identity("dd-failing")
    image_id = image_with_data(service, who)
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204
    path = data_file(service, image_id)
    # The file store cannot unlink a directory: the delete fails in the real driver.
    path.unlink()
    path.mkdir()
    (path / "held").write_bytes(b"x")
    scrub_now(service, "failing-1")
    log = (service.config.parent / "failing-1.log").read_text()
    assert f"image {image_id}: cannot delete the data of location" in log
    assert path.is_dir()
    assert status_in_db(engine, image_id) == "pending_delete"

    (path / "held").unlink()
    path.rmdir()
    path.write_bytes(DATA)
    scrub_now(service, "failing-2")
    assert not path.exists()
    assert status_in_db(engine, image_id) == "deleted"


def test_daemon_scrubs_every_wakeup_time_and_stops_on_sigterm(service, engine):
    who = identity("dd-daemon")
    log = service.config.parent / "daemon.log"
    extra = override(service, "daemon", scrub_time="0", wakeup_time="1", log_file=str(log))
    proc = subprocess.Popen(
        scrubber_cmd(service, "--daemon", extra=extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(1)
        image_id = image_with_data(service, who)
        assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204
        end = time.monotonic() + 30
        while data_file(service, image_id).exists() and time.monotonic() < end:
            time.sleep(0.2)
        assert not data_file(service, image_id).exists()
        assert proc.poll() is None  # still running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0
    assert "scrubber daemon: a pass every 1 s" in log.read_text()
