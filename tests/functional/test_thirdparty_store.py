"""A third-party store driver, installed as a distribution, works end to end.

tests/plugins/dirstore is a tiny distribution publishing ``dirstore`` under the
``glancelite.store.drivers`` entry-point group (its pyproject.toml). The fixture
installs it into a directory of its own (the module plus a dist-info written from
that pyproject) and puts the directory on PYTHONPATH for the processes it starts, so
the venv stays as it was and discovery is importlib.metadata's, as for any install.
Through that: the sample configuration lists the driver's options, ``config check``
names its group and option, and a real glancelite-api uploads to, downloads from
and deletes in a ``dirstore`` store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ADMIN
from tests.functional._images import new_image
from tests.support.payloads import raw_bytes
from tests.support.server import BIN, Server, manage, write_config

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "dirstore"
OCTET = {"Content-Type": "application/octet-stream"}


def install_plugin(site: Path) -> Path:
    """The plugin as pip would leave it in ``site``: the module and a dist-info with its entry points."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN / "glancelite_dirstore.py", site)
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]
    (dist / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in groups.items())
    )
    return site


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """PYTHONPATH carrying the installed plugin, for every process this module starts."""
    site = install_plugin(tmp_path_factory.mktemp("plugin") / "site")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
        yield site


def plugin_config(root: Path, **dirs_options: str | None) -> Path:
    return write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, dirs:dirstore"},
            "glance_store": {"default_backend": "dirs"},
            "dirs": {
                "dirstore_root": str(root / "dirs"),
                "dirstore_chunk_size": "1000",
                "store_description": "Plugin store",
                **dirs_options,
            },
        },
    )


@pytest.fixture(scope="module")
def service(plugin_env, tmp_path_factory):
    server = Server(plugin_config(tmp_path_factory.mktemp("thirdparty"))).start()
    yield server
    server.stop()


def test_sample_configuration_lists_the_plugin_options(plugin_env, tmp_path):
    sample = tmp_path / "sample.conf"
    subprocess.run(
        [str(BIN / "oslo-config-generator"), "--namespace", "glancelite", "--output-file", str(sample)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = sample.read_text()
    assert "Directory holding the images (dirstore plugin)." in text
    assert "#dirstore_chunk_size = 65536" in text
    assert text.index("#dirstore_root") > text.index("[<store id>]")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dirstore_root": None}, "[dirs] dirstore_root: is required by the dirstore store"),
        ({"dirstore_chunk_size": "0"}, "[dirs] dirstore_chunk_size: invalid value '0'"),
    ],
)
def test_config_check_names_the_plugin_group_and_option(plugin_env, tmp_path, options, message):
    result = manage(plugin_config(tmp_path, **options), "config", "check", check=False)
    assert result.returncode == 1
    assert message in result.stderr


def test_config_check_accepts_the_plugin_store(plugin_env, tmp_path):
    result = manage(plugin_config(tmp_path), "config", "check", check=False)
    assert result.returncode == 0, result.stderr


def test_unknown_type_without_the_plugin(plugin_env, tmp_path, monkeypatch):
    others = [p for p in os.environ["PYTHONPATH"].split(os.pathsep) if p != str(plugin_env)]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(others))
    result = manage(plugin_config(tmp_path), "config", "check", check=False)
    assert result.returncode == 1
    assert "store 'dirs' has unknown type 'dirstore'" in result.stderr


def test_upload_download_delete_through_the_api(service, http):
    data = raw_bytes(10_000) + b"end"
    image_id = new_image(service, http, ADMIN)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers={**ADMIN, **OCTET})
    assert resp.status_code == 204, resp.text
    stored = Path(service.config.parent / "dirs" / image_id)
    assert stored.read_bytes() == data

    image = http.get(f"{service.url}/v2/images/{image_id}", headers=ADMIN).json()
    assert image["status"] == "active" and image["stores"] == "dirs"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    resp = http.get(f"{service.url}/v2/images/{image_id}/file", headers=ADMIN)
    assert resp.status_code == 200 and resp.content == data

    detail = {s["id"]: s for s in http.get(f"{service.url}/v2/info/stores/detail", headers=ADMIN).json()["stores"]}
    assert detail["dirs"]["type"] == "dirstore"
    assert detail["dirs"]["default"] == "true" and "read-only" not in detail["dirs"]
    assert detail["dirs"]["properties"] == {"root": str(stored.parent), "chunk_size": 1000}
    assert "WRITE_ACCESS" in detail["dirs"]["capabilities"]

    assert http.delete(f"{service.url}/v2/images/{image_id}", headers=ADMIN).status_code == 204
    assert not stored.exists()


def test_import_into_the_plugin_store(service, http):
    """copy-image from a file store into the plugin store: the plugin is a writable import target."""
    data = b"copy me" * 1000
    image_id = new_image(service, http, ADMIN)
    resp = http.put(
        f"{service.url}/v2/images/{image_id}/file", data=data, headers={**ADMIN, **OCTET, "X-Image-Meta-Store": "fast"}
    )
    assert resp.status_code == 204, resp.text
    resp = http.post(
        f"{service.url}/v2/images/{image_id}/import",
        json={"method": {"name": "copy-image"}, "all_stores": True},
        headers=ADMIN,
    )
    assert resp.status_code == 202, resp.text
    stored = Path(service.config.parent / "dirs" / image_id)
    for _ in range(100):
        image = http.get(f"{service.url}/v2/images/{image_id}", headers=ADMIN).json()
        if sorted(image.get("stores", "").split(",")) == ["dirs", "fast"]:
            break
        time.sleep(0.1)
    assert sorted(image["stores"].split(",")) == ["dirs", "fast"]
    assert stored.read_bytes() == data
