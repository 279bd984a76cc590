"""CORS ([cors]) and proxy headers ([oslo_middleware] enable_proxy_headers_parsing) on the real service.

CORS sits outside auth, as in Glance's paste pipeline: a preflight needs no token, and an
error answer (a 401) still carries the CORS headers so the browser's script can read it.
Only the links glancelite makes absolute carry a scheme and host (the versions document,
the Location of a created image); ``self``, ``file``, ``schema`` and next links are
relative paths, as Glance writes them. A real browser's upload is in tests/gate/test_cors_browser.py.
"""

from __future__ import annotations

import hashlib

import pytest

from glancelite import opts
from tests.conftest import identity
from tests.support.payloads import raw_bytes
from tests.support.server import Server, free_port, write_config

HORIZON = "https://horizon.example.com"
ELSEWHERE = "https://evil.example.net"
USER = identity()


def _preflight(http, url, origin, method="PUT", headers="x-auth-token,content-type"):
    return http.options(
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )


@pytest.fixture(scope="module")
def cors_service(tmp_path_factory):
    """noauth (identity headers) with [cors] naming one origin and nothing else: Glance's defaults apply."""
    server = Server(write_config(tmp_path_factory.mktemp("cors"), {"cors": {"allowed_origin": HORIZON}})).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keystone_cors_service(tmp_path_factory):
    """flavor keystone against a keystone that does not exist: a request that reached keystone would fail."""
    keystone = f"http://127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path_factory.mktemp("cors-keystone"),
        {
            "paste_deploy": {"flavor": "keystone"},
            "keystone_authtoken": {
                "www_authenticate_uri": keystone,
                "auth_url": keystone,
                "auth_type": "password",
                "username": "glance",
                "password": "unused",
                "project_name": "service",
                "user_domain_id": "default",
                "project_domain_id": "default",
            },
            "cors": {"allowed_origin": HORIZON},
        },
    )
    server = Server(config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxied")
    server = Server(write_config(root, {"oslo_middleware": {"enable_proxy_headers_parsing": "true"}})).start()
    yield server
    server.stop()


def _new_image(service, http, headers=None) -> dict:
    resp = http.post(
        f"{service.url}/v2/images",
        json={"disk_format": "raw", "container_format": "bare", "name": "cors"},
        headers={**USER, **(headers or {})},
    )
    assert resp.status_code == 201, resp.text
    return resp


# --- CORS ------------------------------------------------------------------------------------


def test_preflight_from_the_configured_origin_is_allowed(cors_service, http):
    image_id = _new_image(cors_service, http).json()["id"]
    resp = _preflight(http, f"{cors_service.url}/v2/images/{image_id}/file", HORIZON)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == HORIZON
    assert resp.headers["Access-Control-Allow-Methods"] == "PUT"
    assert resp.headers["Access-Control-Allow-Headers"].lower() == "x-auth-token,content-type"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Access-Control-Max-Age"] == "3600"
    assert resp.headers["Vary"] == "Origin"


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_glances_default_methods_and_headers_are_allowed(cors_service, http, method):
    headers = ",".join(h.lower() for h in opts.CORS_DEFAULTS["allow_headers"])
    resp = _preflight(http, f"{cors_service.url}/v2/images", HORIZON, method, headers)
    assert resp.headers.get("Access-Control-Allow-Origin") == HORIZON
    assert resp.headers["Access-Control-Allow-Methods"] == method
    assert resp.headers["Access-Control-Allow-Headers"] == headers


def test_preflight_from_another_origin_gets_no_cors_headers(cors_service, http):
    resp = _preflight(http, f"{cors_service.url}/v2/images", ELSEWHERE, "POST")
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize(
    "method, headers",
    [("TRACE", "x-auth-token"), ("PUT", "x-auth-token,x-not-allowed")],
    ids=["method-outside-glances-defaults", "header-outside-glances-defaults"],
)
def test_preflight_for_what_is_not_allowed_gets_no_cors_headers(cors_service, http, method, headers):
    resp = _preflight(http, f"{cors_service.url}/v2/images", HORIZON, method, headers)
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_a_real_request_carries_the_cors_and_exposed_headers(cors_service, http):
    resp = http.get(f"{cors_service.url}/v2/images", headers={**USER, "Origin": HORIZON})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == HORIZON
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Access-Control-Expose-Headers"].split(",") == opts.CORS_DEFAULTS["expose_headers"]
    assert "Origin" in resp.headers["Vary"]
    # What it exposes is there to read: the request id the browser's script may log.
    assert resp.headers["X-OpenStack-Request-ID"].startswith("req-")


def test_a_request_from_another_origin_gets_no_cors_headers(cors_service, http):
    resp = http.get(f"{cors_service.url}/v2/images", headers={**USER, "Origin": ELSEWHERE})
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


def test_upload_and_download_stream_through_cors(cors_service, http):
    """The CORS layer wraps the request and response: a chunked upload and its download pass intact."""
    image_id = _new_image(cors_service, http).json()["id"]
    blocks = [raw_bytes(1 << 20) for _ in range(6)]
    put = http.put(
        f"{cors_service.url}/v2/images/{image_id}/file",
        data=iter(blocks),  # a generator: Transfer-Encoding: chunked
        headers={**USER, "Origin": HORIZON, "Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 204, put.text
    assert put.headers["Access-Control-Allow-Origin"] == HORIZON
    got = http.get(f"{cors_service.url}/v2/images/{image_id}/file", headers={**USER, "Origin": HORIZON})
    assert got.status_code == 200
    assert got.headers["Access-Control-Allow-Origin"] == HORIZON
    data = b"".join(blocks)
    assert len(got.content) == len(data)
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_preflight_is_answered_before_auth_and_a_401_is_readable(keystone_cors_service, http):
    url = f"{keystone_cors_service.url}/v2/images"
    resp = _preflight(http, url, HORIZON, "POST")
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == HORIZON
    # Without a token: the 401 (no keystone reached) still tells the browser's script it may read it.
    denied = http.get(url, headers={"Origin": HORIZON})
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == HORIZON
    assert "X-OpenStack-Request-ID" in denied.headers["Access-Control-Expose-Headers"]


def test_without_an_allowed_origin_there_is_no_cors(service, http):
    preflight = _preflight(http, f"{service.url}/v2/images", HORIZON, "POST")
    real = http.get(f"{service.url}/v2/images", headers={**USER, "Origin": HORIZON})
    assert real.status_code == 200
    for resp in (preflight, real):
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
        assert "Origin" not in resp.headers.get("Vary", "")


# --- proxy headers ---------------------------------------------------------------------------

X_FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "images.example.com"}
RFC7239 = {"Forwarded": "for=192.0.2.60;proto=https;host=glance.example.org, for=10.0.0.1"}


@pytest.mark.parametrize(
    "headers, base",
    [(X_FORWARDED, "https://images.example.com"), (RFC7239, "https://glance.example.org")],
    ids=["x-forwarded", "forwarded"],
)
def test_with_proxy_parsing_the_links_use_the_proxys_scheme_and_host(proxied_service, http, headers, base):
    versions = http.get(f"{proxied_service.url}/versions", headers=headers).json()["versions"]
    assert {link["href"] for v in versions for link in v["links"]} == {f"{base}/v2/"}
    created = _new_image(proxied_service, http, headers)
    image = created.json()
    assert created.headers["Location"] == f"{base}/v2/images/{image['id']}"
    # COMPAT: Glance writes these as paths; no scheme or host to rewrite.
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"


def test_with_proxy_parsing_a_prefix_is_kept_in_the_versions_links(proxied_service, http):
    headers = {**X_FORWARDED, "X-Forwarded-Prefix": "/image"}
    versions = http.get(f"{proxied_service.url}/versions", headers=headers).json()["versions"]
    assert versions[0]["links"][0]["href"] == "https://images.example.com/image/v2/"


def test_with_proxy_parsing_plain_requests_keep_the_services_own_url(proxied_service, http):
    versions = http.get(f"{proxied_service.url}/versions").json()["versions"]
    assert versions[0]["links"][0]["href"] == f"{proxied_service.url}/v2/"


@pytest.mark.parametrize(
    "headers",
    [
        X_FORWARDED,
        RFC7239,
        # gunicorn's own secure-scheme headers: a peer on 127.0.0.1 would be trusted by its default.
        {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"},
    ],
    ids=["x-forwarded", "forwarded", "gunicorn-secure-scheme-headers"],
)
def test_without_proxy_parsing_forwarded_headers_change_nothing(service, http, headers):
    versions = http.get(f"{service.url}/versions", headers=headers).json()["versions"]
    assert {link["href"] for v in versions for link in v["links"]} == {f"{service.url}/v2/"}
    created = _new_image(service, http, headers)
    assert created.headers["Location"] == f"{service.url}/v2/images/{created.json()['id']}"
