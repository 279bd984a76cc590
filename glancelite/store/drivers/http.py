"""Read-only HTTP(S) store: images that live on a web server, read through requests.

Differences from glance_store, on purpose: TLS is verified unless the operator
sets https_insecure, ranged reads are supported (a server that ignores Range
is handled by skipping), and an unreachable server shows in the live
capabilities until it answers again.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any

import requests
from oslo_config import cfg

from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability, without

LOG = logging.getLogger(__name__)

# The options of a http store group (glance_store's names and defaults); this module
# needs no optional SDK, so the declarations live beside the driver.
OPTIONS: list[cfg.Opt] = [
    cfg.StrOpt("https_ca_certificates_file", help="CA bundle for TLS verification."),
    cfg.BoolOpt("https_insecure", default=False, help="Skip TLS verification (glancelite verifies by default)."),
    cfg.DictOpt("http_proxy_information", default={}, help="Proxies by scheme, 'http:host:port,...'."),
    cfg.IntOpt("http_max_redirects", default=5, min=0, help="Redirects followed before giving up."),
]

READ_CHUNK = 1 << 16
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
TIMEOUT = (10, 60)  # connect, read seconds
PROBE_TIMEOUT = 3


class HttpDriver(base.Driver):
    TYPE = "http"
    SCHEMES = ("http", "https")
    STATIC_CAPABILITIES = Capability.READ_RANDOM | Capability.DRIVER_REUSABLE
    OPTIONS = OPTIONS

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        self.max_redirects = self.option("http_max_redirects")
        self.session = requests.Session()
        cafile = self.option("https_ca_certificates_file")
        # COMPAT: glance_store skips TLS checks by default; glancelite verifies unless told not to.
        self.session.verify = cafile or not self.option("https_insecure")
        proxies = dict(self.option("http_proxy_information") or {})
        if proxies:
            self.session.proxies.update(proxies)
        self._lock = threading.Lock()
        self._failed: tuple[str, str] | None = None  # (url, reason) of the last connection failure

    # -- requests with bounded redirects ---------------------------------------------

    def _request(self, method: str, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        current = url
        for _ in range(self.max_redirects + 1):
            try:
                resp = self.session.request(
                    method, current, headers=headers, stream=True, allow_redirects=False, timeout=TIMEOUT
                )
            except requests.RequestException as exc:
                with self._lock:
                    self._failed = (url, str(exc))
                raise base.StoreUnavailable(f"The remote server of {_redact(url)} is unavailable: {exc}") from exc
            with self._lock:
                self._failed = None
            if resp.status_code in REDIRECT_CODES and resp.headers.get("Location"):
                resp.close()
                current = urllib.parse.urljoin(current, resp.headers["Location"])
                continue
            if resp.status_code in (404, 410):
                resp.close()
                raise base.StoreNotFound(f"Image not found at {_redact(url)}")
            if resp.status_code >= 400:
                resp.close()
                raise base.StoreUnavailable(f"The remote server answered {resp.status_code} for {_redact(url)}")
            return resp
        raise base.StoreUnavailable(f"More than {self.max_redirects} redirects for {_redact(url)}")

    # -- contract --------------------------------------------------------------------

    def add(self, image_id, reader, size):
        raise base.StoreAddDisabled("Error in store configuration. Adding images to store is disabled.")

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        resp = self._request("GET", url, headers)
        total = _total_size(resp) or 0
        skip = offset if (headers and resp.status_code != 206) else 0
        if length is None:
            remaining = max(0, total - offset) if total else None
        else:
            remaining = max(0, min(length, total - offset)) if total else length
        return base.DataStream(
            _response_chunks(resp, skip, remaining),
            size=total,
            length=remaining,  # None: the server did not say
            on_close=resp.close,
        )

    def get_size(self, url: str) -> int:
        resp = self._request("HEAD", url)
        resp.close()
        return int(resp.headers.get("Content-Length") or 0)

    def probe(self) -> base.Probe:
        with self._lock:
            failed = self._failed
        if failed is None:
            return base.Probe(self.STATIC_CAPABILITIES)
        url, reason = failed
        try:
            self.session.head(url, allow_redirects=True, timeout=PROBE_TIMEOUT).close()
        except requests.RequestException:
            return base.Probe(
                without(self.STATIC_CAPABILITIES, Capability.READ_ACCESS),
                f"{_redact(url)} is unreachable: {reason}",
                unreachable=True,
            )
        with self._lock:
            self._failed = None
        return base.Probe(self.STATIC_CAPABILITIES)

    def live_capabilities(self) -> Capability:
        return self.probe().capabilities

    def properties(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.session.close()


def _total_size(resp: requests.Response) -> int | None:
    content_range = resp.headers.get("Content-Range", "")
    if resp.status_code == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _response_chunks(resp: requests.Response, skip: int, remaining: int | None):
    try:
        for chunk in resp.iter_content(READ_CHUNK):
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            if remaining is not None:
                if remaining <= 0:
                    return
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            yield chunk
    except requests.RequestException as exc:
        raise base.StoreUnavailable(f"The remote server stopped sending image data: {exc}") from exc
    finally:
        resp.close()


def _redact(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)
