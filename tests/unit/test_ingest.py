"""The one ingest path (tasks/ingest.py) over real file stores and a real database, and the
staging area reached only through the StoreSet and the file driver."""

from __future__ import annotations

import errno
import hashlib
import io
import os

import pytest

from glancelite import errors
from glancelite.db import images as images_db
from glancelite.db.repositories import ImageRepository, LocationRepository, MemberRepository
from glancelite.settings import Settings, StoreSettings
from glancelite.store import base, inspection
from glancelite.store.areas import StagingArea
from glancelite.store.stores import StoreSet
from glancelite.tasks import ingest as ingest_module
from glancelite.tasks.ingest import Ingest, Ingested
from tests.support.payloads import raw_bytes

MIB = 1 << 20


def _store(store_id: str, path, reserved: bool = False) -> StoreSettings:
    return StoreSettings(store_id, "file", None, 0, {"filesystem_store_datadir": str(path)}, reserved=reserved)


@pytest.fixture
def make(engine, tmp_path):
    """``make(**settings)``: an Ingest over file stores ``file`` and staging in ``tmp_path``."""
    built: list[StoreSet] = []

    def build(**overrides) -> Ingest:
        settings = Settings(
            stores=(
                _store("file", tmp_path / "file"),
                _store("os_glance_staging_store", tmp_path / "staging", reserved=True),
                _store("os_glance_tasks_store", tmp_path / "tasks", reserved=True),
            ),
            **overrides,
        )
        stores = StoreSet(settings)
        built.append(stores)
        return Ingest(
            settings,
            stores=stores,
            images=ImageRepository(engine),
            locations=LocationRepository(engine),
            members=MemberRepository(engine),
        )

    yield build
    for stores in built:
        stores.close()


def _image(engine, image_id: str, status: str = "saving", owner: str | None = "p1") -> str:
    images_db.create_image(
        engine,
        {"id": image_id, "status": status, "owner": owner, "disk_format": "raw", "container_format": "bare"},
    )
    return image_id


def _files(path) -> list[str]:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _upload(ingest: Ingest, image_id: str, data: bytes, *, size=None, formats=None, owner="p1", progress=None):
    return ingest.write(
        "file",
        image_id,
        io.BytesIO(data),
        size=len(data) if size is None else size,
        owner=owner,
        formats=formats,
        progress=progress,
        record=lambda ingested: ingest.record_data(image_id, ingested, expected_status="saving"),
    )


def test_write_records_the_digests_and_makes_the_image_active(make, engine, tmp_path):
    ingest = make()
    data = raw_bytes(3 * MIB + 5)
    image = _upload(ingest, _image(engine, "img-1"), data, formats=("raw", "bare"))
    assert image.status == "active"
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert (image.os_hash_algo, image.os_hash_value) == ("sha512", hashlib.sha512(data).hexdigest())
    assert image.virtual_size == len(data)  # what the raw inspection reports
    assert [loc.url for loc in image.locations] == [f"file://{tmp_path / 'file' / 'img-1'}"]
    assert (tmp_path / "file" / "img-1").read_bytes() == data


def test_a_failed_record_removes_what_was_written(make, engine, tmp_path):
    ingest = make()
    image_id = _image(engine, "img-2")

    def record(ingested: Ingested):
        assert os.path.exists(ingested.stored.url[len("file://") :])  # written, not yet recorded
        raise errors.Conflict("the image moved on meanwhile")

    with pytest.raises(errors.Conflict, match="moved on"):
        ingest.write("file", image_id, io.BytesIO(b"x" * 1000), size=1000, record=record)
    assert _files(tmp_path / "file") == []
    assert images_db.get_image(engine, image_id).locations == ()


@pytest.mark.parametrize(
    ("data", "size", "error", "message"),
    [
        (b"a" * 100, 200, errors.Invalid, "Size mismatch"),  # body shorter than its Content-Length
        (b"a" * 300, 200, errors.Invalid, "Size exceeds"),  # body longer than its Content-Length
        (b"a" * (2 * MIB), 0, errors.TooLarge, "image size cap"),  # unknown size, cap passed midway
    ],
)
def test_bad_bodies_leave_nothing_in_the_store(make, engine, tmp_path, data, size, error, message):
    ingest = make(image_size_cap=MIB)
    image_id = _image(engine, "img-3")
    with pytest.raises(error, match=message):
        _upload(ingest, image_id, data, size=size)
    assert _files(tmp_path / "file") == []  # neither the image nor a .partial file
    assert images_db.get_image(engine, image_id).status == "saving"  # the caller puts it back to queued


def test_the_storage_quota_counts_what_the_owner_stores_already(make, engine, tmp_path):
    ingest = make(user_storage_quota=3000)
    _upload(ingest, _image(engine, "img-4"), b"a" * 2000)
    assert ingest.quota_remaining("p1") == 1000
    assert ingest.quota_remaining(None) is None  # no owner: nothing to count against
    with pytest.raises(errors.TooLarge, match="storage quota"):
        _upload(ingest, _image(engine, "img-5"), b"b" * 1500, size=0)  # unknown size: stopped as bytes arrive
    assert _files(tmp_path / "file") == ["img-4"]
    assert make().quota_remaining("p1") is None  # user_storage_quota 0: unlimited


def test_a_format_mismatch_found_by_the_inspector_removes_the_data(make, engine, tmp_path):
    ingest = make()
    with pytest.raises(inspection.FormatMismatch):
        _upload(ingest, _image(engine, "img-6"), raw_bytes(2 * MIB), formats=("qcow2", "bare"))
    assert _files(tmp_path / "file") == []


