"""The versions document: 300 at / (and unknown versions), 200 at /versions."""

from __future__ import annotations

from glancelite.api import common
from glancelite.settings import Settings

MULTI_STORE = ["2.13", "2.12", "2.11", "2.10", "2.9", "2.8"]


def version_ids(settings: Settings) -> list[tuple[str, str]]:
    """(id, status) pairs in Glance's own, code-defined order."""
    if settings.image_cache_dir:
        head = [
            ("2.18", "CURRENT"),
            ("2.17", "SUPPORTED"),
            ("2.16", "SUPPORTED"),
            ("2.15", "SUPPORTED"),
            ("2.14", "SUPPORTED"),
        ]
        current = "2.18"
    else:
        head = [("2.15", "SUPPORTED")]
        current = "2.17"
    middle = MULTI_STORE if settings.multi_store else ["2.9"]
    ids = head + [(v, "SUPPORTED") for v in middle if v not in {h for h, _ in head}]
    if current == "2.17":
        ids.append(("2.17", "CURRENT"))
    ids += [(v, "SUPPORTED") for v in ("2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")]
    return ids


def allowed_tokens(settings: Settings) -> set[str]:
    """Path tokens that select the v2 API (v2, v2.0 ... as enabled)."""
    return {"v2"} | {f"v{v}" for v, _ in version_ids(settings)}


def document(req, settings: Settings) -> dict:
    href = common.absolute_url(req, "/v2/", settings.public_endpoint)
    return {
        "versions": [
            {"id": f"v{v}", "status": status, "links": [{"rel": "self", "href": href}]}
            for v, status in version_ids(settings)
        ]
    }


class VersionsResource:
    def __init__(self, settings: Settings, status: str):
        self.settings = settings
        self.status = status

    def on_get(self, req, resp, **_):
        common.send_json(resp, document(req, self.settings), self.status)


class VersionRouter:
    """WSGI wrapper: /v2.x/... is rewritten to /v2/...; any other unknown first segment gets 300."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.tokens = allowed_tokens(settings)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        first, _, rest = path.lstrip("/").partition("/")
        if first in self.tokens and first != "v2":
            environ["PATH_INFO"] = "/v2/" + rest
        elif first not in self.tokens and first not in ("versions", "healthcheck"):
            # COMPAT: Glance answers any unknown version (and /) with the 300 document.
            environ["PATH_INFO"] = "/"
        accept = environ.get("HTTP_ACCEPT", "")
        if accept.startswith("application/vnd.openstack.images-"):
            token = accept.removeprefix("application/vnd.openstack.images-")
            if token in self.tokens and first not in ("v2", "versions", "healthcheck"):
                environ["PATH_INFO"] = "/v2" + path
        return self.app(environ, start_response)
