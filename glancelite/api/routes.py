"""The whole URL table, in one place."""

from __future__ import annotations

import falcon

from glancelite.api import cache, image_data, images, imports, info, locations, metadefs, tasks, versions
from glancelite.services import Services


def register(app: falcon.App, services: Services) -> None:
    versions.register(app, services.settings)
    images.register(app, services)
    image_data.register(app, services)
    info.register(app, services)
    imports.register(app, services)
    locations.register(app, services)
    tasks.register(app, services)
    cache.register(app, services)
    metadefs.register(app, services)
