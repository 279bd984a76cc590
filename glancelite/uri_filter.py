"""web-download safety: Glance's [import_filtering_opts] plus a refusal of internal addresses.

Glance's rules (glance/common/utils.py validate_import_uri): a scheme, a host
and, when the URI names one, a port must pass their allow list (or, when no
allow list is set, their deny list). glancelite adds what Glance leaves to
the operator: a host that is, or resolves to, a loopback, link-local,
private or otherwise non-global address is refused unless allowed_hosts
names it explicitly. Encoded IP forms ("2130706433", "0x7f.1", "127.1")
are refused outright, as newer Glance does.

``open_checked`` fetches a URI with every hop (each redirect) re-checked and
the TCP connection pinned to the address that was checked, so a DNS answer
that changes between check and connect cannot reach an internal host.

Home: beside settings and errors (it needs nothing else), because it is one rule with
callers in two layers: the import and location services check a URI at request time,
and the download steps (web-download, glance-download) fetch through it.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import re
import socket
import ssl
import urllib.parse

from glancelite import errors
from glancelite.settings import ImportFilter

MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 30.0
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


class RefusedURI(errors.Invalid):
    """The URI (or one it redirects to) does not pass import filtering."""


@dataclasses.dataclass(frozen=True)
class CheckedURI:
    uri: str
    scheme: str
    host: str  # normalised: IP literals in ipaddress form, names lowercased
    port: int  # the effective port (scheme default when the URI names none)
    address: str  # the IP the connection must go to
    explicitly_allowed: bool


def _host_is_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _looks_encoded_ip(host: str) -> bool:
    """Integer, octal, hex or short dotted forms that resolvers turn into an IPv4 address."""
    labels = host.split(".")
    return all(_NUMERIC_LABEL.fullmatch(label) for label in labels if label) and _host_is_ip(host) is None


def _is_internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return not ip.is_global or ip.is_multicast


def _allowed(value, allow: tuple, deny: tuple) -> bool:
    # COMPAT: when both lists are set only the allow list counts (Glance's rule).
    if allow:
        return value in allow
    return value not in deny


def check(uri: str, flt: ImportFilter, resolve=socket.getaddrinfo) -> CheckedURI:
    """Return where ``uri`` may be fetched from, or raise RefusedURI naming the reason."""
    refused = f"URI for web-download does not pass filtering: {uri}"
    try:
        parsed = urllib.parse.urlsplit(uri)
        explicit_port = parsed.port
    except ValueError as exc:
        raise RefusedURI(refused) from exc
    scheme = (parsed.scheme or "").lower()
    if not scheme or not _allowed(scheme, flt.allowed_schemes, flt.disallowed_schemes):
        raise RefusedURI(refused)
    if scheme not in ("http", "https"):
        raise RefusedURI(f"{refused} (only http and https can be downloaded)")
    host = (parsed.hostname or "").rstrip(".")
    if not host or _looks_encoded_ip(host):
        raise RefusedURI(refused)
    ip = _host_is_ip(host)
    if ip is not None:
        host = str(ip)
    allowed_hosts = {h.strip("[]").lower() for h in flt.allowed_hosts}
    if not _allowed(host, tuple(allowed_hosts), tuple(h.strip("[]").lower() for h in flt.disallowed_hosts)):
        raise RefusedURI(refused)
    if explicit_port is not None and not _allowed(explicit_port, flt.allowed_ports, flt.disallowed_ports):
        raise RefusedURI(refused)
    port = explicit_port or (443 if scheme == "https" else 80)
    explicitly_allowed = host in allowed_hosts
    if ip is not None:
        addresses = [ip]
    else:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise RefusedURI(f"{refused} (cannot resolve {host}: {exc})") from exc
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
        if not addresses:
            raise RefusedURI(f"{refused} (cannot resolve {host})")
    if not explicitly_allowed and any(_is_internal(a) for a in addresses):
        raise RefusedURI(f"{refused} (internal address; list the host in [import_filtering_opts] allowed_hosts)")
    return CheckedURI(
        uri=uri,
        scheme=scheme,
        host=host,
        port=port,
        address=str(addresses[0]),
        explicitly_allowed=explicitly_allowed,
    )


def is_allowed(uri: str, flt: ImportFilter) -> bool:
    try:
        check(uri, flt)
    except RefusedURI:
        return False
    return True


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever DNS says now; Host header stays the name."""

    def __init__(self, checked: CheckedURI, timeout: float):
        super().__init__(checked.host, checked.port, timeout=timeout)
        self._address = checked.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, checked: CheckedURI, timeout: float):
        super().__init__(checked.host, checked.port, timeout=timeout, context=ssl.create_default_context())
        self._address = checked.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _origin(checked: CheckedURI) -> tuple[str, str, int]:
    return checked.scheme, checked.host, checked.port


def open_checked(
    uri: str, flt: ImportFilter, timeout: float = CONNECT_TIMEOUT, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """GET ``uri`` following at most MAX_REDIRECTS redirects, each re-checked; 2xx response or raise.

    ``headers`` (credentials: glance-download's token) go only to the origin of ``uri``,
    never to another host a redirect names. The caller reads and closes the returned response.
    """
    current = uri
    origin = None
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            checked = check(current, flt)
        except RefusedURI as exc:
            if current != uri:
                raise RefusedURI(f"Redirect to disallowed URL: {current}") from exc
            raise
        origin = origin or _origin(checked)
        conn_cls = _PinnedHTTPS if checked.scheme == "https" else _PinnedHTTP
        conn = conn_cls(checked, timeout)
        split = urllib.parse.urlsplit(current)
        target = urllib.parse.urlunsplit(("", "", split.path or "/", split.query, ""))
        # One request per connection; "close" also lets the reader see a body longer than announced.
        sent = {"User-Agent": "glancelite-web-download", "Accept": "*/*", "Connection": "close"}
        if headers and _origin(checked) == origin:
            sent.update(headers)
        try:
            conn.request("GET", target, headers=sent)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise errors.Invalid(f"web-download could not fetch {current}: {exc}") from exc
        if resp.status in (301, 302, 303, 307, 308):
            location = resp.getheader("Location")
            resp.close()
            conn.close()
            if not location:
                raise errors.Invalid(f"web-download: redirect without Location from {current}")
            current = urllib.parse.urljoin(current, location)
            continue
        if not 200 <= resp.status < 300:
            resp.close()
            conn.close()
            raise errors.Invalid(f"web-download: {current} answered {resp.status} {resp.reason}")
        return resp
    raise errors.Invalid(f"web-download: more than {MAX_REDIRECTS} redirects from {uri}")
