"""Migrations on SQLite and PostgreSQL: every revision from empty, db check at each stage, schema == tables.py."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from glancelite.db import engine as db_engine
from glancelite.db import migration, tables
from glancelite.db.migration import Status
from glancelite.settings import DatabaseSettings

NOW = datetime.datetime(2020, 1, 1)


@pytest.fixture
def engine(database_url):
    eng = db_engine.create_engine(DatabaseSettings(connection=database_url))
    yield eng
    eng.dispose()


def check(url: str) -> Status:
    ro = migration.readonly_engine(url)
    try:
        return migration.check(ro)[0]
    finally:
        ro.dispose()


def revisions_in_order() -> list[str]:
    return [rev.revision for rev in reversed(list(migration.script_directory().walk_revisions()))]


def insert_legacy_images(engine) -> None:
    """Rows as pre-visibility code wrote them: is_public only."""
    images = [("img-public", True), ("img-shared", False), ("img-private", False), ("img-ex-shared", False)]
    with engine.begin() as conn:
        for image_id, is_public in images:
            conn.execute(
                sa.text(
                    "INSERT INTO images (id, status, created_at, deleted, min_disk, min_ram, protected,"
                    " os_hidden, is_public) VALUES (:id, 'active', :now, :f, 0, 0, :f, :f, :pub)"
                ),
                {"id": image_id, "now": NOW, "f": False, "pub": is_public},
            )
        for image_id, deleted in (("img-shared", False), ("img-ex-shared", True)):
            conn.execute(
                sa.text(
                    "INSERT INTO image_members (image_id, member, can_share, status, created_at, deleted)"
                    " VALUES (:id, 'project-b', :f, 'accepted', :now, :deleted)"
                ),
                {"id": image_id, "f": False, "now": NOW, "deleted": deleted},
            )


def columns(engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def schema_diff(engine) -> list:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    # taskflow's tables declare their primary keys unique as well; PostgreSQL keeps no second
    # constraint for that, so its reflection never shows one.
    return [d for d in diff if not (d[0] == "add_constraint" and _redundant_unique(d[1]))]


def _redundant_unique(constraint) -> bool:
    if not isinstance(constraint, sa.UniqueConstraint):
        return False
    primary_key = {c.name for c in tables.metadata.tables[constraint.table.name].primary_key.columns}
    return {c.name for c in constraint.columns} == primary_key


def test_revision_graph_has_expand_and_contract_branches():
    script = migration.script_directory()
    assert script.get_bases() == ["initial01"]
    assert migration.branch_head("expand") == "expand06"
    assert migration.branch_head("contract") == "contract01"
    contract01 = script.get_revision("contract01")
    assert contract01.dependencies == "expand01"
    assert set(script.get_heads()) == {"expand06", "contract01"}


def test_every_revision_up_from_empty(engine, database_url):
    assert check(database_url) == Status.EXPAND_NEEDED
    seen = []
    for revision in revisions_in_order():
        migration.upgrade(engine, revision)
        seen.append((revision, check(database_url)))
    assert seen == [
        ("initial01", Status.EXPAND_NEEDED),
        ("expand01", Status.EXPAND_NEEDED),
        # An empty database has no rows to migrate: contract is next.
        ("expand02", Status.EXPAND_NEEDED),
        ("expand03", Status.EXPAND_NEEDED),
        ("expand04", Status.EXPAND_NEEDED),
        ("expand05", Status.EXPAND_NEEDED),
        ("expand06", Status.CONTRACT_NEEDED),
        ("contract01", Status.UP_TO_DATE),
    ]
    assert schema_diff(engine) == []


def test_db_check_at_each_stage_of_a_rolling_upgrade(engine, database_url):
    assert check(database_url) == Status.EXPAND_NEEDED  # empty
    migration.upgrade(engine, "initial01")
    insert_legacy_images(engine)
    assert check(database_url) == Status.EXPAND_NEEDED

    migration.expand(engine)
    assert check(database_url) == Status.MIGRATE_NEEDED
    assert {"is_public", "visibility"} <= columns(engine, "images")

    assert migration.migrate(engine) == 4
    assert check(database_url) == Status.CONTRACT_NEEDED
    assert migration.migrate(engine) == 0  # idempotent

    migration.contract(engine)
    assert check(database_url) == Status.UP_TO_DATE
    assert "is_public" not in columns(engine, "images")
    with engine.connect() as conn:
        visibility = dict(conn.execute(sa.select(tables.images.c.id, tables.images.c.visibility)).all())
    assert visibility == {
        "img-public": "public",
        "img-shared": "shared",  # private with a live member
        "img-private": "private",
        "img-ex-shared": "private",  # its only member was deleted
    }
    assert migration.version(engine) == ["contract01", "expand06"]
    assert schema_diff(engine) == []


def test_new_code_writes_between_expand_and_contract(engine, database_url):
    """After expand, code that knows only ``visibility`` can insert: is_public has a server default."""
    migration.expand(engine)
    with engine.begin() as conn:
        conn.execute(
            tables.images.insert().values(
                id="new-code", status="queued", created_at=NOW, deleted=False, visibility="community"
            )
        )
    assert check(database_url) == Status.CONTRACT_NEEDED
    migration.contract(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(tables.images.c.visibility)).scalar_one() == "community"


def test_steps_out_of_order_are_refused(engine):
    with pytest.raises(migration.MigrationError, match="db expand"):
        migration.migrate(engine)
    with pytest.raises(migration.MigrationError, match="db expand"):
        migration.contract(engine)
    migration.upgrade(engine, "initial01")
    insert_legacy_images(engine)
    migration.expand(engine)
    with pytest.raises(migration.MigrationError, match="db migrate"):
        migration.contract(engine)
    assert migration.version(engine) == ["expand06"]


def test_sync_is_idempotent_and_builds_tables_py(engine, database_url):
    assert migration.sync(engine) is True
    assert migration.sync(engine) is False
    assert check(database_url) == Status.UP_TO_DATE
    assert schema_diff(engine) == []


def test_sync_migrates_legacy_rows(engine):
    migration.upgrade(engine, "initial01")
    insert_legacy_images(engine)
    assert migration.sync(engine) is True
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(tables.images.c.visibility.is_(None))).scalar() == 0


def test_visibility_is_constrained_after_contract(engine):
    migration.sync(engine)
    with pytest.raises(sa.exc.DBAPIError):
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO images (id, status, created_at, deleted, min_disk, min_ram, protected,"
                    " os_hidden, visibility) VALUES ('x', 'active', :now, :f, 0, 0, :f, :f, 'nonsense')"
                ),
                {"now": NOW, "f": False},
            )


# -- db check never changes the database ------------------------------------------------------------


def snapshot(url: str) -> tuple:
    """Everything check could touch: the columns of every table and the alembic version rows."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            insp = sa.inspect(conn)
            schema = {t: sorted(c["name"] for c in insp.get_columns(t)) for t in sorted(insp.get_table_names())}
            versions = []
            if "alembic_version" in schema:
                versions = sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
            return schema, versions
    finally:
        eng.dispose()


