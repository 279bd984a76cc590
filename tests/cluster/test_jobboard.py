"""Imports on a taskflow job board shared by three nodes: spread, node loss, draining, Redis restart.

The cases run in order on one cluster (module fixtures): each leaves every image settled.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import identity
from tests.faults.conftest import assert_audit_clean
from tests.support.cluster import Cluster, wait_images
from tests.support.imports import MIB, create_image, digests, payload, stage, start_import

ALICE = identity("project-alice", "reader,member", "alice")
ADMIN = identity("project-alice", "admin,reader,member", "alice-admin")  # copy-image is admin-only by default
SIZE = MIB + 4096  # small images: the coordination, not the copying, is what is tested
# Every store the audit covers: fast, slow, staging and the node's tasks store.
STORES = 4


def _tasks(http, node, image_id) -> list[dict]:
    return http.get(f"{node.url}/v2/images/{image_id}/tasks", headers=ALICE, timeout=10).json()["tasks"]


def _accepted(resp) -> None:
    assert resp.status_code == 202, resp.text


def _check_active(http, node, images: dict, expected: dict[str, bytes]) -> None:
    for image_id, data in expected.items():
        image = images[image_id]
        md5, sha = digests(data)
        assert image["status"] == "active", (image, _tasks(http, node, image_id))
        assert (image["size"], image["checksum"], image["os_hash_value"]) == (len(data), md5, sha)


def test_thirty_imports_survive_the_loss_of_a_node(cluster, http, web):
    nodes = cluster.nodes
    victim, survivors = nodes[0], nodes[1:]
    expected: dict[str, bytes] = {}

    # 10 glance-direct: staged through one node, imported through the next (shared staging: no forwarding).
    direct = []
    for i in range(10):
        data = payload(SIZE, seed=100 + i)
        image_id = create_image(nodes[i % 3], http, ALICE, disk_format="raw", container_format="bare")
        assert stage(nodes[i % 3], http, image_id, data, ALICE).status_code == 204
        _accepted(start_import(nodes[(i + 1) % 3], http, image_id, {"name": "glance-direct"}, ALICE, stores=["fast"]))
        direct.append(image_id)
        expected[image_id] = data

    # 10 web-download held after their first MiB, so they are mid-import when a node dies.
    gated = []
    for i in range(10):
        data = payload(2 * SIZE, seed=200 + i)
        image_id = create_image(nodes[i % 3], http, ALICE, disk_format="raw", container_format="bare")
        uri = web.url(f"/gated/{len(data)}?seed={200 + i}&gate=loss-{i}")
        _accepted(start_import(nodes[i % 3], http, image_id, {"name": "web-download", "uri": uri}, ALICE))
        gated.append(image_id)
        expected[image_id] = data

    # 10 copy-image of the glance-direct ones into the other store, once they are active.
    _check_active(http, nodes[1], wait_images(http, nodes[1].url, direct, ALICE, 60), {i: expected[i] for i in direct})
    for i, image_id in enumerate(direct):
        _accepted(start_import(nodes[i % 3], http, image_id, {"name": "copy-image"}, ADMIN, stores=["slow"]))

    for i in range(10):
        assert web.wait_started(f"loss-{i}", 30), f"web-download {i} never started"
    running_on_victim = set(cluster.claims_in_log(victim))
    killed_at = time.monotonic()
    cluster.kill(victim)
    for i in range(10):
        web.open_gate(f"loss-{i}")

    images = wait_images(http, survivors[0].url, list(expected), ALICE, 90)
    settled_in = time.monotonic() - killed_at
    _check_active(http, survivors[0], images, expected)
    for image_id in direct:
        assert sorted(images[image_id]["stores"].split(",")) == ["fast", "slow"], images[image_id]
    for image_id in expected:
        tasks = _tasks(http, survivors[0], image_id)
        assert all(t["status"] == "success" for t in tasks), [(t["id"], t["status"], t["message"]) for t in tasks]
    # The victim had claimed jobs (every fourth gated import was posted to it) and the survivors took them over.
    taken_over = set().union(*(cluster.claims_in_log(n) for n in survivors)) & running_on_victim
    assert taken_over, "no job of the killed node was claimed by another"
    assert settled_in < 60, f"the dead node's jobs took {settled_in:.0f} s to finish elsewhere"

    # The killed node comes back: its start-up removes its dead working files; then every store is clean.
    victim.start(deadline=60, sync=False)
    assert_audit_clean(survivors[0].config, stores=STORES)
    assert_audit_clean(victim.config, stores=STORES)


def test_a_draining_node_claims_nothing_new(cluster, http, web):
    nodes = cluster.nodes
    draining = nodes[2]
    before = len(cluster.claims_in_log(draining))
    stop_file = draining.root / "healthcheck_disable"
    stop_file.touch()
    try:
        expected = {}
        for i in range(6):
            data = payload(SIZE, seed=300 + i)
            node = nodes[i % 3]  # every third goes to the draining node: it posts the job for others
            image_id = create_image(node, http, ALICE, disk_format="raw", container_format="bare")
            uri = web.url(f"/data/{len(data)}?seed={300 + i}")
            _accepted(start_import(node, http, image_id, {"name": "web-download", "uri": uri}, ALICE))
            expected[image_id] = data
        # A legacy POST /v2/tasks import is a job on the board as well.
        legacy = payload(SIZE, seed=310)
        body = {
            "type": "import",
            "input": {
                "import_from": web.url(f"/data/{len(legacy)}?seed=310"),
                "import_from_format": "raw",
                "image_properties": {"name": "legacy", "container_format": "bare"},
            },
        }
        resp = http.post(f"{draining.url}/v2/tasks", json=body, headers=ADMIN)
        assert resp.status_code == 201, resp.text
        expected[resp.json()["image_id"]] = legacy
        images = wait_images(http, nodes[0].url, list(expected), ADMIN, 60)
        _check_active(http, nodes[0], images, expected)
        assert len(cluster.claims_in_log(draining)) == before
        assert resp.json()["id"] in set().union(*(cluster.claims_in_log(n) for n in nodes[:2]))
        assert_audit_clean(draining.config, stores=STORES)  # nothing left in its own tasks store either
        assert http.get(f"{draining.url}/healthcheck").status_code == 503
    finally:
        stop_file.unlink()


def test_redis_restart_refuses_then_resumes(cluster, http, redis, web):
    node = cluster.nodes[1]
    data = payload(2 * SIZE, seed=400)
    running = create_image(node, http, ALICE, disk_format="raw", container_format="bare")
    uri = web.url(f"/gated/{len(data)}?seed=400&gate=redis")
    _accepted(start_import(node, http, running, {"name": "web-download", "uri": uri}, ALICE))
    assert web.wait_started("redis", 30)

    redis.stop(keep_data=True)
    try:
        waiting = create_image(node, http, ALICE, disk_format="raw", container_format="bare")
        refused = start_import(node, http, waiting, {"name": "web-download", "uri": web.url("/data/10")}, ALICE)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert "job board" in refused.json()["message"]
        assert "redis" not in refused.text.lower()  # no driver text
        health = http.get(f"{node.url}/healthcheck/detailed").json()
        assert health["job_board"]["available"] is False
        web.open_gate("redis")  # the running flow goes on without Redis (its state is in the database)
        time.sleep(3)
    finally:
        redis.start(keep_data=True)

    images = wait_images(http, node.url, [running], ALICE, 60)
    _check_active(http, node, images, {running: data})
    # The refused import left the image as it was: accepted now that the board is back.
    retry_data = payload(SIZE, seed=401)
    uri = web.url(f"/data/{len(retry_data)}?seed=401")
    _accepted(start_import(node, http, waiting, {"name": "web-download", "uri": uri}, ALICE))
    _check_active(http, node, wait_images(http, node.url, [waiting], ALICE, 60), {waiting: retry_data})
    assert http.get(f"{node.url}/healthcheck/detailed").json()["job_board"]["available"] is True
    assert_audit_clean(node.config, stores=STORES)


def test_node_local_staging_on_a_dead_node_fails_cleanly(request, tmp_path_factory, redis, web, http):
    """Without shared staging: the stage host runs the import; when it dies mid-import another
    node claims the job, cannot read the data and fails it saying where the data was."""
    pg = request.getfixturevalue("postgres_cluster")
    database = pg.create_database()
    local = Cluster(
        tmp_path_factory.mktemp("local-staging"),
        database=database,
        redis_url=redis.url,
        count=2,
        shared_staging=False,
        # Another service on the same Redis (the module's cluster is still up): a board of its own.
        extra={"taskflow_jobboard": {"board_name": "local-staging"}},
    )
    try:
        stage_host, other = local.start().nodes
        data = payload(48 * MIB, seed=500)  # big enough to be mid-copy a moment after the 202
        image_id = create_image(stage_host, http, ALICE, disk_format="raw", container_format="bare")
        assert stage(stage_host, http, image_id, data, ALICE).status_code == 204
        # Sent to the other node: forwarded to the stage host, which posts and claims the job.
        _accepted(start_import(other, http, image_id, {"name": "glance-direct"}, ALICE))
        local.kill(stage_host)

        images = wait_images(http, other.url, [image_id], ALICE, 60)
        image, tasks = images[image_id], _tasks(http, other, image_id)
        if image["status"] == "active":  # the stage host finished before it was killed: nothing to resume
            pytest.skip("the import finished before its node was killed; nothing to take over")
        assert image["status"] == "queued", image
        assert [t["status"] for t in tasks] == ["failure"], tasks
        assert "staged" in tasks[0]["message"] and "another node" in tasks[0]["message"], tasks[0]
        assert not image.get("os_glance_import_task")  # the lock is released
        assert tasks[0]["id"] in local.claims_in_log(other)
        # What the other node sees is clean (the dead node's own staging is its own).
        assert_audit_clean(other.config, stores=STORES)
    finally:
        local.stop()
        pg.drop_database(database)
