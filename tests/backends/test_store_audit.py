"""glancelite-manage store audit on real S3 (moto), Swift and Ceph (rbd) stores.

The data is written by the store's own driver and recorded in a real database; then one
object is orphaned, one deleted, one recorded with the wrong size, and the audit runs as
an operator runs it. Swift's large images are segmented, so its segments must count as
their manifest's and never as orphans.
"""

from __future__ import annotations

import io
import time
import uuid

import pytest

from glancelite.db import engine as db_engine
from glancelite.db import images as images_db
from glancelite.db import locations as locations_db
from glancelite.settings import DatabaseSettings
from glancelite.store.registry import driver_for
from tests.backends.factories import rbd_options, s3_options, settings, swift_options
from tests.support.server import manage, write_config

pytestmark = pytest.mark.backend
MiB = 1024 * 1024


def _s3():
    return "s3", s3_options("moto", s3_store_bucket=f"glct-audit-{uuid.uuid4().hex[:8]}"), 4096


def _swift():
    # Above swift_store_large_object_size (1 MiB): written as segments and a manifest.
    return "swift", swift_options("swift", swift_store_container=f"glct-audit-{uuid.uuid4().hex[:8]}"), MiB + 4096


def _rbd():
    return "rbd", rbd_options(), 4096


@pytest.fixture(params=[_s3, _swift, _rbd], ids=["s3", "swift", "rbd"])
def remote(request, tmp_path):
    """A config whose default store ``remote`` is the backend, a synced database, and the store's driver."""
    type_name, options, size = request.param()
    conf = write_config(
        tmp_path,
        {
            "DEFAULT": {"enabled_backends": f"fast:file, remote:{type_name}"},
            "glance_store": {"default_backend": "remote"},
            "remote": {k: str(v) for k, v in options.items()},
        },
    )
    manage(conf, "db", "sync")
    store = settings("remote", type_name, **options)
    driver = driver_for(store)(store)
    if type_name == "rbd":
        # S3 and Swift get a fresh bucket or container; the Ceph pool is shared by the session's
        # rbd tests, whose leftovers would be this audit's orphans too.
        for leftover in list(driver.iter_objects()):
            driver.delete(leftover.url)
    engine = db_engine.create_engine(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'glance.sqlite'}"))
    yield conf, driver, engine, size
    engine.dispose()
    driver.close()


def _image(driver, engine, size: int, *, recorded_size: int | None = None) -> str:
    """Data written by the driver and recorded as an active image's location (of ``recorded_size``)."""
    image_id = str(uuid.uuid4())
    stored = driver.add(image_id, io.BytesIO(b"a" * size), size)
    images_db.create_image(engine, {"id": image_id, "status": "active", "size": recorded_size or size})
    locations_db.add_location(engine, image_id, stored.url, {"store": "remote"})
    return stored.url


def test_audit_finds_and_removes_on_a_real_backend(remote):
    conf, driver, engine, size = remote
    kept = _image(driver, engine, size)
    resized = _image(driver, engine, size, recorded_size=size + 1)
    lost = _image(driver, engine, size)
    driver.delete(lost)
    orphan = driver.add(str(uuid.uuid4()), io.BytesIO(b"o" * size), size).url

    proc = manage(conf, "store", "audit", check=False)
    assert proc.returncode == 1, proc
    lines = proc.stdout.splitlines()
    assert f"store remote ({driver.TYPE}): 3 objects, 2 referenced" in lines
    assert sorted(line.split()[:3] for line in lines if line.split()[0] in ("orphan", "missing", "wrong-size")) == [
        ["missing", "remote", lost],
        ["orphan", "remote", orphan],
        ["wrong-size", "remote", resized],
    ]
    assert f"size={size} expected={size + 1}" in proc.stdout
    assert lines[-1].startswith("summary: stores audited=4 skipped=0 failed=0; orphan=1 missing=1 wrong-size=1 ")

    time.sleep(1.1)  # the backends' modification times have whole seconds
    proc = manage(conf, "store", "audit", "--remove-orphans-older-than", "0", check=False)
    assert proc.returncode == 1, proc  # the missing and the wrong-size location remain
    assert [line.split()[:3] for line in proc.stdout.splitlines() if line.startswith("removed")] == [
        ["removed", "remote", orphan]
    ]
    listed = sorted(obj.url for obj in driver.iter_objects())
    assert listed == sorted([kept, resized])  # referenced data stays; Swift segments went with their manifest


