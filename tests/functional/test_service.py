"""The service itself: versions, healthcheck, request ids, error shape, shutdown."""

from __future__ import annotations

from tests.support.server import Server, write_config


def test_root_answers_300_with_versions(service, http):
    resp = http.get(service.url + "/")
    assert resp.status_code == 300
    ids = [v["id"] for v in resp.json()["versions"]]
    assert "v2.17" in ids and "v2.0" in ids
    current = [v["id"] for v in resp.json()["versions"] if v["status"] == "CURRENT"]
    assert current == ["v2.17"]
    # Multi-store adds v2.8 ... v2.13.
    assert "v2.13" in ids


def test_versions_answers_200_with_absolute_links(service, http):
    resp = http.get(service.url + "/versions")
    assert resp.status_code == 200
    assert resp.json()["versions"][0]["links"][0]["href"] == service.url + "/v2/"


def test_unknown_version_answers_300(service, http):
    assert http.get(service.url + "/v1/images").status_code == 300


def test_every_response_has_a_request_id(service, http):
    for path in ("/", "/versions", "/v2/no-such-thing"):
        rid = http.get(service.url + path).headers["x-openstack-request-id"]
        assert rid.startswith("req-") and len(rid) == 40


def test_incoming_request_id_is_reused(service, http):
    resp = http.get(service.url + "/versions", headers={"X-Openstack-Request-Id": "req-abc"})
    assert resp.headers["x-openstack-request-id"] == "req-abc"
    too_long = http.get(service.url + "/versions", headers={"X-Openstack-Request-Id": "x" * 65})
    assert too_long.status_code == 431


def test_error_body_is_negotiated_like_webob(service, http):
    url = service.url + "/v2/no-such-thing"
    as_json = http.get(url, headers={"Accept": "application/json"})
    assert as_json.status_code == 404
    body = as_json.json()
    assert set(body) == {"message", "code", "title"}
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found"
    assert "<br /><br />" in body["message"]
    as_html = http.get(url, headers={"Accept": "*/*"})
    assert as_html.headers["Content-Type"].startswith("text/html")
    assert "<h1>404 Not Found</h1>" in as_html.text
    plain = http.get(url, headers={"Accept": "image/png"})
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert plain.text.startswith("404 Not Found\n\n")


def test_healthcheck_follows_the_disable_file(service, http):
    disable = service.config.parent / "healthcheck_disable"
    resp = http.get(service.url + "/healthcheck")
    assert (resp.status_code, resp.text) == (200, "OK")
    disable.touch()
    try:
        resp = http.get(service.url + "/healthcheck")
        assert (resp.status_code, resp.text) == (503, "DISABLED BY FILE")
    finally:
        disable.unlink()
    assert http.get(service.url + "/healthcheck").status_code == 200


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
