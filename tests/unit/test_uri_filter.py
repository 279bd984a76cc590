"""web-download URI filtering: Glance's lists plus refusal of internal addresses."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from glancelite import uri_filter
from glancelite.settings import ImportFilter

DEFAULT = ImportFilter()


def public_resolver(address: str = "93.184.216.34"):
    def resolve(host, port, type=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


@pytest.mark.parametrize(
    "uri",
    ["http://example.org/img", "https://example.org/img", "http://example.org:80/x", "https://example.org:443/x"],
)
def test_glance_defaults_accept_http_and_https_on_standard_ports(uri):
    checked = uri_filter.check(uri, DEFAULT, resolve=public_resolver())
    assert checked.host == "example.org"
    assert checked.address == "93.184.216.34"


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://example.org/img",  # scheme not allowed
        "file:///etc/passwd",  # no host, not http
        "http:///img",  # no host
        "http://example.org:8080/img",  # port not in [80, 443]
        "example.org/img",  # no scheme
        "http://example.org:99999/",  # invalid port
    ],
)
def test_glance_defaults_refuse(uri):
    with pytest.raises(uri_filter.RefusedURI) as exc:
        uri_filter.check(uri, DEFAULT, resolve=public_resolver())
    assert "does not pass filtering" in exc.value.message


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data",  # link-local metadata service
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_internal_ip_literals_refused_by_default(uri):
    with pytest.raises(uri_filter.RefusedURI, match="internal address"):
        uri_filter.check(uri, DEFAULT)


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1"])
def test_encoded_ip_forms_refused(host):
    with pytest.raises(uri_filter.RefusedURI):
        uri_filter.check(f"http://{host}/", DEFAULT, resolve=public_resolver())


def test_hostname_resolving_to_internal_address_refused():
    with pytest.raises(uri_filter.RefusedURI, match="internal address"):
        uri_filter.check("http://innocent.example/", DEFAULT, resolve=public_resolver("10.0.0.7"))


def test_explicitly_allowed_host_may_be_internal():
    flt = ImportFilter(allowed_hosts=("127.0.0.1",), allowed_ports=(8000,))
    checked = uri_filter.check("http://127.0.0.1:8000/x", flt)
    assert checked.explicitly_allowed and checked.address == "127.0.0.1"
    # Only the allow list counts once it is set.
    with pytest.raises(uri_filter.RefusedURI):
        uri_filter.check("http://example.org:8000/x", flt, resolve=public_resolver())


def test_allow_list_wins_over_deny_list():
    flt = ImportFilter(allowed_schemes=("https",), disallowed_schemes=("https",))
    uri_filter.check("https://example.org/", flt, resolve=public_resolver())
    with pytest.raises(uri_filter.RefusedURI):
        uri_filter.check("http://example.org/", flt, resolve=public_resolver())


def test_deny_lists_apply_without_allow_lists():
    flt = ImportFilter(allowed_ports=(), disallowed_ports=(8443,), disallowed_hosts=("bad.example",))
    uri_filter.check("http://example.org:8080/", flt, resolve=public_resolver())
    with pytest.raises(uri_filter.RefusedURI):
        uri_filter.check("http://example.org:8443/", flt, resolve=public_resolver())
    with pytest.raises(uri_filter.RefusedURI):
        uri_filter.check("http://bad.example/", flt, resolve=public_resolver())


def test_unresolvable_host_refused():
    def fail(host, port, type=0):
        raise socket.gaierror("no such host")

    with pytest.raises(uri_filter.RefusedURI, match="cannot resolve"):
        uri_filter.check("http://nowhere.invalid/", DEFAULT, resolve=fail)


@pytest.fixture(scope="module")
def local_http():
    """127.0.0.1 server: /data answers bytes, /redirect-ok -> /data, /redirect-bad -> 127.0.0.2."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            port = self.server.server_address[1]
            if self.path == "/data":
                body = b"x" * 1000
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/redirect-ok":
                self.send_response(302)
                self.send_header("Location", "/data")
                self.end_headers()
            elif self.path == "/redirect-bad":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.2:{port}/data")
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_open_checked_follows_allowed_redirect(local_http):
    flt = ImportFilter(allowed_hosts=("127.0.0.1",), allowed_ports=(local_http,))
    resp = uri_filter.open_checked(f"http://127.0.0.1:{local_http}/redirect-ok", flt)
    try:
        assert resp.read() == b"x" * 1000
    finally:
        resp.close()


def test_open_checked_rechecks_every_redirect(local_http):
    flt = ImportFilter(allowed_hosts=("127.0.0.1",), allowed_ports=(local_http,))
    with pytest.raises(uri_filter.RefusedURI, match="Redirect to disallowed URL"):
        uri_filter.open_checked(f"http://127.0.0.1:{local_http}/redirect-bad", flt)


def test_open_checked_refuses_loopback_without_allow(local_http):
    flt = ImportFilter(allowed_ports=(local_http,))
    with pytest.raises(uri_filter.RefusedURI):
        uri_filter.open_checked(f"http://127.0.0.1:{local_http}/data", flt)


def test_open_checked_error_status(local_http):
    flt = ImportFilter(allowed_hosts=("127.0.0.1",), allowed_ports=(local_http,))
    with pytest.raises(uri_filter.errors.Invalid, match="404"):
        uri_filter.open_checked(f"http://127.0.0.1:{local_http}/missing", flt)
