"""glancelite-manage as an operator runs it: exit codes, messages, failures as one line."""

from __future__ import annotations

import datetime
import uuid

import pytest
import sqlalchemy as sa

from glancelite.db import engine as db_engine
from glancelite.db import images as images_db
from glancelite.db import locations as locations_db
from glancelite.db import members as members_db
from glancelite.db import migration, tables
from glancelite.db import tasks as tasks_db
from glancelite.settings import DatabaseSettings
from tests.support.server import free_port, manage, write_config
from tests.unit.test_migrations import insert_legacy_images


@pytest.fixture
def conf(tmp_path, database_url):
    return write_config(tmp_path, database=database_url)


def run(conf, *args):
    return manage(conf, *args, check=False)


def assert_one_line_failure(proc, *fragments: str) -> None:
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_check_and_each_step_through_the_cli(conf, database_url):
    proc = run(conf, "db", "check")
    assert proc.returncode == 3 and "db expand" in proc.stdout
    assert run(conf, "db", "sync", "--check").returncode == 3

    # A database that old code wrote: base schema with legacy rows.
    engine = db_engine.create_engine(DatabaseSettings(connection=database_url))
    migration.upgrade(engine, "initial01")
    insert_legacy_images(engine)
    engine.dispose()
    assert run(conf, "db", "check").returncode == 3

    assert run(conf, "db", "expand").returncode == 0
    proc = run(conf, "db", "check")
    assert proc.returncode == 4 and "db migrate" in proc.stdout

    proc = run(conf, "db", "contract")
    assert_one_line_failure(proc, "db migrate")

    proc = run(conf, "db", "migrate")
    assert (proc.returncode, proc.stdout.strip()) == (0, "Migrated 4 rows")
    proc = run(conf, "db", "check")
    assert proc.returncode == 5 and "db contract" in proc.stdout

    assert run(conf, "db", "contract").returncode == 0
    proc = run(conf, "db", "check")
    assert (proc.returncode, proc.stdout.strip()) == (0, "Database is up to date. No upgrades needed.")
    assert run(conf, "db", "sync", "--check").returncode == 0
    assert run(conf, "db", "version").stdout.strip() == "contract01, expand06"


def test_sync_is_idempotent_and_legacy_aliases_work(conf):
    proc = run(conf, "db", "version")
    assert proc.returncode == 0 and "not under migration control" in proc.stdout
    proc = run(conf, "db_sync")
    assert (proc.returncode, proc.stdout.strip()) == (0, "Database is synced successfully.")
    proc = run(conf, "db", "sync")
    assert (proc.returncode, proc.stdout.strip()) == (0, "Database is up to date. No migrations needed.")
    assert run(conf, "db_check").returncode == 0
    assert run(conf, "db_version").stdout.strip() == "contract01, expand06"


def test_migrate_before_expand_is_refused(tmp_path):
    conf = write_config(tmp_path)
    assert_one_line_failure(run(conf, "db", "migrate"), "ERROR", "db expand")


def test_unknown_or_missing_command_is_a_usage_error(tmp_path):
    conf = write_config(tmp_path)
    for args in (("db",), ("db", "frobnicate"), ("nonsense",)):
        proc = run(conf, *args)
        assert proc.returncode == 2, args
        assert "usage:" in proc.stderr


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("not a url", "not a database URL"),
        ("foo://host/db", "unsupported database"),
    ],
)
def test_bad_database_url(tmp_path, url, fragment):
    conf = write_config(tmp_path, {"database": {"connection": url}})
    for args in (("db", "sync"), ("db", "check"), ("config", "check")):
        assert_one_line_failure(run(conf, *args), "[database] connection", fragment)


def test_unreachable_postgresql(tmp_path):
    url = f"postgresql://glance:secret@127.0.0.1:{free_port()}/glance"
    conf = write_config(tmp_path, {"database": {"connection": url}})
    for args in (("db", "sync"), ("db", "check"), ("db", "version"), ("db", "expand")):
        proc = run(conf, *args)
        assert_one_line_failure(proc, "cannot connect to the database", "127.0.0.1")
        assert "secret" not in proc.stderr


def test_sqlite_in_a_missing_directory(tmp_path):
    conf = write_config(tmp_path, {"database": {"connection": f"sqlite:///{tmp_path}/nowhere/glance.sqlite"}})
    assert_one_line_failure(run(conf, "db", "sync"), "cannot connect to the database")
    # check does not create anything: a missing database is an empty one.
    assert run(conf, "db", "check").returncode == 3
    assert not (tmp_path / "nowhere").exists()


def test_config_check(tmp_path):
    good = write_config(tmp_path / "good")
    proc = run(good, "config", "check")
    assert (proc.returncode, proc.stdout.strip()) == (0, "Configuration is valid.")
    bad = write_config(tmp_path / "bad", {"glance_store": {"default_backend": "nowhere"}})
    assert_one_line_failure(run(bad, "config", "check"), "[glance_store] default_backend", "nowhere")


