"""The store audit's logic: the comparison on plain objects, Swift's segment folding, the age
option, progress, the report; then the audit over real file stores and a real database,
with an upload that finishes while the store is listed."""

from __future__ import annotations

import dataclasses
import io
import os
import time
import uuid

import pytest

from glancelite import config as config_module
from glancelite.app import build_store_audit
from glancelite.cmd import store_audit as cli
from glancelite.db import engine as db_engine
from glancelite.db import images as images_db
from glancelite.db import locations as locations_db
from glancelite.db import migration
from glancelite.db.store_references import LocationReference
from glancelite.model import Location
from glancelite.services.store_audit import AuditReport, Removal, StoreOutcome
from glancelite.services.store_comparison import (
    Finding,
    KeyedReference,
    Kind,
    compare,
    staging_leftovers,
    work_leftovers,
)
from glancelite.store.base import ListedObject
from tests.support.server import write_config

NOW = 1_000_000.0


def listed(key: str, size: int, modified: float = NOW - 60) -> ListedObject:
    return ListedObject(key=key, url=f"x://{key}", size=size, modified=modified)


def ref(key: str, image_size: int | None, image_id: str = "img") -> KeyedReference:
    location = Location(url=f"x://{key}", metadata={"store": "s"})
    return KeyedReference(key, LocationReference(image_id, "active", image_size, location))


def kinds(findings) -> list[tuple[str, str]]:
    return sorted((f.kind.value, f.url) for f in findings)


# -- the comparison ----------------------------------------------------------------------------


def test_compare_tells_orphans_missing_and_wrong_sizes_apart():
    objects = [listed("a", 10), listed("b", 5), listed("orphan", 7, modified=NOW - 120), listed("nosize", 3)]
    refs = [ref("a", 10, "A"), ref("a", 10, "A2"), ref("b", 6, "B"), ref("gone", 4, "G"), ref("nosize", None)]
    findings, objects_seen, referenced = compare("s", objects, refs, NOW)
    assert (objects_seen, referenced) == (4, 3)
    assert kinds(findings) == [("missing", "x://gone"), ("orphan", "x://orphan"), ("wrong-size", "x://b")]
    by_kind = {f.kind: f for f in findings}
    assert by_kind[Kind.ORPHAN].age == 120 and by_kind[Kind.ORPHAN].size == 7
    assert (by_kind[Kind.WRONG_SIZE].size, by_kind[Kind.WRONG_SIZE].expected) == (5, 6)
    assert by_kind[Kind.MISSING].image_id == "G"


def test_an_object_without_a_time_has_no_age():
    findings, _, _ = compare("s", [listed("o", 1, modified=0)], [], NOW)
    assert findings[0].age is None


@dataclasses.dataclass
class FakeImage:  # the two fields the staging rule reads
    status: str
    properties: dict


def test_staging_keeps_data_of_images_being_staged_or_imported():
    objects = [
        listed("/st/uploading", 1),
        listed("/st/importing", 1),
        listed("/st/copying", 1),
        listed("/st/active", 1),
        listed("/st/unknown", 1),
        listed("/st/.partial-uploading.host.12.abcd", 1),
        listed("/st/.partial-gone.host.12.abcd", 1),
    ]
    images = {
        "uploading": FakeImage("uploading", {}),
        "importing": FakeImage("importing", {}),
        "copying": FakeImage("active", {"os_glance_import_task": "t1"}),
        "active": FakeImage("active", {}),
    }
    asked = []

    def lookup(ids):
        asked.append(set(ids))
        return {i: images[i] for i in ids if i in images}

    findings, objects_seen, kept = staging_leftovers("staging", objects, lookup, NOW)
    assert asked == [{"uploading", "importing", "copying", "active", "unknown", "gone"}]
    assert (objects_seen, kept) == (7, 4)
    assert sorted((f.image_id, f.reason) for f in findings) == [
        ("active", "its image is active"),
        ("gone", "its image does not exist"),
        ("unknown", "its image does not exist"),
    ]


def test_work_files_of_finished_or_unknown_tasks_are_leftovers():
    objects = [
        listed("/w/t1.owner", 1),
        listed("/w/t1.download", 1),
        listed("/w/t2.scratch", 1),
        listed("/w/t3.owner.tmp", 1),
        listed("/w/stray.txt", 1),
    ]
    findings, _, kept = work_leftovers("tasks", objects, lambda ids: {"t1": "processing", "t2": "success"}, NOW)
    assert kept == 2
    assert sorted((f.url, f.reason) for f in findings) == [
        ("x:///w/stray.txt", "not a task's working file"),
        ("x:///w/t2.scratch", "task t2 is success"),
        ("x:///w/t3.owner.tmp", "task t3 does not exist"),
    ]


