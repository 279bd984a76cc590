"""GET /v2/images query strings: parsed and checked into a ListQuery, every bad value a 400."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from glancelite import errors
from glancelite.api import common
from glancelite.services.image_rules import ListQuery
from glancelite.services.images import SORT_KEYS
from glancelite.settings import Settings

IN_FILTERS = ("name", "id", "status", "container_format", "disk_format")
EXACT_FILTERS = ("owner", "checksum", "os_hash_value")
# Glance filters any other image column by equality too (tempest lists by ?size=N).
INT_FILTERS = ("size", "virtual_size", "min_ram", "min_disk")
TIME_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
VISIBILITIES = ("public", "private", "shared", "community", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
NOT_FILTERS = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort", "visibility", "member_status"})
MAX_PARAM = 4096  # characters; longer values name nothing we store


def params(query_string: str) -> list[tuple[str, str]]:
    try:
        pairs = urllib.parse.parse_qsl(query_string or "", keep_blank_values=True, errors="strict", max_num_fields=500)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.Invalid(f"Invalid query string: {exc}") from None
    for key, value in pairs:
        if len(value) > MAX_PARAM or len(key) > 255:
            raise errors.Invalid(f"Query parameter {key[:64]!r} is too long.")
        common.check_text(key + value, "query string")
    return pairs


def _last(pairs, key: str) -> str | None:
    found = [v for k, v in pairs if k == key]
    return found[-1] if found else None


def _all(pairs, key: str) -> list[str]:
    return [v for k, v in pairs if k == key]


def _limit(raw: str | None, settings: Settings) -> int:
    if raw is None:
        return min(settings.limit_param_default, settings.api_limit_max)
    try:
        limit = int(raw)
    except ValueError:
        raise errors.Invalid("limit param must be an integer") from None
    if limit < 0:
        raise errors.Invalid("limit param must be positive")
    return min(limit, settings.api_limit_max)


def _sort_dir(value: str) -> str:
    if value not in ("asc", "desc"):
        raise errors.Invalid(f"Invalid sort direction: {value}")
    return value


def _sort_key(value: str) -> str:
    if value not in SORT_KEYS:
        raise errors.Invalid(f"Invalid sort key: {value}. It must be one of the following: {', '.join(SORT_KEYS)}.")
    return value


def _sort(pairs) -> tuple[tuple[str, str], ...]:
    keys, dirs, new = _all(pairs, "sort_key"), _all(pairs, "sort_dir"), _all(pairs, "sort")
    if new and (keys or dirs):
        raise errors.Invalid("Old and new sorting syntax cannot be combined")
    result: list[tuple[str, str]] = []
    if new:
        for item in ",".join(new).split(","):
            key, _, direction = item.strip().partition(":")
            result.append((_sort_key(key.strip()), _sort_dir(direction.strip() or "desc")))
    else:
        keys = [_sort_key(k.strip()) for k in keys] or ["created_at"]
        dirs = [_sort_dir(d.strip()) for d in dirs]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise errors.Invalid("Number of sort dirs does not match the number of sort keys")
        if len(dirs) <= 1:
            dirs = [dirs[0] if dirs else "desc"] * len(keys)
        result = list(zip(keys, dirs, strict=True))
    seen: dict[str, str] = {}
    for key, direction in result:
        seen.setdefault(key, direction)
    return tuple(seen.items())


def _split_in(value: str) -> list[str]:
    """``in:a,"b,c",d`` values: commas inside double quotes belong to the value."""
    out, current, quoted = [], [], False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise errors.Invalid("Invalid filter value: the quotes are not closed.")
    out.append("".join(current))
    return out


def _in_filter(value: str) -> list[str]:
    op, sep, rest = value.partition(":")
    if not sep:
        return [value]
    if op != "in":
        raise errors.Invalid(f"Unable to filter by unknown operator '{op}'.")
    return _split_in(rest)


def _parse_time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("z", "Z"))
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _time_filter(key: str, value: str) -> tuple[str, datetime]:
    bad = errors.Invalid(f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.')
    try:
        return "eq", _parse_time(value)
    except ValueError:
        pass
    op, sep, rest = value.partition(":")
    if not sep:
        raise bad
    if op not in TIME_OPS:
        raise errors.Invalid(f"Unable to filter by unknown operator '{op}'.")
    try:
        return op, _parse_time(rest)
    except ValueError:
        raise bad from None


def _bool(key: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise errors.Invalid(f"Invalid value '{value}' for '{key}' filter. Valid values are 'true' or 'false'.")
    return value == "true"


# The database columns are signed 64-bit; a filter past that range would overflow in the driver.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _in_int64(key: str, number: int) -> int:
    if not INT64_MIN <= number <= INT64_MAX:
        raise errors.Invalid(f"Invalid value for '{key}' filter: out of range.")
    return number


def _int(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise errors.Invalid("Unable to filter on a range with a non-numeric value.") from None
    return _in_int64(key, number)


def parse(query_string: str, settings: Settings) -> ListQuery:
    pairs = params(query_string)
    if any(k == "changes-since" for k, _ in pairs):
        raise errors.Invalid('The "changes-since" filter is no longer available on v2.')
    visibility = _last(pairs, "visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise errors.Invalid(f"Invalid visibility value: {visibility}")
    member_status = _last(pairs, "member_status") or "accepted"
    if member_status not in MEMBER_STATUSES:
        raise errors.Invalid(f"Invalid status: {member_status}")
    filters: dict[str, Any] = {"os_hidden": False}
    properties: dict[str, str] = {}
    for key in dict.fromkeys(k for k, _ in pairs):
        if key in NOT_FILTERS:
            continue
        value = _last(pairs, key)
        if key in IN_FILTERS:
            filters[key] = _in_filter(value)
        elif key in EXACT_FILTERS:
            filters[key] = value
        elif key == "os_hidden":
            # Glance lower-cases os_hidden (openstacksdk sends "True") but not protected.
            filters[key] = _bool(key, value.lower())
        elif key == "protected":
            filters[key] = _bool(key, value)
        elif key in ("size_min", "size_max"):
            filters[key] = _int(key, value)
        elif key in INT_FILTERS:
            try:
                number = int(value)
            except ValueError:
                raise errors.Invalid(f"Invalid value '{value}' for '{key}' filter.") from None
            filters[key] = _in_int64(key, number)
        elif key in ("created_at", "updated_at"):
            filters[key] = [_time_filter(key, v) for v in _all(pairs, key)]
        elif key == "tag":
            filters["tags"] = _all(pairs, "tag")
        else:
            properties[key] = value
    if properties:
        filters["properties"] = properties
    return ListQuery(
        limit=_limit(_last(pairs, "limit"), settings),
        marker=_last(pairs, "marker"),
        sort=_sort(pairs),
        filters=filters,
        visibility=visibility,
        member_status=member_status,
    )


def links(pairs: list[tuple[str, str]], next_marker: str | None) -> dict[str, str]:
    """``first`` and (when a page was full) ``next``, relative, keeping every parameter but marker."""
    kept = [(k, v) for k, v in pairs if k != "marker"]
    query = urllib.parse.urlencode(kept)
    out = {"first": f"/v2/images?{query}" if query else "/v2/images", "schema": "/v2/schemas/images"}
    if next_marker is not None:
        out["next"] = "/v2/images?" + urllib.parse.urlencode([*kept, ("marker", next_marker)])
    return out
