"""Who owns a running import task: the owner marker and the liveness rule crash recovery relies on."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from glancelite.store import areas


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


def test_work_area_lists_and_ages_task_files(tmp_path):
    class Stores:
        def settings_of(self, store_id, internal=False):
            from glancelite.settings import StoreSettings

            return StoreSettings(store_id, "file", None, 0, {"filesystem_store_datadir": str(tmp_path)}, reserved=True)

    work = areas.WorkArea(Stores(), "os_glance_tasks_store")
    work.claim("t1")
    (tmp_path / "t2.download").write_bytes(b"x")
    old = time.time() - 3600
    os.utime(tmp_path / "t2.download", (old, old))
    assert work.task_ids() == {"t1", "t2"}
    assert work.age("t1") < 60 < work.age("t2")
    assert work.owner("t1")["pid"] == os.getpid()
    work.release("t2")
    assert work.task_ids() == {"t1"}
