"""The cache API (v2.14, clean/prune v2.18): /v2/cache, /v2/cache/{image_id}. HTTP only."""

from __future__ import annotations

import falcon

from glancelite.api import common
from glancelite.services import Services


class CacheResource:
    """GET lists cached and queued images; DELETE clears the cache, the queue or both."""

    def __init__(self, services: Services):
        self.cache = services.cache

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.reject_body(req)
        common.send_json(resp, self.cache.state(common.context(req)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.cache.clear(common.context(req), req.get_header("x-image-cache-clear-target") or "")
        resp.status = falcon.HTTP_204


class CachedImageResource:
    """PUT queues an active image for the prefetcher (202); DELETE drops it from cache and queue."""

    def __init__(self, services: Services):
        self.cache = services.cache

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.cache.queue(common.mutating_context(req), image_id)
        resp.status = falcon.HTTP_202

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.cache.delete(common.mutating_context(req), image_id)
        resp.status = falcon.HTTP_204


class CacheCleanResource:
    def __init__(self, services: Services):
        self.cache = services.cache

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.send_json(resp, self.cache.clean(common.context(req)))


class CachePruneResource:
    def __init__(self, services: Services):
        self.cache = services.cache

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.send_json(resp, self.cache.prune(common.context(req)))
