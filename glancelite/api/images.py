"""/v2/images, /v2/images/{id}, the deactivate/reactivate actions and /v2/info/usage."""

from __future__ import annotations

import falcon

from glancelite import errors
from glancelite.api import common, image_query, patch, schemas, views
from glancelite.services import Services


def exact_path(req) -> None:
    """COMPAT: Glance's router does not match a trailing slash: /v2/images/ is a 404 (tempest relies on it)."""
    if (req.env.get("PATH_INFO") or "").endswith("/"):
        raise errors.NotFound("The resource could not be found.")


class ImagesResource:
    def __init__(self, services: Services):
        self.services = services
        self.settings = services.settings
        self.formats = schemas.Formats.of(services.settings)

    def on_get(self, req, resp):
        exact_path(req)
        common.reject_body(req)
        query = image_query.parse(req.query_string, self.settings)
        images = self.services.images.list(common.context(req), query)
        # COMPAT: a full page always gets a next link, even when nothing follows.
        next_marker = images[-1].id if images and len(images) == query.limit else None
        body = {"images": [views.image(i, self.settings) for i in images]}
        body.update(image_query.links(image_query.params(req.query_string), next_marker))
        common.send_json(resp, body)

    def on_post(self, req, resp):
        exact_path(req)
        ctx = common.mutating_context(req)
        body = common.read_json(req, expect=dict)
        self.services.images.check_create_attributes(body)
        schemas.validate("image", body, self.formats)
        image = self.services.images.create(ctx, body)
        resp.set_header("Location", common.absolute_url(req, f"/v2/images/{image.id}"))
        methods = self.settings.enabled_import_methods
        if methods:
            resp.set_header("OpenStack-image-import-methods", ",".join(methods))
        if self.settings.multi_store:
            resp.set_header("OpenStack-image-store-ids", ",".join(s.id for s in self.settings.public_stores))
        common.send_json(resp, views.image(image, self.settings), falcon.HTTP_201)

    def _other_method(self, req, resp):
        exact_path(req)  # DELETE /v2/images/ is Glance's "no image id": 404
        raise errors.MethodNotAllowed(headers={"Allow": "GET, POST"})

    on_delete = on_put = on_patch = _other_method


class ImageResource:
    def __init__(self, services: Services):
        self.services = services
        self.settings = services.settings
        self.formats = schemas.Formats.of(services.settings)

    def on_get(self, req, resp, image_id):
        common.reject_body(req)
        common.check_uuid(image_id)
        image = self.services.images.show(common.context(req), image_id)
        common.send_json(resp, views.image(image, self.settings))

    def on_patch(self, req, resp, image_id):
        ctx = common.mutating_context(req)
        dialect = patch.media_type(req.content_type)
        body = common.read_json(req)
        changes = patch.parse(body, dialect, self.formats)
        common.check_uuid(image_id)
        image = self.services.images.update(ctx, image_id, changes)
        common.send_json(resp, views.image(image, self.settings))

    def on_delete(self, req, resp, image_id):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        common.check_uuid(image_id)
        self.services.images.delete(ctx, image_id)
        resp.status = falcon.HTTP_204


class ActionResource:
    """POST /v2/images/{id}/actions/deactivate|reactivate: 204, or 403 from a wrong status."""

    def __init__(self, services: Services, action: str):
        self.services = services
        self.action = action

    def on_post(self, req, resp, image_id):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        common.check_uuid(image_id)
        getattr(self.services.images, self.action)(ctx, image_id)
        resp.status = falcon.HTTP_204


class UsageResource:
    """GET /v2/info/usage: the keystone unified limits and usage of the caller's project ({} without them)."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp):
        common.reject_body(req)
        common.send_json(resp, {"usage": self.services.quotas.usage(common.context(req))})
