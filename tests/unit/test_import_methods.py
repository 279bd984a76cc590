"""Every import method has one way to get its bytes into staging."""

from __future__ import annotations

import io
import os
import types

from glancelite import model
from glancelite.settings import Settings, StoreSettings
from glancelite.store.areas import StagingArea, WorkArea
from glancelite.store.stores import StoreSet
from glancelite.tasks import methods
from glancelite.tasks import progress as import_progress
from glancelite.tasks.plan import ImportPlan, Method
from tests.support.payloads import raw_bytes


def test_each_method_acquires_its_data_once():
    # glance-download is the one method with steps of its own (remote metadata, then the download).
    assert set(methods.ACQUIRE) | {Method.GLANCE_DOWNLOAD} == set(Method)
    assert Method.GLANCE_DOWNLOAD not in methods.ACQUIRE


def _acquire(tmp_path, method: Method, monkeypatch):
    """AcquireData over real file stores (staging and the tasks store); the data source is faked."""

    def store(store_id):
        return StoreSettings(
            store_id, "file", None, 0, {"filesystem_store_datadir": str(tmp_path / store_id)}, reserved=True
        )

    plain = StoreSettings("file", "file", None, 0, {"filesystem_store_datadir": str(tmp_path / "file")})
    settings = Settings(stores=(plain, store("os_glance_staging_store"), store("os_glance_tasks_store")))
    stores = StoreSet(settings)
    env = types.SimpleNamespace(
        staging=StagingArea(stores, "os_glance_staging_store"),
        work=WorkArea(stores, "os_glance_tasks_store"),
        stores=stores,
        settings=settings,
        tasks=types.SimpleNamespace(update_task=lambda *args, **kwargs: None),
    )
    fetched = []

    def download(env, plan, uri, work_file, headers=None):
        fetched.append(uri)
        with open(work_file, "wb") as out:
            out.write(b"fresh" * 10)
        return 50

    monkeypatch.setattr(methods, "download", download)
    plan = ImportPlan(task_id="t1", image_id="img", method=method, stores=("a",), uri="http://example.test/x")
    return methods.AcquireData(env, plan), env, fetched, stores


def test_a_resumed_acquire_whose_data_is_staged_already_is_done(tmp_path, monkeypatch):
    """A job resumed from the job board: the dead worker linked the complete file into staging
    before taskflow saved the step. Fetching again met Duplicate and failed the import."""
    step, env, fetched, stores = _acquire(tmp_path, Method.WEB_DOWNLOAD, monkeypatch)
    try:
        assert step.execute() == 50 and fetched == ["http://example.test/x"]  # the first run fetches
        assert step.execute() == 50 and len(fetched) == 1  # the resumed run finds it staged
        with env.staging.open("img") as staged:
            assert staged.read() == b"fresh" * 10
        assert env.work.task_ids() == set()  # no work file left behind either time
    finally:
        stores.close()


def test_copy_image_out_of_a_file_store_on_the_same_file_system_links_instead_of_copying(tmp_path, monkeypatch):
    step, env, _, stores = _acquire(tmp_path, Method.COPY_IMAGE, monkeypatch)
    data = raw_bytes(2 * 1024 * 1024)
    stored = stores.write("file", "img", io.BytesIO(data), len(data))
    image = types.SimpleNamespace(
        id="img", size=len(data), locations=[model.Location(url=stored.url, metadata={"store": "file"})]
    )
    env.images = types.SimpleNamespace(get_image=lambda image_id: image)
    try:
        assert step.execute() == len(data)
        assert os.stat(env.staging.path("img")).st_ino == os.stat(stored.url[len("file://") :]).st_ino
        with env.staging.open("img") as staged:
            assert staged.read() == data
        assert env.work.task_ids() == set()
    finally:
        import_progress.forget("t1")
        stores.close()
