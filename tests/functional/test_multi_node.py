"""Two glancelite-api nodes sharing one database and the same image stores, each with its own staging.

Each node records its ``worker_self_reference_url`` in ``os_glance_stage_host``
when it stages data; a glance-direct import or a delete that reaches the other
node is forwarded to the stage host, as Glance does (reference/glance-api.md
5.1 item 10). GLANCELITE_TEST_DATABASE=postgresql shares a PostgreSQL database
instead of a SQLite file.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import identity
from tests.support import postgres
from tests.support.imports import (
    MIB,
    create_image,
    digests,
    get_image,
    image_tasks,
    payload,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, free_port, write_config

ALICE = identity("project-alice", "reader,member", "alice")
ALICE_READER = identity("project-alice", "reader", "alice-reader")
BOB = identity("project-bob", "reader,member", "bob")


def _node(shared, name: str, database: str) -> Server:
    root = shared / name
    port = free_port()
    config = write_config(
        root,
        {
            "DEFAULT": {"bind_port": str(port), "worker_self_reference_url": f"http://127.0.0.1:{port}"},
            # The image stores are shared; staging and the tasks store belong to the node.
            "fast": {"filesystem_store_datadir": str(shared / "fast")},
            "slow": {"filesystem_store_datadir": str(shared / "slow")},
        },
        database=database,
    )
    server = Server(config)
    server.root = root
    return server


@pytest.fixture(scope="module")
def nodes(request, tmp_path_factory):
    shared = tmp_path_factory.mktemp("multi_node")
    database = f"sqlite:///{shared / 'glance.sqlite'}"
    cluster = None
    if postgres.wanted_backend() == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = cluster.create_database()
    a, b = _node(shared, "a", database), _node(shared, "b", database)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()
        if cluster is not None:
            cluster.drop_database(database)


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


def staged_on(node, http, data, headers=ALICE) -> str:
    image_id = create_image(node, http, headers)
    resp = stage(node, http, image_id, data, headers)
    assert resp.status_code == 204, resp.text
    assert store_files(node.root, "staging", image_id) == [image_id]
    return image_id


def test_each_node_records_itself_as_stage_host(nodes, http):
    a, b = nodes
    for node in (a, b):
        image_id = staged_on(node, http, b"x" * 10)
        # os_glance_stage_host is hidden from the API; the other node's behaviour shows it.
        assert "os_glance_stage_host" not in get_image(node, http, image_id, ALICE)
        assert http.delete(f"{node.url}/v2/images/{image_id}", headers=ALICE).status_code == 204


def test_import_on_other_node_is_run_by_the_stage_host(nodes, http):
    a, b = nodes
    data = payload(2 * MIB + 3, seed=11)
    image_id = staged_on(a, http, data)
    assert store_files(b.root, "staging", image_id) == []

    resp = start_import(b, http, image_id, {"name": "glance-direct"}, ALICE, stores=["slow"])
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    task = wait_task(b, http, image_id)
    assert task["status"] == "success", task
    # A ran it for alice (her forwarded identity), under the id the client got from B.
    assert task["owner"] == "project-alice"
    assert task["request_id"] == resp.headers["x-openstack-request-id"]

    image = get_image(b, http, image_id, ALICE)
    md5, sha = digests(data)
    assert image["status"] == "active"
    assert (image["size"], image["checksum"], image["os_hash_value"]) == (len(data), md5, sha)
    assert image["stores"] == "slow"
    for node in (a, b):
        assert http.get(f"{node.url}/v2/images/{image_id}/file", headers=ALICE).content == data
    assert store_files(a.root, "staging", image_id) == []


def test_import_on_the_stage_host_itself_is_not_forwarded(nodes, http):
    a, b = nodes
    data = payload(MIB, seed=12)
    image_id = staged_on(b, http, data)
    b.stop()  # were the request forwarded anywhere, it could only go to B
    try:
        image_id_a = staged_on(a, http, data)
        resp = start_import(a, http, image_id_a, {"name": "glance-direct"}, ALICE)
        assert resp.status_code == 202, resp.text
        assert wait_task(a, http, image_id_a)["status"] == "success"
        assert get_image(a, http, image_id_a, ALICE)["status"] == "active"
        assert store_files(a.root, "staging", image_id_a) == []
    finally:
        b.start()
    resp = start_import(b, http, image_id, {"name": "glance-direct"}, ALICE)
    assert resp.status_code == 202, resp.text
    assert wait_task(b, http, image_id)["status"] == "success"
    assert store_files(b.root, "staging", image_id) == []


def test_delete_on_other_node_removes_the_staged_data(nodes, http):
    a, b = nodes
    image_id = staged_on(a, http, b"staged on a" * 1000)
    resp = http.delete(f"{b.url}/v2/images/{image_id}", headers=ALICE)
    assert resp.status_code == 204, resp.text
    for node in (a, b):
        assert http.get(f"{node.url}/v2/images/{image_id}", headers=ALICE).status_code == 404
    assert store_files(a.root, "staging", image_id) == []


def test_remote_refusal_is_passed_on(nodes, http):
    """The stage host's own answer comes back with its status, message and Retry-After: A is draining."""
    a, b = nodes
    image_id = staged_on(a, http, b"staged on a draining node")
    stop_file = a.root / "healthcheck_disable"
    stop_file.touch()
    try:
        resp = start_import(b, http, image_id, {"name": "glance-direct"}, ALICE)
    finally:
        stop_file.unlink()
    assert resp.status_code == 503, resp.text
    assert resp.json()["code"] == "503 Service Unavailable"
    assert str(stop_file) in resp.json()["message"]  # A's words, not B's
    assert resp.headers["Retry-After"]
    assert get_image(b, http, image_id, ALICE)["status"] == "uploading"
    assert image_tasks(b, http, image_id, ALICE) == []
    assert http.delete(f"{b.url}/v2/images/{image_id}", headers=ALICE).status_code == 204
    assert store_files(a.root, "staging", image_id) == []


