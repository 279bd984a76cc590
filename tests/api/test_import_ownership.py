"""Who owns an import's working state: the flow factory claims the task's work area and starts the
bookkeeping once the service holds the image lock, and releases both at the end or when the runner
refuses the job; the service only validates, locks and submits."""

from __future__ import annotations

import pytest

from tests.support.imports import (
    create_image,
    get_image,
    image_tasks,
    payload,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.inprocess import serve

MIB = 1 << 20


@pytest.fixture(scope="module")
def service(request, tmp_path_factory, web):
    """The usual in-process service, with the test's web source allowed by the import filter."""
    yield from serve(request, tmp_path_factory, "ownership", {"import_filtering_opts": web.filtering_opts})


def _owner_markers(service) -> list[str]:
    return [name for name in store_files(service.root, "tasks") if name.endswith(".owner")]


def test_a_running_import_is_claimed_once_and_released_at_the_end(service, http, web):
    image_id = create_image(service, http)
    gate = f"own-{image_id}"
    uri = web.url(f"/gated/{2 * MIB}?gate={gate}")
    assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
    assert web.wait_started(gate)
    (task,) = image_tasks(service, http, image_id)
    image = get_image(service, http, image_id)
    assert image["os_glance_import_task"] == task["id"]
    assert image["os_glance_importing_to_stores"] == service.settings.default_store
    assert f"{task['id']}.owner" in _owner_markers(service)
    web.open_gate(gate)
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id)
    assert image["status"] == "active"
    assert "os_glance_import_task" not in image
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert f"{task['id']}.owner" not in _owner_markers(service)


def test_a_refused_job_leaves_the_image_as_it_was(service, http):
    image_id = create_image(service, http)
    data = payload(1000)
    assert stage(service, http, image_id, data).status_code == 204
    stop_file = service.root / "healthcheck_disable"
    markers_before = _owner_markers(service)
    stop_file.touch()
    try:
        refused = start_import(service, http, image_id, {"name": "glance-direct"})
    finally:
        stop_file.unlink()
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    image = get_image(service, http, image_id)
    assert image["status"] == "uploading"
    assert "os_glance_import_task" not in image
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert image.get("os_glance_failed_import", "") == ""
    assert image_tasks(service, http, image_id) == []
    assert _owner_markers(service) == markers_before
    assert store_files(service.root, "staging", image_id) == [image_id]  # the staged data stays for a retry
    # Nothing was left half-owned: the same import goes through now.
    assert start_import(service, http, image_id, {"name": "glance-direct"}).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    assert get_image(service, http, image_id)["status"] == "active"
    assert store_files(service.root, "staging", image_id) == []
