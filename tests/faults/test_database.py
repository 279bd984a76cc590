"""PostgreSQL stopped in the middle of an upload or an import, then started again (same data, same port).

While it is down the API answers 503 "The database is unavailable." in Glance's shape; once it is
back the same glancelite processes (never restarted) serve everything again, the interrupted
image is ``queued`` again (its import task failed, its lock released) with nothing of its data
kept, and the audit is clean.
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import threading
import time

import pytest
import requests

from tests.faults.conftest import assert_audit_clean
from tests.support import postgres
from tests.support.imports import create_image, get_image, image_tasks, payload, start_import, wait_task
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

pytestmark = pytest.mark.postgres

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}
STORES = 4  # fast, slow, staging, tasks


class StoppableCluster:
    """The module's own PostgreSQL (tools/pg-start.sh), stopped and started again keeping its data."""

    def __init__(self, cluster: postgres.PostgresCluster):
        self.cluster = cluster
        self.dir = cluster.directory
        self.pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def stop(self) -> None:
        subprocess.run(
            [*self.as_postgres, self.pg_ctl, "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop"], check=True
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.cluster.port} -k {self.dir}/run "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [
                *self.as_postgres,
                self.pg_ctl,
                "-D",
                f"{self.dir}/data",
                "-l",
                f"{self.dir}/server.log",
                "-w",
                "-o",
                options,
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(f"{self.dir}/data/postmaster.pid") as fh:  # tools/pg-stop.sh stops this PID at the end
            pid = fh.readline().strip()
        with open(f"{self.dir}/pids/postgres", "w") as fh:
            fh.write(pid + "\n")


@pytest.fixture
def cluster():
    try:
        own = postgres.PostgresCluster.start()
    except postgres.PostgresUnavailable as exc:
        postgres.unavailable(str(exc))
    try:
        yield StoppableCluster(own)
    finally:
        own.stop()


def test_postgres_stopped_mid_upload_then_back(tmp_path, http, cluster):
    config = write_config(tmp_path, database=cluster.cluster.create_database())
    service = Server(config).start()
    try:
        before = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
            "id"
        ]
        image_id = http.post(
            f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}
        ).json()["id"]
        data = raw_bytes(6 * MIB)
        half_sent, stopped = threading.Event(), threading.Event()

        def slow():
            for i in range(0, len(data), 256 * 1024):
                if i == len(data) // 2:
                    half_sent.set()
                    stopped.wait(60)
                yield data[i : i + 256 * 1024]

        answer: dict[str, object] = {}

        def send():
            try:
                answer["resp"] = requests.put(
                    f"{service.url}/v2/images/{image_id}/file",
                    data=slow(),
                    headers={**OCTET, "Accept": "application/json"},
                    timeout=120,
                )
            except requests.RequestException as exc:
                answer["resp"] = exc

        sender = threading.Thread(target=send)
        sender.start()
        assert half_sent.wait(30)
        cluster.stop()
        stopped.set()
        sender.join(120)
        resp = answer["resp"]
        assert isinstance(resp, requests.Response), resp
        assert resp.status_code == 503, resp.text
        assert resp.json()["message"].startswith("The database is unavailable.")
        # Down: every request that needs the database is a 503.
        assert http.get(f"{service.url}/v2/images/{before}").status_code == 503

        cluster.start()
        # Back, with the same glancelite processes: the interrupted image is queued again.
        deadline = time.monotonic() + 60
        while True:
            resp = http.get(f"{service.url}/v2/images/{image_id}")
            if resp.status_code == 200 and resp.json()["status"] == "queued":
                break
            assert time.monotonic() < deadline, (resp.status_code, resp.text)
            time.sleep(0.5)
        assert resp.json()["size"] is None and "stores" not in resp.json()
        assert os.listdir(tmp_path / "fast") == []
        assert http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
        done = http.get(f"{service.url}/v2/images/{image_id}").json()
        assert (done["status"], done["os_hash_value"]) == ("active", hashlib.sha512(data).hexdigest())
        assert http.delete(f"{service.url}/v2/images/{before}").status_code == 204
        assert service.proc.poll() is None
        assert_audit_clean(config, stores=STORES)
    finally:
        service.stop()


def test_postgres_stopped_mid_import_then_back(tmp_path, http, cluster, web):
    config = write_config(
        tmp_path, {"import_filtering_opts": web.filtering_opts}, database=cluster.cluster.create_database()
    )
    service = Server(config).start()
    try:
        image_id = create_image(service, http)
        gate = f"outage-{image_id}"
        uri = web.url(f"/gated/{4 * MIB}?gate={gate}")
        assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
        assert web.wait_started(gate)  # the first MiB is on its way; the rest waits for the gate
        cluster.stop()
        web.open_gate(gate)  # the download ends, and the import meets the database gone
        time.sleep(2)
        assert http.get(f"{service.url}/v2/images/{image_id}").status_code == 503

        cluster.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                (task,) = image_tasks(service, http, image_id)
                image = get_image(service, http, image_id)
            except AssertionError:  # a 503 while the pools reconnect
                task, image = {}, {}
            if task.get("status") == "failure" and "os_glance_import_task" not in image:
                break
            assert time.monotonic() < deadline, f"import not settled a minute after the database returned: {task}"
            time.sleep(0.5)
        assert task["message"] == "The database is unavailable.", task
        assert (image["status"], image["size"], image["os_glance_failed_import"]) == ("queued", None, "fast")
        for store in ("fast", "slow", "staging", "tasks"):
            assert os.listdir(tmp_path / store) == [], store
        # The image imports again, on the same glancelite processes.
        data = payload(MIB, seed=5)
        uri = web.url(f"/data/{len(data)}?seed=5")
        assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
        assert wait_task(service, http, image_id, count=2)["status"] == "success"
        assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
        assert service.proc.poll() is None
        assert_audit_clean(config, stores=STORES)
    finally:
        service.stop()
