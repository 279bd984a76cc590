"""Job board mode's pieces on plain objects: its options, a plan through a job's details, the
Redis URL, and the detailed health check's entry. tests/cluster runs the whole on real servers."""

from __future__ import annotations

import json
import socket

import pytest

from glancelite import config, errors
from glancelite.context import RequestContext
from glancelite.errors import ConfigError
from glancelite.services.health import HealthService
from glancelite.tasks import jobboard
from glancelite.tasks.plan import ImportPlan, Method, RemoteImage
from tests.support.server import write_config


def test_job_board_is_off_by_default(tmp_path):
    settings = config.load([str(write_config(tmp_path))]).settings
    assert settings.jobboard.enabled is False
    assert settings.jobboard.shared_staging is False


def test_job_board_options_load(tmp_path):
    path = write_config(
        tmp_path,
        {"taskflow_jobboard": {"backend_url": "redis://:s3cret@10.0.0.5:6390/2", "claim_expiry": "12"}},
    )
    board = config.load([str(path)]).settings.jobboard
    assert board.enabled is True
    assert (board.board_name, board.claim_expiry) == ("glancelite-imports", 12)
    assert board.conductor_name == socket.gethostname()
    assert board.persistence_connection is None  # [database] connection is used


@pytest.mark.parametrize(
    "values, option, fragment",
    [
        ({"backend_url": "zookeeper://127.0.0.1:2181"}, "backend_url", "redis://"),
        ({"backend_url": "redis://x", "claim_expiry": "2"}, "claim_expiry", ""),
    ],
)
def test_bad_job_board_options_name_the_option(tmp_path, values, option, fragment):
    with pytest.raises(ConfigError) as info:
        config.load([str(write_config(tmp_path, {"taskflow_jobboard": values}))])
    assert (info.value.group, info.value.option) == ("taskflow_jobboard", option)
    assert fragment in str(info.value)


def test_a_plan_goes_through_a_job_without_the_callers_credentials():
    caller = RequestContext(project_id="p", user_id="u", roles=("member",), auth_token="token-xyz")
    plan = ImportPlan(
        task_id="t-1",
        image_id="i-1",
        method=Method.GLANCE_DOWNLOAD,
        stores=("fast", "slow"),
        all_stores_must_succeed=False,
        remote=RemoteImage(image_id="r-1", region="R2", credentials={"X-Auth-Token": "token-xyz"}),
        owner="p",
        request_id="req-1",
        roles=("member",),
        import_plugins=False,
        caller=caller,
    )
    details = jobboard.plan_details(plan)
    text = json.dumps(details)  # the job's details are JSON in Redis and the flow detail
    assert "token-xyz" not in text
    back = jobboard.plan_from_details(json.loads(text))
    assert back == plan  # credentials and caller do not take part in equality
    assert back.caller is None and dict(back.remote.credentials) == {}
    assert (back.method, back.stores, back.import_plugins) == (Method.GLANCE_DOWNLOAD, ("fast", "slow"), False)


def test_redis_urls():
    conf = jobboard.redis_conf("redis://:p%40ss@10.1.2.3:6390/3", "board")
    assert (conf["host"], conf["port"], conf["db"], conf["password"], conf["ssl"]) == (
        "10.1.2.3",
        6390,
        3,
        "p@ss",
        False,
    )
    assert conf["namespace"] == "board"
    assert jobboard.redis_conf("rediss://cache", "b")["ssl"] is True
    assert jobboard.redis_conf("unix:///run/redis.sock", "b")["unix_socket_path"] == "/run/redis.sock"


class _NoStores:
    def all_ids(self):
        return []


def _raise_unavailable():
    raise errors.Unavailable("down")


@pytest.mark.parametrize("ping, available", [(lambda: None, True), (_raise_unavailable, False)])
def test_detailed_health_reports_the_job_board_without_deciding_availability(ping, available):
    health = HealthService(ping_database=lambda: None, stores=_NoStores(), stop_file=None, ping_job_board=ping)
    report = health.report().as_dict()
    assert report["job_board"]["available"] is available
    assert report["job_board"]["latency_ms"] >= 0
    assert report["available"] is True  # the node still serves images while the board is away


def test_detailed_health_without_a_job_board_has_no_entry():
    report = HealthService(ping_database=lambda: None, stores=_NoStores(), stop_file=None).report().as_dict()
    assert "job_board" not in report
