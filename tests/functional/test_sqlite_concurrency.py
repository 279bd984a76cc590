"""Several processes writing one SQLite file at once: no "database is locked", no 500.

Glance answers 500 here (a DEFERRED transaction that reads then writes loses
the race). glancelite opens SQLite transactions with BEGIN IMMEDIATE in WAL
mode with a busy timeout and retries what remains (db/engine.py).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from glancelite.db import engine as db_engine
from glancelite.db import migration, tables
from glancelite.settings import DatabaseSettings
from tests.support.server import Server, write_config

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
THREADS = 8
WRITES_PER_PROCESS = 50


def _write_one(conn, worker: int, n: int) -> None:
    # Read, then write: the shape that fails with "database is locked" under DEFERRED transactions.
    conn.execute(sa.select(sa.func.count()).select_from(tables.images)).scalar()
    image_id = str(uuid.uuid4())
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    conn.execute(
        tables.images.insert().values(
            id=image_id,
            name=f"w{worker}-{n}",
            status="queued",
            created_at=now,
            deleted=False,
            min_disk=0,
            min_ram=0,
            protected=False,
            visibility="shared",
            os_hidden=False,
        )
    )
    conn.execute(
        tables.image_properties.insert().values(
            image_id=image_id, name="writer", value=str(worker), created_at=now, deleted=False
        )
    )


def writer(url: str, worker: int, count: int, threads: int, start_at: float) -> None:
    """Run in a child process: ``count`` transactions from ``threads`` threads, all starting at ``start_at``."""
    engine = db_engine.create_engine(DatabaseSettings(connection=url))
    time.sleep(max(0.0, start_at - time.time()))
    failures = []

    def one(n):
        try:
            db_engine.run_in_transaction(engine, _write_one, worker, n)
        except Exception as exc:  # reported to the parent, which fails the test
            failures.append(f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    print(json.dumps({"worker": worker, "failures": failures}))


def test_processes_writing_at_once_through_run_in_transaction(tmp_path):
    url = f"sqlite:///{tmp_path / 'glance.sqlite'}"
    engine = db_engine.create_engine(DatabaseSettings(connection=url))
    migration.sync(engine)
    start_at = time.time() + 2.0  # every process imported and connected before the first write
    code = "import sys; from tests.functional.test_sqlite_concurrency import writer; writer(*sys.argv[1:2], *map(int, sys.argv[2:5]), float(sys.argv[5]))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(w), str(WRITES_PER_PROCESS), str(THREADS), str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    failures = [f for r in reports for f in r["failures"]]
    assert failures == [], failures[:5]
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(tables.images)).scalar()
            == PROCESSES * WRITES_PER_PROCESS
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.image_properties)).scalar() == (
            PROCESSES * WRITES_PER_PROCESS
        )
    engine.dispose()


def test_gunicorn_workers_creating_images_at_once(tmp_path):
    conf = write_config(tmp_path, {"DEFAULT": {"workers": str(PROCESSES)}})
    server = Server(conf).start()
    try:
        probe = requests.post(server.url + "/v2/images", json={"name": "probe"}, timeout=10)
        if probe.status_code in (404, 405):
            pytest.skip(f"POST /v2/images answers {probe.status_code}: the images API is not there yet")
        assert probe.status_code == 201, probe.text
        with requests.Session() as session:
            session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

            def create(n):
                r = session.post(
                    server.url + "/v2/images",
                    json={"name": f"img-{n}", "disk_format": "raw", "container_format": "bare", "tags": [f"t{n}"]},
                    timeout=60,
                )
                return r.status_code, r.text[:200]

            with ThreadPoolExecutor(32) as pool:
                results = list(pool.map(create, range(200)))
        bad = [r for r in results if r[0] != 201]
        assert bad == [], bad[:5]
        listed = requests.get(server.url + "/v2/images?limit=1000", timeout=30).json()["images"]
        assert len(listed) == 201
    finally:
        server.stop()
    log = "".join(p.read_text() for p in (tmp_path / "api.stderr", server.log) if p.exists())
    assert "database is locked" not in log