def test_swift_segments_count_in_their_manifest():
    pytest.importorskip("swiftclient", reason="the swift driver needs python-swiftclient")
    from glancelite.store.drivers.swift.single_tenant import fold_segments

    listing = [
        {"name": "img", "bytes": 0, "last_modified": "2026-01-01T00:00:00.000000"},
        {"name": "img-00001", "bytes": 4, "last_modified": "2026-01-01T00:00:01.000000"},
        {"name": "img-00002", "bytes": 2, "last_modified": "2026-01-01T00:00:02.500000"},
        {"name": "lost-00001", "bytes": 9, "last_modified": "2026-01-01T00:00:00.000000"},
        {"name": "small", "bytes": 3, "last_modified": "2026-01-01T00:00:00.000000"},
    ]
    folded = {name: (size, modified) for name, size, modified in fold_segments(listing)}
    assert sorted(folded) == ["img", "lost-00001", "small"]  # a segment without its manifest stays visible
    assert folded["img"] == (6, 1767225602.5)


# -- the command's parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("2H", 7200), ("7d", 604800)]
)
def test_age_takes_seconds_or_a_unit(text, seconds):
    assert cli.parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "-5", "1.5h", "3w", "soon"])
def test_age_refuses_anything_else(text):
    with pytest.raises(cli.BadAge, match="Invalid age"):
        cli.parse_age(text)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_and_throttled():
    assert cli.progress_for(io.StringIO()) is None
    clock = iter([10.0, 10.1, 10.7, 11.0]).__next__
    stream = Terminal()
    progress = cli.Progress(stream, interval=0.5, clock=clock)
    for count in (1, 2, 3):
        progress("fast", count)
    progress.done()
    assert stream.getvalue() == (
        "\r\033[Kauditing store fast: 1 objects listed\r\033[Kauditing store fast: 3 objects listed\r\033[K"
    )


def test_exit_codes_follow_what_remains():
    orphan = Finding(Kind.ORPHAN, "s", "x://o", size=1, age=5)
    store = StoreOutcome("s", "file", False, objects=1)
    out = io.StringIO()
    assert cli.render(AuditReport((store,), ()), out) == cli.CLEAN
    assert cli.render(AuditReport((store,), (orphan,)), out) == cli.FINDINGS
    assert cli.render(AuditReport((store,), (orphan,), (Removal(orphan),)), out) == cli.CLEAN
    assert cli.render(AuditReport((store,), (orphan,), (Removal(orphan, "refused"),)), out) == cli.FAILED
    broken = dataclasses.replace(store, error="unreachable")
    assert cli.render(AuditReport((broken,), ()), out) == cli.FAILED
    assert out.getvalue().splitlines()[-1] == (
        "summary: stores audited=0 skipped=0 failed=1; "
        "orphan=0 missing=0 wrong-size=0 leftover=0 unassigned=0; removed=0 not-removed=0"
    )


@pytest.mark.parametrize(
    ("age", "shown"),
    [(None, ""), (45.9, " age=45s"), (725, " age=12m5s"), (12000, " age=3h20m"), (792000, " age=9d4h")],
)
def test_ages_are_shown_in_the_units_the_option_takes(age, shown):
    line = cli._finding_line(Finding(Kind.ORPHAN, "s", "x://o", size=1, age=age))
    assert line == f"orphan      s x://o size=1{shown}"


# -- the audit over real file stores and a real database ------------------------------------


@pytest.fixture
def audit_env(tmp_path):
    conf = write_config(tmp_path)
    loaded = config_module.load([str(conf)])
    engine = db_engine.create_engine(loaded.settings.database)
    migration.sync(engine)
    for name in ("fast", "slow", "staging", "tasks"):
        (tmp_path / name).mkdir()
    services = build_store_audit(loaded.settings)
    yield services, engine, tmp_path
    services.close()
    engine.dispose()


def _record(engine, path, size: int) -> str:
    image_id = os.path.basename(path)
    images_db.create_image(engine, {"id": image_id, "status": "active", "size": size})
    locations_db.add_location(engine, image_id, f"file://{path}", {"store": "fast"})
    return image_id


def test_an_upload_recorded_during_the_listing_is_not_an_orphan(audit_env):
    services, engine, root = audit_env
    uploading = root / "fast" / str(uuid.uuid4())
    uploading.write_bytes(b"u" * 10)
    recorded = []

    def finish_upload_meanwhile(store_id, count):
        if store_id == "fast" and not recorded:
            recorded.append(_record(engine, uploading, 10))

    report = services.audit.run(progress=finish_upload_meanwhile)
    assert recorded and report.findings == ()


