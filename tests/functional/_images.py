"""Creating images for the data-path tests.

Through POST /v2/images when the images API answers; before it exists,
straight into the server's database with the images repository (the same
rows the API would write).
"""

from __future__ import annotations

import configparser
import uuid

from glancelite.db import engine as db_engine
from glancelite.db import images as images_db
from glancelite.settings import DatabaseSettings


def new_image(service, http, headers=None, **fields) -> str:
    body = {"disk_format": "raw", "container_format": "bare", **fields}
    resp = http.post(f"{service.url}/v2/images", json=body, headers=headers or {})
    if resp.status_code == 201:
        return resp.json()["id"]
    assert resp.status_code in (404, 405), resp.text
    cp = configparser.RawConfigParser()
    cp.read(service.config)
    engine = db_engine.create_engine(DatabaseSettings(connection=cp["database"]["connection"]))
    try:
        image_id = str(uuid.uuid4())
        owner = (headers or {}).get("X-Project-Id")
        values = {"id": image_id, "owner": owner, **{k: v for k, v in body.items() if v is not None}}
        images_db.create_image(engine, values)
        return image_id
    finally:
        engine.dispose()


def image_row(service, image_id: str):
    cp = configparser.RawConfigParser()
    cp.read(service.config)
    engine = db_engine.create_engine(DatabaseSettings(connection=cp["database"]["connection"]))
    try:
        return images_db.get_image(engine, image_id)
    finally:
        engine.dispose()