def test_progress_hears_the_running_count_now_and_then(make, engine):
    ingest = make()
    heard: list[int] = []
    size = 3 * ingest_module.PROGRESS_EVERY_BYTES + 123
    _upload(ingest, _image(engine, "img-7"), b"z" * size, progress=heard.append)
    assert heard == sorted(heard) and heard[-1] == size
    assert 3 <= len(heard) <= 4  # about once per PROGRESS_EVERY_BYTES, and the total at the end


def test_a_failing_progress_callback_stops_the_write_and_removes_the_partial(make, engine, tmp_path):
    ingest = make()

    def abort(total: int) -> None:
        raise errors.Conflict("the task is no longer ours")

    with pytest.raises(errors.Conflict, match="no longer ours"):
        _upload(ingest, _image(engine, "img-8"), b"q" * (2 * ingest_module.PROGRESS_EVERY_BYTES), progress=abort)
    assert _files(tmp_path / "file") == []


def test_digest_hashes_a_location_without_writing(make, engine, tmp_path):
    ingest = make()
    data = raw_bytes(MIB + 7)
    image = _upload(ingest, _image(engine, "img-9"), data)
    polled: list[int] = []
    digests = ingest.digest(image.locations[0], hashing_algorithm="sha256", progress=polled.append)
    assert digests.checksum == hashlib.md5(data).hexdigest()
    assert (digests.os_hash_algo, digests.os_hash_value) == ("sha256", hashlib.sha256(data).hexdigest())
    assert polled and polled[-1] == len(data)
    assert _files(tmp_path / "file") == ["img-9"]


def test_staging_is_written_sized_linked_and_deleted_through_the_store(make, engine, tmp_path):
    ingest = make()
    staging = StagingArea(ingest.stores, "os_glance_staging_store")
    assert staging.size("img-s") is None
    staged = ingest.write(
        "os_glance_staging_store",
        "img-s",
        io.BytesIO(b"s" * 10),
        size=10,
        internal=True,
        record=lambda ingested: ingested,
    )
    # Unhashed: the import hashes the staged data as it copies it into each store.
    assert staged.digests is None
    assert staged.stored.size == 10 and staging.size("img-s") == 10
    with pytest.raises(base.Duplicate):  # staging never replaces staged data
        staging.write("img-s", io.BytesIO(b"again"), 5)
    work = tmp_path / "tasks" / "t1.download"
    work.write_bytes(b"w" * 20)
    with pytest.raises(base.Duplicate):
        staging.adopt("img-s", str(work))
    assert work.exists()  # a refused adoption keeps the work file for the task's own clean-up
    assert staging.replace("img-s", str(work)) == 20 and not work.exists()
    with staging.open("img-s") as stream:
        assert stream.read() == b"w" * 20
    work.write_bytes(b"n" * 7)
    assert staging.adopt("img-n", str(work)) == 7 and not work.exists()
    assert staging.delete("img-s") is True and staging.delete("img-s") is False
    assert _files(tmp_path / "staging") == ["img-n"]


def test_the_store_driver_copies_a_file_it_cannot_link(tmp_path, monkeypatch):
    """Across file systems (EXDEV) adopt falls back to the driver's add: still never replacing."""
    from glancelite.store.drivers.file import FileDriver

    driver = FileDriver(_store("s", tmp_path / "s"))
    driver.prepare()
    source = tmp_path / "work"
    source.write_bytes(b"c" * 33)

    real_link = os.link

    def no_link(src, dst):
        if src == str(source):  # only the work file is on "another file system"
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", no_link)
    stored = driver.adopt("img-x", str(source))
    assert stored.size == 33 and not source.exists()
    assert (tmp_path / "s" / "img-x").read_bytes() == b"c" * 33
    assert driver.locate("img-x") == f"file://{tmp_path / 's' / 'img-x'}"
    assert driver.locate("img-y") is None


def test_staged_data_is_hashed_then_linked_into_a_store_on_its_file_system(make, engine, tmp_path):
    """An import's write from staging reads every byte through the hashing reader and the format
    inspector, then the file store links the staged file instead of writing it a second time."""
    ingest = make()
    staging = StagingArea(ingest.stores, "os_glance_staging_store")

    def import_staged(image_id: str, data: bytes):
        staging.write(image_id, io.BytesIO(data), len(data))
        _image(engine, image_id)
        with staging.open(image_id) as staged:
            return ingest.write(
                "file",
                image_id,
                staged,
                size=len(data),
                owner="p1",
                formats=("raw", "bare"),
                record=lambda ingested: ingest.record_data(image_id, ingested, expected_status="saving"),
            )

    data = raw_bytes(3 * MIB + 5)
    image_id = "img-l"
    image = import_staged(image_id, data)
    assert (image.checksum, image.os_hash_value) == (
        hashlib.md5(data).hexdigest(),
        hashlib.sha512(data).hexdigest(),
    )
    assert os.stat(tmp_path / "file" / image_id).st_ino == os.stat(staging.path(image_id)).st_ino
    assert staging.size(image_id) == len(data)  # the staged file stays until the import deletes it

    # What the inspector refuses is not linked either.
    with pytest.raises(inspection.FormatMismatch):
        import_staged("img-q", b"QFI\xfb" + bytes(508))
    assert _files(tmp_path / "file") == ["img-l"]
