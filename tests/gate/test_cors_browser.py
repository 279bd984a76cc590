"""Horizon's direct image upload, done by a real browser against the gate's glancelite and keystone.

A small static page (direct_upload.html) is served from another origin than the image API:
GATE_CORS_ORIGIN, a 127.0.0.1 port that tools/gate/run.sh names in the service's ``[cors]
allowed_origin`` (and nothing else of [cors]: Glance's defaults must do). Headless Chromium,
driven by selenium through Debian's chromium-driver, loads it; the page creates an image
(POST /v2/images), PUTs its data with X-Auth-Token and reads it back, every call behind a CORS
preflight. The token comes from keystone through this test and is handed to the page, as
Horizon hands its own session's token to its page (the page never asks keystone itself).
The same page served from an origin not in allowed_origin is refused by the browser.
"""

from __future__ import annotations

import configparser
import functools
import hashlib
import os
import re
import shutil
import threading
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support.server import free_port

pytestmark = pytest.mark.gate

PAGE = Path(__file__).with_name("direct_upload.html")
SIZE = 3 * 1024 * 1024 + 12345  # a few MiB, not a multiple of any chunk size


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
        pass


class PageServer:
    """direct_upload.html over HTTP on 127.0.0.1:``port``, in a thread; ``origin`` is what the browser sends."""

    def __init__(self, port: int):
        handler = functools.partial(_QuietHandler, directory=str(PAGE.parent))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.origin = f"http://127.0.0.1:{port}"
        self.url = f"{self.origin}/{PAGE.name}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _browser_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing browser fails)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        _browser_missing("Debian's chromium and chromium-driver are not installed: run `bash tools/gate/install.sh`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    work = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    # Both paths given: selenium never looks for (or downloads) a browser or driver of its own.
    options.binary_location = chromium
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={work / 'profile'}"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to start its sandbox as root
    driver = webdriver.Chrome(service=Service(chromedriver, log_output=str(work / "chromedriver.log")), options=options)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def allowed_page(gate):
    origin = gate.get("GATE_CORS_ORIGIN")
    assert origin, "gate.env has no GATE_CORS_ORIGIN: start the gate with this checkout's tools/gate/run.sh"
    server = PageServer(int(origin.rsplit(":", 1)[1]))
    assert server.origin == origin
    yield server
    server.close()


@pytest.fixture(scope="module")
def other_page(gate):
    server = PageServer(free_port())
    assert server.origin != gate["GATE_CORS_ORIGIN"]
    yield server
    server.close()


@pytest.fixture(scope="module")
def member(gate, keystone, admin):
    """A project with a user holding ``member`` in it, as a Horizon user; removed afterwards."""
    token = admin["token"]
    suffix = uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    project = keystone.call(
        "POST", "/projects", token, json={"project": {"name": f"cors-{suffix}", "domain_id": "default"}}
    )["project"]
    user = keystone.call(
        "POST",
        "/users",
        token,
        json={"user": {"name": f"cors-{suffix}", "password": password, "domain_id": "default"}},
    )["user"]
    try:
        role = keystone.role_id(token, "member")
        keystone.call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role}", token)
        user_token, _ = keystone.token(user["name"], password, project["name"])
        yield {"token": user_token, "project_id": project["id"]}
    finally:
        keystone.session.delete(f"{keystone.url}/v3/users/{user['id']}", headers={"X-Auth-Token": token}, timeout=30)
        keystone.session.delete(
            f"{keystone.url}/v3/projects/{project['id']}", headers={"X-Auth-Token": token}, timeout=30
        )


def _run_page(browser, page: PageServer, image_api: str, token: str, name: str) -> dict:
    browser.get(page.url)
    return browser.execute_async_script("run(...arguments);", image_api, token, name, SIZE)


def _access_log(gate) -> str:
    cp = configparser.RawConfigParser()
    cp.read(gate["GATE_GLANCE_CONF"])
    return Path(cp["DEFAULT"]["log_file"]).read_text(errors="replace")


def test_the_browser_uploads_and_reads_back_through_cors(gate, browser, allowed_page, member):
    image_api = gate["GATE_IMAGE_URL"]
    outcome = _run_page(browser, allowed_page, image_api, member["token"], "browser-direct-upload")
    assert outcome["ok"], outcome.get("error")
    result = outcome["result"]
    assert result["identical"] and result["receivedSize"] == result["sentSize"] == SIZE
    image = result["image"]
    assert (image["status"], image["size"], image["owner"]) == ("active", SIZE, member["project_id"])
    # The bytes the browser generated are the bytes glancelite hashed and stored.
    assert image["os_hash_algo"] == "sha512" and image["os_hash_value"] == result["sentSha512"]
    # X-OpenStack-Request-ID is exposed (Glance's expose_headers): the page's script could read it.
    assert [(s["method"], s["status"]) for s in result["steps"]] == [
        ("POST", 201),
        ("PUT", 204),
        ("GET", 200),
        ("GET", 200),
    ]
    assert all(s["requestId"] and s["requestId"].startswith("req-") for s in result["steps"]), result["steps"]

    # The same data, read outside the browser.
    data = requests.get(
        f"{image_api}/v2/images/{result['imageId']}/file", headers={"X-Auth-Token": member["token"]}, timeout=60
    )
    assert data.status_code == 200 and hashlib.sha512(data.content).hexdigest() == result["sentSha512"]

    # Chromium asked first: glancelite's access log has the preflights for the create and the upload.
    log = _access_log(gate)
    for path in ("/v2/images", f"/v2/images/{result['imageId']}/file"):
        assert re.search(rf'"OPTIONS {re.escape(path)} HTTP/1\.1" 200 ', log), f"no preflight for {path}"

    deleted = requests.delete(
        f"{image_api}/v2/images/{result['imageId']}", headers={"X-Auth-Token": member["token"]}, timeout=30
    )
    assert deleted.status_code == 204


def test_a_page_from_another_origin_is_refused_by_the_browser(gate, browser, other_page, member):
    image_api = gate["GATE_IMAGE_URL"]
    name = f"browser-refused-{uuid.uuid4().hex[:8]}"
    outcome = _run_page(browser, other_page, image_api, member["token"], name)
    # The preflight got no Access-Control-Allow-Origin: fetch fails before the POST is sent.
    assert not outcome["ok"] and outcome["error"].startswith("TypeError"), outcome
    listed = requests.get(
        f"{image_api}/v2/images", params={"name": name}, headers={"X-Auth-Token": member["token"]}, timeout=30
    )
    assert listed.status_code == 200 and listed.json()["images"] == []