def file_digest(url: str) -> str | None:
    path = Path(sa.engine.make_url(url).database)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.parametrize("stage", ["empty", "base", "expanded", "migrated", "contracted"])
def test_check_never_changes_the_database(engine, database_url, stage):
    if stage != "empty":
        migration.upgrade(engine, "initial01")
        insert_legacy_images(engine)
    if stage in ("expanded", "migrated", "contracted"):
        migration.expand(engine)
    if stage in ("migrated", "contracted"):
        migration.migrate(engine)
    if stage == "contracted":
        migration.contract(engine)
    engine.dispose()  # close pooled connections so the SQLite file is at rest
    sqlite = database_url.startswith("sqlite")
    before = (file_digest(database_url) if sqlite else None, snapshot(database_url) if stage != "empty" else None)
    verdict = check(database_url)
    after = (file_digest(database_url) if sqlite else None, snapshot(database_url) if stage != "empty" else None)
    assert before == after
    expected = {
        "empty": Status.EXPAND_NEEDED,
        "base": Status.EXPAND_NEEDED,
        "expanded": Status.MIGRATE_NEEDED,
        "migrated": Status.CONTRACT_NEEDED,
        "contracted": Status.UP_TO_DATE,
    }[stage]
    assert verdict == expected
    if sqlite and stage == "empty":
        assert file_digest(database_url) is None, "db check created the SQLite file"


def test_readonly_engine_cannot_write(engine, database_url):
    migration.sync(engine)
    engine.dispose()
    ro = migration.readonly_engine(database_url)
    try:
        with pytest.raises(sa.exc.DBAPIError):
            with ro.begin() as conn:
                conn.execute(sa.text("DELETE FROM alembic_version"))
    finally:
        ro.dispose()
    assert check(database_url) == Status.UP_TO_DATE


def test_unreachable_database_is_one_readable_error():
    eng = db_engine.create_engine(DatabaseSettings(connection="postgresql://glance:secret@127.0.0.1:1/glance"))
    with pytest.raises(db_engine.DatabaseUnavailable) as info:
        migration.version(eng)
    message = str(info.value)
    assert "cannot connect to the database postgresql://glance:***@127.0.0.1:1/glance" in message
    assert "secret" not in message
    assert "\n" not in message


def test_skeleton_stamp_base01_counts_as_current(engine, database_url):
    """Databases built by the foundation skeleton's single revision are restamped, not rebuilt."""
    # base01 built the schema as it stood at contract01 + expand02 (before the metadef tables).
    migration.upgrade(engine, "expand02")
    migration.upgrade(engine, "contract01")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('base01')"))
    assert check(database_url) == Status.EXPAND_NEEDED
    migration.expand(engine)  # restamps, then adds only what came after base01
    assert schema_diff(engine) == []
    assert migration.version(engine) == ["contract01", "expand06"]
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()) == [
            "contract01",
            "expand06",
        ]
