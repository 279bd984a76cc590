"""The in-process harness itself: what reaches the application, what goes to the network, the environ it builds."""

from __future__ import annotations

import http.server
import io
import threading
import types

import falcon.testing
import pytest
import requests

from tests.support import inprocess, postgres
from tests.support.server import write_config


def test_the_service_url_reaches_the_application_in_process(service, http):
    resp = http.get(service.url + "/versions")
    assert resp.status_code == 200 and isinstance(resp.connection, inprocess.InProcessAdapter)
    assert resp.json()["versions"][0]["links"][0]["href"] == service.url + "/v2/"
    # The module-level helpers make a session of their own; they are routed too.
    bare = requests.post(service.url + "/v2/images", json={"name": "bare"})
    assert bare.status_code == 201 and bare.headers["Location"].startswith(service.url + "/v2/images/")


def test_the_service_runs_on_the_wanted_database(service):
    expected = "postgresql" if postgres.wanted_backend() == "postgresql" else "sqlite"
    assert service.settings.database.connection.startswith(expected + "://")


@pytest.fixture
def network_server():
    """A plain HTTP server on 127.0.0.1 that answers every GET with ``network``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"network")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_other_urls_go_over_the_network(service, http, network_server):
    resp = http.get(network_server + "/anything")
    assert resp.text == "network" and isinstance(resp.connection, requests.adapters.HTTPAdapter)
    assert http.get(service.url + "/versions").status_code == 200  # the same session, still in process


def test_a_stopped_service_refuses_like_a_closed_port(tmp_path):
    service = inprocess.InProcessService(write_config(tmp_path)).start()
    assert requests.get(service.url + "/versions").status_code == 200
    service.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(service.url + "/versions")


class EnvironEcho:
    """A WSGI application that keeps the environ it was called with and answers with the body it read."""

    def __init__(self):
        self.environ: dict = {}

    def __call__(self, environ, start_response):
        self.environ = dict(environ)
        body = environ["wsgi.input"].read(1 << 20)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]


@pytest.fixture
def echo():
    """An InProcessAdapter over EnvironEcho, mounted on a session of its own for one made-up URL."""
    app = EnvironEcho()
    stub = types.SimpleNamespace(client=falcon.testing.TestClient(app), url="http://echo.inprocess.test:8080")
    with requests.Session() as session:
        session.mount(stub.url + "/", inprocess.InProcessAdapter(stub))
        yield app, session, stub.url


def test_the_environ_is_the_one_gunicorn_builds(echo):
    app, session, url = echo
    resp = session.get(url + "/v2/images/%ff%00/tags/a%20b?limit=%ff&x=1")
    assert resp.status_code == 200
    env = app.environ
    assert env["PATH_INFO"] == "/v2/images/\xff\x00/tags/a b"  # percent-decoded bytes as latin-1 code points
    # requests upper-cases percent escapes before sending, over the network too.
    assert env["RAW_URI"] == "/v2/images/%FF%00/tags/a%20b?limit=%FF&x=1"
    assert env["QUERY_STRING"] == "limit=%FF&x=1"
    assert env["HTTP_HOST"] == "echo.inprocess.test:8080"
    assert env["REQUEST_METHOD"] == "GET" and "CONTENT_LENGTH" not in env


def test_bodies_arrive_whole_with_or_without_a_length(echo):
    app, session, url = echo
    resp = session.put(url + "/sized", data=b"0123456789", headers={"Content-Type": "application/octet-stream"})
    assert resp.content == b"0123456789"
    assert app.environ["CONTENT_LENGTH"] == "10" and app.environ["CONTENT_TYPE"] == "application/octet-stream"

    def chunks():
        yield b"abc"
        yield b"def"

    resp = session.post(url + "/chunked", data=chunks())
    assert resp.content == b"abcdef"
    # As gunicorn hands a chunked body over: de-chunked, without a length.
    assert "CONTENT_LENGTH" not in app.environ and app.environ["HTTP_TRANSFER_ENCODING"] == "chunked"

    resp = session.post(url + "/file", data=io.BytesIO(b"from a file"))
    assert resp.content == b"from a file"
