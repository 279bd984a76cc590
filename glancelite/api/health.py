"""GET /healthcheck/detailed: the detailed health check, for admins and local callers.

The plain ``/healthcheck`` (oslo.middleware, wsgi.py) is untouched. A caller on this host (a
loopback address, no proxy headers) reaches this resource without a token (wsgi.py marks it with
LOCAL_CALLER_ENV); anyone else comes through the API's authentication and must be an admin.
"""

from __future__ import annotations

import falcon

from glancelite import errors
from glancelite.api import common
from glancelite.api.middleware import LOCAL_CALLER_ENV
from glancelite.services import Services


class DetailedHealthResource:
    def __init__(self, services: Services):
        self.health = services.health
        self.policy = services.policy

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        context = req.context.request
        if not (req.env.get(LOCAL_CALLER_ENV) or context.is_admin or self.policy.is_admin(context)):
            raise errors.Forbidden("The detailed health check is for admins and callers on this host.")
        report = self.health.report()
        common.send_json(resp, report.as_dict(), falcon.HTTP_200 if report.available else falcon.HTTP_503)
        resp.set_header("Cache-Control", "no-store")
