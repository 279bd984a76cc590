"""Workers stopped by signals while data is moving.

SIGTERM (gunicorn's graceful stop) lets the transfers under way finish: each ends with its bytes
stored and checksummed. SIGKILL of the worker running a glance-direct import or a copy-image
(held mid-transfer by a frozen object store) ends, within a minute of gunicorn's replacement
worker starting, in a consistent image: the task failed, the image as it was before the import,
nothing staged or half-written left behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

import requests

from tests.faults.conftest import assert_audit_clean
from tests.support.server import Server, write_config

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}
STORES = 4  # fast, slow, staging, tasks


def _partials(root) -> list[str]:
    return [
        p.name
        for d in ("fast", "staging")
        if (root / d).exists()
        for p in (root / d).iterdir()
        if p.name.startswith(".partial-")
    ]


def test_sigterm_lets_running_upload_and_stage_finish(tmp_path, http):
    config = write_config(tmp_path)
    service = Server(config).start()
    try:
        uploaded, staged = (
            http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
            for _ in range(2)
        )
        data = {uploaded: os.urandom(6 * MIB), staged: os.urandom(5 * MIB + 7)}
        half_sent = {uploaded: threading.Event(), staged: threading.Event()}
        term_sent = threading.Event()
        answers: dict[str, object] = {}

        def slow(image_id):
            body = data[image_id]
            for i in range(0, len(body), 256 * 1024):
                if i >= len(body) // 2:
                    half_sent[image_id].set()
                    term_sent.wait(30)  # the rest goes up after SIGTERM has landed
                yield body[i : i + 256 * 1024]
                time.sleep(0.02)

        def send(image_id, target):
            try:
                answers[image_id] = requests.put(
                    f"{service.url}/v2/images/{image_id}/{target}", data=slow(image_id), headers=OCTET, timeout=60
                ).status_code
            except requests.RequestException as exc:
                answers[image_id] = exc

        senders = [
            threading.Thread(target=send, args=(uploaded, "file")),
            threading.Thread(target=send, args=(staged, "stage")),
        ]
        for sender in senders:
            sender.start()
        for event in half_sent.values():
            assert event.wait(30)
        deadline = time.monotonic() + 10
        while len(_partials(tmp_path)) < 2:  # both are being written
            assert time.monotonic() < deadline, _partials(tmp_path)
            time.sleep(0.05)
        service.proc.send_signal(signal.SIGTERM)
        time.sleep(1)  # the workers have it: no new connection is taken from here on
        term_sent.set()
        for sender in senders:
            sender.join(60)
        assert answers == {uploaded: 204, staged: 204}
        assert service.proc.wait(60) == 0
    finally:
        service.stop()

    service = Server(config).start()
    try:
        done = http.get(f"{service.url}/v2/images/{uploaded}").json()
        assert (done["status"], done["size"]) == ("active", len(data[uploaded]))
        assert done["os_hash_value"] == hashlib.sha512(data[uploaded]).hexdigest()
        assert http.get(f"{service.url}/v2/images/{uploaded}/file").content == data[uploaded]
        held = http.get(f"{service.url}/v2/images/{staged}").json()
        assert (held["status"], held["size"]) == ("uploading", len(data[staged]))
        assert (tmp_path / "staging" / staged).read_bytes() == data[staged]
        assert _partials(tmp_path) == []
        assert_audit_clean(config, stores=STORES)
    finally:
        service.stop()
