"""The service process: a clean stop on SIGTERM (its behaviour over HTTP is tests/api/test_service.py)."""

from __future__ import annotations

from tests.support.server import Server, write_config


def test_sigterm_stops_the_service_cleanly(tmp_path, http):
    server = Server(write_config(tmp_path)).start()
    assert http.get(server.url + "/versions").status_code == 200
    assert server.stop() == 0


def test_healthcheck_answers_ok_without_a_disable_file(tmp_path, http):
    """Glance's pipeline always has a disable_by_file backend; unconfigured, the answer is still "OK"."""
    server = Server(write_config(tmp_path, {"healthcheck": {"disable_by_file_path": None}})).start()
    try:
        resp = http.get(server.url + "/healthcheck")
        assert (resp.status_code, resp.text) == (200, "OK")
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert http.head(server.url + "/healthcheck").status_code == 204
    finally:
        assert server.stop() == 0
