"""GET /v2/info/stores and /v2/info/stores/detail."""

from __future__ import annotations

import falcon

from glancelite import errors
from glancelite.api import common
from glancelite.services import Services


class StoresInfoResource:
    def __init__(self, services: Services):
        self.settings = services.settings
        self.stores = services.stores

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.reject_body(req)
        if not self.settings.multi_store:
            raise errors.NotFound("Multi backend is not supported at this site.")
        common.send_json(resp, {"stores": self.stores.info()})


class StoresDetailResource:
    def __init__(self, services: Services):
        self.settings = services.settings
        self.stores = services.stores
        self.policy = services.policy

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.reject_body(req)
        if not self.settings.multi_store:
            raise errors.NotFound("Multi backend is not supported at this site.")
        if self.policy is not None:
            self.policy.enforce(common.context(req), "stores_info_detail")
        common.send_json(resp, {"stores": self.stores.detail()})
