"""PUT/GET /v2/images/{id}/file against a real glancelite-api (two file stores)."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.parse

import pytest

from tests.conftest import ADMIN, identity
from tests.functional._images import image_row, new_image
from tests.support.payloads import raw_bytes

OCTET = {"Content-Type": "application/octet-stream"}


def upload(service, http, image_id, data, headers=None):
    return http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers={**OCTET, **(headers or {})})


def files_in(service, *stores) -> list[str]:
    root = service.config.parent
    return sorted(name for store in stores for name in os.listdir(root / store) if (root / store).exists())


def test_upload_then_download_with_hashes(service, http):
    data = raw_bytes(5 * 1024 * 1024 + 11)
    image_id = new_image(service, http)
    resp = upload(service, http, image_id, data)
    assert resp.status_code == 204, resp.text
    image = image_row(service, image_id)
    assert image.status == "active"
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.os_hash_algo == "sha512"
    assert image.os_hash_value == hashlib.sha512(data).hexdigest()
    assert [loc.metadata for loc in image.locations] == [{"store": "fast"}]

    resp = http.get(f"{service.url}/v2/images/{image_id}/file")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    assert int(resp.headers["Content-Length"]) == len(data)
    assert resp.content == data


def test_chunked_upload_to_named_store(service, http):
    data = raw_bytes(1024 * 1024 + 5)
    image_id = new_image(service, http)

    def chunks():  # requests sends a generator with Transfer-Encoding: chunked, as glanceclient does
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    resp = upload(service, http, image_id, chunks(), {"X-Image-Meta-Store": "slow"})
    assert resp.status_code == 204, resp.text
    image = image_row(service, image_id)
    assert image.size == len(data)
    assert [loc.metadata for loc in image.locations] == [{"store": "slow"}]
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=100-", 100, 999), ("bytes=-10", 990, 999), ("bytes=995-5000", 995, 999)],
)
def test_ranges(service, http, header, start, end):
    data = raw_bytes(1000)
    image_id = new_image(service, http)
    assert upload(service, http, image_id, data).status_code == 204
    resp = http.get(f"{service.url}/v2/images/{image_id}/file", headers={"Range": header})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/1000"
    assert resp.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    assert resp.content == data[start : end + 1]


def test_bad_ranges(service, http):
    image_id = new_image(service, http)
    assert upload(service, http, image_id, b"0123456789").status_code == 204
    url = f"{service.url}/v2/images/{image_id}/file"
    resp = http.get(url, headers={"Range": "bytes=0-1,4-5"})
    assert resp.status_code == 400
    assert "multiple ranges" in resp.text
    for bad in ("bytes=10-", "bytes=abc", "bytes=5-2", "bytes=-0", "items=0-1"):
        resp = http.get(url, headers={"Range": bad})
        assert resp.status_code == 416, bad
        assert resp.headers["Content-Range"] == "bytes */10"
    resp = http.get(url, headers={"Content-Range": "bytes 2-4/10"})
    assert resp.status_code == 206
    assert resp.content == b"234"


def test_no_data_is_204(service, http):
    image_id = new_image(service, http)
    resp = http.get(f"{service.url}/v2/images/{image_id}/file")
    assert resp.status_code == 204
    assert resp.content == b""


def test_wrong_content_type_is_415(service, http):
    image_id = new_image(service, http)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    assert image_row(service, image_id).status == "queued"


def test_upload_only_from_queued(service, http):
    image_id = new_image(service, http)
    assert upload(service, http, image_id, b"abc").status_code == 204
    resp = upload(service, http, image_id, b"again")
    assert resp.status_code == 409
    assert "Image status transition from active to saving is not allowed" in resp.text


def test_missing_formats_is_400(service, http):
    image_id = new_image(service, http, disk_format=None, container_format=None)
    resp = upload(service, http, image_id, b"abc")
    assert resp.status_code == 400
    assert "Properties disk_format, container_format must be set prior to saving data." in resp.text
    assert image_row(service, image_id).status == "queued"


def test_unknown_image_is_404(service, http):
    resp = upload(service, http, "3f1c9f9e-0000-4000-8000-000000000000", b"abc")
    assert resp.status_code == 404


@pytest.mark.parametrize("store", ["nope", "os_glance_staging_store", "os_glance_tasks_store"])
def test_unknown_or_reserved_store_is_400(service, http, store):
    image_id = new_image(service, http)
    resp = upload(service, http, image_id, b"abc", {"X-Image-Meta-Store": store})
    assert resp.status_code == 400
    assert f"Store for identifier {store} not found" in resp.text
    assert image_row(service, image_id).status == "queued"


def test_declared_size_mismatch_leaves_nothing(service, http):
    before = files_in(service, "fast", "slow")
    image_id = new_image(service, http)
    resp = upload(service, http, image_id, b"a" * 100, {"x-openstack-image-size": "50"})
    assert resp.status_code == 400
    image = image_row(service, image_id)
    assert (image.status, image.size, image.locations) == ("queued", None, ())
    assert files_in(service, "fast", "slow") == before
    resp = upload(service, http, image_id, b"a" * 100, {"x-openstack-image-size": "not-a-number"})
    assert resp.status_code == 400
    assert "Invalid or missing image size in request headers." in resp.text
    # Still queued: a good upload now works.
    assert upload(service, http, image_id, b"a" * 100, {"x-openstack-image-size": "100"}).status_code == 204


def test_interrupted_upload_leaves_nothing(service, http):
    """A client that dies mid-stream: image back to queued, no bytes in any store."""
    before = files_in(service, "fast", "slow")
    image_id = new_image(service, http)
    url = urllib.parse.urlsplit(service.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(
            (
                f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
            ).encode()
            + raw_bytes(3_000_000)
        )
        deadline = time.monotonic() + 10
        while image_row(service, image_id).status != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert image_row(service, image_id).status == "saving"
    deadline = time.monotonic() + 20
    while image_row(service, image_id).status != "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
    image = image_row(service, image_id)
    assert (image.status, image.size, image.locations) == ("queued", None, ())
    assert files_in(service, "fast", "slow") == before


def test_interrupted_chunked_upload_leaves_nothing(service, http):
    before = files_in(service, "fast", "slow")
    image_id = new_image(service, http)
    url = urllib.parse.urlsplit(service.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = raw_bytes(65536)
        sock.sendall(head + b"".join(b"10000\r\n" + chunk + b"\r\n" for _ in range(40)))
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    while image_row(service, image_id).status != "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert image_row(service, image_id).status == "queued"
    assert files_in(service, "fast", "slow") == before


def test_deactivated_download_forbidden_for_non_admins(service, http):
    owner = identity("proj-d")
    image_id = new_image(service, http, owner)
    assert upload(service, http, image_id, b"secret", owner).status_code == 204
    resp = http.post(f"{service.url}/v2/images/{image_id}/actions/deactivate", headers=ADMIN)
    if resp.status_code == 404:
        pytest.skip("deactivate action not available yet")
    assert resp.status_code == 204
    resp = http.get(f"{service.url}/v2/images/{image_id}/file", headers=owner)
    assert resp.status_code == 403
    assert "The requested image has been deactivated. Image data download is forbidden." in resp.text
    assert http.get(f"{service.url}/v2/images/{image_id}/file", headers=ADMIN).content == b"secret"


def test_private_image_data_hidden_from_other_projects(service, http):
    owner = identity("proj-e")
    image_id = new_image(service, http, owner)
    assert upload(service, http, image_id, b"mine", owner).status_code == 204
    stranger = identity("proj-f")
    assert http.get(f"{service.url}/v2/images/{image_id}/file", headers=stranger).status_code == 404
    assert upload(service, http, image_id, b"x", stranger).status_code == 404


def add_copy(service, image_id, store, content: bytes) -> None:
    """A second location, as copy-image would record it (file + row)."""
    import configparser

    from glancelite.db import engine as db_engine
    from glancelite.db import locations as locations_db
    from glancelite.settings import DatabaseSettings

    path = service.config.parent / store / image_id
    path.write_bytes(content)
    cp = configparser.RawConfigParser()
    cp.read(service.config)
    engine = db_engine.create_engine(DatabaseSettings(connection=cp["database"]["connection"]))
    try:
        locations_db.add_location(engine, image_id, f"file://{path}", {"store": store})
    finally:
        engine.dispose()


def test_locations_tried_in_weight_order(service, http):
    """The heavier store (fast, 100) serves first; when its file is gone the next store does."""
    image_id = new_image(service, http)
    assert upload(service, http, image_id, b"SLOW", {"X-Image-Meta-Store": "slow"}).status_code == 204
    add_copy(service, image_id, "fast", b"FAST")  # different bytes only to see which store answered
    url = f"{service.url}/v2/images/{image_id}/file"
    assert http.get(url).content == b"FAST"
    assert http.get(f"{url}?prefer=slow").content == b"SLOW"
    assert http.get(f"{url}?prefer=nope").status_code == 400
    os.unlink(service.config.parent / "fast" / image_id)
    assert http.get(url).content == b"SLOW"
    os.unlink(service.config.parent / "slow" / image_id)
    assert http.get(url).status_code == 204


def test_delete_from_store_removes_one_copy(service, http):
    data = b"two copies"
    image_id = new_image(service, http)
    assert upload(service, http, image_id, data).status_code == 204
    add_copy(service, image_id, "slow", data)
    resp = http.delete(f"{service.url}/v2/stores/slow/{image_id}", headers=identity("someone"))
    assert resp.status_code in (403, 404)  # not an admin
    resp = http.delete(f"{service.url}/v2/stores/slow/{image_id}")
    assert resp.status_code == 204, resp.text
    assert not (service.config.parent / "slow" / image_id).exists()
    assert [loc.metadata["store"] for loc in image_row(service, image_id).locations] == ["fast"]
    resp = http.delete(f"{service.url}/v2/stores/slow/{image_id}")
    assert resp.status_code == 403  # fast is now the only copy
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data


def test_delete_from_store(service, http):
    image_id = new_image(service, http)
    assert upload(service, http, image_id, b"abc").status_code == 204
    url = f"{service.url}/v2/stores/fast/{image_id}"
    resp = http.delete(url)
    assert resp.status_code == 403
    assert "Cannot delete image data from the only store containing it" in resp.text
    assert http.delete(f"{service.url}/v2/stores/nope/{image_id}").status_code == 409
    assert http.delete(f"{service.url}/v2/stores/os_glance_staging_store/{image_id}").status_code == 409
    assert http.delete(f"{service.url}/v2/stores/fast/3f1c9f9e-0000-4000-8000-000000000000").status_code == 404
    fresh = new_image(service, http)
    assert http.delete(f"{service.url}/v2/stores/fast/{fresh}").status_code == 409  # not active


def test_image_delete_removes_data(service, http):
    image_id = new_image(service, http)
    assert upload(service, http, image_id, b"bye").status_code == 204
    path = service.config.parent / "fast" / image_id
    assert path.exists()
    resp = http.delete(f"{service.url}/v2/images/{image_id}")
    if resp.status_code in (404, 405):
        pytest.skip("image delete not available yet")
    assert resp.status_code == 204
    assert not path.exists()


def test_python_glanceclient_upload_and_download(service):
    """The real client: chunked upload, then a streamed download checked against Content-MD5."""
    import io

    from glanceclient import Client

    client = Client(endpoint=f"{service.url}/v2", token="noauth")
    image = client.images.create(name="gc", disk_format="raw", container_format="bare")
    data = raw_bytes(2 * 1024 * 1024 + 1)
    client.images.upload(image["id"], io.BytesIO(data))
    assert client.images.get(image["id"])["status"] == "active"
    assert b"".join(client.images.data(image["id"])) == data


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A service with a 2 MB image size cap and a 3 MB per-owner storage quota."""
    from tests.support.server import Server, write_config

    config = write_config(
        tmp_path_factory.mktemp("limited"),
        {"DEFAULT": {"image_size_cap": "2000000", "user_storage_quota": "3000000B"}},
    )
    server = Server(config).start()
    yield server
    server.stop()


