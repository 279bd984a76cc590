"""Delayed delete into a real S3 (moto): the object stays until the scrubber deletes it; a scrubber
that cannot reach S3 leaves the image pending for the next pass."""

from __future__ import annotations

import configparser
import subprocess
import uuid

import pytest
import requests

from tests.backends.factories import s3_options
from tests.conftest import identity
from tests.support.server import BIN, Server, free_port, write_config

pytestmark = pytest.mark.backend
DATA = b"scrub me from s3 " * 64


@pytest.fixture(scope="module")
def service(tmp_path_factory, s3_env):
    root = tmp_path_factory.mktemp("scrub-s3")
    bucket = f"glct-scrub-{uuid.uuid4().hex[:8]}"
    cheap = {k: str(v) for k, v in s3_options("moto", s3_store_bucket=bucket).items()}
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, cheap:s3", "delayed_delete": "true", "workers": "1"},
            "glance_store": {"default_backend": "cheap"},
            "cheap": cheap,
        },
    )
    server = Server(config).start(deadline=60)
    server.cheap = cheap
    yield server
    server.stop()


def s3_keys(service) -> set[str]:
    import boto3

    s3 = service.cheap
    client = boto3.client(
        "s3",
        endpoint_url=s3["s3_store_host"],
        aws_access_key_id=s3["s3_store_access_key"],
        aws_secret_access_key=s3["s3_store_secret_key"],
        region_name="us-east-1",
    )
    return {o["Key"] for o in client.list_objects_v2(Bucket=s3["s3_store_bucket"]).get("Contents", [])}


def scrub(service, name: str, **cheap: str) -> str:
    """One pass with scrub_time 0 (and [cheap] overrides); returns its log."""
    log = service.config.parent / f"{name}.log"
    extra = service.config.parent / f"{name}.conf"
    cp = configparser.RawConfigParser()
    cp.optionxform = str
    cp["DEFAULT"] = {"scrub_time": "0", "log_file": str(log)}
    if cheap:
        cp["cheap"] = cheap
    with open(extra, "w") as fh:
        cp.write(fh)
    proc = subprocess.run(
        [str(BIN / "glancelite-scrubber"), "--config-file", str(service.config), "--config-file", str(extra)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return log.read_text()


def test_s3_object_stays_until_scrubbed_and_an_unreachable_s3_is_retried(service):
    who = identity("scrub-s3")
    resp = requests.post(
        f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=who
    )
    image_id = resp.json()["id"]
    resp = requests.put(
        f"{service.url}/v2/images/{image_id}/file",
        data=DATA,
        headers={**who, "Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    assert image_id in s3_keys(service)
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=who).status_code == 204
    assert image_id in s3_keys(service)

    # A scrubber whose S3 endpoint does not answer: the object and the pending image stay.
    log = scrub(service, "unreachable", s3_store_host=f"http://127.0.0.1:{free_port()}")
    assert f"image {image_id}: 1 location(s) could not be scrubbed; it stays pending_delete" in log
    assert image_id in s3_keys(service)

    log = scrub(service, "reachable")
    assert f"image {image_id}: scrubbed, now deleted" in log
    assert image_id not in s3_keys(service)
