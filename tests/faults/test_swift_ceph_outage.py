"""Swift and Ceph going away in the middle of an upload, or of a copy-image into them, then coming back.

Swift: its proxy is killed (SIGKILL) once the driver has written segments of a large (DLO) upload,
and started again by PID; the segments stay on the object servers. Ceph: its OSD is frozen
(SIGSTOP) once the driver has written part of an RBD image, and thawed; librados gives up after
``rados_connect_timeout`` (3 s). Either way the client gets Glance's 503 (no driver text), the
image stays ``queued`` (a failed copy-image leaves it ``active`` on its other store), and the
partial data the failed write could not remove while the store was away (segments; the RBD image)
is removed by the driver once the store answers again (store/cleanup.py), with no restart of
glancelite. The image then uploads (copies) fine, and the store audit over every store is clean.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import requests

from tests.conftest import ADMIN
from tests.faults.conftest import assert_audit_clean
from tests.support.imports import image_tasks, start_import, wait_task
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}
STORES = 4  # fast (file), cheap (swift or rbd), staging, tasks
UPLOAD = {**OCTET, "X-Image-Meta-Store": "cheap"}


def serve(root, cheap: dict[str, str], kind: str) -> Server:
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": f"fast:file, cheap:{kind}", "store_capability_refresh_interval": "0"},
            "cheap": cheap,
        },
    )
    return Server(config).start()


@pytest.fixture(scope="module", autouse=True)
def _servers_starting():
    """Swift and the Ceph cluster start side by side while the first case waits for Swift."""
    from tests.backends import servers

    servers.launch("swift", "ceph-outage")


@pytest.fixture
def swift_service(tmp_path, swift_proxy):
    container = f"faults-{uuid.uuid4().hex[:8]}"
    server = serve(tmp_path / "svc", swift_proxy.store_options(container), "swift")
    server.container = container
    yield server
    server.stop()
    if not _answers(swift_proxy):
        swift_proxy.start()  # a failed case must not leave the shared Swift without its proxy


@pytest.fixture
def ceph_service(tmp_path, ceph_osd):
    server = serve(tmp_path / "svc", ceph_osd.store_options(), "rbd")
    yield server
    server.stop()
    ceph_osd.thaw()


def _answers(proxy) -> bool:
    try:
        return requests.get(f"{proxy.base}/healthcheck", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def new_image(service, http) -> str:
    resp = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def image(service, http, image_id) -> dict:
    resp = http.get(f"{service.url}/v2/images/{image_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def capabilities(service, http) -> set[str]:
    resp = http.get(f"{service.url}/v2/info/stores/detail", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return set({s["id"]: s for s in resp.json()["stores"]}["cheap"]["capabilities"])


def upload_cut(service, http, image_id, cut, *, mib: int = 12):
    """Upload ``mib`` MiB chunked, calling ``cut()`` after half; the 503 (or the closed connection)."""

    def body():
        for sent in range(mib):
            if sent == mib // 2:
                cut()
            yield raw_bytes(MIB)

    try:
        resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=body(), headers=UPLOAD, timeout=120)
    except requests.ConnectionError:
        return  # the server answered and closed while the body was still going up
    assert resp.status_code == 503, resp.text
    assert set(resp.json()) == {"message", "code", "title"}
    # Glance's words only: no endpoint, no client library's error text.
    assert resp.json()["message"].startswith("The image store is unavailable."), resp.text


def assert_queued(service, http, image_id) -> None:
    dead = image(service, http, image_id)
    assert (dead["status"], dead["size"], dead.get("stores")) == ("queued", None, None), dead


def refused_while_down(service, http, image_id) -> None:
    """No write access while the store is away; a new upload is refused with 503 before any byte lands."""
    assert "WRITE_ACCESS" not in capabilities(service, http)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=b"tiny", headers=UPLOAD)
    assert resp.status_code == 503, resp.text
    assert image(service, http, image_id)["status"] == "queued"


def wait_until(predicate, what: str, timeout: float = 45):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < end, f"{what} within {timeout} s"
        time.sleep(0.25)


def upload_again(service, http, image_id, mib: int = 3) -> bytes:
    data = raw_bytes(mib * MIB + 5)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=UPLOAD)
    assert resp.status_code == 204, resp.text
    done = image(service, http, image_id)
    assert (done["status"], done["size"], done["stores"]) == ("active", len(data), "cheap")
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    return data


def start_copy(service, http, image_id) -> None:
    resp = start_import(service, http, image_id, {"name": "copy-image"}, headers=ADMIN, stores=["cheap"])
    assert resp.status_code == 202, resp.text


def copy_cut(service, http, image_id, started, cut) -> None:
    """copy-image fast -> cheap, ``cut()`` once ``started()`` says the store holds part of it."""
    start_copy(service, http, image_id)
    end = time.monotonic() + 60
    while not started():
        tasks = image_tasks(service, http, image_id)
        assert not (tasks and tasks[-1]["status"] not in ("pending", "processing")), (
            f"the copy ended before the store could be cut mid-copy: {tasks}"
        )
        assert time.monotonic() < end, "the copy wrote nothing to the store within 60 s"
        time.sleep(0.02)
    cut()
    task = wait_task(service, http, image_id, timeout=120)
    assert task["status"] == "failure", task
    copied = image(service, http, image_id)
    assert (copied["status"], copied["stores"]) == ("active", "fast"), copied
    assert copied["os_glance_failed_import"] == "cheap"
    assert task["message"] == "The image store is unavailable.", task
    root = service.config.parent
    assert os.listdir(root / "staging") == [] and os.listdir(root / "tasks") == []


def copy_again(service, http, image_id, data: bytes) -> None:
    start_copy(service, http, image_id)
    assert wait_task(service, http, image_id, timeout=120, count=2)["status"] == "success"
    assert sorted(image(service, http, image_id)["stores"].split(",")) == ["cheap", "fast"]
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data


def active_on_fast(service, http, mib: int) -> tuple[str, bytes]:
    image_id = new_image(service, http)
    data = raw_bytes(mib * MIB)
    assert http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    return image_id, data


# -- Swift ----------------------------------------------------------------------------------


def segments_of(proxy, container: str, image_id: str) -> list[str]:
    return [name for name in proxy.listing(container) if name.startswith(f"{image_id}-")]


def test_swift_proxy_killed_mid_upload(swift_service, http, swift_proxy):
    service, container = swift_service, swift_service.container
    image_id = new_image(service, http)
    written: list[str] = []

    def kill():
        written.extend(wait_until(lambda: segments_of(swift_proxy, container, image_id), "no segment written"))
        swift_proxy.kill()

    upload_cut(service, http, image_id, kill)
    assert written, "the proxy was killed before any segment was written: nothing to prove"
    assert_queued(service, http, image_id)
    refused_while_down(service, http, image_id)

    swift_proxy.start()
    # The segments written before the kill are removed once Swift answers, glancelite not restarted.
    wait_until(lambda: not swift_proxy.listing(container), f"segments {written} still in {container}")
    assert {"READ_ACCESS", "WRITE_ACCESS"} <= capabilities(service, http)
    upload_again(service, http, image_id)
    assert swift_proxy.listing(container) == [image_id, *(f"{image_id}-{n:05d}" for n in (1, 2, 3, 4))]
    assert service.proc.poll() is None
    assert_audit_clean(service.config, stores=STORES)


def test_swift_proxy_killed_mid_copy_image(swift_service, http, swift_proxy):
    service, container = swift_service, swift_service.container
    image_id, data = active_on_fast(service, http, 48)
    copy_cut(service, http, image_id, lambda: segments_of(swift_proxy, container, image_id), swift_proxy.kill)

    swift_proxy.start()
    wait_until(lambda: not swift_proxy.listing(container), f"segments of {image_id} still in {container}")
    copy_again(service, http, image_id, data)
    assert len(segments_of(swift_proxy, container, image_id)) == 48
    assert_audit_clean(service.config, stores=STORES)


# -- Ceph -----------------------------------------------------------------------------------


def delete_image(service, http, ceph_osd, image_id) -> None:
    """Every case leaves the shared pool empty: the next case's audit must not see its image."""
    assert http.delete(f"{service.url}/v2/images/{image_id}").status_code == 204
    assert ceph_osd.images() == []


