"""webob's error-body negotiation, which clients parse (reference glance-api.md section 12)."""

import pytest

from glancelite import errors
from glancelite.api.errors import negotiate, status_for


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/plain"),
        ("", "text/plain"),
        ("*/*", "text/html"),
        ("application/json", "application/json"),
        ("application/json, */*;q=0.5", "application/json"),
        ("text/html;q=0.1, application/json", "application/json"),
        ("text/*", "text/html"),
        ("image/png", "text/plain"),
        ("application/json;q=bogus", "text/plain"),
    ],
)
def test_negotiate_matches_webob(accept, expected):
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.Invalid(), "400 Bad Request"),
        (errors.Forbidden(), "403 Forbidden"),
        (errors.NotFound(), "404 Not Found"),
        (errors.Conflict(), "409 Conflict"),
        (errors.Gone(), "410 Gone"),
        (errors.TooLarge(), "413 Request Entity Too Large"),
        (errors.UnsupportedMedia(), "415 Unsupported Media Type"),
        (errors.RangeNotSatisfiable(), "416 Requested Range Not Satisfiable"),
        (errors.Unavailable(), "503 Service Unavailable"),
        (errors.GlanceliteError(), "500 Internal Server Error"),
    ],
)
def test_one_table_maps_categories(exc, status):
    assert status_for(exc) == status
