"""Image JSON bodies through gunicorn: chunked requests, which gunicorn de-chunks before the application reads them.

The image resource's behaviour is tests/api/test_images.py.
"""

from __future__ import annotations

import pytest

JSON = {"Accept": "application/json"}
V21 = {"Content-Type": "application/openstack-images-v2.1-json-patch", **JSON}


@pytest.fixture(scope="module")
def svc(service):
    return service


def test_chunked_json_bodies(svc, http):
    def chunks(*parts):
        yield from parts

    resp = http.post(f"{svc.url}/v2/images", data=chunks(b'{"name": ', b'"chunked"}'), headers=JSON)
    assert resp.status_code == 201 and resp.json()["name"] == "chunked"
    ops = chunks(b'[{"op": "replace", "path": "/name", ', b'"value": "c2"}]')
    resp = http.patch(f"{svc.url}/v2/images/{resp.json()['id']}", data=ops, headers=V21)
    assert resp.status_code == 200 and resp.json()["name"] == "c2"
    big = chunks(*[b"x" * 65536] * 40)
    assert http.post(f"{svc.url}/v2/images", data=big, headers=JSON).status_code == 413