def test_stage_host_down(nodes, http):
    """Local checks first; then Glance's 504 "Stage host is unavailable", fast; the staged data stays on A."""
    a, b = nodes
    data = payload(MIB, seed=13)
    image_id = staged_on(a, http, data)
    kept = staged_on(a, http, data)
    a.stop()
    try:
        # Validation and policy happen here before anything is forwarded.
        assert start_import(b, http, image_id, {}, ALICE).status_code == 400
        assert start_import(b, http, image_id, {"name": "glance-direct"}, BOB).status_code == 404
        assert start_import(b, http, image_id, {"name": "glance-direct"}, ALICE_READER).status_code == 403
        resp = start_import(b, http, image_id, {"name": "glance-direct"}, ALICE, stores=["nowhere"])
        assert resp.status_code == 409, resp.text

        started = time.monotonic()
        resp = start_import(b, http, image_id, {"name": "glance-direct"}, ALICE)
        elapsed = time.monotonic() - started
        assert resp.status_code == 504, resp.text
        assert elapsed < 5, elapsed
        assert resp.json() == {
            "message": "Stage host is unavailable<br /><br />\n\n",
            "code": "504 Gateway Timeout",
            "title": "Gateway Timeout",
        }
        assert resp.headers["x-openstack-request-id"].startswith("req-")
        image = get_image(b, http, image_id, ALICE)
        assert image["status"] == "uploading" and "os_glance_import_task" not in image
        assert image_tasks(b, http, image_id, ALICE) == []
        assert store_files(a.root, "staging", image_id) == [image_id]
        assert (a.root / "staging" / image_id).read_bytes() == data

        # A delete still succeeds (on B); the stage host's copy is left behind, as in Glance.
        assert http.delete(f"{b.url}/v2/images/{kept}", headers=ALICE_READER).status_code == 403
        assert http.delete(f"{b.url}/v2/images/{kept}", headers=ALICE).status_code == 204
        assert http.get(f"{b.url}/v2/images/{kept}", headers=ALICE).status_code == 404
        assert store_files(a.root, "staging", kept) == [kept]
    finally:
        a.start()
    # Back up, A imports what it kept staged.
    resp = start_import(b, http, image_id, {"name": "glance-direct"}, ALICE)
    assert resp.status_code == 202, resp.text
    assert wait_task(b, http, image_id)["status"] == "success"
    assert http.get(f"{b.url}/v2/images/{image_id}/file", headers=ALICE).content == data
