"""What the single-tenant and the multi-tenant swift drivers share: type, options, tuning, locations."""

from __future__ import annotations

import datetime
import re
import urllib.parse
from typing import Any

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability
from glancelite.store.cleanup import PendingRemovals
from glancelite.store.drivers.swift.client import MiB, Tuning, quiet_swiftclient_logger
from glancelite.store.drivers.swift.options import OPTIONS


class SwiftBase(base.Driver):
    TYPE = "swift"
    SCHEMES = ("swift", "swift+http", "swift+https", "swift+config")
    # Swift serves ranges (also of DLOs); all per-operation state is local, and
    # the token is shared under a lock, so one instance serves every request.
    STATIC_CAPABILITIES = Capability.RW_ACCESS | Capability.READ_RANDOM | Capability.DRIVER_REUSABLE
    OPTIONS = OPTIONS
    # The swift+config reference locations name (single tenant with swift_store_config_file).
    reference: str | None = None

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        quiet_swiftclient_logger()
        self.container = self.option("swift_store_container")
        large_object_size = self.option("swift_store_large_object_size") * MiB
        segment_size = self.option("swift_store_large_object_chunk_size") * MiB
        if large_object_size < 1 or segment_size < 1:
            raise errors.ConfigError(store.id, "swift_store_large_object_chunk_size", "sizes must be at least 1 MiB")
        self.tuning = Tuning(
            large_object_size=large_object_size,
            segment_size=segment_size,
            create_container=self.option("swift_store_create_container_on_put"),
            expire_soon=self.option("swift_store_expire_soon_interval"),
            retry_get_count=self.option("swift_store_retry_get_count"),
            insecure=self.option("swift_store_auth_insecure"),
            cacert=self.option("swift_store_cacert"),
        )
        # Partial uploads Swift could not delete when they failed, retried until it answers.
        self.pending_removals = PendingRemovals(store.id)

    @property
    def expire_soon(self) -> float:
        return self.tuning.expire_soon

    def properties(self) -> dict[str, Any]:
        return {"container": self.container, "large_object_size": self.tuning.large_object_size}

    def live_capabilities(self) -> Capability:
        return self.probe().capabilities

    def _split(self, url: str) -> tuple[urllib.parse.SplitResult, str, str]:
        """(split URL, container, object) of a location: the last two path elements."""
        split = urllib.parse.urlsplit(url)
        if split.scheme not in self.SCHEMES or url.count("://") != 1:
            raise base.BadStoreUri(f"Location is not a swift location: {redact(url)}")
        pieces = (split.netloc.rpartition("@")[2] + split.path).rstrip("/").split("/")
        if len(pieces) < 3 or not pieces[-1] or not pieces[-2]:
            raise base.BadStoreUri(f"swift location needs a container and an object: {redact(url)}")
        if split.scheme == "swift+config" and urllib.parse.unquote(split.netloc) != self.reference:
            raise base.BadStoreUri(f"Location {url} names a credentials reference store {self.store.id} does not use.")
        return split, urllib.parse.unquote(pieces[-2]), urllib.parse.unquote(pieces[-1])


def redact(url: str) -> str:
    split = urllib.parse.urlsplit(url)
    return split._replace(netloc=split.netloc.rpartition("@")[2]).geturl()


_SEGMENT = re.compile(r"^(?P<manifest>.+)-(?P<number>\d{5})$")


def fold_segments(listing: list[dict]) -> list[tuple[str, int, float]]:
    """(name, size, modified) per object of a container listing, segments folded into their manifest.

    The driver writes a large image as segments ``<obj>-00001``... beside a zero-byte manifest
    ``<obj>``: a segment whose manifest is listed adds its bytes (and its time, when newer) to
    the manifest's; one whose manifest is gone stays an object of its own (an orphan).
    """
    objects = {item["name"]: [int(item.get("bytes") or 0), _timestamp(item.get("last_modified"))] for item in listing}
    for name in list(objects):
        match = _SEGMENT.match(name)
        if match and match["manifest"] in objects:
            size, modified = objects.pop(name)
            manifest = objects[match["manifest"]]
            manifest[0] += size
            manifest[1] = max(manifest[1], modified)
    return [(name, size, modified) for name, (size, modified) in objects.items()]


def _timestamp(value: str | None) -> float:
    """Swift's listing time (ISO 8601, UTC, no zone) as seconds since the epoch; 0 when absent."""
    if not value:
        return 0.0
    return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC).timestamp()