def test_config_check_builds_the_stores_like_the_api(tmp_path):
    """A driver option only the driver can judge (file_perm 999 is not octal) fails `config check` in one line."""
    from tests.support.server import manage, write_config

    conf = write_config(tmp_path, {"fast": {"filesystem_store_file_perm": "999"}})
    result = manage(conf, "config", "check", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[fast] filesystem_store_file_perm" in lines[0], result.stderr


@pytest.mark.parametrize("multi_store", [True, False], ids=["multi-store", "legacy"])
def test_config_check_creates_no_directory(tmp_path, multi_store):
    conf = write_config(tmp_path, multi_store=multi_store)
    result = manage(conf, "config", "check", check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "Configuration is valid."), result.stderr
    # Only the log file the configuration names is written; no store or reserved store directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.log", "glance-api.conf"]


def test_config_check_reports_a_data_directory_that_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_text("")
    conf = write_config(tmp_path, {"fast": {"filesystem_store_datadir": str(tmp_path / "a-file" / "images")}})
    assert_one_line_failure(
        manage(conf, "config", "check", check=False),
        "[fast] filesystem_store_datadir",
        f"cannot create {tmp_path / 'a-file' / 'images'}: Not a directory",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "api.log", "glance-api.conf"]


# ------------------------------------------------------------------ db purge / purge_images_table


def _soft_deleted_image_and_task(engine, image_id: str, task_id: str, days_ago: float) -> None:
    """An image with a property, a tag, a member and a location, and a task: all soft-deleted ``days_ago``."""
    images_db.create_image(engine, {"id": image_id, "status": "queued"}, {"k": "v"}, ["t"])
    members_db.create_member(engine, image_id, "project-x")
    locations_db.add_location(engine, image_id, f"file:///nowhere/{uuid.uuid4()}", {})
    images_db.delete_image(engine, image_id)
    tasks_db.create_task(engine, {"id": task_id, "type": "api_image_import", "image_id": image_id}, {})
    tasks_db.delete_task(engine, task_id)
    when = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(days=days_ago)
    backdate = [(tables.images.c.id, image_id), (tables.tasks.c.id, task_id)] + [
        (child.c.image_id, image_id)
        for child in (tables.image_properties, tables.image_tags, tables.image_members, tables.image_locations)
    ]
    with engine.begin() as conn:
        for column, value in backdate:
            conn.execute(column.table.update().where(column == value).values(deleted_at=when))


def _counts(engine) -> dict[str, int]:
    names = ("images", "image_properties", "image_tags", "image_members", "image_locations", "tasks", "task_info")
    with engine.connect() as conn:
        return {
            n: conn.execute(sa.select(sa.func.count()).select_from(tables.metadata.tables[n])).scalar() for n in names
        }


def test_purge_then_purge_images_table(conf, database_url):
    assert run(conf, "db", "sync").returncode == 0
    engine = db_engine.create_engine(DatabaseSettings(connection=database_url))
    try:
        old = [(f"00000000-0000-0000-0000-00000000000{i}", f"10000000-0000-0000-0000-00000000000{i}") for i in range(3)]
        for image_id, task_id in old:
            _soft_deleted_image_and_task(engine, image_id, task_id, days_ago=40)
        recent = ("20000000-0000-0000-0000-000000000000", "30000000-0000-0000-0000-000000000000")
        _soft_deleted_image_and_task(engine, *recent, days_ago=1)
        assert _counts(engine) == dict.fromkeys(_counts(engine), 4)

        # At most --max_rows per table, oldest first; the images table is never touched by purge.
        proc = run(conf, "db", "purge", "--max_rows", "2")
        assert proc.returncode == 0, proc.stderr
        assert "Deleted 2 row(s) from table image_properties" in proc.stdout
        assert _counts(engine) == {**dict.fromkeys(_counts(engine), 2), "images": 4}
        # Images whose children are still there are not purged (Glance would fail on the foreign key).
        proc = run(conf, "db", "purge_images_table", "--age_in_days", "30", "--max_rows", "-1")
        assert proc.returncode == 0, proc.stderr
        assert "Deleted 2 row(s) from table images" in proc.stdout

        assert run(conf, "db", "purge", "--max_rows", "-1").returncode == 0
        assert _counts(engine) == {**dict.fromkeys(_counts(engine), 1), "images": 2}
        assert run(conf, "db_purge_images_table", "--age_in_days", "30").returncode == 0
        # What was deleted a day ago stays: its id is still taken.
        assert _counts(engine) == dict.fromkeys(_counts(engine), 1)
        assert run(conf, "db", "purge_images_table").stdout.strip() == "Deleted 0 row(s) from table images"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--age_in_days", "x"], "Invalid int value for age_in_days: x"),
        (["--max_rows", "many"], "Invalid int value for max_rows: many"),
        (["--age_in_days", "-1"], "Must supply a non-negative value for age."),
        (["--age_in_days", "100000"], "Maximal age is count of days since epoch."),
        (["--max_rows", "-2"], "Minimal rows limit is -1."),
        (["--max_rows", str(2**31)], "'max_rows' value out of range"),
    ],
)
def test_purge_arguments_are_checked_as_glance_manage_does(tmp_path, args, message):
    conf = write_config(tmp_path)
    for command in ("purge", "purge_images_table"):
        assert_one_line_failure(run(conf, "db", command, *args), message)
