"""[DEFAULT] use_json on a real glancelite-api: one JSON object per line, the caller's context on
each request's lines, and the facts of every data operation as fields (store/datalog.py)."""

from __future__ import annotations

import json
import time
import uuid

import requests

from tests.conftest import identity
from tests.support.imports import MIB, OCTET, payload, stage, start_import, wait_task
from tests.support.server import Server, write_config

ALICE = identity("project-a", "reader,member", "user-a")


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


def records_of(server: Server) -> list[dict]:
    lines = server.log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(records) == len(lines) > 0
    return records


def data_lines(records: list[dict], operation: str, image_id: str) -> list[dict]:
    return [
        r
        for r in records
        if r["name"] == "glancelite.data"
        and r["extra"].get("operation") == operation
        and r["extra"].get("image_id") == image_id
    ]


def assert_caller(record: dict, rid: str) -> None:
    context = record["context"]
    assert (context["request_id"], context["user"], context["project"]) == (rid, "user-a", "project-a"), record


def assert_transfer(record: dict, *, store: str, nbytes: int | None) -> None:
    extra = record["extra"]
    assert extra["store"] == store and extra["bytes"] == nbytes and extra["outcome"] == "ok", extra
    assert isinstance(extra["duration_seconds"], float) and extra["duration_seconds"] >= 0, extra


def test_data_operations_log_their_image_store_bytes_and_duration(tmp_path):
    config = write_config(tmp_path, {"DEFAULT": {"use_json": "true", "workers": "1"}})
    server = Server(config).start()
    data = payload(3 * MIB + 5, seed=11)
    ids = {name: request_id() for name in ("create", "upload", "download", "create2", "stage", "import", "delete")}

    def as_alice(name: str) -> dict:
        return {**ALICE, "X-Openstack-Request-Id": ids[name]}

    try:
        made = requests.post(
            f"{server.url}/v2/images",
            json={"disk_format": "raw", "container_format": "bare"},
            headers=as_alice("create"),
            timeout=10,
        )
        image_id = made.json()["id"]
        put = requests.put(
            f"{server.url}/v2/images/{image_id}/file",
            data=data,
            headers={**as_alice("upload"), **OCTET, "X-Image-Meta-Store": "slow"},
            timeout=60,
        )
        assert put.status_code == 204, put.text
        got = requests.get(f"{server.url}/v2/images/{image_id}/file", headers=as_alice("download"), timeout=60)
        assert got.content == data and got.headers["x-openstack-request-id"] == ids["download"]

        # Stage and import a second image, then delete the first.
        second = requests.post(
            f"{server.url}/v2/images",
            json={"disk_format": "raw", "container_format": "bare"},
            headers=as_alice("create2"),
            timeout=10,
        ).json()["id"]
        assert stage(server, requests, second, data[:MIB], headers=as_alice("stage")).status_code == 204
        resp = start_import(server, requests, second, {"name": "glance-direct"}, headers=as_alice("import"))
        assert resp.status_code == 202, resp.text
        session = requests.Session()
        session.headers.update(ALICE)
        assert wait_task(server, session, second)["status"] == "success"
        assert (
            requests.delete(f"{server.url}/v2/images/{image_id}", headers=as_alice("delete"), timeout=10).status_code
            == 204
        )
        time.sleep(0.5)  # the download's line is written when the server closes the file it sent
    finally:
        assert server.stop() == 0
    records = records_of(server)

    (upload,) = data_lines(records, "upload", image_id)
    assert_caller(upload, ids["upload"])
    assert_transfer(upload, store="slow", nbytes=len(data))
    assert upload["message"].startswith(f"upload of image {image_id} into store slow: {len(data)} bytes in ")

    (download,) = data_lines(records, "download", image_id)
    assert_caller(download, ids["download"])
    assert_transfer(download, store="slow", nbytes=len(data))

    (staged,) = data_lines(records, "stage", second)
    assert_caller(staged, ids["stage"])
    assert_transfer(staged, store="os_glance_staging_store", nbytes=MIB)

    # The import runs in the background under the log context of the request that started it.
    imported = data_lines(records, "import", second)
    assert {r["extra"]["store"] for r in imported} == {"fast", "os_glance_staging_store"}, imported
    for record in imported:
        assert_caller(record, ids["import"])
        assert_transfer(record, store=record["extra"]["store"], nbytes=MIB)

    (deleted,) = data_lines(records, "delete", image_id)
    assert_caller(deleted, ids["delete"])
    assert_transfer(deleted, store="slow", nbytes=None)

    # Access lines: the caller's context, and Glance's request id header at the end of the message.
    access = [r for r in records if r["name"] == "gunicorn.access" and r["context"].get("request_id") == ids["upload"]]
    assert len(access) == 1
    assert_caller(access[0], ids["upload"])
    assert access[0]["message"].endswith(f"request_id: {ids['upload']}")
    # Every line written inside a request carries its id, user and project.
    for rid in ids.values():
        inside = [r for r in records if r["context"].get("request_id") == rid]
        assert inside and all(
            r["context"]["user"] == "user-a" and r["context"]["project"] == "project-a" for r in inside
        )
