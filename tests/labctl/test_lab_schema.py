"""One schema, two databases: labctl/schema.py against the SQLite store and the lab store."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from labctl import labdb
from labctl.schema import APPEND_ONLY, SHIPPED, bench_metadata, lab_metadata, shipped_columns
from labctl.store import SCHEMA, RunStore
from tests.cli import labctl


def differences(engine: sa.engine.Engine, metadata: sa.MetaData) -> list[Any]:
    """Alembic's autogenerate comparison: what a migration would have to change."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        found = compare_metadata(context, metadata)
    ignored = {"alembic_version"}
    return [d for d in found if not (d[0] == "remove_table" and d[1].name in ignored)]


def _single_text_keys(found: list[Any]) -> list[Any]:
    """All but one difference: SQLite lets a one-column non-INTEGER PRIMARY KEY hold NULL
    (a legacy quirk) - the store's DDL says `TEXT PRIMARY KEY`, the definition NOT NULL."""
    left = []
    for difference in found:
        change = difference[0] if isinstance(difference, list) else difference
        if change[0] == "modify_nullable" and change[3] in ("hash", "key", "run_id", "id"):
            continue
        left.append(difference)
    return left


def test_the_sqlite_store_is_the_one_definition(tmp_path: Path) -> None:
    RunStore(tmp_path).close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'labctl.sqlite'}")
    assert _single_text_keys(differences(engine, bench_metadata())) == []
    engine.dispose()
    # And the definition made by SQLAlchemy on SQLite is the same store, as RunStore sees it.
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    bench_metadata().create_all(fresh)
    assert differences(fresh, bench_metadata()) == []
    fresh.dispose()


#: The store as labctl's first release of schema version 1 made it: no `moves` table and
#: none of the columns added since (labctl.store._ADDED_COLUMNS).
def _first_release_schema() -> str:
    old = re.sub(r"CREATE TABLE IF NOT EXISTS moves \(.*?\);", "", SCHEMA, flags=re.S)
    old = re.sub(r"CREATE INDEX IF NOT EXISTS moves_run[^;]*;", "", old)
    for column in (", replaces TEXT", ",\n    bench_started REAL, bench_finished REAL"):
        old = old.replace(column, "")
    old = old.replace(", bench_time REAL, wall_time TEXT)", ")")
    old = old.replace(",\n    wall_time TEXT)", ")").replace(", bench_time REAL", "")
    assert "bench_time" not in old and "replaces" not in old and "moves" not in old
    return old


def test_a_first_release_v1_store_is_brought_to_the_definition_keeping_its_rows(
    tmp_path: Path,
) -> None:
    db = sqlite3.connect(tmp_path / "labctl.sqlite")
    db.executescript(_first_release_schema())
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO runs (run_id, protocol, parameters, software, operator, attended,"
        " simulated, created_at, status) VALUES ('r1', 'contrast-curve', '{}', '{}', 'x', 0, 1,"
        " '2025-01-01T00:00:00.000+00:00', 'completed')"
    )
    db.execute("INSERT INTO samples VALUES ('r1', 1, 'spin_speed', 0.5, 3000.0, 'rpm')")
    db.commit()
    db.close()
    store = RunStore(tmp_path)
    assert store.sample_rows("r1")[0]["value"] == 3000.0  # kept
    assert store.sample_rows("r1")[0]["bench_time"] is None  # and unknown where it was
    store.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'labctl.sqlite'}")
    assert _single_text_keys(differences(engine, bench_metadata())) == []
    engine.dispose()


def test_the_lab_tables_are_the_bench_tables_with_the_bench_id() -> None:
    bench, lab = bench_metadata(), lab_metadata()
    for table in SHIPPED:
        here = [c.name for c in bench.tables[table].columns]
        there = [c.name for c in lab.tables[table].columns]
        extra = ["bench_id", "n"] if table in APPEND_ONLY else ["bench_id"]
        assert sorted(there) == sorted([*here, *extra])
        assert list(shipped_columns(table)) == here
        key = [c.name for c in lab.tables[table].primary_key.columns]
        assert key[0] == "bench_id"


def test_the_migrations_make_the_definition_on_postgresql(lab_url: str) -> None:
    labdb.upgrade(lab_url)
    engine = sa.create_engine(lab_url.replace("postgresql://", "postgresql+psycopg://", 1))
    assert differences(engine, lab_metadata()) == []
    engine.dispose()
    connection = labdb.connect(lab_url)
    assert labdb.schema_version(connection) == labdb.LAB_SCHEMA_HEAD
    labdb.ensure_schema(connection, lab_url)  # at head: nothing to do, nothing fails
    connection.close()


def test_the_migrations_make_the_definition_on_sqlite(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lab.sqlite'}")
    with engine.begin() as connection:
        labdb.upgrade_connection(connection)
    assert differences(engine, lab_metadata()) == []
    engine.dispose()


def test_the_head_this_labctl_reads_is_the_newest_migration() -> None:
    script = ScriptDirectory.from_config(labdb._alembic_config(None))
    assert script.get_current_head() == labdb.LAB_SCHEMA_HEAD


def test_a_store_of_a_newer_labctl_is_refused_with_one_line(lab_url: str) -> None:
    labdb.upgrade(lab_url)
    connection = labdb.connect(lab_url, autocommit=True)
    connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()
    shown = labctl("runs", "--data", lab_url)
    assert shown.returncode == 1
    assert shown.stderr.count("\n") == 1 and "newer than this labctl" in shown.stderr
    with pytest.raises(labdb.LabStoreError, match="newer"):
        connection = labdb.connect(lab_url)
        try:
            labdb.ensure_schema(connection, lab_url)
        finally:
            connection.close()
