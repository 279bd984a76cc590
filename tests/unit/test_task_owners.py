"""Who owns a running import task: the owner marker and the liveness rule crash recovery relies on."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from glancelite.tasks import areas


def test_this_process_is_alive():
    assert areas.owner_alive(areas.current_owner()) is True


def test_finished_process_is_dead():
    child = subprocess.Popen(["true"])
    child.wait()
    assert areas.owner_alive({"host": socket.gethostname(), "pid": child.pid, "start": None}) is False


def test_zombie_is_dead():
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until it exited but is not reaped yet: a zombie
            with open(f"/proc/{child.pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert areas.owner_alive({"host": socket.gethostname(), "pid": child.pid, "start": None}) is False
    finally:
        child.wait()


def test_reused_pid_is_dead():
    me = areas.current_owner()
    assert areas.owner_alive({**me, "start": "1"}) is False


def test_other_host_is_unknown():
    assert areas.owner_alive({"host": "elsewhere.example", "pid": os.getpid(), "start": None}) is None


def test_bad_marker_is_dead():
    assert areas.owner_alive({"host": socket.gethostname(), "pid": "x"}) is False
