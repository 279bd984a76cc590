"""The one place where typed errors become HTTP responses, in Glance's body shape.

Glance renders webob error pages negotiated on Accept: JSON
``{"message", "code", "title"}`` for application/json, HTML for text/html or
``*/*``, plain text otherwise (reference/glance-api.md section 12).
"""

from __future__ import annotations

import html
import json
import logging

import falcon

from glancelite import errors

LOG = logging.getLogger(__name__)

# Category -> status. Reason phrases are webob's (Glance's), which clients see in
# the JSON "code" field. Order matters only for subclasses listed before their bases.
STATUS_BY_ERROR: tuple[tuple[type[errors.GlanceliteError], str], ...] = (
    (errors.Invalid, falcon.HTTP_400),
    (errors.Unauthorized, falcon.HTTP_401),
    (errors.Forbidden, falcon.HTTP_403),
    (errors.NotFound, falcon.HTTP_404),
    (errors.MethodNotAllowed, falcon.HTTP_405),
    (errors.Conflict, falcon.HTTP_409),
    (errors.Gone, falcon.HTTP_410),
    (errors.TooLarge, "413 Request Entity Too Large"),
    (errors.UnsupportedMedia, falcon.HTTP_415),
    (errors.RangeNotSatisfiable, "416 Requested Range Not Satisfiable"),
    (errors.RequestHeaderTooLarge, "431 Request Header Fields Too Large"),
    (errors.Unavailable, falcon.HTTP_503),
    (errors.GatewayTimeout, falcon.HTTP_504),
    (errors.BadGateway, falcon.HTTP_502),
)


def status_for(exc: errors.GlanceliteError) -> str:
    if isinstance(exc, errors.Upstream):
        return exc.status  # the remote node already chose Glance's status
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return falcon.HTTP_500


def render(req: falcon.Request, resp: falcon.Response, status: str, message: str, headers=None) -> None:
    """Write a Glance-shaped error body, negotiated on the request's Accept header."""
    resp.status = status
    for name, value in (headers or {}).items():
        resp.set_header(name, value)
    title = status.split(" ", 1)[1] if " " in status else status
    kind = negotiate(req.get_header("Accept"))
    if kind == "application/json":
        resp.content_type = "application/json"
        resp.text = json.dumps({"message": f"{message}<br /><br />\n\n", "code": status, "title": title})
    elif kind == "text/html":
        resp.content_type = "text/html; charset=UTF-8"
        resp.text = (
            f"<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
            f"  {html.escape(message)}<br /><br />\n\n\n\n </body>\n</html>"
        )
    else:
        resp.content_type = "text/plain; charset=UTF-8"
        resp.text = f"{status}\n\n{message}\n\n   "


def negotiate(accept: str | None) -> str:
    """webob's choice between text/html and application/json: the higher q wins, html on a tie."""
    if not accept:
        return "text/plain"
    best, best_q = "text/plain", 0.0
    for offer in ("text/html", "application/json"):
        q = _quality(accept, offer)
        if q > best_q:
            best, best_q = offer, q
    return best


def _quality(accept: str, offer: str) -> float:
    main = offer.split("/")[0]
    found, specificity = 0.0, -1
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        rank = {offer: 2, f"{main}/*": 1, "*/*": 0}.get(media.lower())
        if rank is not None and rank > specificity:
            found, specificity = q, rank
    return found


def handle_glancelite_error(req, resp, exc: errors.GlanceliteError, _params) -> None:
    public = exc.public_message
    if public != exc.message:
        LOG.warning("%s %s: %s", req.method, req.path, exc.message)
    render(req, resp, status_for(exc), public, exc.headers)


def handle_http_error(req, resp, exc: falcon.HTTPError, _params) -> None:
    """Falcon's own errors (no route, wrong method, bad header) in Glance's shape."""
    message = exc.description or {
        404: "The resource could not be found.",
        405: "The method is not allowed for this resource.",
    }.get(exc.status_code, exc.title or "")
    render(req, resp, exc.status, message, dict(exc.headers or {}))


def handle_unexpected(req, resp, exc: Exception, _params) -> None:
    if isinstance(exc, falcon.HTTPError):
        return handle_http_error(req, resp, exc, _params)
    LOG.exception("unhandled error on %s %s", req.method, req.path)
    render(
        req,
        resp,
        falcon.HTTP_500,
        "The server has either erred or is incapable of performing the requested operation.",
    )


def install(app: falcon.App) -> None:
    # Falcon resolves the most specific registered type first.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.GlanceliteError, handle_glancelite_error)
