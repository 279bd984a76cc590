"""Store type name -> driver class, imported only when a store of that type is built.

Modelled on fsspec's registry: a sorted table of dotted paths with an install
hint for the optional SDK each type needs. Third-party drivers may register
under the entry-point group ``glancelite.store.drivers`` (name = type,
value = ``module:Class``); ``load_entry_points()`` reads them once at start.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Mapping

from glancelite import errors
from glancelite.store.base import Driver

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "glancelite.store.drivers"


# type -> (``module:Class``, hint shown when the module's SDK cannot be imported)
KNOWN_DRIVERS: dict[str, tuple[str, str | None]] = dict(
    sorted(
        {
            "file": ("glancelite.store.drivers.file:FileDriver", None),
            "http": ("glancelite.store.drivers.http:HttpDriver", None),
            "rbd": (
                "glancelite.store.drivers.rbd:RbdDriver",
                "the rbd store needs the Ceph bindings: apt install python3-rados python3-rbd "
                "(tools/backends/install-backends.sh links them into the venv)",
            ),
            "s3": ("glancelite.store.drivers.s3:S3Driver", "the s3 store needs boto3: pip install 'glancelite[s3]'"),
            "swift": (
                "glancelite.store.drivers.swift:SwiftDriver",
                "the swift store needs python-swiftclient: pip install 'glancelite[swift]'",
            ),
        }.items()
    )
)

_registry: dict[str, tuple[str, str | None]] = dict(KNOWN_DRIVERS)
_loaded: dict[str, type[Driver]] = {}
_entry_points_read = False


class DriverUnavailable(errors.GlanceliteError):
    """The driver class cannot be loaded; ``hint`` says what to install."""

    def __init__(self, type_name: str, message: str, hint: str | None = None):
        self.type_name = type_name
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


def known_types() -> list[str]:
    return sorted(_registry)


def registered() -> Mapping[str, str]:
    """type -> ``module:Class`` of every driver currently known (built-in and plugins)."""
    return {name: target for name, (target, _) in sorted(_registry.items())}


def register(type_name: str, target: str | type[Driver], hint: str | None = None, *, clobber: bool = False) -> None:
    """Add a driver by dotted path (``module:Class``) or class; built-ins are kept unless ``clobber``."""
    if type_name in _registry and not clobber:
        LOG.warning("store driver %r is already registered; keeping %s", type_name, _registry[type_name][0])
        return
    if isinstance(target, type):
        _loaded[type_name] = target
        target = f"{target.__module__}:{target.__qualname__}"
    else:
        _loaded.pop(type_name, None)
    _registry[type_name] = (target, hint)


def load_entry_points() -> list[str]:
    """Register drivers published under ENTRY_POINT_GROUP (once per process); returns the type names added."""
    global _entry_points_read
    if _entry_points_read:
        return []
    _entry_points_read = True
    added = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _registry:
            LOG.warning("entry point %s=%s ignored: type %r is built in", ep.name, ep.value, ep.name)
            continue
        register(ep.name, ep.value)
        added.append(ep.name)
    return added


def driver_class(type_name: str) -> type[Driver]:
    """Import and return the driver class of ``type_name``; DriverUnavailable names what is missing."""
    if type_name in _loaded:
        return _loaded[type_name]
    if type_name not in _registry:
        raise DriverUnavailable(type_name, f"unknown store type {type_name!r}; known types: {', '.join(known_types())}")
    target, hint = _registry[type_name]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverUnavailable(type_name, f"cannot import the {type_name} store driver ({exc})", hint) from exc
    cls = getattr(module, class_name, None) or _only_driver_in(module, type_name)
    if cls is None:
        raise DriverUnavailable(type_name, f"{module_name} defines no driver class for type {type_name!r}")
    _loaded[type_name] = cls
    return cls


def _only_driver_in(module, type_name: str) -> type[Driver] | None:
    """Tolerate a driver class named differently from the table: the module's Driver of that TYPE."""
    found = [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Driver) and obj is not Driver and getattr(obj, "TYPE", None) == type_name
    ]
    return found[0] if len(found) == 1 else None
