"""GET /v2/images query parsing."""

from __future__ import annotations

from datetime import datetime

import pytest

from glancelite import errors
from glancelite.api import image_query
from glancelite.settings import Settings

S = Settings(limit_param_default=25, api_limit_max=1000)


def test_defaults():
    q = image_query.parse("", S)
    assert q.limit == 25 and q.marker is None and q.sort == (("created_at", "desc"),)
    assert q.filters == {"os_hidden": False} and q.visibility is None and q.member_status == "accepted"


def test_limit_cap_and_sorts():
    assert image_query.parse("limit=5000", S).limit == 1000
    assert image_query.parse("sort_key=name&sort_key=size&sort_dir=asc", S).sort == (("name", "asc"), ("size", "asc"))
    assert image_query.parse("sort=name:asc,size", S).sort == (("name", "asc"), ("size", "desc"))


def test_filters():
    q = image_query.parse(
        'name=in:a,"b,c"&tag=x&tag=y&size_min=3&protected=true&foo=bar&created_at=gt:2020-01-01T00:00:00Z', S
    )
    assert q.filters["name"] == ["a", "b,c"]
    assert q.filters["tags"] == ["x", "y"]
    assert q.filters["size_min"] == 3 and q.filters["protected"] is True
    assert q.filters["properties"] == {"foo": "bar"}
    assert q.filters["created_at"] == [("gt", datetime(2020, 1, 1))]
    # An ISO time alone means eq, even though it contains ':'.
    assert image_query.parse("updated_at=2020-01-01T10:00:00Z", S).filters["updated_at"] == [
        ("eq", datetime(2020, 1, 1, 10))
    ]
    # Offsets are normalised to UTC.
    assert image_query.parse("created_at=lt:2020-01-01T10:00:00%2B02:00", S).filters["created_at"] == [
        ("lt", datetime(2020, 1, 1, 8))
    ]


@pytest.mark.parametrize(
    "query",
    [
        "limit=x",
        "limit=-2",
        "sort_key=owner",
        "sort_dir=up",
        "name=eq:x",
        "protected=True",
        "visibility=x",
        "member_status=x",
        "size_max=x",
        "created_at=x",
        "changes-since=x",
    ],
)
def test_invalid(query):
    with pytest.raises(errors.Invalid):
        image_query.parse(query, S)


@pytest.mark.parametrize("key", ["size_min", "size_max", "min_disk", "min_ram", "size", "virtual_size"])
@pytest.mark.parametrize("value", [str(2**64), str(2**63), str(-(2**63) - 1)])
def test_integer_filters_past_64_bits_name_the_parameter(key, value):
    with pytest.raises(errors.Invalid, match=f"'{key}'"):
        image_query.parse(f"{key}={value}", S)


def test_integer_filters_at_the_64_bit_edges_are_accepted():
    q = image_query.parse(f"size_min={-(2**63)}&size_max={2**63 - 1}", S)
    assert (q.filters["size_min"], q.filters["size_max"]) == (-(2**63), 2**63 - 1)


def test_links_keep_everything_but_marker():
    pairs = image_query.params("limit=2&marker=abc&tag=a&tag=b")
    links = image_query.links(pairs, "next-id")
    assert links["first"] == "/v2/images?limit=2&tag=a&tag=b"
    assert links["next"] == "/v2/images?limit=2&tag=a&tag=b&marker=next-id"
    assert "next" not in image_query.links([], None) and image_query.links([], None)["first"] == "/v2/images"