@pytest.fixture(params=["moto", "rgw"])
def s3_remote(request, tmp_path):
    """A config whose store ``remote`` is an S3 bucket (moto, or Ceph radosgw's S3), and its driver."""
    options = s3_options(request.param, s3_store_bucket=f"glct-mpu-{uuid.uuid4().hex[:8]}")
    conf = write_config(
        tmp_path,
        {
            "DEFAULT": {"enabled_backends": "fast:file, remote:s3"},
            "glance_store": {"default_backend": "remote"},
            "remote": {k: str(v) for k, v in options.items()},
        },
    )
    manage(conf, "db", "sync")
    store = settings("remote", "s3", **options)
    driver = driver_for(store)(store)
    driver._client.create_bucket(Bucket=driver.bucket)
    engine = db_engine.create_engine(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'glance.sqlite'}"))
    yield conf, driver, engine, request.param
    engine.dispose()
    driver.close()


def _begun(driver, engine, status: str | None) -> str:
    """A multipart upload of a new image (recorded with ``status``; None: not recorded) with one part."""
    image_id = str(uuid.uuid4())
    if status:
        images_db.create_image(engine, {"id": image_id, "status": status})
    client = driver._client
    upload_id = client.create_multipart_upload(Bucket=driver.bucket, Key=image_id)["UploadId"]
    client.upload_part(Bucket=driver.bucket, Key=image_id, UploadId=upload_id, PartNumber=1, Body=b"p" * 5 * MiB)
    return upload_id


def _uploads(driver) -> list[str]:
    return sorted(u["UploadId"] for u in driver._client.list_multipart_uploads(Bucket=driver.bucket).get("Uploads", []))


def test_unfinished_multipart_uploads_are_leftovers_and_aborted(s3_remote):
    """What a process that died mid-upload leaves in S3: parts no listing shows. The audit lists them
    (not the upload of an image still ``saving``), and the removal option aborts the old ones."""
    conf, driver, engine, flavor = s3_remote
    killed = _begun(driver, engine, "killed")
    unknown = _begun(driver, engine, None)
    saving = _begun(driver, engine, "saving")  # an upload under way: never a leftover

    proc = manage(conf, "store", "audit", check=False)
    assert proc.returncode == 1, proc
    leftovers = [line for line in proc.stdout.splitlines() if line.startswith("leftover")]
    assert sorted(line.split(" upload=")[1].split()[0] for line in leftovers) == sorted([killed, unknown])
    assert any(line.endswith("(unfinished multipart upload: its image is killed)") for line in leftovers), leftovers
    assert any("its image does not exist" in line for line in leftovers), leftovers
    assert "store remote (s3): 0 objects, 0 referenced" in proc.stdout
    assert " leftover=2 " in proc.stdout.splitlines()[-1]

    if flavor == "rgw":  # moto reports every upload as initiated on 2010-11-10: no age to test there
        proc = manage(conf, "store", "audit", "--remove-orphans-older-than", "1h", check=False)
        assert proc.returncode == 1, proc  # too young to go
        assert not [line for line in proc.stdout.splitlines() if line.startswith("removed")], proc.stdout
        assert _uploads(driver) == sorted([killed, unknown, saving])

    time.sleep(1.1)  # the backends' initiation times have whole seconds
    proc = manage(conf, "store", "audit", "--remove-orphans-older-than", "0", check=False)
    assert proc.returncode == 0, proc
    removed = [line for line in proc.stdout.splitlines() if line.startswith("removed")]
    assert sorted(line.split(" upload=")[1].split()[0] for line in removed) == sorted([killed, unknown])
    assert _uploads(driver) == [saving]
    assert proc.stdout.splitlines()[-1].endswith("; removed=2 not-removed=0")


