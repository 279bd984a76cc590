"""The fuzz tier's leak check catches what it is meant to, and lets ordinary error bodies through."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.fuzz.hooks import no_leaked_internals


def _answer(body: str, *, method="GET", path="/v2/images/{image_id}", content_type="application/json"):
    response = SimpleNamespace(status_code=500, headers={"content-type": [content_type]}, content=body.encode())
    return response, SimpleNamespace(method=method, path=path)


@pytest.mark.parametrize(
    "body",
    [
        'Traceback (most recent call last):\n  File "/srv/glancelite/api/images.py", line 3',
        "(sqlite3.OperationalError) database is locked",
        "(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint",
        "[SQL: SELECT images.id FROM images WHERE images.id = ?]",
        "No such file: /tmp/pytest-of-root/fuzzed0/fast/abc",
        "sqlalchemy.exc.IntegrityError",
    ],
)
def test_leaks_are_caught(body):
    response, case = _answer(body)
    with pytest.raises(AssertionError, match="leaking"):
        no_leaked_internals(None, response, case)


def test_ordinary_errors_and_exempt_answers_pass():
    response, case = _answer('{"message": "No image found with ID 42", "code": "404 Not Found"}')
    no_leaked_internals(None, response, case)
    # Image data is the client's own bytes; the admin-only store detail shows directories by design.
    response, case = _answer("/tmp/x Traceback (most recent call last)", content_type="application/octet-stream")
    no_leaked_internals(None, response, case)
    response, case = _answer('{"stores": [{"properties": {"datadir": "/tmp/s"}}]}', path="/v2/info/stores/detail")
    no_leaked_internals(None, response, case)
