"""Small request helpers shared by the resources: bodies, links, context."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

from glancelite import errors
from glancelite.context import RequestContext

MAX_JSON_BODY = 1024 * 1024  # bytes; image metadata is small, data never goes through JSON


def context(req) -> RequestContext:
    return req.context.request


def mutating_context(req) -> RequestContext:
    """The caller's context for a request that changes something; refused when read-only
    (Glance's anonymous access)."""
    ctx = req.context.request
    if ctx.read_only:
        raise errors.Forbidden("Read-only access")
    return ctx


@contextlib.contextmanager
def body_read_timeout(req, seconds: int):
    """Reads of the request body fail after ``seconds`` of client silence (0: never).

    A client that stops sending must not hold a worker thread, nor leave its
    image saving for ever (Glance's client_socket_timeout).
    """
    sock = req.env.get("gunicorn.socket")
    if sock is None:
        yield
        return
    previous = sock.gettimeout()
    sock.settimeout(seconds or None)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)


def require_octet_stream(req) -> None:
    """Image data comes as application/octet-stream (uploads and stages); anything else is 415."""
    media = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/octet-stream":
        raise errors.UnsupportedMedia(f"Invalid content type {req.content_type}")


def accepted_empty(resp) -> None:
    """COMPAT: Glance answers an import or location add with 202 and an empty body (webob's
    default type; a JSON type with no body breaks glanceclient's response parsing)."""
    resp.status = "202 Accepted"
    resp.text = ""
    resp.content_type = "text/html; charset=UTF-8"


def reject_body(req) -> None:
    """Glance's body_reject routes: a body is an error, not something to ignore."""
    chunked = (req.get_header("Transfer-Encoding") or "").lower() in (
        "chunked",
        "compress",
        "deflate",
        "gzip",
        "identity",
    )
    if (req.content_length or 0) > 0 or (chunked and req.method in ("POST", "PUT", "PATCH")):
        raise errors.Invalid("A body is not expected with this request.")


def read_json(req, *, expect: type | tuple[type, ...] = (dict, list)):
    """Parse the request body as JSON with Glance's error messages."""
    # A chunked body has no Content-Length; falcon's bounded stream would read it as empty,
    # while the server's input stream ends where the chunks do.
    stream = req.bounded_stream if req.content_length is not None else req.stream
    raw = stream.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        drain(stream, limit=JSON_DRAIN_LIMIT)
        raise errors.TooLarge("Request body is too large.", headers={"Connection": "close"})
    if not raw:
        raise errors.Invalid("Body expected in request.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise errors.Invalid(
            "Error decoding your request. Either the URL or the request body contained characters that could not be decoded by Glance"
        ) from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise errors.Invalid("Malformed JSON in request body.") from exc
    if not isinstance(body, (dict, list)):
        raise errors.Invalid("Unexpected body type. Expected list/dict.")
    _reject_nul(body)
    if not isinstance(body, expect):
        raise errors.Invalid("Unexpected body type. Expected list/dict.")
    return body


def _reject_nul(body) -> None:
    """No database stores NUL in text (PostgreSQL refuses it): a 400 here, not a 500 there."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_text(value: str, what: str = "request") -> str:
    if "\x00" in value:
        raise errors.Invalid(f"The {what} contains a NUL character, which is not allowed.")
    return value


# How much of a refused body is read and dropped (drain) before answering, per kind of body.
JSON_DRAIN_LIMIT = 64 * 1024 * 1024  # bytes; a JSON body past MAX_JSON_BODY (no time limit)
UPLOAD_DRAIN_LIMIT = 64 * 1024 * 1024  # bytes; image data of a refused upload or stage ...
UPLOAD_DRAIN_SECONDS = 10.0  # ... and for at most this long


def drain(stream, *, limit: int, seconds: float | None = None) -> bool:
    """Read and drop what the client is still sending, so it gets to read our answer; True if all was read.

    Answering before the body is consumed makes many clients see a reset instead of the
    error. Gives up after ``limit`` bytes or ``seconds`` (None: no time limit); the
    connection then closes. Best effort: a failing read ends it and is not raised.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    left = limit
    with contextlib.suppress(Exception):
        while left > 0 and (deadline is None or time.monotonic() < deadline):
            chunk = stream.read(min(65536, left))
            if not chunk:
                return True
            left -= len(chunk)
    return False


def check_uuid(value: str, what: str = "image") -> str:
    """An id that is not a UUID cannot name anything: 404, as Glance answers."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise errors.NotFound(f"No {what} found with ID {value}") from None
    return value


def absolute_url(req, path: str, public_endpoint: str | None = None) -> str:
    base = (public_endpoint or req.prefix).rstrip("/")
    return f"{base}{path}"


def send_json(resp, body, status: str | None = None) -> None:
    if status:
        resp.status = status
    resp.content_type = "application/json"
    resp.text = json.dumps(body)
