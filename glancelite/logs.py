"""Logging for every glancelite process through oslo.log, from Glance's [DEFAULT] logging options.

config.py declares oslo.log's options (debug, log_file, log_dir, use_syslog, use_journal, use_json,
log_config_append, default_log_levels, the format strings, rotation, ...) on the ConfigOpts it
reads; ``setup`` hands that object to oslo.log once per process, before anything else logs.
gunicorn's workers are forks of the master and inherit its handlers; they never set up again.

Inside a request, the caller's context is the thread's oslo.context (glancelite.context
``bind_to_logs``), so oslo.log's context format puts ``[global-id req-... user project ...]`` on
every line, as Glance's do.
"""

from __future__ import annotations

import importlib.metadata

from oslo_log import log as oslo_log

from glancelite.errors import ConfigError

PRODUCT = "glancelite"

_configured = False


def _version() -> str:
    try:
        return importlib.metadata.version("glancelite")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def setup(conf) -> None:
    """Configure the root logger from ``conf`` (config.read's ConfigOpts) once per process.

    A setting oslo.log cannot honour here (journald without its Python bindings, syslog on a
    platform without it, a log file that cannot be opened, a broken log_config_append) raises
    ConfigError naming the option: the service stops with one line instead of logging nowhere.
    """
    global _configured
    if _configured:
        return
    if conf.use_journal and not conf.log_config_append and not _journal_bindings_installed():
        # oslo.log would raise a bare RuntimeError ("Systemd bindings do not exist") from setup.
        raise ConfigError(
            "DEFAULT",
            "use_journal",
            "the systemd journal bindings are not installed (the python3-systemd package, "
            "or systemd-python from PyPI, in glancelite's environment)",
        )
    try:
        oslo_log.setup(conf, PRODUCT, _version())
    except oslo_log.LogConfigError as exc:
        raise ConfigError("DEFAULT", "log_config_append", _one_line(exc)) from None
    except RuntimeError as exc:  # oslo.log's other one: no syslog module on this platform
        option = "use_journal" if conf.use_journal else "use_syslog"
        raise ConfigError("DEFAULT", option, _one_line(exc)) from None
    except ImportError as exc:
        # publish_errors hands ERROR records to oslo.messaging's PublishErrorsHandler.
        raise ConfigError(
            "DEFAULT", "publish_errors", f"needs oslo.messaging, which cannot be imported: {_one_line(exc)}"
        ) from None
    except OSError as exc:
        option = "log_dir" if conf.log_dir and not conf.log_file else "log_file"
        raise ConfigError("DEFAULT", option, f"cannot open {exc.filename}: {exc.strerror}") from None
    _configured = True


def _journal_bindings_installed() -> bool:
    """The import oslo.log's journal handler depends on."""
    try:
        from systemd import journal  # noqa: F401
    except ImportError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
