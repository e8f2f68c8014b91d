"""The one definition of labctl's tables, for both databases (SQLAlchemy Core).

Two :class:`~sqlalchemy.MetaData` are built from the same column lists:

``bench_metadata()``
    the run store of one bench - ``<data>/labctl.sqlite`` (schema version 1).
    :mod:`labctl.store` writes it with hand-written SQL on its hot path (see
    ``docs/lab-store.md``, "One schema"); ``tests/labctl/test_schema.py``
    holds that SQL and this definition together (Alembic's comparison of a
    store made by :class:`labctl.store.RunStore` with this metadata is empty).

``lab_metadata()``
    the lab store - PostgreSQL - that every bench ships to: the same tables,
    each row carrying the ``bench_id`` of the bench it came from; the keys are
    the bench's keys with ``bench_id`` in front. Tables a bench only appends
    to and that have no key of their own (``samples``, ``measurements``,
    ``events``) get ``n``, the row's place among its run's rows of that table
    in the order the bench journaled them (1, 2, ...): ``(bench_id, run_id,
    n)`` names a row on every bench and every server, so a row shipped twice
    is stored once. Plus what only the lab has: ``lab_meta``, ``ship_marks``
    (how many rows of each run and table a bench has shipped, updated in the
    transaction that ships them) and ``lab_queue`` (the lab-wide queue).
    Versioned by Alembic (:mod:`labctl.migrations`).

Types are chosen so a value reads back exactly as the bench wrote it: text
stays text (JSON documents and ISO 8601 UTC times as the bench stored them -
``parameters::jsonb`` and ``created_at::timestamptz`` work in SQL), numbers
are 64-bit floats, flags 0/1 integers as SQLite keeps them.

SQLAlchemy is imported by this module: import it only where a schema is made
or compared (``import labctl`` and ``labctl --help`` never do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

__all__ = [
    "APPEND_ONLY",
    "LAB_ONLY",
    "SHIPPED",
    "bench_metadata",
    "lab_metadata",
    "shipped_columns",
]

#: 64-bit float: REAL in SQLite (as the bench store was always made), DOUBLE PRECISION elsewhere.
REAL: TypeEngine[float] = Double().with_variant(sqlite.REAL(), "sqlite")
#: 64-bit integer (a seed is any whole number SQLite stores): INTEGER in SQLite, BIGINT elsewhere.
INT64: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

#: The bench tables the shipper copies to the lab, in the order it copies them.
SHIPPED = (
    "formulations",
    "runs",
    "steps",
    "wafers",
    "moves",
    "measurements",
    "events",
    "samples",
)
#: Shipped tables a bench only appends to, without a key of their own: keyed by ``n`` in the lab.
APPEND_ONLY = ("measurements", "events", "samples")
#: Tables only the lab store has.
LAB_ONLY = ("lab_meta", "ship_marks", "lab_queue")

ColumnList = Callable[[], list[Column[Any]]]


def _meta() -> list[Column[Any]]:
    return [Column("key", Text, primary_key=True), Column("value", Text, nullable=False)]


def _formulations() -> list[Column[Any]]:
    return [
        Column("hash", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("source", Text),
        Column("content", Text, nullable=False),
        Column("canonical", Text, nullable=False),
    ]


def _runs(bench: bool) -> list[Column[Any]]:
    formulation = [ForeignKey("formulations.hash")] if bench else []
    return [
        Column("run_id", Text, nullable=False),
        Column("protocol", Text, nullable=False),
        Column("parameters", Text, nullable=False),
        Column("recipe", Text),
        Column("formulation_hash", Text, *formulation),
        Column("station", Text),
        Column("software", Text, nullable=False),
        Column("operator", Text, nullable=False),
        Column("attended", Integer, nullable=False),
        Column("simulated", Integer, nullable=False),
        Column("seed", INT64),
        Column("created_at", Text, nullable=False),
        Column("started_at", Text),
        Column("ended_at", Text),
        Column("status", Text, nullable=False),
        Column("reason", Text),
        Column("pid", Integer),
    ]


def _run_id(bench: bool) -> Column[Any]:
    if bench:
        return Column("run_id", Text, ForeignKey("runs.run_id"), nullable=False)
    return Column("run_id", Text, nullable=False)


def _wafers(bench: bool) -> list[Column[Any]]:
    return [
        _run_id(bench),
        Column("wafer_id", Text, nullable=False),
        Column("state", Text, nullable=False),
        Column("reason", Text),
        Column("replaces", Text),
    ]


def _steps(bench: bool) -> list[Column[Any]]:
    return [
        _run_id(bench),
        Column("seq", Integer, nullable=False),
        Column("name", Text, nullable=False),
        Column("wafer_id", Text),
        Column("repeatable", Integer, nullable=False),
        Column("status", Text, nullable=False),
        Column("parameters", Text, nullable=False),
        Column("result", Text),
        Column("error", Text),
        Column("started_at", Text, nullable=False),
        Column("finished_at", Text),
        Column("attempts", Integer, nullable=False, server_default=text("1")),
        Column("bench_started", REAL),
        Column("bench_finished", REAL),
    ]


def _samples() -> list[Column[Any]]:
    return [
        Column("run_id", Text, nullable=False),
        Column("seq", Integer, nullable=False),
        Column("channel", Text, nullable=False),
        Column("t", REAL, nullable=False),
        Column("value", REAL, nullable=False),
        Column("unit", Text, nullable=False),
        Column("bench_time", REAL),
        Column("wall_time", Text),
    ]


def _measurements() -> list[Column[Any]]:
    return [
        Column("run_id", Text, nullable=False),
        Column("seq", Integer, nullable=False),
        Column("wafer_id", Text, nullable=False),
        Column("label", Text, nullable=False),
        Column("site", Text, nullable=False),
        Column("x_mm", REAL, nullable=False),
        Column("y_mm", REAL, nullable=False),
        Column("dose_requested_mJ_cm2", REAL),
        Column("dose_delivered_mJ_cm2", REAL),
        Column("thickness_nm", REAL, nullable=False),
        Column("thickness_error_nm", REAL),
        Column("refractive_index", REAL),
        Column("mse", REAL),
        Column("formulation_hash", Text),
        Column("measured_at", Text, nullable=False),
        Column("bench_time", REAL),
        Column("wall_time", Text),
    ]


def _events() -> list[Column[Any]]:
    return [
        Column("run_id", Text, nullable=False),
        Column("at", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("message", Text, nullable=False),
    ]


def _moves(bench: bool) -> list[Column[Any]]:
    key = (
        [Column("id", Integer, primary_key=True)]
        if bench
        else [Column("id", Integer, nullable=False, autoincrement=False)]
    )
    return [
        *key,
        Column("run_id", Text, nullable=False),
        Column("wafer_id", Text, nullable=False),
        Column("after_seq", Integer, nullable=False),
        Column("origin", Text, nullable=False),
        Column("destination", Text, nullable=False),
        Column("reason", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("error", Text),
        Column("started_at", Text, nullable=False),
        Column("finished_at", Text),
    ]


def _queue() -> list[Column[Any]]:
    return [
        Column("id", Integer, primary_key=True),
        Column("protocol", Text, nullable=False),
        Column("options", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("run_id", Text),
        Column("added_at", Text, nullable=False),
        Column("started_at", Text),
        Column("ended_at", Text),
        Column("reason", Text),
        Column("pid", Integer),
    ]


#: The key of each shipped table on a bench (the lab's is ``bench_id`` + this, or
#: ``bench_id, run_id, n`` for the tables in :data:`APPEND_ONLY`).
BENCH_KEYS: dict[str, tuple[str, ...]] = {
    "formulations": ("hash",),
    "runs": ("run_id",),
    "steps": ("run_id", "seq"),
    "wafers": ("run_id", "wafer_id"),
    "moves": ("id",),
}


def _table_columns(bench: bool) -> dict[str, list[Column[Any]]]:
    return {
        "formulations": _formulations(),
        "runs": _runs(bench),
        "steps": _steps(bench),
        "wafers": _wafers(bench),
        "moves": _moves(bench),
        "measurements": _measurements(),
        "events": _events(),
        "samples": _samples(),
    }


def bench_metadata() -> MetaData:
    """The tables of a bench's run store (SQLite), as :mod:`labctl.store` makes them."""
    metadata = MetaData()
    Table("meta", metadata, *_meta())
    columns = _table_columns(bench=True)
    Table(
        "formulations",
        metadata,
        *columns["formulations"],
        PrimaryKeyConstraint("hash"),
    )
    Table("runs", metadata, *columns["runs"], PrimaryKeyConstraint("run_id"))
    Table("wafers", metadata, *columns["wafers"], PrimaryKeyConstraint("run_id", "wafer_id"))
    Table("steps", metadata, *columns["steps"], PrimaryKeyConstraint("run_id", "seq"))
    Table(
        "samples",
        metadata,
        *columns["samples"],
        Index("samples_run", "run_id", "seq", "channel"),
    )
    Table(
        "measurements",
        metadata,
        *columns["measurements"],
        Index("measurements_run", "run_id", "wafer_id"),
    )
    Table("events", metadata, *columns["events"])
    Table(
        "moves",
        metadata,
        *columns["moves"],
        Index("moves_run", "run_id", "wafer_id"),
        sqlite_autoincrement=True,
    )
    Table("queue", metadata, *_queue(), sqlite_autoincrement=True)
    return metadata


