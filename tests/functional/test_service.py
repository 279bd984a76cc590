"""The service process: a clean stop on SIGTERM (its behaviour over HTTP is tests/api/test_service.py)."""

from __future__ import annotations

from tests.support.server import Server, write_config


def test_sigterm_stops_the_service_cleanly(tmp_path, http):
    server = Server(write_config(tmp_path)).start()
    assert http.get(server.url + "/versions").status_code == 200
    assert server.stop() == 0