def test_removal_spares_young_orphans_and_referenced_data(audit_env):
    services, engine, root = audit_env
    image = root / "fast" / str(uuid.uuid4())
    image.write_bytes(b"i" * 8)
    old = time.time() - 600
    os.utime(image, (old, old))
    _record(engine, image, 8)
    stale, fresh = root / "fast" / "stale", root / "slow" / "fresh"
    stale.write_bytes(b"s")
    os.utime(stale, (old, old))
    fresh.write_bytes(b"f")

    report = services.audit.run(remove_older_than=300)
    assert kinds(report.findings) == [("orphan", f"file://{stale}"), ("orphan", f"file://{fresh}")]
    assert [r.finding.url for r in report.removals] == [f"file://{stale}"]
    assert image.exists() and fresh.exists() and not stale.exists()
    assert kinds(report.remaining) == [("orphan", f"file://{fresh}")]


def test_delayed_delete_data_stays_referenced_until_scrubbed(audit_env):
    services, engine, root = audit_env
    pending, deleted = root / "fast" / str(uuid.uuid4()), root / "fast" / str(uuid.uuid4())
    for path in (pending, deleted):
        path.write_bytes(b"p")
        images_db.delete_image(engine, _record(engine, path, 1), keep_data=path == pending)
    report = services.audit.run()
    assert kinds(report.findings) == [("orphan", f"file://{deleted}")]


@pytest.fixture
def web_root(tmp_path):
    """A directory served over HTTP on 127.0.0.1 (what an http store's locations point at)."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_stores_that_cannot_list_have_each_location_checked_or_are_skipped(tmp_path, web_root):
    pytest.importorskip("swiftclient", reason="a multi-tenant swift store needs python-swiftclient")
    served, base_url = web_root
    (served / "good").write_bytes(b"g" * 5)
    (served / "short").write_bytes(b"s" * 2)
    conf = write_config(
        tmp_path,
        {
            "DEFAULT": {"enabled_backends": "fast:file, web:http, tenant:swift"},
            "tenant": {"swift_store_multi_tenant": "true", "swift_store_endpoint": "http://127.0.0.1:9/v1/AUTH_x"},
        },
    )
    loaded = config_module.load([str(conf)])
    engine = db_engine.create_engine(loaded.settings.database)
    migration.sync(engine)
    for name, size in (("good", 5), ("short", 3), ("absent", 1)):
        image_id = str(uuid.uuid4())
        images_db.create_image(engine, {"id": image_id, "status": "active", "size": size})
        locations_db.add_location(engine, image_id, f"{base_url}/{name}", {"store": "web"})
    services = build_store_audit(loaded.settings)
    try:
        report = services.audit.run()
    finally:
        services.close()
        engine.dispose()
    outcomes = {s.store_id: s for s in report.stores}
    assert (outcomes["web"].objects, outcomes["web"].referenced, outcomes["web"].error) == (2, 2, None)
    assert kinds(report.findings) == [("missing", f"{base_url}/absent"), ("wrong-size", f"{base_url}/short")]
    assert "multi-tenant" in outcomes["tenant"].skipped and not report.failed


def test_a_location_its_store_cannot_name_is_missing(audit_env):
    services, engine, root = audit_env
    image_id = str(uuid.uuid4())
    images_db.create_image(engine, {"id": image_id, "status": "active", "size": 1})
    locations_db.add_location(engine, image_id, f"file://{root}/elsewhere/{image_id}", {"store": "fast"})
    report = services.audit.run()
    assert [(f.kind, f.image_id) for f in report.findings] == [(Kind.MISSING, image_id)]
    assert "is not in store fast" in report.findings[0].reason


def test_printed_locations_never_carry_keys():
    assert cli.redact("s3://AKIA:secret@s3.example.com/bucket/img") == "s3://s3.example.com/bucket/img"
    assert cli.redact("file:///var/lib/glance/images/img") == "file:///var/lib/glance/images/img"
    line = cli._finding_line(Finding(Kind.MISSING, "s", "swift+https://u:k@auth.example.com/v3/c/img", image_id="i"))
    assert "u:k" not in line and "swift+https://auth.example.com/v3/c/img" in line


def test_unfinished_uploads_are_leftovers_unless_their_image_is_being_written():
    import types

    from glancelite.services.store_comparison import unfinished_leftovers
    from glancelite.store.base import UnfinishedUpload
    from glancelite.tasks.plan import LOCK_PROPERTY

    def image(status, **properties):
        return types.SimpleNamespace(status=status, properties=properties)

    live = {
        "saving": image("saving"),
        "copying": image("active", **{LOCK_PROPERTY: "task-1"}),  # copy-image into the store
        "dead": image("active"),
    }
    uploads = [UnfinishedUpload(key, f"u-{key}", f"s3://h/b/{key}", 1000.0) for key in (*live, "gone")]
    found = unfinished_leftovers("cheap", uploads, lambda ids: {i: live[i] for i in ids if i in live}, 1060.0)
    assert [(f.kind, f.image_id, f.upload_id, f.age, f.reason) for f in found] == [
        ("leftover", "dead", "u-dead", 60.0, "unfinished multipart upload: its image is active"),
        ("leftover", "gone", "u-gone", 60.0, "unfinished multipart upload: its image does not exist"),
    ]
