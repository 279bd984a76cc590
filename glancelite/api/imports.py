"""PUT /v2/images/{id}/stage, POST /v2/images/{id}/import and GET /v2/info/import: HTTP only."""

from __future__ import annotations

import falcon

from glancelite.api import common
from glancelite.api.body import image_body
from glancelite.api.image_data import declared_size
from glancelite.services import Services


class StageResource:
    def __init__(self, services: Services):
        self.imports = services.imports
        self.settings = services.settings

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.require_octet_stream(req)
        common.check_uuid(image_id)
        ctx = common.mutating_context(req)
        with image_body(req, self.settings.client_socket_timeout) as body:
            self.imports.stage(ctx, image_id, body, size=declared_size(req))
        resp.status = falcon.HTTP_204


class ImportResource:
    def __init__(self, services: Services):
        self.imports = services.imports

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.check_uuid(image_id)
        ctx = common.mutating_context(req)
        body = common.read_json(req, expect=dict)
        self.imports.import_image(ctx, image_id, body, header_store=req.get_header("X-Image-Meta-Store"))
        common.accepted_empty(resp)  # the task is found via /v2/images/{id}/tasks


class ImportInfoResource:
    def __init__(self, services: Services):
        self.settings = services.settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.reject_body(req)
        body = {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(self.settings.enabled_import_methods),
            }
        }
        common.send_json(resp, body)
