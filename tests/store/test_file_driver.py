"""File driver specifics: several data directories, permissions, thin provisioning, metadata file."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.drivers.file import PARTIAL_PREFIX, FileDriver
from tests.support.payloads import raw_bytes


def make(store_id="f", **options) -> FileDriver:
    driver = FileDriver(StoreSettings(id=store_id, type="file", description=None, weight=0, options=options))
    driver.prepare()  # what StoreSet does at start: create the directories
    return driver


def test_highest_priority_directory_wins(tmp_path):
    low, high = tmp_path / "low", tmp_path / "high"
    driver = make(filesystem_store_datadirs=[f"{low}:1", f"{high}:200"])
    stored = driver.add("img", io.BytesIO(b"data"), 4)
    assert stored.url == f"file://{high}/img"
    assert driver.properties()["data_dir"] == str(high)


def test_same_dir_with_two_priorities_refused(tmp_path):
    with pytest.raises(errors.ConfigError) as info:
        make(filesystem_store_datadirs=[f"{tmp_path}/a:1", f"{tmp_path}/a:2"])
    assert info.value.option == "filesystem_store_datadirs"


def test_same_dir_same_priority_tolerated(tmp_path):
    driver = make(filesystem_store_datadirs=[f"{tmp_path}/a:1", f"{tmp_path}/a:1"])
    assert len(driver.datadirs) == 1


def test_datadir_and_datadirs_exclusive(tmp_path):
    with pytest.raises(errors.ConfigError, match="not both"):
        make(filesystem_store_datadir=str(tmp_path / "a"), filesystem_store_datadirs=[f"{tmp_path}/b:1"])
    with pytest.raises(errors.ConfigError, match="needs a directory"):
        make()


def test_non_integer_priority_refused(tmp_path):
    with pytest.raises(errors.ConfigError, match="not an integer"):
        make(filesystem_store_datadirs=[f"{tmp_path}/a:high"])


def test_unusable_datadir_stops_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(errors.ConfigError) as info:
        make(filesystem_store_datadir=str(blocker / "sub"))
    assert (info.value.group, info.value.option) == ("f", "filesystem_store_datadir")


def test_file_perm_applied_and_dir_traversable(tmp_path):
    (tmp_path / "d").mkdir(mode=0o700)
    os.chmod(tmp_path / "d", 0o700)
    driver = make(filesystem_store_datadir=str(tmp_path / "d"), filesystem_store_file_perm=644)
    stored = driver.add("img", io.BytesIO(b"x"), 1)
    assert stat.S_IMODE(os.stat(stored.url[7:]).st_mode) == 0o644
    assert os.stat(tmp_path / "d").st_mode & 0o001


def test_thin_provisioning_makes_sparse_files(tmp_path):
    driver = make(filesystem_store_datadir=str(tmp_path / "d"), filesystem_thin_provisioning=True)
    data = b"\0" * (8 * 65536) + b"tail"
    stored = driver.add("img", io.BytesIO(data), len(data))
    path = stored.url[7:]
    assert os.path.getsize(path) == len(data)
    assert os.stat(path).st_blocks * 512 < len(data)
    with driver.get(stored.url) as stream:
        assert b"".join(stream) == data
    trailing = b"head" + b"\0" * (4 * 65536)
    stored = driver.add("img2", io.BytesIO(trailing), len(trailing))
    assert os.path.getsize(stored.url[7:]) == len(trailing)


def test_metadata_file_entry_returned(tmp_path):
    datadir = tmp_path / "d"
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"id": "nfs-1", "mountpoint": str(tmp_path)}))
    driver = make(filesystem_store_datadir=str(datadir), filesystem_store_metadata_file=str(meta))
    assert driver.add("img", io.BytesIO(b"x"), 1).metadata == {"id": "nfs-1", "mountpoint": str(tmp_path)}
    meta.write_text("[1, 2]")
    with pytest.raises(errors.ConfigError, match="mountpoint"):
        make("g", filesystem_store_datadir=str(tmp_path / "e"), filesystem_store_metadata_file=str(meta))


def test_urls_outside_the_store_are_not_found(tmp_path):
    driver = make(filesystem_store_datadir=str(tmp_path / "d"))
    (tmp_path / "secret").write_text("x")
    with pytest.raises(base.StoreNotFound):
        driver.get(f"file://{tmp_path}/secret")
    with pytest.raises(base.StoreNotFound):
        driver.get(f"file://{tmp_path}/d/../secret")
    with pytest.raises(base.BadStoreUri):
        driver.get("http://example.com/x")


def test_no_partial_name_ever_visible_as_an_image(tmp_path):
    driver = make(filesystem_store_datadir=str(tmp_path / "d"))

    class Watching:
        def __init__(self):
            self.seen = []
            self.left = 3

        def read(self, n):
            self.seen.append(sorted(os.listdir(tmp_path / "d")))
            self.left -= 1
            return b"x" * 10 if self.left >= 0 else b""

    reader = Watching()
    driver.add("img", reader, None)
    assert all(names and names[0].startswith(PARTIAL_PREFIX) and "img" not in names for names in reader.seen[1:])
    assert os.listdir(tmp_path / "d") == ["img"]


def test_stale_partials_of_unknown_writers_removed_by_age(tmp_path):
    driver = make(filesystem_store_datadir=str(tmp_path / "d"))
    stale = tmp_path / "d" / f"{PARTIAL_PREFIX}old"
    stale.write_text("x")
    os.utime(stale, (0, 0))
    fresh = tmp_path / "d" / f"{PARTIAL_PREFIX}new"
    fresh.write_text("x")
    assert driver.remove_orphaned_partials() == 1
    assert fresh.exists() and not stale.exists()


def test_orphaned_partials_of_dead_writers_are_removed(tmp_path):
    """A worker SIGKILLed mid-upload leaves its temp file; the next worker to start removes it, and only it."""
    driver = make(filesystem_store_datadir=str(tmp_path))
    host = socket.gethostname()
    dead = subprocess.Popen(["sleep", "30"])
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    names = {
        "dead": f"{PARTIAL_PREFIX}img1.{host}.{dead.pid}.aaaa",
        "live": f"{PARTIAL_PREFIX}img2.{host}.{os.getpid()}.bbbb",
        "other_host": f"{PARTIAL_PREFIX}img3.elsewhere.example.{dead.pid}.cccc",
        "old_other_host": f"{PARTIAL_PREFIX}img4.elsewhere.{dead.pid}.dddd",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(tmp_path / names["old_other_host"], (week_ago, week_ago))
    (tmp_path / "img5").write_bytes(b"a finished image")

    assert driver.remove_orphaned_partials() == 2
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names["live"], names["other_host"], "img5"}


def test_an_add_names_its_partial_after_its_writer(tmp_path):
    """While bytes arrive, the temp file carries this host and pid, so it is never taken for an orphan."""
    driver = make(filesystem_store_datadir=str(tmp_path))
    seen = []

    class Watching(io.BytesIO):
        def read(self, n=-1):
            seen.extend(p.name for p in tmp_path.iterdir() if p.name.startswith(PARTIAL_PREFIX))
            return super().read(n)

    driver.add("0b5b2bd6-0000-4000-8000-000000000001", Watching(b"x" * 200_000), 200_000)
    assert seen and all(f".{socket.gethostname()}.{os.getpid()}." in name for name in seen)
    assert driver.remove_orphaned_partials() == 0


# -- add_from_file: staged data hard-linked in ----------------------------------------------


class _ReadCounter:
    """The reader an import hands the store: counts what the store drew through it."""

    def __init__(self, fh):
        self.fh, self.read_bytes = fh, 0

    def read(self, size=-1):
        data = self.fh.read(size)
        self.read_bytes += len(data)
        return data


def _staged(tmp_path, data: bytes, name: str = "staged"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_add_from_file_links_the_file_it_read_on_the_same_file_system(tmp_path):
    data = raw_bytes(3 * 1024 * 1024 + 17)
    staged = _staged(tmp_path, data)
    driver = make(filesystem_store_datadir=str(tmp_path / "d"), filesystem_store_file_perm=640)
    with open(staged, "rb") as fh:
        reader = _ReadCounter(fh)
        stored = driver.add_from_file("img", reader, len(data), fh)
    path = stored.url[7:]
    assert reader.read_bytes == len(data)  # every byte went through the caller's reader (hashing)
    assert os.stat(path).st_ino == os.stat(staged).st_ino  # a link, not a second write
    assert (stored.size, staged.exists()) == (len(data), True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    with driver.get(stored.url) as stream:
        assert b"".join(stream) == data


def test_add_from_file_links_what_was_read_even_if_its_name_moved_on(tmp_path):
    staged = _staged(tmp_path, b"the data that was hashed")
    driver = make(filesystem_store_datadir=str(tmp_path / "d"))
    with open(staged, "rb") as fh:
        reader = _ReadCounter(fh)

        def swap_after_reading(size=-1):
            data = _ReadCounter.read(reader, size)
            if not data:
                _staged(tmp_path, b"something else", "other").replace(staged)
            return data

        reader.read = swap_after_reading
        stored = driver.add_from_file("img", reader, None, fh)
    assert open(stored.url[7:], "rb").read() == b"the data that was hashed"


def test_add_from_file_never_replaces_and_links_nothing_when_the_read_fails(tmp_path):
    staged = _staged(tmp_path, b"x" * 1000)
    driver = make(filesystem_store_datadir=str(tmp_path / "d"))
    driver.add("img", io.BytesIO(b"old"), 3)
    with open(staged, "rb") as fh, pytest.raises(base.Duplicate):
        driver.add_from_file("img", _ReadCounter(fh), 1000, fh)

    class Failing(_ReadCounter):
        def read(self, size=-1):
            if self.read_bytes:
                raise errors.TooLarge("over the cap")
            return super().read(100)

    with open(staged, "rb") as fh, pytest.raises(errors.TooLarge):
        driver.add_from_file("img2", Failing(fh), 1000, fh)
    assert sorted(os.listdir(tmp_path / "d")) == ["img"]
    assert os.stat(staged).st_nlink == 1


def test_add_from_file_on_another_file_system_writes_a_copy(tmp_path):
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system other than the test's temporary directory")
    data = raw_bytes(1024 * 1024)
    staged = _staged(tmp_path, data)
    datadir = os.path.join(shm, f"glancelite-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        driver = make(filesystem_store_datadir=datadir)
        with open(staged, "rb") as fh:
            reader = _ReadCounter(fh)
            stored = driver.add_from_file("img", reader, len(data), fh)
        assert reader.read_bytes == len(data)
        assert os.stat(stored.url[7:]).st_ino != os.stat(staged).st_ino
        assert open(stored.url[7:], "rb").read() == data
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