def test_size_cap_is_413_and_leaves_nothing(limited, http):
    image_id = new_image(limited, http)
    before = files_in(limited, "fast", "slow")

    def chunks():  # unknown size: the cap must stop the stream as bytes arrive
        for _ in range(40):
            yield b"\1" * 100_000

    resp = upload(limited, http, image_id, chunks())
    assert resp.status_code == 413
    assert "The incoming image is too large" in resp.text
    assert image_row(limited, image_id).status == "queued"
    assert files_in(limited, "fast", "slow") == before


def test_storage_quota_is_413(limited, http):
    owner = identity("quota-project")
    first = new_image(limited, http, owner)
    assert upload(limited, http, first, b"\2" * 1_900_000, owner).status_code == 204
    second = new_image(limited, http, owner)
    resp = upload(limited, http, second, b"\3" * 1_500_000, owner)
    assert resp.status_code == 413
    assert "Image exceeds the storage quota" in resp.text
    assert image_row(limited, second).status == "queued"
    # Another project has its own quota.
    other = identity("quota-other")
    third = new_image(limited, http, other)
    assert upload(limited, http, third, b"\4" * 1_500_000, other).status_code == 204


def test_image_deleted_during_upload_is_410_and_data_removed(service, http):
    before = files_in(service, "fast", "slow")
    image_id = new_image(service, http)
    url = urllib.parse.urlsplit(service.url)
    body = raw_bytes(2_000_000)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(
            (
                f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[:1_000_000]
        )
        deadline = time.monotonic() + 10
        while image_row(service, image_id).status != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        resp = http.delete(f"{service.url}/v2/images/{image_id}")
        if resp.status_code in (404, 405):
            pytest.skip("image delete not available")
        assert resp.status_code == 204, resp.text
        sock.sendall(body[1_000_000:])
        sock.settimeout(20)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 410"), reply[:200]
    assert files_in(service, "fast", "slow") == before


def test_concurrent_uploads_to_one_image(service, http):
    """Only one upload wins the queued -> saving compare-and-set; the other gets 409 and writes nothing."""
    import concurrent.futures

    import requests

    image_id = new_image(service, http)
    payloads = [raw_bytes(4 * 1024 * 1024), raw_bytes(4 * 1024 * 1024)]

    def put(data):
        with requests.Session() as session:
            return upload(service, session, image_id, data)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(put, payloads))
    assert sorted(r.status_code for r in results) == [204, 409]
    winner = payloads[[r.status_code for r in results].index(204)]
    image = image_row(service, image_id)
    assert image.checksum == hashlib.md5(winner).hexdigest()
    assert len(image.locations) == 1
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == winner
    assert files_in(service, "fast").count(image_id) == 1