def test_multi_tenant_swift_audit_lists_the_tenants_accounts(swift_env, tmp_path):
    """swift_store_multi_tenant keeps each image in its uploader's account, in ``<container>_<image>``.
    The audit logs in as the store's operator (tempauth's reseller admin) and lists every account the
    database knows of: those its locations name, and those of image owners, where an upload that died
    may have left a segment and no location at all."""
    import swiftclient.client as sc

    from glancelite.context import RequestContext
    from glancelite.store.drivers.swift.multi_tenant import multi_tenant_url

    auth = swift_env["SWIFT_AUTH_URL"]
    container = f"glct-mt-{uuid.uuid4().hex[:8]}"
    options = {
        "swift_store_multi_tenant": True,
        "swift_store_container": container,
        "swift_store_create_container_on_put": True,
        "swift_store_large_object_size": 1,  # segmented (DLO) from 1 MiB
        "swift_store_large_object_chunk_size": 1,
        # The operator: used by glancelite-manage only, never for the callers' requests.
        "swift_store_auth_address": auth,
        "swift_store_user": swift_env["SWIFT_ADMIN_USER"],
        "swift_store_key": swift_env["SWIFT_ADMIN_KEY"],
        "swift_store_auth_version": "1",
    }
    conf = write_config(
        tmp_path,
        {
            "DEFAULT": {"enabled_backends": "fast:file, tenant:swift"},
            "glance_store": {"default_backend": "tenant"},
            "tenant": {k: str(v) for k, v in options.items()},
        },
    )
    manage(conf, "db", "sync")
    store = settings("tenant", "swift", **options)
    driver = driver_for(store)(store)
    engine = db_engine.create_engine(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'glance.sqlite'}"))

    def caller(user: str, key: str):
        storage_url, token = sc.get_auth(auth, user, key)
        catalog = ({"type": "object-store", "endpoints": [{"publicURL": storage_url}]},)
        return driver.for_context(RequestContext(auth_token=token, service_catalog=catalog))

    def write(view, size: int, owner: str | None, *, record: bool = True) -> str:
        image_id = str(uuid.uuid4())
        url = view.add(image_id, io.BytesIO(b"d" * size), size).url
        if record:
            images_db.create_image(engine, {"id": image_id, "status": "active", "size": size, "owner": owner})
            locations_db.add_location(engine, image_id, url, {"store": "tenant"})
        return url

    test, test2 = caller(swift_env["SWIFT_USER"], swift_env["SWIFT_KEY"]), caller("test2:tester2", "testing2")
    kept = write(test, 2 * MiB + 5, "test")
    orphan = write(test, 4096, None, record=False)
    kept2 = write(test2, 4096, "test2")
    orphan2 = write(test2, 2 * MiB, None, record=False)  # a manifest and its segments: one orphan
    # An account only an image's owner names: its upload died after one segment, no location recorded.
    project = f"glct{uuid.uuid4().hex[:8]}"
    dead_id = str(uuid.uuid4())
    images_db.create_image(engine, {"id": dead_id, "status": "killed", "owner": project})
    admin_url, admin_token = sc.get_auth(auth, swift_env["SWIFT_ADMIN_USER"], swift_env["SWIFT_ADMIN_KEY"])
    account_url = f"{admin_url.rsplit('/', 1)[0]}/AUTH_{project}"
    sc.put_container(account_url, admin_token, f"{container}_{dead_id}")
    sc.put_object(account_url, admin_token, f"{container}_{dead_id}", f"{dead_id}-00001", contents=b"s" * 1000)
    segment = multi_tenant_url(account_url, f"{container}_{dead_id}", f"{dead_id}-00001")

    try:
        proc = manage(conf, "store", "audit", check=False)
        assert proc.returncode == 1, proc
        lines = proc.stdout.splitlines()
        assert "store tenant (swift): 5 objects, 2 referenced" in lines, proc.stdout
        assert sorted(line.split()[2] for line in lines if line.startswith("orphan")) == sorted(
            [orphan, orphan2, segment]
        )
        assert f"{orphan2} size={2 * MiB} " in proc.stdout  # the segments count in their manifest
        assert lines[-1].startswith("summary: stores audited=4 skipped=0 failed=0; orphan=3 missing=0 wrong-size=0 ")

        time.sleep(1.1)  # Swift's listing times have whole seconds... and the age must exceed 0
        proc = manage(conf, "store", "audit", "--remove-orphans-older-than", "0", check=False)
        assert proc.returncode == 0, proc
        assert sorted(line.split()[2] for line in proc.stdout.splitlines() if line.startswith("removed")) == sorted(
            [orphan, orphan2, segment]
        )
        assert manage(conf, "store", "audit", check=False).returncode == 0
        # What the images refer to stays, readable by their owners; the dead upload's container is gone.
        assert b"".join(test.get(kept)) == b"d" * (2 * MiB + 5)
        assert test2.get_size(kept2) == 4096
        _, containers = sc.get_account(account_url, admin_token, prefix=container)
        assert containers == []
    finally:
        engine.dispose()
        driver.close()
