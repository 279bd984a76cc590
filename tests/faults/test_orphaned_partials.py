"""A service SIGKILLed in the middle of a stage or upload leaves no partial file once it restarts."""

from __future__ import annotations

import os
import signal
import threading
import time

import requests

from tests.faults.conftest import assert_audit_clean
from tests.support.server import Server, write_config

CHUNK = b"\0" * (1024 * 1024)


def _partials(root) -> list[str]:
    return [
        p.name
        for d in ("fast", "slow", "staging", "tasks")
        if (root / d).exists()
        for p in (root / d).iterdir()
        if p.name.startswith(".partial-")
    ]


def _slow_body(stop: threading.Event):
    """Chunks until told to stop: the server is killed while it is still reading."""
    for _ in range(200):
        if stop.is_set():
            return
        yield CHUNK
        time.sleep(0.05)


def test_killed_mid_stage_and_upload_leaves_nothing_after_restart(tmp_path):
    conf = write_config(tmp_path)
    server = Server(conf).start()
    stop = threading.Event()
    try:
        ids = []
        for _ in range(2):
            resp = requests.post(server.url + "/v2/images", json={"disk_format": "raw", "container_format": "bare"})
            ids.append(resp.json()["id"])
        headers = {"Content-Type": "application/octet-stream"}
        senders = [
            threading.Thread(target=_send, args=(server.url + f"/v2/images/{ids[0]}/stage", headers, stop)),
            threading.Thread(target=_send, args=(server.url + f"/v2/images/{ids[1]}/file", headers, stop)),
        ]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 20
        while len(_partials(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_partials(tmp_path)) == 2, "both transfers should be writing their temp files"
        saving = requests.get(server.url + f"/v2/images/{ids[1]}").json()
        assert saving["status"] == "saving"
        assert not any(key.startswith("os_glance_upload") for key in saving)  # the owner record is hidden
        os.killpg(server.proc.pid, signal.SIGKILL)  # master and workers: no cleanup runs
        server.proc.wait(10)
        stop.set()
        for sender in senders:
            sender.join(10)
        assert len(_partials(tmp_path)) == 2  # what a crash leaves behind

        server = Server(conf).start()
        assert _partials(tmp_path) == []
        for image_id in ids:
            assert requests.get(server.url + f"/v2/images/{image_id}").json()["status"] == "queued"
        assert_audit_clean(conf, stores=4)
    finally:
        stop.set()
        server.stop()


def _send(url, headers, stop):
    try:
        requests.put(url, data=_slow_body(stop), headers=headers, timeout=60)
    except requests.RequestException:
        pass  # the server died under it, which is the point
