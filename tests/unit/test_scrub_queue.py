"""The scrub queue on a real database: what a delayed delete leaves, selection, claims, restore, purge."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from glancelite import errors, model
from glancelite.db import images as images_db
from glancelite.db import locations as locations_db
from glancelite.db import members as members_db
from glancelite.db import purge, scrub_queue, tables
from glancelite.db.repositories import ScrubQueueRepository
from glancelite.db.scrub_queue import Holder
from glancelite.services.scrubber import Outcome, Scrubber
from glancelite.settings import Settings, StoreSettings
from glancelite.store.stores import StoreSet

S = model.ImageStatus


def holder(*, host: str = "elsewhere.example", pid: int = 1) -> Holder:
    """A scrubber run on another host (its liveness is judged by heartbeat)."""
    return Holder(token=str(uuid.uuid4()), host=host, pid=pid)


def pending_image(engine, *, copies: int = 2, image_id: str | None = None) -> str:
    """An active image with ``copies`` locations, a property, a tag and a member, then delay-deleted."""
    image_id = image_id or str(uuid.uuid4())
    images_db.create_image(
        engine,
        {"id": image_id, "status": "active", "owner": "p1", "disk_format": "raw", "container_format": "bare"},
        {"os_distro": "debian"},
        ["golden"],
    )
    for n in range(copies):
        locations_db.add_location(engine, image_id, f"file:///data/{image_id}-{n}", {"store": "fast"})
    members_db.create_member(engine, image_id, "p2")
    deleted = images_db.delete_image(engine, image_id, keep_data=True)
    assert deleted.status == S.PENDING_DELETE
    return image_id


def backdate(engine, image_id: str, seconds: int) -> None:
    when = images_db.utcnow() - datetime.timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(tables.images.update().where(tables.images.c.id == image_id).values(deleted_at=when))


def test_delayed_delete_hides_the_image_and_keeps_its_locations_pending(engine):
    image_id = pending_image(engine)
    with pytest.raises(errors.NotFound):
        images_db.get_image(engine, image_id)
    with engine.connect() as conn:
        image = conn.execute(sa.select(tables.images).where(tables.images.c.id == image_id)).one()
        locations = conn.execute(
            sa.select(tables.image_locations).where(tables.image_locations.c.image_id == image_id)
        ).all()
    assert (image.status, image.deleted) == ("pending_delete", True)
    assert [(loc.status, loc.deleted) for loc in locations] == [("pending_delete", True)] * 2
    pending = scrub_queue.pending_image(engine, image_id)
    assert [loc.url for loc in pending.locations] == [f"file:///data/{image_id}-0", f"file:///data/{image_id}-1"]
    assert pending.claim is None


def test_plain_delete_marks_locations_deleted(engine):
    image_id = str(uuid.uuid4())
    images_db.create_image(engine, {"id": image_id, "status": "active"})
    locations_db.add_location(engine, image_id, "file:///data/x", {})
    assert images_db.delete_image(engine, image_id).status == S.DELETED
    assert scrub_queue.pending_images(engine) == []


def test_selection_waits_for_scrub_time_and_pages_by_id(engine):
    ids = sorted(pending_image(engine, copies=1) for _ in range(5))
    now = images_db.utcnow()
    assert scrub_queue.pending_images(engine, deleted_before=now - datetime.timedelta(seconds=60)) == []
    backdate(engine, ids[0], 120)
    due = scrub_queue.pending_images(engine, deleted_before=now - datetime.timedelta(seconds=60))
    assert [p.id for p in due] == [ids[0]]
    first = scrub_queue.pending_images(engine, limit=2)
    rest = scrub_queue.pending_images(engine, after=first[-1].id, limit=10)
    assert [p.id for p in first + rest] == ids


def test_one_claim_per_image_and_guarded_writes(engine):
    image_id = pending_image(engine)
    a, b = holder(), holder()
    claimed = scrub_queue.claim(engine, image_id, a)
    assert claimed is not None and len(claimed.locations) == 2
    assert scrub_queue.claim(engine, image_id, b) is None
    assert scrub_queue.claim(engine, image_id, a) is None  # not twice either
    first, second = claimed.locations
    # Only the holder may record progress.
    assert scrub_queue.location_scrubbed(engine, image_id, first.id, b) is False
    assert scrub_queue.location_scrubbed(engine, image_id, first.id, a) is True
    assert scrub_queue.location_scrubbed(engine, image_id, first.id, a) is False  # already deleted
    assert scrub_queue.finish(engine, image_id, a) is False  # a location is still pending
    assert scrub_queue.location_scrubbed(engine, image_id, second.id, a) is True
    assert scrub_queue.finish(engine, image_id, b) is False
    assert scrub_queue.finish(engine, image_id, a) is True
    with engine.connect() as conn:
        status = conn.execute(sa.select(tables.images.c.status).where(tables.images.c.id == image_id)).scalar_one()
        claims = conn.execute(sa.select(sa.func.count()).select_from(tables.image_scrub_claims)).scalar_one()
    assert (status, claims) == ("deleted", 0)
    assert scrub_queue.pending_images(engine) == []
    assert scrub_queue.claim(engine, image_id, b) is None


def test_release_leaves_the_image_pending_and_claimable(engine):
    image_id = pending_image(engine)
    a, b = holder(), holder()
    assert scrub_queue.claim(engine, image_id, a) is not None
    assert scrub_queue.release(engine, image_id, b) is False
    assert scrub_queue.release(engine, image_id, a) is True
    assert scrub_queue.pending_image(engine, image_id).claim is None
    assert scrub_queue.claim(engine, image_id, b) is not None


def test_a_stale_claim_is_taken_over_once(engine):
    image_id = pending_image(engine)
    dead = holder()
    scrub_queue.claim(engine, image_id, dead)
    stale = scrub_queue.pending_image(engine, image_id).claim
    b, c = holder(), holder()
    assert scrub_queue.claim(engine, image_id, b, replacing=stale) is not None
    # c read the same stale claim: it lost the race.
    assert scrub_queue.claim(engine, image_id, c, replacing=stale) is None
    assert scrub_queue.pending_image(engine, image_id).claim.holder == b
    # The dead holder's late writes change nothing.
    location = scrub_queue.pending_image(engine, image_id).locations[0]
    assert scrub_queue.location_scrubbed(engine, image_id, location.id, dead) is False
    # A claim renewed since it was read is not taken over: its holder is alive.
    read = scrub_queue.pending_image(engine, image_id).claim
    time.sleep(0.01)
    assert scrub_queue.renew(engine, b) == 1
    assert scrub_queue.pending_image(engine, image_id).claim.heartbeat_at > read.heartbeat_at
    assert scrub_queue.claim(engine, image_id, c, replacing=read) is None


def test_concurrent_claims_have_one_winner(engine):
    image_ids = [pending_image(engine, copies=1) for _ in range(4)]
    holders = [holder() for _ in range(6)]
    won: dict[str, list[str]] = {i: [] for i in image_ids}
    barrier = threading.Barrier(len(holders))

    def contend(h: Holder) -> None:
        barrier.wait()
        for image_id in image_ids:
            if scrub_queue.claim(engine, image_id, h) is not None:
                won[image_id].append(h.token)

    threads = [threading.Thread(target=contend, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(winners) == 1 for winners in won.values()), won


def test_restore_brings_back_the_image_with_everything_deleted_with_it(engine):
    image_id = pending_image(engine)
    image = scrub_queue.restore(engine, image_id)
    assert image.status == S.ACTIVE
    assert len(image.locations) == 2 and all(loc.status == "active" for loc in image.locations)
    assert image.properties == {"os_distro": "debian"}
    assert image.tags == {"golden"}
    assert [m.member_id for m in members_db.list_members(engine, image_id)] == ["p2"]
    assert images_db.get_image(engine, image_id).status == S.ACTIVE
    with pytest.raises(errors.Conflict, match="cannot restore the image from active to active"):
        scrub_queue.restore(engine, image_id)


def test_restore_refuses_unknown_claimed_and_scrubbed_images(engine):
    with pytest.raises(errors.NotFound):
        scrub_queue.restore(engine, str(uuid.uuid4()))
    image_id = pending_image(engine, copies=1)
    a = holder()
    claimed = scrub_queue.claim(engine, image_id, a)
    with pytest.raises(errors.Conflict, match="being scrubbed"):
        scrub_queue.restore(engine, image_id)
    # A claim found dead may be dropped by the restore...
    stale = scrub_queue.pending_image(engine, image_id).claim
    scrub_queue.location_scrubbed(engine, image_id, claimed.locations[0].id, a)
    # ... but with its data gone there is nothing to restore.
    with pytest.raises(errors.Conflict, match="data has been deleted"):
        scrub_queue.restore(engine, image_id, replacing=stale)


def test_restore_keeps_only_what_is_left_of_a_partly_scrubbed_image(engine):
    image_id = pending_image(engine, copies=2)
    a = holder()
    claimed = scrub_queue.claim(engine, image_id, a)
    scrub_queue.location_scrubbed(engine, image_id, claimed.locations[0].id, a)
    scrub_queue.release(engine, image_id, a)  # the second store failed
    image = scrub_queue.restore(engine, image_id)
    assert [loc.url for loc in image.locations] == [claimed.locations[1].url]


def test_purge_keeps_every_row_of_a_pending_image(engine):
    pending = pending_image(engine)
    done = pending_image(engine)
    a = holder()
    for loc in scrub_queue.claim(engine, done, a).locations:
        scrub_queue.location_scrubbed(engine, done, loc.id, a)
    assert scrub_queue.finish(engine, done, a)
    long_ago = images_db.utcnow() - datetime.timedelta(days=400)
    with engine.begin() as conn:
        for table in (tables.images, *purge.IMAGE_CHILDREN):
            conn.execute(table.update().where(table.c.deleted == sa.true()).values(deleted_at=long_ago))
    counts = purge.purge(engine, age_in_days=30, max_rows=-1)
    assert counts["image_locations"] == 2 and counts["image_properties"] == 1
    assert purge.purge_images(engine, age_in_days=30, max_rows=-1) == {"images": 1}
    # The pending image and its rows are all there: the scrubber and a restore still need them.
    assert len(scrub_queue.pending_image(engine, pending).locations) == 2
    assert scrub_queue.restore(engine, pending).properties == {"os_distro": "debian"}


# ---------------------------------------------------------------- the scrubber's view of a holder


def file_settings(root, **options) -> Settings:
    store = StoreSettings("file", "file", None, 0, {"filesystem_store_datadir": str(root)})
    return Settings(stores=(store,), default_store="file", **options)


@pytest.fixture
def scrubber(engine, tmp_path):
    settings = file_settings(tmp_path / "images")
    return Scrubber(settings, queue=ScrubQueueRepository(engine), stores=StoreSet(settings))


def _claim(scrubber, engine, h: Holder) -> scrub_queue.Claim:
    image_id = pending_image(engine, copies=1)
    scrub_queue.claim(engine, image_id, h)
    return scrub_queue.pending_image(engine, image_id).claim


def test_a_claim_of_a_live_process_here_is_kept(scrubber, engine):
    me = scrubber.holder
    claim = _claim(
        scrubber, engine, Holder(token="other-run", host=me.host, pid=me.pid, process_start=me.process_start)
    )
    assert scrubber.holder_gone(claim) is False


def test_a_claim_of_a_dead_process_here_is_taken_over(scrubber, engine):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    assert not os.path.exists(f"/proc/{dead_pid}")
    claim = _claim(scrubber, engine, Holder(token="dead-run", host=scrubber.holder.host, pid=dead_pid))
    assert scrubber.holder_gone(claim) is True


def test_a_claim_from_another_host_expires_with_its_heartbeat(scrubber, engine):
    claim = _claim(scrubber, engine, holder())
    assert scrubber.holder_gone(claim) is False
    old = claim.heartbeat_at - scrubber.lease - datetime.timedelta(seconds=1)
    assert scrubber.holder_gone(scrub_queue.Claim(claim.holder, claim.claimed_at, old)) is True


# ---------------------------------------------------------------- a pass through a real file store


def stored_image(engine, root, *, copies: int = 2) -> tuple[str, list]:
    """A delay-deleted image whose ``copies`` locations are real files under ``root``."""
    image_id = str(uuid.uuid4())
    images_db.create_image(engine, {"id": image_id, "status": "active", "size": 4})
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(copies):
        path = root / f"{image_id}-{n}"
        path.write_bytes(b"data")
        paths.append(path)
        locations_db.add_location(engine, image_id, f"file://{path}", {})
    images_db.delete_image(engine, image_id, keep_data=True)
    return image_id, paths


def test_a_pass_deletes_due_data_only_and_retries_a_failed_location(engine, tmp_path):
    root = tmp_path / "images"
    settings = file_settings(root, scrub_time=60, scrub_pool_size=3)
    scrubber = Scrubber(settings, queue=ScrubQueueRepository(engine), stores=StoreSet(settings))
    due = [stored_image(engine, root) for _ in range(4)]
    for image_id, _ in due:
        backdate(engine, image_id, 120)
    recent, recent_paths = stored_image(engine, root)
    failing, (ok_path, stuck_path) = stored_image(engine, root)
    backdate(engine, failing, 120)
    # The file driver cannot unlink a directory: a real store failure for one location.
    stuck_path.unlink()
    stuck_path.mkdir()
    (stuck_path / "keep").write_bytes(b"x")

    report = scrubber.run()
    assert report.ids(Outcome.SCRUBBED) == sorted(i for i, _ in due)
    assert report.ids(Outcome.LEFT_PENDING) == [failing]
    assert not any(p.exists() for _, paths in due for p in paths)
    assert all(p.exists() for p in recent_paths)  # not pending scrub_time yet
    left = scrub_queue.pending_image(engine, failing)
    assert [loc.url for loc in left.locations] == [f"file://{stuck_path}"] and left.claim is None
    assert not ok_path.exists()

    (stuck_path / "keep").unlink()
    stuck_path.rmdir()
    stuck_path.write_bytes(b"data")
    report = scrubber.run()
    assert report.ids(Outcome.SCRUBBED) == [failing]
    assert not stuck_path.exists()
    assert [p.id for p in scrub_queue.pending_images(engine)] == [recent]


def test_a_location_in_no_configured_store_stays_pending(engine, tmp_path, scrubber):
    image_id = str(uuid.uuid4())
    images_db.create_image(engine, {"id": image_id, "status": "active"})
    locations_db.add_location(engine, image_id, "file:///somewhere/else", {"store": "retired"})
    images_db.delete_image(engine, image_id, keep_data=True)
    assert scrubber.run().ids(Outcome.LEFT_PENDING) == [image_id]
    assert len(scrub_queue.pending_image(engine, image_id).locations) == 1


def test_two_scrubbers_in_parallel_delete_each_location_once(engine, tmp_path):
    root = tmp_path / "images"
    settings = file_settings(root, scrub_pool_size=4)
    images = [stored_image(engine, root, copies=2) for _ in range(12)]
    deleted: list[str] = []
    lock = threading.Lock()

    class CountingStores(StoreSet):
        def delete_location(self, location, *, context=None, image_id=None):
            with lock:
                deleted.append(location.url)
            return super().delete_location(location, context=context)

    scrubbers = [
        Scrubber(settings, queue=ScrubQueueRepository(engine), stores=CountingStores(settings)) for _ in range(2)
    ]
    reports = []
    threads = [threading.Thread(target=lambda s=s: reports.append(s.run())) for s in scrubbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(deleted) == sorted(f"file://{p}" for _, paths in images for p in paths)
    scrubbed = [i for r in reports for i in r.ids(Outcome.SCRUBBED)]
    assert sorted(scrubbed) == sorted(i for i, _ in images)
    assert scrub_queue.pending_images(engine) == []


def test_a_claim_this_scrubber_could_not_release_is_taken_back_next_pass(engine, tmp_path):
    root = tmp_path / "images"
    settings = file_settings(root)
    scrubber = Scrubber(settings, queue=ScrubQueueRepository(engine), stores=StoreSet(settings))
    image_id, paths = stored_image(engine, root, copies=1)
    assert scrub_queue.claim(engine, image_id, scrubber.holder) is not None  # as a pass that lost the database
    other = Scrubber(settings, queue=ScrubQueueRepository(engine), stores=StoreSet(settings))
    assert other.run().ids(Outcome.SKIPPED) == [image_id]  # alive, in this very process
    assert scrubber.run().ids(Outcome.SCRUBBED) == [image_id]
    assert not paths[0].exists()
