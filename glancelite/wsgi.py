"""The WSGI application gunicorn serves, with the pipeline composed in code.

healthcheck (outside auth) -> version routing -> [keystone auth_token] -> falcon app.
The configuration file comes from GLANCELITE_CONFIG_FILE (colon-separated list).
"""

from __future__ import annotations

import logging
import os

from oslo_middleware import healthcheck

from glancelite import app as app_module
from glancelite import config
from glancelite.api.versions import VersionRouter

LOG = logging.getLogger(__name__)
CONFIG_ENV = "GLANCELITE_CONFIG_FILE"
HEALTHCHECK_PATH = "/healthcheck"


def build_application(loaded: config.LoadedConfig):
    settings = loaded.settings
    services = app_module.build_services(settings, loaded.conf)
    wsgi_app = app_module.create_app(settings, services)
    if settings.auth_flavor and settings.auth_flavor.startswith("keystone"):
        from keystonemiddleware import auth_token

        wsgi_app = auth_token.AuthProtocol(wsgi_app, {"oslo_config_config": loaded.conf})
    wsgi_app = VersionRouter(wsgi_app, settings)
    backends = (
        {"backends": "disable_by_file", "disable_by_file_path": settings.healthcheck_disable_file}
        if settings.healthcheck_disable_file
        else {"backends": ""}
    )
    health = healthcheck.Healthcheck.app_factory({}, **backends)
    return PathDispatch({HEALTHCHECK_PATH: health}, wsgi_app, services)


class PathDispatch:
    """Paste's urlmap in three lines: exact paths to their own apps, the rest to ``default``."""

    def __init__(self, apps: dict, default, services):
        self.apps = apps
        self.default = default
        self.services = services  # kept for shutdown hooks

    def __call__(self, environ, start_response):
        app = self.apps.get(environ.get("PATH_INFO", "").rstrip("/") or "/", self.default)
        return app(environ, start_response)


def application_from_env():
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(":") if f]
    return build_application(config.load(files))
