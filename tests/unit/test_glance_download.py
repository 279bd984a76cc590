"""glance-download's pieces: the catalog lookup, the properties copied, the catalog header, credentials."""

from __future__ import annotations

import http.server
import json
import threading

import falcon.testing
import pytest
from keystonemiddleware.auth_token import _request as ksm_request

from glancelite import errors, uri_filter
from glancelite.api.middleware import service_catalog
from glancelite.context import RequestContext
from glancelite.settings import ImportFilter
from glancelite.tasks.glance_download import RemoteGlanceError, find_endpoint, properties_to_copy
from glancelite.tasks.plan import RemoteImage

V3_CATALOG = [
    {
        "type": "identity",
        "name": "keystone",
        "endpoints": [{"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://ks"}],
    },
    {
        "type": "image",
        "name": "glance",
        "endpoints": [
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://one-pub:9292/"},
            {"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "http://one-int"},
            {"interface": "public", "region": "RegionTwo", "region_id": "RegionTwo", "url": "http://two/image"},
        ],
    },
]
# What keystonemiddleware puts in X-Service-Catalog for a v3 token: its own conversion.
V2_CATALOG = ksm_request._normalize_catalog(V3_CATALOG)


@pytest.mark.parametrize("catalog", [V2_CATALOG, V3_CATALOG], ids=["v2-header", "v3-token"])
def test_find_endpoint_by_region_and_interface(catalog):
    assert find_endpoint(catalog, "RegionOne", "public") == "http://one-pub:9292"
    assert find_endpoint(catalog, "regionone", "internal") == "http://one-int"
    assert find_endpoint(catalog, "REGIONTWO", "public") == "http://two/image"


@pytest.mark.parametrize("catalog", [V2_CATALOG, V3_CATALOG], ids=["v2-header", "v3-token"])
@pytest.mark.parametrize(
    "region, interface", [("RegionTwo", "internal"), ("RegionThree", "public"), ("RegionOne", "not an interface")]
)
def test_find_endpoint_refuses_what_the_catalog_lacks(catalog, region, interface):
    with pytest.raises(RemoteGlanceError, match=f"{interface} glance endpoint not found for region {region}"):
        find_endpoint(catalog, region, interface)


def test_find_endpoint_ignores_other_services_and_junk():
    catalog = [
        "junk",
        {"type": "identity", "endpoints": [{"region": "R", "publicURL": "http://ks"}]},
        {"type": "image", "endpoints": ["junk", {"region": "R"}, {"region": "R", "publicURL": "http://img"}]},
    ]
    assert find_endpoint(catalog, "R", "public") == "http://img"
    for empty in ((), None, [{"type": "image"}]):
        with pytest.raises(RemoteGlanceError):
            find_endpoint(empty, "R", "public")


def test_properties_to_copy_takes_prefixed_properties_only():
    remote = {
        "id": "x",
        "status": "active",
        "size": 5,
        "os_hidden": False,
        "os_hash_algo": "sha512",
        "hw_cpu_cores": "5",
        "hw_machine_type": "q35",
        "trait:STORAGE_DISK_SSD": "required",
        "os_distro": "rhel",
        "os_type": "linux",
        "os_glance_importing_to_stores": "fast",
        "speed": "88mph",
        "stores": "fast",
    }
    prefixes = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
    assert properties_to_copy(remote, prefixes) == {
        "hw_cpu_cores": "5",
        "hw_machine_type": "q35",
        "trait:STORAGE_DISK_SSD": "required",
        "os_distro": "rhel",
        "os_type": "linux",
    }
    # Even an operator's "os_" prefix never brings Glance's bookkeeping or image attributes.
    assert properties_to_copy(remote, ("os_",)) == {"os_distro": "rhel", "os_type": "linux"}
    assert properties_to_copy(remote, ()) == {}


def test_service_catalog_header():
    assert service_catalog(falcon.testing.create_req()) == ()
    req = falcon.testing.create_req(headers={"X-Service-Catalog": json.dumps(V2_CATALOG)})
    assert service_catalog(req) == tuple(V2_CATALOG)
    for bad in ("{not json", '{"type": "image"}'):
        req = falcon.testing.create_req(headers={"X-Service-Catalog": bad})
        with pytest.raises(errors.GlanceliteError, match="Invalid service catalog json"):
            service_catalog(req)


def test_credentials_stay_out_of_reprs():
    context = RequestContext(project_id="p", auth_token="secret-token", service_catalog=tuple(V2_CATALOG))
    remote = RemoteImage(
        "id", "RegionOne", credentials=context.credentials(identity=True), service_catalog=tuple(V2_CATALOG)
    )
    for text in (repr(context), repr(remote)):
        assert "secret-token" not in text and "one-pub" not in text


@pytest.fixture(scope="module")
def header_echo():
    """Two 127.0.0.1 servers: /echo records the X-Auth-Token it got; /here redirects to the same
    server's /echo, /elsewhere to the other server's (another origin: another port)."""
    seen: list[str | None] = []
    servers: list[http.server.ThreadingHTTPServer] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            other = next(s for s in servers if s is not self.server).server_address[1]
            target = {"/here": "/echo", "/elsewhere": f"http://127.0.0.1:{other}/echo"}.get(self.path)
            if target:
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
                return
            seen.append(self.headers.get("X-Auth-Token"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    for _ in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [s.server_address[1] for s in servers], seen
    for server in servers:
        server.shutdown()
        server.server_close()


def test_open_checked_sends_credentials_only_to_the_origin(header_echo):
    ports, seen = header_echo
    flt = ImportFilter(allowed_hosts=("127.0.0.1",), allowed_ports=tuple(ports))
    for path in ("/echo", "/here", "/elsewhere"):
        resp = uri_filter.open_checked(f"http://127.0.0.1:{ports[0]}{path}", flt, headers={"X-Auth-Token": "tok"})
        assert resp.read() == b"ok"
        resp.close()
    assert seen == ["tok", "tok", None]
