"""PUT/DELETE /v2/images/{id}/tags/{tag}: both 204; adding an existing tag is a no-op."""

from __future__ import annotations

import falcon

from glancelite.api import common
from glancelite.services import Services


class TagResource:
    def __init__(self, services: Services):
        self.services = services

    def on_put(self, req, resp, image_id, tag):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        common.check_uuid(image_id, "image")
        common.check_text(tag, "tag")
        self.services.images.add_tag(ctx, image_id, tag)
        resp.status = falcon.HTTP_204

    def on_delete(self, req, resp, image_id, tag):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        common.check_uuid(image_id, "image")
        common.check_text(tag, "tag")
        self.services.images.delete_tag(ctx, image_id, tag)
        resp.status = falcon.HTTP_204
