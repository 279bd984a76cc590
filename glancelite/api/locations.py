"""POST and GET /v2/images/{id}/locations (Location API v2.17): HTTP only."""

from __future__ import annotations

import falcon

from glancelite.api import common
from glancelite.services import Services


class LocationsResource:
    def __init__(self, services: Services):
        self.locations = services.locations

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.check_uuid(image_id)
        ctx = common.mutating_context(req)
        body = common.read_json(req, expect=dict)
        self.locations.add(ctx, image_id, body)
        common.accepted_empty(resp)  # like import: the task shows in /v2/images/{id}/tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.reject_body(req)
        common.check_uuid(image_id)
        common.send_json(resp, self.locations.list(common.context(req), image_id))
