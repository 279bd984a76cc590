"""glancelite-manage db load_metadefs / export_metadefs / unload_metadefs, then the API serves what was loaded."""

from __future__ import annotations

import json

import pytest

from glancelite.db import engine as db_engine
from glancelite.db import metadef_files, migration
from glancelite.db import metadefs as repo
from glancelite.settings import DatabaseSettings
from tests.support.server import Server, manage, write_config

LIBVIRT = {
    "namespace": "OS::Compute::Libvirt",
    "display_name": "libvirt Driver Options",
    "description": "The libvirt compute driver options.",
    "visibility": "public",
    "protected": True,
    "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}, {"name": "OS::Nova::Flavor"}],
    "properties": {"serial_port_count": {"title": "Serial Port Count", "type": "integer", "minimum": 0}},
    "objects": [
        {"name": "Boot", "required": [], "properties": {"boot_menu": {"title": "Boot Menu", "type": "string"}}}
    ],
    "tags": [{"name": "virt"}],
}


@pytest.fixture
def engine(tmp_path):
    eng = db_engine.create_engine(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'glance.sqlite'}"))
    migration.sync(eng)
    yield eng
    eng.dispose()


def write(folder, doc):
    folder.mkdir(exist_ok=True)
    (folder / f"{doc['namespace'].replace(':', '_')}.json").write_text(json.dumps(doc))


def admin_get(engine, name):
    return repo.get_namespace(engine, name, metadef_files.ADMIN)


def test_load_creates_then_skips_then_merges(engine, tmp_path):
    folder = tmp_path / "metadefs"
    write(folder, LIBVIRT)
    assert metadef_files.load(engine, str(folder)) == {"OS::Compute::Libvirt": "created"}
    ns = admin_get(engine, "OS::Compute::Libvirt")
    assert (ns.visibility, ns.protected, ns.owner) == ("public", True, "admin")
    assert [a.prefix for a in repo.list_associations(engine, ns)] == ["hw_", None]
    assert [o.name for o in repo.list_children(engine, repo.OBJECTS, ns)] == ["Boot"]

    changed = {
        **LIBVIRT,
        "description": "new",
        "properties": {"serial_port_count": {"title": "New", "type": "integer"}},
    }
    write(folder, changed)
    assert metadef_files.load(engine, str(folder)) == {"OS::Compute::Libvirt": "skipped"}
    assert admin_get(engine, "OS::Compute::Libvirt").description == LIBVIRT["description"]
    # Merge without prefer_new keeps what the database has.
    metadef_files.load(engine, str(folder), merge=True)
    assert repo.get_child(engine, repo.PROPERTIES, ns, "serial_port_count").schema["title"] == "Serial Port Count"
    # prefer_new: the file wins.
    assert metadef_files.load(engine, str(folder), merge=True, prefer_new=True) == {"OS::Compute::Libvirt": "merged"}
    assert admin_get(engine, "OS::Compute::Libvirt").description == "new"
    assert repo.get_child(engine, repo.PROPERTIES, ns, "serial_port_count").schema == {
        "title": "New",
        "type": "integer",
    }


def test_overwrite_drops_what_the_file_no_longer_has(engine, tmp_path):
    folder = tmp_path / "metadefs"
    write(folder, LIBVIRT)
    metadef_files.load(engine, str(folder))
    write(folder, {**LIBVIRT, "objects": [], "tags": [{"name": "other"}]})
    metadef_files.load(engine, str(folder), merge=True, overwrite=True)
    ns = admin_get(engine, "OS::Compute::Libvirt")
    assert repo.list_children(engine, repo.OBJECTS, ns) == []
    assert [t.name for t in repo.list_children(engine, repo.TAGS, ns)] == ["other"]


def test_export_round_trips_and_unload_empties(engine, tmp_path):
    folder = tmp_path / "in"
    write(folder, LIBVIRT)
    metadef_files.load(engine, str(folder))
    [exported] = metadef_files.export(engine, str(tmp_path / "out"))
    doc = json.loads(exported.read_text())
    assert doc["namespace"] == LIBVIRT["namespace"]
    assert doc["properties"] == LIBVIRT["properties"]
    assert doc["resource_type_associations"] == LIBVIRT["resource_type_associations"]
    assert doc["tags"] == LIBVIRT["tags"]
    assert doc["objects"][0]["properties"] == LIBVIRT["objects"][0]["properties"]

    assert metadef_files.unload(engine) == 1
    assert repo.list_namespaces(engine, metadef_files.ADMIN) == []
    # Glance's own resource types stay.
    assert len(repo.list_resource_types(engine)) == 5
    assert metadef_files.load(engine, str(tmp_path / "out")) == {"OS::Compute::Libvirt": "created"}


def test_bad_files_are_one_clear_error(engine, tmp_path):
    with pytest.raises(Exception, match="not a directory"):
        metadef_files.load(engine, str(tmp_path / "missing"))
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.json").write_text("{not json")
    with pytest.raises(Exception, match="broken.json"):
        metadef_files.load(engine, str(folder))


def test_cli_then_api(tmp_path, http):
    conf = write_config(tmp_path)
    folder = tmp_path / "metadefs"
    write(folder, LIBVIRT)
    manage(conf, "db", "sync")
    proc = manage(conf, "db_load_metadefs", "--path", str(folder), check=False)  # Glance's legacy spelling
    assert proc.returncode == 0, proc.stderr
    assert "created: OS::Compute::Libvirt" in proc.stdout
    proc = manage(conf, "db", "load_metadefs", "--path", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 1 and "not a directory" in proc.stderr and "Traceback" not in proc.stderr

    server = Server(conf).start()
    try:
        url = f"{server.url}/v2/metadefs/namespaces/OS::Compute::Libvirt"
        shown = http.get(url, params={"resource_type": "OS::Glance::Image"}).json()
        assert shown["protected"] is True
        assert list(shown["properties"]) == ["hw_serial_port_count"]
        assert shown["tags"] == [{"name": "virt"}]
    finally:
        server.stop()
