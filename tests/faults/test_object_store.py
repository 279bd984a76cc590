"""moto S3 killed (SIGKILL) in the middle of an upload, or of a copy-image into it, then started again on its port.

The client gets a 503 (or, still sending, sees the connection close), the image stays ``queued``
with no location (a copy-image fails, the image ``active`` on its other store), the store loses
its access while moto is down and gets it back after, with no restart of glancelite; then the image uploads and the audit over every store, S3 included, is clean.
moto keeps everything in memory, so what the killed server held is gone with it: the audit proves
that the database refers to nothing that was lost (no ``missing`` location) and that the uploads
after the restart leave no stray object or multipart upload.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import requests

from tests.conftest import ADMIN
from tests.faults.conftest import assert_audit_clean, bucket_contents
from tests.support.imports import image_tasks, start_import, wait_task
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}
STORES = 4  # fast, cheap (s3), staging, tasks


@pytest.fixture
def service(tmp_path, moto):
    config = write_config(
        tmp_path / "svc",
        {
            "DEFAULT": {"enabled_backends": "fast:file, cheap:s3", "store_capability_refresh_interval": "0"},
            "cheap": moto.store_options(),
        },
    )
    server = Server(config).start()
    yield server
    server.stop()


def capabilities(service, http) -> list[str]:
    resp = http.get(f"{service.url}/v2/info/stores/detail", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return {s["id"]: s for s in resp.json()["stores"]}["cheap"]["capabilities"]


def image(service, http, image_id) -> dict:
    resp = http.get(f"{service.url}/v2/images/{image_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_s3_killed_mid_upload(service, http, moto):
    image_id = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]

    def body():
        """24 MiB, chunked; moto is killed once 12 MiB (two parts' worth) have been sent."""
        for sent in range(24):
            if sent == 12:
                moto.kill()
                time.sleep(0.5)
            yield raw_bytes(MIB)

    headers = {**OCTET, "X-Image-Meta-Store": "cheap"}
    try:
        resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=body(), headers=headers, timeout=120)
    except requests.ConnectionError:
        resp = None  # the server answered and closed while the body was still going up
    if resp is not None:
        assert resp.status_code == 503, resp.text
        assert set(resp.json()) == {"message", "code", "title"}
        assert moto.url not in resp.text  # no driver detail reaches the client
    dead = image(service, http, image_id)
    assert (dead["status"], dead["size"], dead.get("stores")) == ("queued", None, None), dead

    # While moto is down: no access, a new upload is refused with 503 before any byte is stored.
    assert "WRITE_ACCESS" not in capabilities(service, http)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=b"tiny", headers=headers)
    assert resp.status_code == 503, resp.text
    assert image(service, http, image_id)["status"] == "queued"

    # moto back on the same port: full service, glancelite never restarted.
    moto.start()
    assert {"READ_ACCESS", "WRITE_ACCESS"} <= set(capabilities(service, http))
    data = raw_bytes(12 * MIB + 5)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=headers)
    assert resp.status_code == 204, resp.text
    done = image(service, http, image_id)
    assert (done["status"], done["size"], done["stores"]) == ("active", len(data), "cheap")
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    assert bucket_contents(moto) == [image_id]
    assert service.proc.poll() is None
    assert_audit_clean(service.config, stores=STORES)


def test_s3_killed_mid_copy_image(service, http, moto):
    """copy-image from fast to cheap, moto killed once its multipart upload is under way."""
    image_id = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]
    data = raw_bytes(64 * MIB)
    assert http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    resp = start_import(service, http, image_id, {"name": "copy-image"}, headers=ADMIN, stores=["cheap"])
    assert resp.status_code == 202, resp.text
    end = time.monotonic() + 60
    while not any(name.startswith("multipart:") for name in bucket_contents(moto)):
        tasks = image_tasks(service, http, image_id)
        assert not (tasks and tasks[-1]["status"] != "processing" and tasks[-1]["status"] != "pending"), (
            f"the copy ended before moto could be killed mid-upload: {tasks}"
        )
        assert time.monotonic() < end, "no multipart upload began on moto within 60 s"
        time.sleep(0.02)
    moto.kill()

    task = wait_task(service, http, image_id, timeout=120)
    assert task["status"] == "failure", task
    copied = image(service, http, image_id)
    assert (copied["status"], copied["stores"], copied["size"]) == ("active", "fast", len(data))
    assert copied["os_glance_failed_import"] == "cheap"
    assert "os_glance_import_task" not in copied and copied.get("os_glance_importing_to_stores", "") == ""
    root = service.config.parent
    assert os.listdir(root / "staging") == [] and os.listdir(root / "tasks") == []
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data

    # moto back: the same copy succeeds, and nothing is left anywhere.
    moto.start()
    resp = start_import(service, http, image_id, {"name": "copy-image"}, headers=ADMIN, stores=["cheap"])
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id, timeout=120, count=2)["status"] == "success"
    assert sorted(image(service, http, image_id)["stores"].split(",")) == ["cheap", "fast"]
    assert bucket_contents(moto) == [image_id]
    assert_audit_clean(service.config, stores=STORES)
