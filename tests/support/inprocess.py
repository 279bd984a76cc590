"""A glancelite-api in this process: the real WSGI application under falcon's TestClient.

``InProcessService`` is what one gunicorn worker serves (``wsgi.build_application`` over the
configuration file ``server.write_config`` writes: file stores under a temporary directory, a
SQLite database there or the session's PostgreSQL), with the database synced by the project's
migrations as ``glancelite-manage db sync`` does. Its ``url`` is a name under the reserved
``.test`` domain that nothing on the network answers: while ``routing()`` is active, every
``requests`` session sends what goes to that URL through ``InProcessAdapter`` into the
application, and everything else over the network as usual. So a test written against the
functional tier's ``service.url`` with a ``requests`` session runs here unchanged.

What this cannot show, and stays in tests/functional: gunicorn itself (request-line limits,
chunked decoding, keep-alive, timeouts), signals, several workers, real streaming timing,
clients that open their own connections.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from glancelite import config as config_module
from glancelite import wsgi
from glancelite.db import engine as db_engine
from glancelite.db import migration
from glancelite.tasks import runner as task_runner
from tests.support import postgres
from tests.support.server import write_config

_names = itertools.count(1)


class InProcessService:
    """``start()`` builds the application, ``stop()`` closes its services (a worker's graceful stop).

    Offers what tests read from the functional tier's ``Server``: ``url``, ``config`` (the file),
    ``root`` (its directory, holding the stores), plus ``settings``, ``services`` and ``client``.
    """

    def __init__(self, config: Path):
        self.config = config
        self.root = config.parent
        self.url = f"http://glancelite-api-{next(_names)}.inprocess.test"
        self.adapter = InProcessAdapter(self)
        self.loaded: config_module.LoadedConfig | None = None
        self.app = None
        self.client: falcon.testing.TestClient | None = None

    @property
    def settings(self):
        return self.loaded.settings

    @property
    def services(self):
        return self.app.services

    def start(self) -> InProcessService:
        self.loaded = config_module.load([str(self.config)])
        engine = db_engine.create_engine(self.settings.database)
        try:
            migration.sync(engine)
        finally:
            engine.dispose()
        _fresh_process_runner()
        self.app = wsgi.build_application(self.loaded)
        self.client = falcon.testing.TestClient(self.app)
        _live[self.url.lower() + "/"] = self
        return self

    def stop(self) -> None:
        # The URL stays routed here: a request after the stop fails as a refused connection would,
        # instead of leaving for the network.
        if self.app is not None:
            self.client = None
            self.app.services.close()
            self.app = None


def _fresh_process_runner() -> None:
    """Each gunicorn worker is a process with its own import runner (tasks.runner.for_process); two
    in-process services in one pytest process would otherwise share one, and the first to stop
    would shut the other's down. Forgetting the current one gives the next service its own."""
    with task_runner._process_lock:
        task_runner._process_runner = None


class InProcessAdapter(requests.adapters.BaseAdapter):
    """A requests transport that hands a request to the service's WSGI application through its TestClient.

    The environ is the one gunicorn builds: PATH_INFO percent-decoded to latin-1 code points,
    no CONTENT_LENGTH for a chunked body (generator data), the URL's host as Host.
    """

    def __init__(self, service: InProcessService):
        super().__init__()
        self.service = service

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if self.service.client is None:
            raise requests.ConnectionError(f"{self.service.url} is not running", request=request)
        parts = urllib.parse.urlsplit(request.url)
        raw_path = parts.path or "/"
        headers = {name: _text(value) for name, value in request.headers.items()}
        body, chunked = _body_bytes(request.body)
        extras = {
            "PATH_INFO": urllib.parse.unquote_to_bytes(raw_path).decode("latin-1"),
            "RAW_URI": raw_path + (f"?{parts.query}" if parts.query else ""),
        }
        if chunked:
            # gunicorn de-chunks the body and sets no CONTENT_LENGTH; the environ's input is the body.
            headers.pop("Content-Length", None)
            headers.setdefault("Transfer-Encoding", "chunked")
            extras["wsgi.input"] = io.BytesIO(body)
            body = b""
        result = self.service.client.simulate_request(
            request.method,
            raw_path,
            query_string=parts.query,
            headers=headers,
            body=body,
            protocol=parts.scheme,
            host=parts.hostname,
            port=parts.port,
            remote_addr="127.0.0.1",
            extras=extras,
        )
        response = requests.Response()
        response.status_code = result.status_code
        response.reason = result.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(result.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(result.content)
        response.url = request.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        pass


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _body_bytes(body) -> tuple[bytes, bool]:
    """The prepared body as bytes, and whether requests would have sent it chunked (an iterable)."""
    if body is None:
        return b"", False
    if isinstance(body, str):
        return body.encode("utf-8"), False
    if isinstance(body, (bytes, bytearray)):
        return bytes(body), False
    if hasattr(body, "read"):
        data = body.read()
        return (data.encode("utf-8") if isinstance(data, str) else data), False
    return b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in body), True


# URL prefix ("http://name/") of each started service, for every session's get_adapter.
_live: dict[str, InProcessService] = {}
_routing_lock = threading.Lock()
_routing_depth = 0
_original_get_adapter = requests.Session.get_adapter


def _get_adapter(session: requests.Session, url: str):
    lowered = url.lower()
    for prefix, service in list(_live.items()):
        if lowered.startswith(prefix) or lowered == prefix[:-1]:
            return service.adapter
    return _original_get_adapter(session, url)


@contextlib.contextmanager
def routing() -> Iterator[None]:
    """While active, any requests session (and ``requests.get`` and friends) reaches the started
    in-process services by their URL; other URLs are untouched."""
    global _routing_depth
    with _routing_lock:
        _routing_depth += 1
        requests.Session.get_adapter = _get_adapter
    try:
        yield
    finally:
        with _routing_lock:
            _routing_depth -= 1
            if _routing_depth == 0:
                requests.Session.get_adapter = _original_get_adapter


def serve(request, tmp_path_factory, name: str, sections: dict | None = None) -> Iterator[InProcessService]:
    """A started in-process service with extra options (tests/functional/_image_servers.serve's twin).

    On the session's PostgreSQL (a fresh database) when GLANCELITE_TEST_DATABASE=postgresql, else SQLite.
    """
    database = None
    if postgres.wanted_backend() == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = cluster.create_database()
    service = InProcessService(write_config(tmp_path_factory.mktemp(name), sections, database=database)).start()
    try:
        yield service
    finally:
        service.stop()
        if database:
            cluster.drop_database(database)
