"""Falcon middleware: request id and the caller's RequestContext; request metrics.

Identity comes from the headers keystonemiddleware sets (flavor keystone) or,
in Glance's default flavor, from trusted headers when ``X-Identity-Status:
Confirmed`` is present; otherwise the caller is an admin with no project,
as Glance's unauthenticated pipeline does.
"""

from __future__ import annotations

import dataclasses
import json
import time

from glancelite import errors
from glancelite.context import RequestContext, bind_to_logs, new_request_id
from glancelite.metrics import Metrics

MAX_REQUEST_ID_LENGTH = 64
# The version documents, served without authentication in every flavor.
PUBLIC_PATHS = ("/", "/versions")
# The detailed health check; wsgi.py sends a caller on this host there without authentication.
DETAILED_HEALTH_PATH = "/healthcheck/detailed"
# Set by wsgi.py (a WSGI environ key no client header can produce) on those local requests.
LOCAL_CALLER_ENV = "glancelite.local_caller"


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in (value or "").split(",") if v.strip())


def service_catalog(req) -> tuple:
    """X-Service-Catalog (JSON, set by keystonemiddleware) as a tuple of services; () when absent."""
    header = req.get_header("X-Service-Catalog")
    if header is None:
        return ()
    try:
        catalog = json.loads(header)
    except ValueError:
        catalog = None
    if not isinstance(catalog, list):
        # COMPAT: Glance's context middleware answers 500 for this too.
        raise errors.GlanceliteError("Invalid service catalog json.")
    return tuple(catalog)


def context_from_headers(req, request_id: str, is_admin=None) -> RequestContext:
    """The caller from identity headers; ``is_admin(context) -> bool`` decides admin (the policy's
    ``context_is_admin`` rule, as Glance does), else the ``admin`` role does."""
    roles = _csv(req.get_header("X-Roles") or req.get_header("X-Role"))
    context = RequestContext(
        project_id=req.get_header("X-Project-Id") or req.get_header("X-Tenant-Id") or req.get_header("X-Tenant"),
        user_id=req.get_header("X-User-Id") or req.get_header("X-User"),
        roles=roles,
        is_admin="admin" in roles,
        request_id=request_id,
        auth_token=req.get_header("X-Auth-Token"),
        service_roles=_csv(req.get_header("X-Service-Roles")),
        system_scope=req.get_header("OpenStack-System-Scope"),
        domain_id=req.get_header("X-Domain-Id"),
        service_catalog=service_catalog(req),
    )
    if is_admin is None:
        return context
    return dataclasses.replace(context, is_admin=is_admin(dataclasses.replace(context, is_admin=False)))


class RequestContextMiddleware:
    """Sets ``req.context.request`` (a RequestContext) and the request-id response header."""

    def __init__(self, auth_flavor: str | None, is_admin=None, *, anonymous: bool = False):
        self.keystone = auth_flavor is not None and auth_flavor.startswith("keystone")
        self.is_admin = is_admin
        self.anonymous = anonymous

    def process_request(self, req, resp):
        self._identify(req)
        # Every line logged for this request from here on names it, its user and its project.
        bind_to_logs(req.context.request)

    def _identify(self, req) -> None:
        incoming = req.get_header("X-Openstack-Request-Id")
        if incoming and len(incoming) > MAX_REQUEST_ID_LENGTH:
            req.context.request_id = new_request_id()
            bind_to_logs(RequestContext(request_id=req.context.request_id))
            raise errors.RequestHeaderTooLarge(
                f"Request id length exceeds the maximum of {MAX_REQUEST_ID_LENGTH} characters."
            )
        request_id = (
            incoming
            if incoming and incoming.startswith("req-")
            else (f"req-{incoming}" if incoming else new_request_id())
        )
        req.context.request_id = request_id
        # Refusals below (401, bad catalog) are logged with the request id at least.
        bind_to_logs(RequestContext(request_id=request_id))
        confirmed = req.get_header("X-Identity-Status") == "Confirmed"
        if req.env.get(LOCAL_CALLER_ENV):
            # A caller on this host, past no authentication: no identity, whatever its headers say.
            req.context.request = RequestContext(request_id=request_id)
            return
        if self.keystone and (req.path.rstrip("/") or "/") in PUBLIC_PATHS:
            # These bypass auth_token (wsgi.py), so identity headers here are the
            # client's own: never trust them; the version documents need none.
            req.context.request = RequestContext(request_id=request_id)
            return
        if self.keystone and not confirmed:
            if self.anonymous:
                # Glance's allow_anonymous_access: no identity, and nothing it may change.
                req.context.request = RequestContext(request_id=request_id, read_only=True)
                return
            # keystonemiddleware (delay_auth_decision) stripped any client-sent
            # identity headers and adds WWW-Authenticate to this 401 itself.
            raise errors.Unauthorized()
        req.context.request = (
            context_from_headers(req, request_id, self.is_admin) if confirmed else RequestContext.admin(request_id)
        )

    def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header("x-openstack-request-id", getattr(req.context, "request_id", None) or new_request_id())


class RequestMetrics:
    """Counts every request falcon answers and times it to its response headers, labelled by the
    route template that matched (``/v2/images/{image_id}``, never the id itself) and the status."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def process_request(self, req, resp):
        req.context.metrics_started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded):
        # The first middleware: its process_request ran for every request that gets here.
        elapsed = time.perf_counter() - req.context.metrics_started
        self.metrics.request_done(req.method, req.uri_template, resp.status_code, elapsed)
