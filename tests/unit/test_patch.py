"""PATCH body parsing: both dialects, pointer decoding, Glance's checks in Glance's order."""

from __future__ import annotations

import pytest

from glancelite import errors
from glancelite.api import patch, schemas
from glancelite.services.image_rules import Change
from glancelite.settings import Settings

FORMATS = schemas.Formats.of(Settings())


def test_media_type():
    assert patch.media_type("application/openstack-images-v2.1-json-patch; charset=utf-8") == patch.V21
    assert patch.media_type("application/openstack-images-v2.0-json-patch") == patch.V20
    with pytest.raises(errors.UnsupportedMedia) as info:
        patch.media_type("application/json")
    assert info.value.headers["Accept-Patch"] == f"{patch.V20}, {patch.V21}"


def test_v21_and_v20_give_the_same_changes():
    v21 = patch.parse(
        [{"op": "replace", "path": "/name", "value": "x"}, {"op": "remove", "path": "/foo"}], patch.V21, FORMATS
    )
    v20 = patch.parse([{"replace": "/name", "value": "x"}, {"remove": "/foo"}], patch.V20, FORMATS)
    assert [(c.op, c.path, c.value) for c in v21] == [(c.op, c.path, c.value) for c in v20]
    assert v21[0] == Change("replace", ("name",), "x", strict_add=False)
    assert v20[0].strict_add is True


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [("/a~1b", ("a/b",)), ("/a~0b", ("a~b",)), ("/~01", ("~1",)), ("/locations/0", ("locations", "0"))],
)
def test_pointer_escapes(pointer, tokens):
    assert patch.decode_pointer(pointer) == tokens


@pytest.mark.parametrize("pointer", ["name", "//", "/a/", "/a~2", "/a~", 5, None])
def test_bad_pointers(pointer):
    with pytest.raises(errors.Invalid):
        patch.decode_pointer(pointer)


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        ({"op": "add"}, errors.Invalid),
        ([1], errors.Invalid),
        ([{"op": "test", "path": "/a", "value": "b"}], errors.Invalid),
        ([{"op": "add", "path": "/a/b", "value": "c"}], errors.Invalid),
        ([{"op": "replace", "path": "/locations/0", "value": []}], errors.Invalid),
        ([{"op": "add", "path": "/locations/x", "value": {}}], errors.Invalid),
        ([{"op": "add", "path": "/a"}], errors.Invalid),
        ([{"op": "add", "path": "/a", "value": 1}], errors.Invalid),
        ([{"op": "add", "path": "/size", "value": 1}], errors.Forbidden),
        ([{"op": "add", "path": "/os_glance_x", "value": "1"}], errors.Forbidden),
        # Glance asks for the value before it looks at the path's permissions
        ([{"op": "add", "path": "/status"}], errors.Invalid),
        ([{"op": "remove", "path": "/status"}], errors.Forbidden),
    ],
)
def test_errors(ops, error):
    with pytest.raises(error):
        patch.parse(ops, patch.V21, FORMATS)


def test_location_paths_have_their_own_depth():
    changes = patch.parse(
        [
            {"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}},
            {"op": "remove", "path": "/locations/1"},
            {"op": "replace", "path": "/locations", "value": []},
        ],
        patch.V21,
        FORMATS,
    )
    assert [c.path for c in changes] == [("locations", "-"), ("locations", "1"), ("locations",)]


def test_formats_are_the_operators():
    """[image_format] disk_formats narrows what PATCH accepts, as the served schema says."""
    narrow = schemas.Formats(disk=("raw",), container=("bare",))
    assert patch.parse([{"op": "replace", "path": "/disk_format", "value": "raw"}], patch.V21, narrow)
    with pytest.raises(errors.Invalid, match="'qcow2' is not one of"):
        patch.parse([{"op": "replace", "path": "/disk_format", "value": "qcow2"}], patch.V21, narrow)
    assert patch.parse([{"op": "replace", "path": "/disk_format", "value": "qcow2"}], patch.V21, FORMATS)
