"""Composition root: settings in, services built once, the falcon app out."""

from __future__ import annotations

import falcon

from glancelite import config
from glancelite.api import errors as api_errors
from glancelite.api import routes
from glancelite.api.middleware import RequestContextMiddleware
from glancelite.db import engine as db_engine
from glancelite.services import Services
from glancelite.services import cache as image_cache
from glancelite.services.image_data import ImageDataService
from glancelite.services.images import ImageService
from glancelite.services.imports import ImportService
from glancelite.services.locations import LocationService
from glancelite.services.members import MemberService
from glancelite.services.metadefs import MetadefService
from glancelite.services.policy import Policy
from glancelite.services.property_protections import PropertyProtections
from glancelite.services.quotas import Quotas
from glancelite.services.tasks import TaskService
from glancelite.settings import Settings
from glancelite.store.stores import StoreSet
from glancelite.tasks import runner as task_runner


def build_services(settings: Settings, conf=None) -> Services:
    """Build every collaborator once; ``conf`` is only for libraries that need oslo (policy)."""
    engine = db_engine.create_engine(settings.database_connection)
    services = Services(settings=settings, engine=engine)
    services.policy = Policy(config.policy_conf(conf))
    services.stores = StoreSet(settings)
    services.quotas = Quotas(settings, engine)  # keystone unified limits (no-op unless use_keystone_limits)
    services.image_data = ImageDataService(settings, engine, services.stores, services.policy)
    services.cache = image_cache.build(settings, engine, services.policy, services.stores)
    services.image_data.cache = services.cache.download_cache
    services.images = ImageService(services, PropertyProtections.build(settings, services.policy))
    services.image_data.images = services.images
    services.members = MemberService(services, services.images)
    services.metadefs = MetadefService(engine, services.policy)
    # One import runner per process (the taskflow stop-file spec-lite); interrupted imports recovered at start.
    runner = task_runner.for_process(
        max_workers=settings.taskflow_max_workers,
        engine_mode=settings.taskflow_engine_mode,
        stop_file=settings.healthcheck_disable_file,
    )
    services.imports = ImportService(settings, engine, services.stores, services.policy, services.image_data, runner)
    services.image_data.quotas = services.imports.quotas = services.quotas
    services.imports.recover()
    # A worker that died mid-upload (SIGKILL, OOM) left its image saving and its temp file behind.
    services.image_data.recover_dead_uploads()
    services.stores.remove_orphaned_partials()
    services.locations = LocationService(
        settings, engine, services.stores, services.policy, services.images, services.imports, runner
    )
    services.tasks = TaskService(
        settings, engine, services.policy, services.image_data, services.images, services.imports
    )
    return services


def create_app(settings: Settings, services: Services) -> falcon.App:
    app = falcon.App(
        middleware=[
            RequestContextMiddleware(
                settings.auth_flavor, services.policy.is_admin, anonymous=settings.allow_anonymous_access
            )
        ],
        cors_enable=False,
    )
    # Image data is streamed by the resources themselves; never let falcon buffer forms.
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = True
    api_errors.install(app)
    routes.register(app, services)
    return app
