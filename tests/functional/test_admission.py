"""[DEFAULT] max_transfers_per_worker on the real server: transfers past the limit are refused at
once with 503 and Retry-After, metadata requests are still served, and the admitted transfers
complete with the right data."""

from __future__ import annotations

import hashlib
import time

import pytest
import requests

from tests.conftest import ADMIN
from tests.functional._images import new_image
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config
from tests.support.transfers import SlowDownload, SlowUpload, read_body, read_response_head

LIMIT = 2
# Larger than what the kernel's socket buffers absorb, so a slow reader keeps its download in flight.
DOWNLOAD_SIZE = 8 * 1024 * 1024
# A refusal or a metadata answer under load comes well within this (a hang would not).
PROMPT = 3.0


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    # One worker, so every request below meets the same count of transfers in flight.
    config = write_config(
        tmp_path_factory.mktemp("admission"),
        {"DEFAULT": {"workers": "1", "max_transfers_per_worker": str(LIMIT)}},
    )
    server = Server(config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def big_image(limited):
    data = raw_bytes(DOWNLOAD_SIZE)
    with requests.Session() as http:
        image_id = new_image(limited, http, headers=ADMIN)
        resp = http.put(
            f"{limited.url}/v2/images/{image_id}/file",
            data=data,
            headers={"Content-Type": "application/octet-stream", **ADMIN},
        )
    assert resp.status_code == 204, resp.text
    return image_id, hashlib.md5(data).hexdigest()


def _refused_put(service, path: str) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    upload = SlowUpload(service.url, path, raw_bytes(1_000_000), {**ADMIN, "Accept": "application/json"})
    try:
        upload.send(10_000)
        status, headers, first = read_response_head(upload.sock)
        body = read_body(upload.sock, headers, first)
        elapsed = time.monotonic() - started
        # The server closes the connection right after (the rest of the body would never be read).
        assert upload.sock.recv(1) == b""
        return status, headers, body, elapsed
    finally:
        upload.close()


def _assert_metadata_answers(service, http) -> None:
    for method, path, body, expected in (
        ("GET", "/versions", None, 200),
        ("GET", "/v2/images", None, 200),
        ("POST", "/v2/images", {"disk_format": "raw", "container_format": "bare"}, 201),
    ):
        started = time.monotonic()
        resp = http.request(method, service.url + path, json=body, headers=ADMIN, timeout=PROMPT * 2)
        assert resp.status_code == expected, (path, resp.text)
        assert time.monotonic() - started < PROMPT, path


def test_past_the_limit_a_transfer_is_refused_at_once_and_metadata_still_answers(limited, http, big_image):
    big_id, _ = big_image
    payloads = [raw_bytes(300_000) for _ in range(LIMIT)]
    ids = [new_image(limited, http, headers=ADMIN) for _ in payloads]
    # LIMIT uploads in flight, each sent only in part: they hold every transfer slot.
    uploads = [SlowUpload(limited.url, f"/v2/images/{i}/file", p, ADMIN) for i, p in zip(ids, payloads, strict=True)]
    try:
        for upload in uploads:
            upload.send(50_000)
        time.sleep(0.5)  # the server has taken both requests in

        target = new_image(limited, http, headers=ADMIN)
        for path in (f"/v2/images/{target}/file", f"/v2/images/{target}/stage"):
            status, headers, body, elapsed = _refused_put(limited, path)
            assert status == 503, body
            assert headers["retry-after"].isdigit() and int(headers["retry-after"]) > 0
            assert b"busy with other image transfers" in body and b'"code": "503 Service Unavailable"' in body
            assert elapsed < PROMPT
        started = time.monotonic()
        refused = http.get(f"{limited.url}/v2/images/{big_id}/file", headers=ADMIN, timeout=PROMPT * 2)
        assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
        assert time.monotonic() - started < PROMPT
        # The refused upload left the image as it was.
        assert http.get(f"{limited.url}/v2/images/{target}", headers=ADMIN).json()["status"] == "queued"

        _assert_metadata_answers(limited, http)

        for upload in uploads:
            assert upload.finish() == 204
    finally:
        for upload in uploads:
            upload.close()
    for image_id, payload in zip(ids, payloads, strict=True):
        image = http.get(f"{limited.url}/v2/images/{image_id}", headers=ADMIN).json()
        assert image["status"] == "active"
        assert image["checksum"] == hashlib.md5(payload).hexdigest()
        assert image["os_hash_value"] == hashlib.sha512(payload).hexdigest()


def test_a_slow_download_holds_its_slot_until_its_body_is_sent(limited, http, big_image):
    big_id, checksum = big_image
    first = SlowDownload(limited.url, f"/v2/images/{big_id}/file", ADMIN)
    try:
        assert first.status == 200
        first.read(4096)
        second = SlowDownload(limited.url, f"/v2/images/{big_id}/file", ADMIN)
        try:
            assert second.status == 200
            # Both slots are held by downloads whose handlers returned long ago.
            third = SlowDownload(limited.url, f"/v2/images/{big_id}/file", ADMIN)
            third.close()
            assert third.status == 503
            _assert_metadata_answers(limited, http)
            assert hashlib.md5(second.finish()).hexdigest() == checksum
        finally:
            second.close()
        # A slot is free again once a body is sent.
        again = http.get(f"{limited.url}/v2/images/{big_id}/file", headers=ADMIN)
        assert again.status_code == 200 and hashlib.md5(again.content).hexdigest() == checksum
        assert hashlib.md5(first.finish()).hexdigest() == checksum
    finally:
        first.close()


def test_transfers_below_the_limit_one_after_another_never_run_out_of_slots(limited, http, big_image):
    """Slots come back after uploads, downloads and failures alike."""
    big_id, checksum = big_image
    for _ in range(LIMIT + 1):
        image_id = new_image(limited, http, headers=ADMIN)
        payload = raw_bytes(10_000)
        # A failed upload (size mismatch) gives its slot back too.
        bad = http.put(
            f"{limited.url}/v2/images/{image_id}/file",
            data=payload,
            headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": "5", **ADMIN},
        )
        assert bad.status_code == 400
        good = http.put(
            f"{limited.url}/v2/images/{image_id}/file",
            data=payload,
            headers={"Content-Type": "application/octet-stream", **ADMIN},
        )
        assert good.status_code == 204, good.text
        ranged = http.get(f"{limited.url}/v2/images/{big_id}/file", headers={"Range": "bytes=0-9", **ADMIN})
        assert ranged.status_code == 206 and len(ranged.content) == 10
    whole = http.get(f"{limited.url}/v2/images/{big_id}/file", headers=ADMIN)
    assert whole.status_code == 200 and hashlib.md5(whole.content).hexdigest() == checksum
