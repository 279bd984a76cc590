"""Store capabilities: the bit values of glance_store's store-capabilities spec.

Derived flags include their base bit (READ_OFFSET = READ_ACCESS | offset bit),
so ``caps & READ_OFFSET == READ_OFFSET`` also checks READ_ACCESS.
"""

from __future__ import annotations

import enum


class Capability(enum.IntFlag):
    NONE = 0
    ALL = 255
    READ_ACCESS = 1
    READ_OFFSET = 3
    READ_CHUNK = 5
    READ_RANDOM = 7
    WRITE_ACCESS = 8
    WRITE_OFFSET = 24
    WRITE_CHUNK = 40
    WRITE_RANDOM = 56
    RW_ACCESS = 9
    RW_OFFSET = 27
    RW_CHUNK = 45
    RW_RANDOM = 63
    # The instance keeps no per-operation state and may serve every request.
    DRIVER_REUSABLE = 64


# The names /v2/info/stores/detail lists: each single-purpose flag, no RW_* shorthands.
_LISTED = (
    Capability.READ_ACCESS,
    Capability.READ_OFFSET,
    Capability.READ_CHUNK,
    Capability.READ_RANDOM,
    Capability.WRITE_ACCESS,
    Capability.WRITE_OFFSET,
    Capability.WRITE_CHUNK,
    Capability.WRITE_RANDOM,
    Capability.DRIVER_REUSABLE,
)


def contains(caps: int, wanted: int) -> bool:
    """True when every bit of ``wanted`` is in ``caps``."""
    return caps & wanted == wanted


def names_of(caps: int) -> list[str]:
    """Names of the capabilities ``caps`` holds, in bit order, for JSON."""
    return [flag.name for flag in _LISTED if contains(caps, flag)]


def presence(caps: int) -> dict[str, bool]:
    """Each listed capability's name and whether ``caps`` holds it (the metrics' 1 or 0)."""
    return {flag.name: contains(caps, flag) for flag in _LISTED}


def without(caps: int, removed: int) -> Capability:
    """Drop ``removed`` and every derived flag that needs one of its bits.

    glance_store's unset_capabilities leaves READ_RANDOM's other bits behind
    when READ_ACCESS goes; here losing an access bit loses its whole family.
    """
    result = int(caps) & ~int(removed)
    if not result & Capability.READ_ACCESS:
        result &= ~int(Capability.READ_RANDOM)
    if not result & Capability.WRITE_ACCESS:
        result &= ~int(Capability.WRITE_RANDOM)
    return Capability(result)
