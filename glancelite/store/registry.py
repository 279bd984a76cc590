"""Store type name -> driver class, imported only when a store of that type is built.

Modelled on fsspec's registry: a sorted table of dotted paths with an install
hint for the optional SDK each type needs. Third-party drivers may register
under the entry-point group ``glancelite.store.drivers`` (name = type,
value = ``module:Class``); ``load_entry_points()`` reads them once at start
(config.load and StoreSet), never at import time. Every type, built in or
not, gets the same treatment: config.py registers the store groups from
``options_of(type)``, lists them in the sample configuration, and the
StoreSet builds ``driver_for(store)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store.base import Driver

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "glancelite.store.drivers"


@dataclasses.dataclass(frozen=True)
class DriverSpec:
    """Where a store type's driver class and its option declarations live.

    ``options`` (``module:ATTRIBUTE``) is importable without the driver's optional SDK,
    so config.py and the sample generator read it on any machine; None means the
    driver class's own ``OPTIONS`` (entry-point drivers), read by importing the class.
    """

    target: str  # ``module:Class``
    options: str | None = None
    hint: str | None = None  # shown when the driver's SDK cannot be imported


_DRIVERS = "glancelite.store.drivers"

KNOWN_DRIVERS: dict[str, DriverSpec] = dict(
    sorted(
        {
            "file": DriverSpec(f"{_DRIVERS}.file:FileDriver", f"{_DRIVERS}.file:OPTIONS"),
            "http": DriverSpec(f"{_DRIVERS}.http:HttpDriver", f"{_DRIVERS}.http:OPTIONS"),
            "rbd": DriverSpec(
                f"{_DRIVERS}.rbd:RbdDriver",
                f"{_DRIVERS}.rbd_options:OPTIONS",
                "the rbd store needs the Ceph bindings: apt install python3-rados python3-rbd "
                "(tools/backends/install-backends.sh links them into the venv)",
            ),
            "s3": DriverSpec(
                f"{_DRIVERS}.s3:S3Driver",
                f"{_DRIVERS}.s3_options:OPTIONS",
                "the s3 store needs boto3: pip install 'glancelite[s3]'",
            ),
            # SwiftDriver.variant picks the multi-tenant driver when swift_store_multi_tenant is set.
            "swift": DriverSpec(
                f"{_DRIVERS}.swift.single_tenant:SwiftDriver",
                f"{_DRIVERS}.swift.options:OPTIONS",
                "the swift store needs python-swiftclient: pip install 'glancelite[swift]'",
            ),
        }.items()
    )
)

_registry: dict[str, DriverSpec] = dict(KNOWN_DRIVERS)
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
    return {name: spec.target for name, spec in sorted(_registry.items())}


def register(
    type_name: str,
    target: str | type[Driver],
    hint: str | None = None,
    *,
    options: str | None = None,
    clobber: bool = False,
) -> None:
    """Add a driver by dotted path (``module:Class``) or class; built-ins are kept unless ``clobber``.

    ``options`` (``module:ATTRIBUTE``) names option declarations importable without the
    driver's SDK; by default they are the driver class's ``OPTIONS``.
    """
    if type_name in _registry and not clobber:
        LOG.warning("store driver %r is already registered; keeping %s", type_name, _registry[type_name].target)
        return
    if isinstance(target, type):
        _loaded[type_name] = target
        target = f"{target.__module__}:{target.__qualname__}"
    else:
        _loaded.pop(type_name, None)
    _registry[type_name] = DriverSpec(target, options, hint)


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
    spec = _spec(type_name)
    module_name, _, class_name = spec.target.partition(":")
    module = _import(type_name, module_name, spec.hint)
    cls = getattr(module, class_name, None) or _only_driver_in(module, type_name)
    if cls is None:
        raise DriverUnavailable(type_name, f"{module_name} defines no driver class for type {type_name!r}")
    _loaded[type_name] = cls
    return cls


def driver_for(store: StoreSettings) -> type[Driver]:
    """The class that serves ``store``: its type's driver, or the variant its options choose."""
    return driver_class(store.type).variant(store)


def options_of(type_name: str) -> Sequence[Any]:
    """The oslo options of a ``type_name`` store group, declared once by its driver.

    Built-in types read them from a module that needs no optional SDK; entry-point
    drivers from their class's ``OPTIONS``.
    """
    spec = _spec(type_name)
    if spec.options is None:
        return tuple(driver_class(type_name).OPTIONS)
    module_name, _, attribute = spec.options.partition(":")
    return tuple(getattr(_import(type_name, module_name, spec.hint), attribute))


def _spec(type_name: str) -> DriverSpec:
    if type_name not in _registry:
        raise DriverUnavailable(type_name, f"unknown store type {type_name!r}; known types: {', '.join(known_types())}")
    return _registry[type_name]


def _import(type_name: str, module_name: str, hint: str | None):
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverUnavailable(type_name, f"cannot import the {type_name} store driver ({exc})", hint) from exc


def _only_driver_in(module, type_name: str) -> type[Driver] | None:
    """Tolerate a driver class named differently from the table: the module's Driver of that TYPE."""
    found = [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Driver) and obj is not Driver and getattr(obj, "TYPE", None) == type_name
    ]
    return found[0] if len(found) == 1 else None