def lab_metadata() -> MetaData:
    """The tables of the lab store: the shipped tables with ``bench_id``, and the lab's own.

    No foreign keys between shipped tables: a bench's journal is already
    consistent, the shipper writes a run's rows in the transaction that
    writes the run, and a per-row check would slow the samples' COPY.
    """
    metadata = MetaData()
    columns = _table_columns(bench=False)
    for name in SHIPPED:
        bench_id = Column("bench_id", Text, nullable=False)
        if name in APPEND_ONLY:
            own = columns[name]
            run_id, rest = own[0], own[1:]
            Table(
                name,
                metadata,
                bench_id,
                run_id,
                Column("n", Integer, nullable=False, autoincrement=False),
                *rest,
                PrimaryKeyConstraint("bench_id", "run_id", "n", name=f"{name}_pkey"),
            )
        else:
            Table(
                name,
                metadata,
                bench_id,
                *columns[name],
                PrimaryKeyConstraint("bench_id", *BENCH_KEYS[name], name=f"{name}_pkey"),
            )
    Index("runs_formulation", metadata.tables["runs"].c.formulation_hash)
    Index("runs_created", metadata.tables["runs"].c.created_at)
    Index("moves_run", metadata.tables["moves"].c.bench_id, metadata.tables["moves"].c.run_id)
    Table("lab_meta", metadata, *_meta())
    Table(
        "ship_marks",
        metadata,
        Column("bench_id", Text, nullable=False),
        Column("run_id", Text, nullable=False),
        Column("table_name", Text, nullable=False),
        Column("shipped", BigInteger, nullable=False),
        Column("shipped_at", Text, nullable=False),
        PrimaryKeyConstraint("bench_id", "run_id", "table_name", name="ship_marks_pkey"),
    )
    Table(
        "lab_queue",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("protocol", Text, nullable=False),
        # As a bench's queue keeps it: the run's options and its files' content (JSON text).
        Column("options", Text, nullable=False),
        # The bench that must run it; NULL: any bench that has every role in `roles`.
        Column("bench_id", Text),
        Column("roles", JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        Column("status", Text, nullable=False),
        # The bench that took it: only this bench ever runs or resumes it.
        Column("claimed_by", Text),
        # Which runner of that bench (host, pid), for people reading the queue.
        Column("runner", Text),
        Column("local_id", Integer),
        Column("run_id", Text),
        Column("lease_until", postgresql.TIMESTAMP(timezone=True).with_variant(Text(), "sqlite")),
        Column("added_at", Text, nullable=False),
        Column("started_at", Text),
        Column("ended_at", Text),
        Column("reason", Text),
        Index("lab_queue_waiting", "status", "id"),
    )
    return metadata


def shipped_columns(table: str) -> tuple[str, ...]:
    """A shipped table's columns on a bench, in the bench's order (no ``bench_id``, no ``n``)."""
    return tuple(column.name for column in _table_columns(bench=False)[table])
