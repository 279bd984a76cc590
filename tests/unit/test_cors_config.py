"""[cors] and [oslo_middleware]: read through config.py, with Glance's CORS defaults, and composed
into the pipeline only when they are on (the served behaviour is in tests/functional/test_cors_proxy.py)."""

from __future__ import annotations

import logging

import pytest
from oslo_middleware import cors, http_proxy_to_wsgi

from glancelite import config, opts, wsgi
from glancelite.db import engine as db_engine
from glancelite.db import tables
from tests.support.server import write_config

HORIZON = "https://horizon.example.com"


def load(path):
    return config.load([str(path)])


def test_an_origin_alone_gets_glances_cors_defaults(tmp_path):
    loaded = load(write_config(tmp_path, {"cors": {"allowed_origin": HORIZON}}))
    assert loaded.settings.cors_allowed_origins == (HORIZON,)
    group = loaded.conf.cors
    assert "X-Auth-Token" in group.allow_headers and "Content-MD5" in group.allow_headers
    assert group.allow_headers == opts.CORS_DEFAULTS["allow_headers"]
    assert group.expose_headers == opts.CORS_DEFAULTS["expose_headers"]
    assert group.allow_methods == ["GET", "PUT", "POST", "DELETE", "PATCH"]
    assert (group.allow_credentials, group.max_age) == (True, 3600)
    # The defaults belong to this configuration, not to oslo's module (no process-wide state).
    assert next(o for o in cors.OPTS if o.name == "allow_headers").default == []


def test_the_operators_cors_values_win_over_the_defaults(tmp_path):
    loaded = load(
        write_config(
            tmp_path,
            {
                "cors": {
                    "allowed_origin": f"{HORIZON},http://127.0.0.1:8080",
                    "allow_headers": "X-Auth-Token",
                    "allow_methods": "GET",
                    "max_age": "60",
                    "allow_credentials": "false",
                }
            },
        )
    )
    assert loaded.settings.cors_allowed_origins == (HORIZON, "http://127.0.0.1:8080")
    group = loaded.conf.cors
    assert (group.allow_headers, group.allow_methods, group.max_age, group.allow_credentials) == (
        ["X-Auth-Token"],
        ["GET"],
        60,
        False,
    )


def test_cors_and_proxy_options_are_read_not_reported(tmp_path, caplog):
    path = write_config(
        tmp_path,
        {
            "cors": {"allowed_origin": HORIZON, "expose_headers": "X-OpenStack-Request-ID"},
            # Glance reads no other [oslo_middleware] option (no sizelimit in its pipeline).
            "oslo_middleware": {"enable_proxy_headers_parsing": "true", "max_request_body_size": "1024"},
        },
    )
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    settings = load(path).settings
    assert settings.enable_proxy_headers_parsing is True
    reported = [r.getMessage() for r in caplog.records if "not supported" in r.getMessage()]
    assert reported == ["option [oslo_middleware] max_request_body_size is not supported by glancelite and is ignored"]


def test_cors_and_proxy_parsing_are_off_by_default(tmp_path):
    settings = load(write_config(tmp_path)).settings
    assert settings.cors_allowed_origins == ()
    assert settings.enable_proxy_headers_parsing is False


@pytest.mark.parametrize("origin", [HORIZON + "/", HORIZON + "/dashboard", "horizon.example.com"])
def test_an_origin_no_browser_sends_is_warned_about_once(tmp_path, caplog, origin):
    path = write_config(tmp_path, {"cors": {"allowed_origin": origin}})
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    load(path)
    load(path)  # a gunicorn worker re-reading the files after fork
    warnings = [r.getMessage() for r in caplog.records if "[cors] allowed_origin" in r.getMessage()]
    assert len(warnings) == 1 and repr(origin) in warnings[0]


def test_wildcard_and_ported_origins_are_not_warned_about(tmp_path, caplog):
    path = write_config(tmp_path, {"cors": {"allowed_origin": "*,http://127.0.0.1:8080,https://[::1]:443"}})
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    load(path)
    assert not [r for r in caplog.records if "[cors]" in r.getMessage()]


def _edge_layers(sections, tmp_path):
    """The pipeline's outer objects, outermost first, down to the version router (the log
    context reset that wraps everything is left out: it is not one of Glance's layers)."""
    loaded = load(write_config(tmp_path, sections))
    engine = db_engine.create_engine(loaded.settings.database)
    tables.metadata.create_all(engine)
    engine.dispose()
    app = wsgi.build_application(loaded)
    assert isinstance(app, wsgi.FreshLogContext)
    services = None
    layers = []
    node = app.app
    while node is not None:
        layers.append(type(node))
        if isinstance(node, wsgi.PathDispatch):
            services = node.services
            node = node.default
        elif isinstance(node, cors.CORS | http_proxy_to_wsgi.HTTPProxyToWSGI):
            node = node.application
        else:
            node = None
    services.close()
    return layers


def test_disabled_cors_and_proxy_parsing_add_no_layer(tmp_path):
    layers = _edge_layers({}, tmp_path)
    assert cors.CORS not in layers and http_proxy_to_wsgi.HTTPProxyToWSGI not in layers
    assert layers[0] is wsgi.PathDispatch


def test_layers_sit_where_glances_pipeline_has_them(tmp_path):
    sections = {"cors": {"allowed_origin": HORIZON}, "oslo_middleware": {"enable_proxy_headers_parsing": "true"}}
    layers = _edge_layers(sections, tmp_path)
    # cors -> healthcheck dispatch -> http_proxy_to_wsgi -> version negotiation
    assert layers[:3] == [cors.CORS, wsgi.PathDispatch, http_proxy_to_wsgi.HTTPProxyToWSGI]
    assert layers[3].__name__ == "VersionRouter"
