"""The only reader of oslo.config: glance-api.conf in, validated Settings out.

A configuration the service cannot run with raises ConfigError naming the
group and option; ``glancelite-manage config check`` and the API start-up
share this one verdict.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import io
import logging
import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Sequence

import sqlalchemy as sa
from oslo_config import cfg
from oslo_log import log as oslo_log
from oslo_policy import opts as policy_opts

from glancelite import option_groups, opts
from glancelite.errors import ConfigError
from glancelite.services import notifier
from glancelite.settings import (
    DatabaseSettings,
    ImportFilter,
    JobBoardSettings,
    KeystoneSettings,
    MetricsSettings,
    NotificationSettings,
    PropertyRule,
    Settings,
    StoreSettings,
)
from glancelite.store import registry
from glancelite.tasks import plugins as import_plugin_registry

LOG = logging.getLogger(__name__)

# (files, section, option) already reported, option None for a whole group: gunicorn workers
# fork from the master after it loaded the files, so each unsupported option is logged once.
_REPORTED_UNSUPPORTED: set[tuple[str, str, str | None]] = set()

# [cors] allowed_origin entries already warned about, for the same reason.
_REPORTED_ORIGINS: set[str] = set()

_QUOTA_RE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|TB)?\s*$")
_UNITS = {None: 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    # Handed only to libraries that insist on an oslo object (oslo.policy,
    # keystonemiddleware); glancelite's own code reads ``settings``.
    conf: cfg.ConfigOpts


def load(config_files: Sequence[str]) -> LoadedConfig:
    """Parse and validate; raise ConfigError on anything the service cannot run with."""
    return build(read(config_files), config_files)


def read(config_files: Sequence[str]) -> cfg.ConfigOpts:
    """Parse the files with every core option declared (oslo.log's too), nothing validated beyond
    the option types: enough to set up logging before ``build`` reports on the rest."""
    for path in config_files:
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise ConfigError("DEFAULT", "config_file", f"cannot read configuration file {path!r}")
    conf = cfg.ConfigOpts()
    _register_core(conf)
    registry.load_entry_points()  # third-party store types, before any store group is read
    try:
        _parse(conf, config_files)
        # The logging options, read before logging is set up: a bad value is reported here.
        for opt in opts.log_opts():
            getattr(conf, opt.dest)
        _register_messaging(conf, config_files)
    except cfg.ConfigFileParseError as exc:
        raise ConfigError("DEFAULT", "config_file", f"cannot parse configuration: {exc}") from exc
    except (cfg.Error, ValueError) as exc:
        raise _value_error(exc, config_files) from exc
    return conf


_CLI_VALUE_RE = re.compile(r"argument --(?P<name>\S+): Invalid (?P<type>.+) value: (?P<value>.*)$")


def _parse(conf: cfg.ConfigOpts, config_files: Sequence[str]) -> None:
    """conf(...), with oslo.config's check of command-line options' values turned into ConfigError.

    oslo.log's options are command-line options too; oslo.config checks their values from the
    files as it parses, writing the verdict to stderr and exiting: keep the one-line answer instead.
    """
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            conf(
                args=[],
                project="glance",
                prog="glance-api",
                default_config_files=list(config_files),
                default_config_dirs=[],
                validate_default_values=True,
            )
    except SystemExit:
        match = _CLI_VALUE_RE.search(captured.getvalue().strip())
        if not match:
            raise ConfigError("DEFAULT", None, " ".join(captured.getvalue().split()) or "cannot parse") from None
        raise ConfigError(
            "DEFAULT", match.group("name"), f"invalid value {match.group('value')!r}: not a {match.group('type')}"
        ) from None
    if captured.getvalue():
        sys.stderr.write(captured.getvalue())


def build(conf: cfg.ConfigOpts, config_files: Sequence[str]) -> LoadedConfig:
    """Validate what ``read`` parsed into Settings, logging each unsupported option once."""
    try:
        backends = dict(conf.enabled_backends or {})
        stores, default_store = _stores(conf, backends)
        settings = _settings(conf, tuple(config_files), stores, default_store, bool(backends))
        _check_database_url(settings.database.connection)
    except (cfg.Error, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise _value_error(exc, config_files) from exc
    policy_conf(conf)
    _register_library_groups(conf, config_files)
    _warn_unsupported(conf, config_files)
    return LoadedConfig(settings=settings, conf=conf)


_BAD_VALUE_RE = re.compile(r"Value for option (?P<name>\S+) from .* is not valid: (?P<reason>.*)$")


def _value_error(exc: Exception, files: Sequence[str]) -> ConfigError:
    """oslo names the option but not its group: find the group in the files."""
    match = _BAD_VALUE_RE.search(str(exc))
    if not match:
        return ConfigError("DEFAULT", None, str(exc))
    name, reason = match.group("name"), match.group("reason")
    parser = _read_raw(files)
    group = next(
        (s for s in parser.sections() if parser.has_option(s, name) and name not in parser.defaults()),
        "DEFAULT",
    )
    value = parser.defaults().get(name) if group == "DEFAULT" else parser.get(group, name)
    return ConfigError(group, name, f"invalid value {value!r}: {reason}")


def _register_core(conf: cfg.ConfigOpts) -> None:
    # debug, log_file, log_dir, use_json, use_syslog, ...: oslo.log's own declarations, as Glance.
    oslo_log.register_options(conf)
    conf.register_opts(opts.DEFAULT_OPTS)
    conf.register_opts(opts.DELAYED_DELETE_OPTS)
    for group, group_opts in (
        ("database", opts.DATABASE_OPTS),
        ("glance_store", opts.GLANCE_STORE_OPTS),
        ("task", opts.TASK_OPTS),
        ("taskflow_executor", opts.TASKFLOW_OPTS),
        ("import_filtering_opts", opts.IMPORT_FILTERING_OPTS),
        ("glance_download_properties", opts.GLANCE_DOWNLOAD_PROPERTIES_OPTS),
        ("image_import_opts", opts.IMAGE_IMPORT_OPTS),
        ("inject_metadata_properties", opts.INJECT_METADATA_OPTS),
        ("image_conversion", opts.IMAGE_CONVERSION_OPTS),
        ("paste_deploy", opts.PASTE_DEPLOY_OPTS),
        ("healthcheck", opts.HEALTHCHECK_OPTS),
        ("metrics", opts.METRICS_OPTS),
        ("taskflow_jobboard", opts.JOBBOARD_OPTS),
        ("image_format", opts.IMAGE_FORMAT_OPTS),
    ):
        conf.register_opts(group_opts, group=group)
    conf.register_opts(opts.CORS_OPTS, group="cors")
    for name, default in opts.CORS_DEFAULTS.items():
        conf.set_default(name, default, group="cors")
    conf.register_opts(opts.PROXY_OPTS, group="oslo_middleware")


# oslo.messaging's [DEFAULT] options glancelite uses: the notification transport and its exchange.
MESSAGING_DEFAULT_OPTS = ("transport_url", "control_exchange")
# Glance's control exchange (oslo.messaging's default is "openstack"): Ceilometer listens on "glance".
CONTROL_EXCHANGE = "glance"


def messaging_opts(*, sample: bool = False) -> list[tuple[str, list[cfg.Opt]]]:
    """oslo.messaging's own option objects, so that the ones it registers later are the same.

    [DEFAULT] transport_url and control_exchange, [oslo_messaging_notifications], and (not for
    the sample: they are oslo.messaging's namespace) the driver groups such as
    [oslo_messaging_rabbit], which the driver reads.
    """
    oslo_messaging = notifier.load_oslo_messaging()
    from oslo_messaging import opts as oslo_messaging_opts

    oslo_messaging.set_transport_defaults(CONTROL_EXCHANGE)
    found = []
    for group, group_opts in oslo_messaging_opts.list_opts():
        if group is None:
            found.append(("DEFAULT", [o for o in group_opts if o.name in MESSAGING_DEFAULT_OPTS]))
        elif group == "oslo_messaging_notifications" or not sample:
            found.append((group, list(group_opts)))
    return found


def _register_messaging(conf: cfg.ConfigOpts, files: Sequence[str]) -> None:
    """Register oslo.messaging's options when the files configure it; otherwise notifications are off
    and oslo.messaging is not even imported (it costs a third of a second and pulls in eventlet)."""
    parser = _read_raw(files)
    if not any(s.startswith("oslo_messaging_") for s in parser.sections()) and not any(
        name in parser.defaults() for name in MESSAGING_DEFAULT_OPTS
    ):
        return
    for group, group_opts in messaging_opts():
        conf.register_opts(group_opts, group=None if group == "DEFAULT" else group)


def _notifications(conf: cfg.ConfigOpts) -> NotificationSettings:
    drivers = tuple(conf.oslo_messaging_notifications.driver) if "oslo_messaging_notifications" in conf else ()
    return NotificationSettings(
        drivers=drivers,
        publisher_id=conf.default_publisher_id,
        disabled=tuple(d.strip() for d in conf.disabled_notifications if d.strip()),
    )


def _metrics(conf: cfg.ConfigOpts) -> MetricsSettings:
    group = conf.metrics
    path = group.path if group.path.startswith("/") else "/" + group.path
    if group.enabled and group.bind_port == conf.bind_port:
        # The metrics never share the public API's listener (nor its port on another address).
        raise ConfigError("metrics", "bind_port", f"{group.bind_port} is the API's own port; choose another")
    return MetricsSettings(enabled=group.enabled, bind_host=group.bind_host, bind_port=group.bind_port, path=path)


def _jobboard(conf: cfg.ConfigOpts) -> JobBoardSettings:
    group = conf.taskflow_jobboard
    url = group.backend_url or None
    if url and urllib.parse.urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            "taskflow_jobboard", "backend_url", f"must be a redis://, rediss:// or unix:// URL, got {url!r}"
        )
    return JobBoardSettings(
        backend_url=url,
        board_name=group.board_name,
        claim_expiry=group.claim_expiry,
        conductor_name=group.conductor_name or socket.gethostname(),
        persistence_connection=group.persistence_connection or None,
        shared_staging=group.shared_staging,
    )


def store_group_opts() -> list[cfg.Opt]:
    """Every option a store group may hold, for the sample: the common ones, then each type's.

    The types are the registry's (built in and entry points), in name order; an option
    two types declare is listed once.
    """
    registry.load_entry_points()
    group_opts = list(opts.STORE_COMMON_OPTS)
    seen = {o.dest for o in group_opts}
    for type_name in registry.known_types():
        try:
            type_opts = registry.options_of(type_name)
        except registry.DriverUnavailable as exc:
            LOG.warning("store type %s is left out of the sample configuration: %s", type_name, exc.message)
            continue
        for opt in type_opts:
            if opt.dest not in seen:
                seen.add(opt.dest)
                group_opts.append(opt)
    return group_opts


def _type_opts(group: str, store_type: str) -> list[cfg.Opt]:
    """The options the ``store_type`` driver declares; ConfigError naming ``group`` if it cannot say."""
    try:
        return list(registry.options_of(store_type))
    except registry.DriverUnavailable as exc:
        raise ConfigError(group, None, exc.message) from exc


def _register_store_group(conf: cfg.ConfigOpts, store_id: str, store_type: str, datadir_default: str | None = None):
    type_opts = _type_opts(store_id, store_type)
    conf.register_opts([*opts.STORE_COMMON_OPTS, *type_opts], group=store_id)
    if datadir_default is not None:
        conf.set_default("filesystem_store_datadir", datadir_default, group=store_id)
    group = getattr(conf, store_id)
    return {o.dest: getattr(group, o.dest) for o in type_opts}, group


def _store(conf, store_id, store_type, *, reserved=False, datadir_default=None) -> StoreSettings:
    options, group = _register_store_group(conf, store_id, store_type, datadir_default)
    return StoreSettings(
        id=store_id,
        type=store_type,
        description=group.store_description,
        weight=group.weight,
        options=options,
        reserved=reserved,
        read_only=group.read_only,
    )


def _stores(conf: cfg.ConfigOpts, backends: dict[str, str]) -> tuple[tuple[StoreSettings, ...], str]:
    known = registry.known_types()
    if backends:
        stores = []
        for store_id, store_type in backends.items():
            if store_id.startswith(opts.RESERVED_PREFIX):
                raise ConfigError(
                    "DEFAULT",
                    "enabled_backends",
                    f"store id {store_id!r} is reserved: ids starting with '{opts.RESERVED_PREFIX}' belong to glancelite",
                )
            if store_type not in known:
                raise ConfigError(
                    "DEFAULT",
                    "enabled_backends",
                    f"store {store_id!r} has unknown type {store_type!r}; known types: {', '.join(known)}",
                )
            stores.append(_store(conf, store_id, store_type))
        for name in opts.RESERVED_STORES:
            stores.append(_store(conf, name, "file", reserved=True, datadir_default=f"/var/lib/glance/{name}"))
        default = conf.glance_store.default_backend
        if not default:
            raise ConfigError("glance_store", "default_backend", "must be set when enabled_backends is set")
        if default not in backends:
            raise ConfigError(
                "glance_store",
                "default_backend",
                f"{default!r} is not one of enabled_backends ({', '.join(backends)})",
            )
    else:
        stores, default = _legacy_stores(conf, known)
    _check_unique_http(stores)
    _check_distinct_datadirs(stores)
    return tuple(stores), default


def _legacy_stores(conf: cfg.ConfigOpts, known: list[str]) -> tuple[list[StoreSettings], str]:
    """Single-store mode as one StoreSet: stores named after their type."""
    gs = conf.glance_store
    stores = []
    for store_type in gs.stores:
        store_type = store_type.strip()
        if store_type in ("filesystem",):
            store_type = "file"
        if store_type == "https":
            store_type = "http"
        if store_type not in known:
            raise ConfigError(
                "glance_store", "stores", f"unknown store type {store_type!r}; known types: {', '.join(known)}"
            )
        if any(s.id == store_type for s in stores):
            continue
        stores.append(_legacy_store(conf, store_type))
    default = gs.default_store
    if default == "filesystem":
        default = "file"
    if not any(s.id == default for s in stores):
        raise ConfigError("glance_store", "default_store", f"{default!r} is not one of stores ({', '.join(gs.stores)})")
    staging = urllib.parse.urlparse(conf.node_staging_uri)
    if staging.scheme != "file" or not staging.path:
        raise ConfigError("DEFAULT", "node_staging_uri", f"must be a file:// URI, got {conf.node_staging_uri!r}")
    if _set_by_operator(conf, "node_staging_uri"):
        LOG.warning("node_staging_uri is deprecated: set enabled_backends to use os_glance_staging_store")
    work_dir = conf.task.work_dir
    if work_dir:
        LOG.warning("[task] work_dir is deprecated: set enabled_backends to use os_glance_tasks_store")
    else:
        work_dir = os.path.join(os.path.dirname(staging.path.rstrip("/")) or "/", "glancelite-tasks")
    for name, datadir in zip(opts.RESERVED_STORES, (staging.path, work_dir), strict=True):
        stores.append(
            StoreSettings(
                id=name,
                type="file",
                description=None,
                weight=0,
                reserved=True,
                options={**_file_defaults(), "filesystem_store_datadir": datadir},
            )
        )
    return stores, default


def _legacy_store(conf: cfg.ConfigOpts, store_type: str) -> StoreSettings:
    """Single-store driver options live in [glance_store] itself, as in glance_store."""
    group = "glance_store"
    type_opts = _type_opts(group, store_type)
    conf.register_opts([o for o in type_opts if o.dest not in {x.dest for x in opts.GLANCE_STORE_OPTS}], group=group)
    options = {o.dest: getattr(conf.glance_store, o.dest) for o in type_opts}
    return StoreSettings(id=store_type, type=store_type, description=None, weight=0, options=options)


def _file_defaults() -> dict:
    return {o.dest: o.default for o in registry.options_of("file")}


def file_datadirs(store: StoreSettings) -> list[str]:
    """Every data directory a file store writes to, normalised."""
    dirs = []
    if store.options.get("filesystem_store_datadir"):
        dirs.append(store.options["filesystem_store_datadir"])
    for entry in store.options.get("filesystem_store_datadirs") or ():
        path, _, priority = entry.rpartition(":")
        dirs.append(path if priority.isdigit() and path else entry)
    return [os.path.realpath(d) for d in dirs]


def _check_distinct_datadirs(stores: list[StoreSettings]) -> None:
    owner: dict[str, str] = {}
    for store in stores:
        if store.type != "file":
            continue
        dirs = file_datadirs(store)
        if not dirs:
            raise ConfigError(store.id, "filesystem_store_datadir", "a file store needs a data directory")
        for d in dirs:
            if d in owner and owner[d] != store.id:
                raise ConfigError(
                    store.id,
                    "filesystem_store_datadir",
                    f"{d} is also the data directory of store {owner[d]!r}; each file store needs its own",
                )
            owner[d] = store.id


def _check_unique_http(stores: list[StoreSettings]) -> None:
    http = [s.id for s in stores if s.type == "http"]
    if len(http) > 1:
        raise ConfigError("DEFAULT", "enabled_backends", f"only one http store is allowed, got {', '.join(http)}")


def _check_database_url(url: str) -> None:
    """The URL must parse and name a dialect SQLAlchemy has; reaching the server is db check's job."""
    try:
        sa.engine.make_url(url).get_dialect()
    except (sa.exc.NoSuchModuleError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError: first
        raise ConfigError("database", "connection", f"unsupported database in {url!r}: {exc}") from None
    except sa.exc.ArgumentError:
        raise ConfigError("database", "connection", f"not a database URL: {url!r}") from None


def database_settings(group) -> DatabaseSettings:
    """[database]: the oslo.db options glancelite applies, with the bounds SQLAlchemy needs."""
    for name, low in (
        ("max_pool_size", 0),
        ("max_overflow", -1),
        ("pool_timeout", 0),
        ("connection_recycle_time", -1),
        ("max_retries", -1),
        ("retry_interval", 0),
    ):
        value = getattr(group, name)
        if value is not None and value < low:
            raise ConfigError("database", name, f"must be at least {low}, got {value}")
    return DatabaseSettings(
        connection=group.connection,
        connection_parameters=group.connection_parameters or "",
        max_pool_size=group.max_pool_size,
        max_overflow=group.max_overflow,
        pool_timeout=group.pool_timeout,
        connection_recycle_time=group.connection_recycle_time,
        max_retries=group.max_retries,
        retry_interval=group.retry_interval,
        sqlite_synchronous=group.sqlite_synchronous,
        connection_debug=group.connection_debug,
        connection_trace=group.connection_trace,
    )


def parse_storage_quota(value: str) -> int:
    match = _QUOTA_RE.match(value or "0")
    if not match:
        raise ConfigError("DEFAULT", "user_storage_quota", f"{value!r} is not a size such as 10GB")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _settings(conf, files, stores, default_store, multi_store) -> Settings:
    flt = conf.import_filtering_opts
    workers = conf.workers or os.cpu_count() or 1
    return Settings(
        config_files=files,
        bind_host=conf.bind_host,
        bind_port=conf.bind_port,
        workers=workers,
        database=database_settings(conf.database),
        enabled_import_methods=tuple(conf.enabled_import_methods),
        image_size_cap=conf.image_size_cap,
        # Glance ignores user_storage_quota when the keystone limits are on.
        user_storage_quota=0 if conf.use_keystone_limits else parse_storage_quota(conf.user_storage_quota),
        use_keystone_limits=conf.use_keystone_limits,
        api_limit_max=conf.api_limit_max,
        limit_param_default=conf.limit_param_default,
        image_member_quota=conf.image_member_quota,
        image_property_quota=conf.image_property_quota,
        image_tag_quota=conf.image_tag_quota,
        image_location_quota=conf.image_location_quota,
        worker_self_reference_url=conf.worker_self_reference_url,
        public_endpoint=conf.public_endpoint,
        hashing_algorithm=conf.hashing_algorithm,
        do_secure_hash=conf.do_secure_hash,
        http_retries=conf.http_retries,
        show_image_direct_url=conf.show_image_direct_url,
        show_multiple_locations=conf.show_multiple_locations,
        image_cache_dir=conf.image_cache_dir,
        image_cache_max_size=conf.image_cache_max_size,
        image_cache_stall_time=conf.image_cache_stall_time,
        cache_prefetcher_interval=conf.cache_prefetcher_interval,
        disk_formats=tuple(conf.image_format.disk_formats),
        container_formats=tuple(conf.image_format.container_formats),
        require_image_format_match=conf.image_format.require_image_format_match,
        vmdk_allowed_types=tuple(conf.image_format.vmdk_allowed_types),
        gpt_safety_checks_nonfatal=tuple(conf.image_format.gpt_safety_checks_nonfatal),
        multi_store=multi_store,
        stores=stores,
        default_store=default_store,
        store_capability_refresh_interval=conf.store_capability_refresh_interval,
        task_time_to_live_hours=conf.task.task_time_to_live,
        taskflow_engine_mode=conf.taskflow_executor.engine_mode,
        taskflow_max_workers=conf.taskflow_executor.max_workers,
        import_filter=ImportFilter(
            allowed_schemes=tuple(flt.allowed_schemes),
            disallowed_schemes=tuple(flt.disallowed_schemes),
            allowed_hosts=tuple(flt.allowed_hosts),
            disallowed_hosts=tuple(flt.disallowed_hosts),
            allowed_ports=tuple(flt.allowed_ports),
            disallowed_ports=tuple(flt.disallowed_ports),
        ),
        glance_download_properties=tuple(conf.glance_download_properties.extra_properties),
        image_import_plugins=import_plugins(conf.image_import_opts.image_import_plugins),
        max_parallel_stores=conf.image_import_opts.max_parallel_stores,
        import_progress_interval=conf.image_import_opts.import_progress_interval,
        inject_ignore_user_roles=tuple(conf.inject_metadata_properties.ignore_user_roles),
        inject_properties=dict(conf.inject_metadata_properties.inject or {}),
        image_conversion_output_format=conf.image_conversion.output_format,
        auth_flavor=(conf.paste_deploy.flavor or None),
        allow_anonymous_access=conf.allow_anonymous_access,
        client_socket_timeout=conf.client_socket_timeout,
        max_transfers_per_worker=conf.max_transfers_per_worker,
        keystone=KeystoneSettings(_raw_group(files, "keystone_authtoken")),
        healthcheck_disable_file=conf.healthcheck.disable_by_file_path,
        cors_allowed_origins=cors_origins(conf.cors.allowed_origin),
        enable_proxy_headers_parsing=conf.oslo_middleware.enable_proxy_headers_parsing,
        notifications=_notifications(conf),
        metrics=_metrics(conf),
        jobboard=_jobboard(conf),
        property_protection_file=conf.property_protection_file or None,
        property_protection_rule_format=conf.property_protection_rule_format,
        property_rules=property_rules(conf),
        delayed_delete=conf.delayed_delete,
        scrub_time=conf.scrub_time,
        scrub_pool_size=conf.scrub_pool_size,
        scrubber_wakeup_time=conf.wakeup_time,
        scrubber_daemon=conf.daemon,
    )


def import_plugins(names) -> tuple[str, ...]:
    """[image_import_opts] image_import_plugins: every name must be a plugin glancelite has."""
    unknown = [n for n in names if n not in import_plugin_registry.NAMES]
    if unknown:
        raise ConfigError(
            "image_import_opts",
            "image_import_plugins",
            f"unknown import plugin(s) {', '.join(map(repr, unknown))}; "
            f"known plugins: {', '.join(import_plugin_registry.NAMES)}",
        )
    return tuple(names)


_ORIGIN_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$", re.IGNORECASE)


def cors_origins(values) -> tuple[str, ...]:
    """[cors] allowed_origin; the CORS middleware is built only when it names an origin.

    oslo's CORS compares the browser's Origin header with each entry as written, so an
    entry that is no origin (a path, a trailing slash) never matches: warn, as Glance
    would serve it the same way.
    """
    origins = tuple(v for v in (values or ()) if v)
    for origin in origins:
        if origin != "*" and not _ORIGIN_RE.match(origin) and origin not in _REPORTED_ORIGINS:
            _REPORTED_ORIGINS.add(origin)
            LOG.warning(
                "[cors] allowed_origin %r is not of the form <scheme>://<host>[:<port>] "
                "(no path, no trailing slash): no browser's Origin header will match it",
                origin,
            )
    return origins


PROPERTY_OPERATIONS = ("create", "read", "update", "delete")


def property_rules(conf: cfg.ConfigOpts) -> tuple[PropertyRule, ...] | None:
    """[DEFAULT] property_protection_file read as Glance's property_utils reads it; None when unset.

    A relative path is looked up beside the configuration files (oslo's find_file, as Glance).
    The file is parsed by configparser with its defaults (Glance's parser): a [DEFAULT]
    section supplies missing operations and option names are case-insensitive.
    """
    name = conf.property_protection_file
    if not name:
        return None
    option = ("DEFAULT", "property_protection_file")
    path = conf.find_file(name)
    if path is None or not os.path.isfile(path):
        raise ConfigError(*option, f"cannot find property protection file {name!r}")
    if not os.access(path, os.R_OK):
        # Glance's configparser would skip an unreadable file and protect nothing: refuse instead.
        raise ConfigError(*option, f"cannot read property protection file {path!r}")
    parser = configparser.ConfigParser()
    policies = conf.property_protection_rule_format == "policies"
    rules = []
    try:
        parser.read(path)
        for section in parser.sections():
            try:
                re.compile(section)
            except re.error as exc:
                raise ConfigError(*option, f"{path}: section [{section}] is not a regular expression: {exc}") from None
            operations = {}
            for operation in PROPERTY_OPERATIONS:
                if not parser.has_option(section, operation):
                    raise ConfigError(*option, f"{path}: section [{section}] has no {operation!r} option")
                operations[operation] = _property_permissions(
                    path, section, operation, parser.get(section, operation), policies
                )
            rules.append(PropertyRule(pattern=section, **operations))
    except configparser.Error as exc:
        detail = " ".join(str(exc).split())  # configparser's messages span lines: keep the one-line verdict
        raise ConfigError(*option, f"cannot parse property protection file {path!r}: {detail}") from None
    return tuple(rules)


def _property_permissions(path: str, section: str, operation: str, value: str, policies: bool) -> tuple[str, ...]:
    option = ("DEFAULT", "property_protection_file")
    value = value.strip()
    if not value:
        LOG.warning(
            "property protection [%s] %s is empty in %s: no one may perform this operation", section, operation, path
        )
        return ()
    if policies:
        if "," in value:
            raise ConfigError(
                *option,
                f"{path}: [{section}] {operation} = {value}: one policy rule per operation "
                "(combine rules in the policy file)",
            )
        return (value,)
    # Role names are compared in lower case, as Glance does.
    roles = tuple(role.strip().lower() for role in value.split(","))
    if "@" in roles and "!" in roles:
        raise ConfigError(*option, f"{path}: [{section}] {operation} = {value}: '@' and '!' are mutually exclusive")
    return roles


def _read_raw(files: Sequence[str]) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # option names are case sensitive in oslo
    for path in files:
        try:
            parser.read(path)
        except configparser.Error:
            # oslo.config already parsed these files; anything it accepted but
            # configparser cannot read (multi-valued options) is not ours to judge.
            continue
    return parser


def _raw_group(files: Sequence[str], group: str) -> dict[str, str]:
    parser = _read_raw(files)
    return dict(parser.items(group)) if parser.has_section(group) else {}


def _register_library_groups(conf: cfg.ConfigOpts, files: Sequence[str]) -> None:
    """Declare, for the groups the files have, the options of the libraries that read them from ``conf``.

    keystonemiddleware's auth_token (built on ``conf`` in wsgi.py) and oslo.limit (which reads
    the same files into cfg.CONF, quotas.py) declare their options only when they are built;
    declaring the libraries' own option objects here, with the options of the keystoneauth
    plugin ``auth_type`` names, lets the start-up report tell their options from unknown ones.
    oslo.policy's are declared by ``policy_conf``; oslo.messaging's by ``read``.
    """
    sections = set(_read_raw(files).sections())
    if "keystone_authtoken" in sections:
        from keystonemiddleware import auth_token

        # Every option auth_token registers when built, deprecated ones included (the same objects).
        for group, group_opts in auth_token.list_opts():
            conf.register_opts(group_opts, group=group)
        _register_auth_plugin(conf, "keystone_authtoken", files)
    if "oslo_limit" in sections:
        from keystoneauth1 import loading
        from oslo_limit import opts as limit_opts

        # Declares oslo.limit's endpoint_* options on conf (and keystoneauth's on cfg.CONF, as
        # importing oslo_limit.limit does); the keystoneauth options it reads are declared below.
        limit_opts.register_opts(conf)
        loading.register_session_conf_options(conf, "oslo_limit")
        loading.register_adapter_conf_options(conf, "oslo_limit", include_deprecated=False)
        _register_auth_plugin(conf, "oslo_limit", files)


def _register_auth_plugin(conf: cfg.ConfigOpts, group: str, files: Sequence[str]) -> None:
    """keystoneauth's ``auth_type``/``auth_section`` in ``group`` and the options of the plugin named,
    in the group they are read from (``auth_section`` when set), as keystoneauth loads them."""
    from keystoneauth1 import exceptions as ksa_exceptions
    from keystoneauth1 import loading

    loading.register_auth_conf_options(conf, group)
    section = conf[group].auth_section or group
    plugin = conf[section].auth_type
    if not plugin:
        return
    try:
        loader = loading.get_plugin_loader(plugin)
    except ksa_exceptions.NoMatchingPlugin:
        key = (_files_key(files), section, "auth_type")
        if key in _REPORTED_UNSUPPORTED:
            return
        _REPORTED_UNSUPPORTED.add(key)
        LOG.warning("[%s] auth_type %r is not a keystoneauth plugin: its options cannot be checked", section, plugin)
        return
    conf.register_opts(loading.get_auth_plugin_conf_options(loader), group=section)


def _warn_unsupported(conf: cfg.ConfigOpts, files: Sequence[str]) -> None:
    """Log once, at start, every option in the files that nothing reads.

    A Glance group glancelite does not take (option_groups: not applicable, not yet) gets one
    line saying why; any other option nothing declared gets a line of its own.
    """
    parser = _read_raw(files)
    source = _files_key(files)
    for section in ["DEFAULT", *parser.sections()]:
        items = (
            parser.defaults()
            if section == "DEFAULT"
            else {k: v for k, v in parser.items(section) if k not in parser.defaults()}
        )
        known = option_groups.BY_NAME.get(section)
        if items and known and known.status is not option_groups.Status.TAKEN and section not in conf:
            _warn_group_not_taken(source, known)
            continue
        for name in items:
            if not _is_registered(conf, None if section == "DEFAULT" else section, name):
                key = (source, section, name)
                if key in _REPORTED_UNSUPPORTED:
                    continue
                _REPORTED_UNSUPPORTED.add(key)
                if section == "database" and name in opts.DATABASE_NOT_APPLICABLE:
                    LOG.warning(
                        "option [database] %s is not applicable to glancelite (SQLAlchemy on SQLite or "
                        "PostgreSQL) and is ignored",
                        name,
                    )
                    continue
                LOG.warning("option [%s] %s is not supported by glancelite and is ignored", section, name)


def _files_key(files: Sequence[str]) -> str:
    return "|".join(os.path.abspath(f) for f in files)


def _warn_group_not_taken(source: str, group: option_groups.Group) -> None:
    key = (source, group.name, None)
    if key in _REPORTED_UNSUPPORTED:
        return
    _REPORTED_UNSUPPORTED.add(key)
    if group.status is option_groups.Status.NOT_APPLICABLE:
        LOG.warning("[%s] is not applicable to glancelite: %s", group.name, group.plain_detail)
    else:
        LOG.warning("[%s] is not supported by glancelite yet and is ignored: %s", group.name, group.plain_detail)


def _set_by_operator(conf: cfg.ConfigOpts, name: str, group: str | None = None) -> bool:
    """Whether a configuration file (not the option's default) gave ``name`` its value."""
    return conf.get_location(name, group).location is not cfg.Locations.opt_default


def _is_registered(conf: cfg.ConfigOpts, group: str | None, name: str) -> bool:
    try:
        if group is None:
            return name in conf
        return group in conf and name in getattr(conf, group)
    except cfg.NoSuchOptError:
        return False


def policy_conf(conf: cfg.ConfigOpts | None = None) -> cfg.ConfigOpts:
    """The oslo object oslo.policy reads ``[oslo_policy]`` from, with its options declared.

    ``conf``: a loaded configuration (load() passes its own); None builds one with the
    defaults only, never picking up a stray /etc/glance file. Declared: oslo.policy's
    options, and glancelite's ``enforce_scope`` when this oslo.policy has none.
    """
    if conf is None:
        conf = cfg.ConfigOpts()
        conf([], project="glance", default_config_files=[], default_config_dirs=[])
    policy_opts.set_defaults(conf)
    if "enforce_scope" not in conf.oslo_policy:
        conf.register_opts(opts.POLICY_OPTS, group="oslo_policy")
    return conf
