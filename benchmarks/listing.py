"""Listing benchmark: the default GET /v2/images must not slow down as the catalogue grows.

    .venv/bin/python benchmarks/listing.py [--small 2000] [--large 100000] [--requests 200]

For each size it builds a SQLite catalogue (rows written straight through the
schema: a realistic mix of owners, visibilities, properties and tags), starts
the real glancelite under gunicorn on it, and measures the p50 latency of the
default listing (GET /v2/images: 25 newest images) as an admin and as a
project member. It prints the large/small ratio; the target is <= 2x
(keyset pagination over ix_images_created_at_id). Exit 1 when missed.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from glancelite.db import engine as db_engine  # noqa: E402
from glancelite.db import tables  # noqa: E402
from glancelite.settings import DatabaseSettings  # noqa: E402
from tests.support.server import Server, manage, write_config  # noqa: E402

MEMBER = {"X-Identity-Status": "Confirmed", "X-Project-Id": "project-7", "X-User-Id": "u", "X-Roles": "reader,member"}
VISIBILITIES = ("public", "private", "shared", "community")
TARGET = 2.0


def populate(db_url: str, count: int) -> None:
    engine = db_engine.create_engine(DatabaseSettings(connection=db_url))
    start = datetime(2020, 1, 1)
    batch = 5000
    with engine.begin() as conn:
        for first in range(0, count, batch):
            images, props, tags = [], [], []
            for i in range(first, min(first + batch, count)):
                image_id = str(uuid.UUID(int=i + 1))
                when = start + timedelta(seconds=i)
                images.append(
                    {
                        "id": image_id,
                        "name": f"image-{i}",
                        "size": 1024 * (i % 97),
                        "status": "active" if i % 10 else "queued",
                        "created_at": when,
                        "updated_at": when,
                        "deleted": False,
                        "disk_format": "raw",
                        "container_format": "bare",
                        "owner": f"project-{i % 50}",
                        "min_disk": 0,
                        "min_ram": 0,
                        "protected": False,
                        "visibility": VISIBILITIES[i % 4],
                        "os_hidden": i % 100 == 0,
                    }
                )
                props.append(
                    {"image_id": image_id, "name": "os_distro", "value": "cirros", "created_at": when, "deleted": False}
                )
                tags.append({"image_id": image_id, "value": f"tag-{i % 7}", "created_at": when, "deleted": False})
            conn.execute(tables.images.insert(), images)
            conn.execute(tables.image_properties.insert(), props)
            conn.execute(tables.image_tags.insert(), tags)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def p50(url: str, headers: dict, n: int) -> float:
    samples = []
    with requests.Session() as http:
        for _ in range(10):  # warm up connections and caches
            http.get(url, headers=headers).raise_for_status()
        for _ in range(n):
            t0 = time.perf_counter()
            resp = http.get(url, headers=headers)
            samples.append(time.perf_counter() - t0)
            assert resp.status_code == 200 and len(resp.json()["images"]) == 25, resp.text[:200]
    return statistics.median(samples)


def measure(count: int, n: int, workdir: pathlib.Path) -> dict[str, float]:
    root = workdir / f"catalogue-{count}"
    conf = write_config(root, {"DEFAULT": {"workers": "1"}})
    manage(conf, "db", "sync")
    t0 = time.perf_counter()
    populate(f"sqlite:///{root / 'glance.sqlite'}", count)
    print(f"  {count:>7} images written in {time.perf_counter() - t0:.1f}s", flush=True)
    server = Server(conf).start()
    try:
        url = f"{server.url}/v2/images"
        return {"admin": p50(url, {}, n), "member": p50(url, MEMBER, n)}
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = measure(args.small, args.requests, pathlib.Path(tmp))
        large = measure(args.large, args.requests, pathlib.Path(tmp))
    ok = True
    for who in ("admin", "member"):
        ratio = large[who] / small[who]
        met = ratio <= TARGET
        ok &= met
        print(
            f"default listing as {who:<6}: p50 {small[who] * 1000:.2f} ms at {args.small}, "
            f"{large[who] * 1000:.2f} ms at {args.large}; ratio {ratio:.2f} "
            f"({'met' if met else 'MISSED'}, target <= {TARGET}x)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
