"""The WSGI application gunicorn serves, with the pipeline composed in code.

Glance's paste pipeline, outermost first: [CORS] -> healthcheck -> [HTTPProxyToWSGI] ->
version routing -> [keystone auth_token] -> falcon app. CORS (present when ``[cors]
allowed_origin`` names an origin) answers preflights before auth, so a browser needs no
token for them; HTTPProxyToWSGI (``[oslo_middleware] enable_proxy_headers_parsing``) makes
the proxy's scheme and host the ones links are built from.
The configuration file comes from GLANCELITE_CONFIG_FILE (colon-separated list).
"""

from __future__ import annotations

import ipaddress
import logging
import os

from oslo_middleware import cors, healthcheck, http_proxy_to_wsgi
from oslo_middleware.healthcheck import pluginbase

from glancelite import app as app_module
from glancelite import config, logs
from glancelite.api.middleware import DETAILED_HEALTH_PATH, LOCAL_CALLER_ENV, PUBLIC_PATHS
from glancelite.api.versions import VersionRouter
from glancelite.context import unbind_from_logs

LOG = logging.getLogger(__name__)
CONFIG_ENV = "GLANCELITE_CONFIG_FILE"
HEALTHCHECK_PATH = "/healthcheck"


def build_application(loaded: config.LoadedConfig):
    settings = loaded.settings
    services = app_module.build_services(settings, loaded.conf)
    falcon_app = app_module.create_app(settings, services)
    wsgi_app = falcon_app
    if settings.auth_flavor and settings.auth_flavor.startswith("keystone"):
        from keystonemiddleware import auth_token

        # COMPAT: Glance's paste pipeline sets delay_auth_decision = true, so a
        # request without a valid token reaches the context middleware, which
        # answers 401; auth_token then adds WWW-Authenticate: Keystone uri="..."
        # (www_authenticate_uri) to every 401 on the way out.
        protected = auth_token.AuthProtocol(
            falcon_app, {"oslo_config_config": loaded.conf, "delay_auth_decision": "true"}
        )
        # COMPAT: Glance's version negotiation answers the version documents
        # (/versions, and / for any unknown version) before authtoken runs.
        public = dict.fromkeys(PUBLIC_PATHS, falcon_app)
        wsgi_app = PathDispatch(public, protected, services)
    wsgi_app = VersionRouter(wsgi_app, settings)
    if settings.enable_proxy_headers_parsing:
        wsgi_app = http_proxy_to_wsgi.HTTPProxyToWSGI(wsgi_app, loaded.conf)
    # COMPAT: Glance's paste pipeline always has the disable_by_file backend, so a healthy service
    # answers "OK"; without a disable file glancelite's own backend gives the same answer.
    backends = (
        {"backends": "disable_by_file", "disable_by_file_path": settings.healthcheck_disable_file}
        if settings.healthcheck_disable_file
        else {"backends": AVAILABLE_BACKEND}
    )
    health = healthcheck.Healthcheck.app_factory({}, **backends)
    # The detailed view: a caller on this host goes straight to the falcon app (no token needed),
    # anyone else through the whole pipeline, where the resource wants an admin.
    detailed = LocalCallers(falcon_app, wsgi_app)
    edge = PathDispatch({HEALTHCHECK_PATH: health, DETAILED_HEALTH_PATH: detailed}, wsgi_app, services)
    if settings.cors_allowed_origins:
        # Reads [cors] from the loaded configuration, where config.py set Glance's defaults.
        edge = cors.CORS(edge, loaded.conf)
    return FreshLogContext(edge, services)


# The name pyproject.toml registers AlwaysAvailable under (entry point group oslo.middleware.healthcheck).
AVAILABLE_BACKEND = "glancelite_available"


class AlwaysAvailable(pluginbase.HealthcheckBaseExtension):
    """Healthcheck backend with nothing to consult: a service that answers is available."""

    def healthcheck(self, server_port: int) -> pluginbase.HealthcheckResult:
        return pluginbase.HealthcheckResult(available=True, reason="OK")


# Headers a proxy adds: a request carrying one came from elsewhere, whatever its peer address.
_PROXY_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO")


class LocalCallers:
    """Requests from a loopback address without proxy headers go to ``local``, marked as such;
    the others to ``default``."""

    def __init__(self, local, default):
        self.local = local
        self.default = default

    def __call__(self, environ, start_response):
        if _is_local(environ):
            environ[LOCAL_CALLER_ENV] = True
            return self.local(environ, start_response)
        return self.default(environ, start_response)


def _is_local(environ) -> bool:
    if any(environ.get(h) for h in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:  # a unix socket, or no address at all
        return False


class FreshLogContext:
    """Each request starts with no logging context: a request that never reaches the identity
    middleware (healthcheck, a refusal by auth_token) must not be logged under the previous
    request the same worker thread served."""

    def __init__(self, app, services):
        self.app = app
        # The outermost object carries the composed services for whoever stops the application.
        self.services = services

    def __call__(self, environ, start_response):
        unbind_from_logs()
        return self.app(environ, start_response)


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
    """For a WSGI server other than glancelite-api's gunicorn: logging is set up here, once."""
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(":") if f]
    conf = config.read(files)
    logs.setup(conf)
    return build_application(config.build(conf, files))