def test_ceph_osd_frozen_mid_upload(ceph_service, http, ceph_osd):
    service = ceph_service
    assert ceph_osd.images() == []
    image_id = new_image(service, http)
    written: list[str] = []

    def freeze():
        written.extend(wait_until(ceph_osd.images, "no rbd image created"))
        ceph_osd.freeze()

    started = time.monotonic()
    upload_cut(service, http, image_id, freeze)
    assert time.monotonic() - started < 60
    assert written == [image_id]
    assert_queued(service, http, image_id)
    refused_while_down(service, http, image_id)

    ceph_osd.thaw()
    # The partial image goes once the OSD answers and the dead connection's watch lapses.
    wait_until(lambda: ceph_osd.images() == [], f"the partial rbd image {image_id} stayed")
    assert {"READ_ACCESS", "WRITE_ACCESS"} <= capabilities(service, http)
    upload_again(service, http, image_id)
    assert ceph_osd.images() == [image_id]
    assert_audit_clean(service.config, stores=STORES)
    delete_image(service, http, ceph_osd, image_id)


def test_ceph_osd_frozen_mid_copy_image(ceph_service, http, ceph_osd):
    service = ceph_service
    assert ceph_osd.images() == []
    image_id, data = active_on_fast(service, http, 24)
    copy_cut(service, http, image_id, ceph_osd.images, ceph_osd.freeze)

    ceph_osd.thaw()
    wait_until(lambda: ceph_osd.images() == [], f"the partial rbd image {image_id} stayed")
    copy_again(service, http, image_id, data)
    assert ceph_osd.images() == [image_id]
    assert_audit_clean(service.config, stores=STORES)
    delete_image(service, http, ceph_osd, image_id)
