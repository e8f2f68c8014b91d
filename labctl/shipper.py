"""The shipper: a bench's run store, replicated to the lab store (PostgreSQL).

A bench never depends on the network: every run is journaled in its own
SQLite store as before, and the shipper copies what the store holds to the
lab store - on demand (``labctl sync``) and continuously while a run or a
queue goes (:class:`BackgroundShipper`, a thread that never blocks or fails
the run: while the server is down it tries again later).

Shipping is idempotent and resumable:

* Every row carries the bench id (:meth:`labctl.store.RunStore.bench_id`).
* ``formulations``, ``runs``, ``steps``, ``wafers``, ``moves`` have keys on
  the bench; they are upserted, and a row that changed (a step going
  *started* -> *finished*, a run's status) is updated, one that did not is
  left alone (``ON CONFLICT ... DO UPDATE ... WHERE ... IS DISTINCT FROM``).
* ``samples``, ``measurements``, ``events`` are only ever appended to; the
  n-th row of a run (in the order the bench journaled it) is
  ``(bench_id, run_id, n)`` in the lab. How many rows of each run and table
  the lab holds is ``ship_marks``, written in the transaction that writes the
  rows, under an advisory lock per bench: two shippers of one bench (a run's
  and a ``labctl sync``) take turns, and each ships exactly the rows after
  the mark. A transaction cut short by a server that stops leaves the rows
  and the mark as they were; the next pass ships them again. Samples go by
  ``COPY``.

The shipper reads the store through its own read-only connection (WAL: a
reader never blocks the run's writes) and keeps in memory only how far it
has read; everything else it derives from the lab store when it (re)connects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, LabctlError
from .labdb import (
    LabStoreError,
    advisory_key,
    connect,
    ensure_schema,
    failure,
    mask,
)
from .store import RunStore, now_text, open_read_only

__all__ = ["BackgroundShipper", "ShipReport", "Shipper", "shipping", "start_shipping"]

log = logging.getLogger(__name__)

#: Tables keyed on the bench, in shipping order, with their keys.
KEYED = {
    "formulations": ("hash",),
    "runs": ("run_id",),
    "steps": ("run_id", "seq"),
    "wafers": ("run_id", "wafer_id"),
    "moves": ("id",),
}
APPENDED = ("measurements", "events", "samples")
#: Run states in which its rows may still change: such a run is looked at every pass.
_OPEN_STATES = ("created", "running")
#: Rows of the append-only tables read from the store per pass (memory bound).
READ_PER_PASS = 200_000
#: Rows written to the lab per transaction (a server stopped mid-way loses at most these).
ROWS_PER_TRANSACTION = 100_000
#: Rows held in memory while the lab store is unreachable; past this they are read again later.
MAX_PENDING = 500_000


@dataclass
class ShipReport:
    """What one shipment (one or more passes) sent: rows per table, and how long it took."""

    bench: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    transactions: int = 0

    def add(self, table: str, count: int) -> None:
        if count:
            self.rows[table] = self.rows.get(table, 0) + count

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def line(self) -> str:
        """One line: the rows of every table shipped, or that nothing was new."""
        if not self.rows:
            return "nothing new"
        order = [*KEYED, *APPENDED]
        parts = [f"{table} {self.rows[table]}" for table in order if table in self.rows]
        return ", ".join(parts)


def _columns(table: str) -> tuple[str, ...]:
    from .schema import shipped_columns

    return shipped_columns(table)


#: Tables whose text may come from outside labctl (an instrument's reply in an event's message).
_CLEANED = ("events", *KEYED)


def _clean(row: Sequence[Any]) -> tuple[Any, ...]:
    # PostgreSQL text cannot hold NUL, which SQLite can: such a row would stop
    # every later shipment of its bench. It is the only value changed on the way.
    return tuple(
        value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value
        for value in row
    )


class Shipper:
    """Ships one data directory's store to one lab store; call :meth:`ship` as often as wanted.

    ``bench`` names the bench the first time it ships (see
    :meth:`labctl.store.RunStore.bench_id`). Raises :class:`LabUnavailable`
    while the server cannot be reached - call again later: nothing is lost
    or shipped twice. Not thread-safe: one thread ships.
    """

    def __init__(self, data_dir: str | Path, url: str, *, bench: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.url = url
        store = RunStore(self.data_dir, create=False)
        try:
            self.bench = store.bench_id(bench)
            self._path = store.path
        finally:
            store.close()
        self._lock_key = advisory_key(f"labctl ship {self.bench}")
        self._local: sqlite3.Connection | None = None
        self._server: Any = None
        # What the store holds up to a rowid per table: rows counted per run.
        self._cursor: dict[str, int] = {}
        self._count: dict[str, dict[str, int]] = {}
        # The first and last rowid of each run's rows (a run's rows lie close together).
        self._span: dict[str, dict[str, list[int]]] = {}
        # Rows read and not yet in the lab: table -> run -> (first n, rows).
        self._pending: dict[str, dict[str, tuple[int, list[tuple[Any, ...]]]]] = {}
        # What the lab holds, as last seen (re-read after a reconnection).
        self._lab_runs: dict[str, tuple[Any, ...]] = {}
        self._lab_formulations: set[str] = set()
        self._marks: dict[tuple[str, str], int] = {}
        self._sql: dict[str, Any] = {}

    # -- connections ----------------------------------------------------------------

    def _local_db(self) -> sqlite3.Connection:
        if self._local is None:
            self._local = open_read_only(self._path)
        return self._local

    def _server_db(self) -> Any:
        if self._server is not None and not self._server.closed:
            return self._server
        self._server = None
        connection = connect(self.url, purpose=f"labctl shipper {self.bench}")
        try:
            ensure_schema(connection, self.url)
            self._load_lab(connection)
        except BaseException:
            connection.close()
            raise
        self._server = connection
        return connection

    def _drop_server(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.close()
        self._server = None

    def close(self) -> None:
        """Close both connections (a later :meth:`ship` opens them again)."""
        self._drop_server()
        if self._local is not None:
            self._local.close()
            self._local = None

    def _load_lab(self, connection: Any) -> None:
        """What the lab holds of this bench: its runs as shipped, formulations, marks."""
        columns = _columns("runs")
        names = ", ".join(f'"{c}"' for c in columns)
        rows = connection.execute(
            f"SELECT {names} FROM runs WHERE bench_id = %s", (self.bench,)
        ).fetchall()
        self._lab_runs = {row[0]: tuple(row) for row in rows}
        self._lab_formulations = {
            row[0]
            for row in connection.execute(
                "SELECT hash FROM formulations WHERE bench_id = %s", (self.bench,)
            )
        }
        self._marks = {
            (row[1], row[0]): int(row[2])
            for row in connection.execute(
                "SELECT run_id, table_name, shipped FROM ship_marks WHERE bench_id = %s",
                (self.bench,),
            )
        }
        connection.commit()

    # -- reading the store -------------------------------------------------------------

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: everything read in it is one state of the store."""
        db = self._local_db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def _count_store(self, db: sqlite3.Connection) -> None:
        """How many rows of each run the store holds, per append-only table (first pass)."""
        for table in APPENDED:
            top = db.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0]
            found = db.execute(  # the same snapshot as `top`
                f"SELECT run_id, COUNT(*), MIN(rowid), MAX(rowid) FROM {table} GROUP BY run_id"
            ).fetchall()
            self._cursor[table] = int(top)
            self._count[table] = {str(run): int(n) for run, n, _, _ in found}
            self._span[table] = {str(run): [int(lo), int(hi)] for run, _, lo, hi in found}
            self._pending[table] = {}

    def _read_new(self, db: sqlite3.Connection) -> None:
        """Rows appended since the last pass, numbered within their run."""
        for table in APPENDED:
            columns = _columns(table)
            rows = db.execute(
                f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE rowid > ?"
                " ORDER BY rowid LIMIT ?",
                (self._cursor[table], READ_PER_PASS),
            ).fetchall()
            if not rows:
                continue
            counts, pending, spans = self._count[table], self._pending[table], self._span[table]
            for row in rows:
                run = row[1]
                n = counts.get(run, 0) + 1
                counts[run] = n
                span = spans.setdefault(run, [row[0], row[0]])
                span[1] = row[0]
                first, held = pending.get(run, (n, []))
                if first + len(held) != n:  # rows before were dropped: read them again later
                    first, held = n, []
                held.append(_clean(row[1:]) if table in _CLEANED else row[1:])
                pending[run] = (first, held)
            self._cursor[table] = int(rows[-1][0])
        if sum(len(held) for p in self._pending.values() for _, held in p.values()) > MAX_PENDING:
            # The lab has been away long: forget the rows, read them again when it is back.
            for table in APPENDED:
                self._pending[table] = {}

    def _tail(self, table: str, run: str, after: int) -> list[tuple[Any, ...]]:
        """Rows ``after + 1`` ... of ``run`` in ``table`` as the store holds them now."""
        count = self._count[table].get(run, 0)
        if after >= count:
            return []
        first, held = self._pending[table].get(run, (count + 1, []))
        rows: list[tuple[Any, ...]] = []
        if after + 1 < first:
            columns = _columns(table)
            rows = [
                _clean(row) if table in _CLEANED else row
                # In rowid order over the run's span, not through the run_id index: no sort.
                for row in self._local_db().execute(
                    f"SELECT {', '.join(columns)} FROM {table} NOT INDEXED"
                    " WHERE rowid BETWEEN ? AND ? AND run_id = ? ORDER BY rowid LIMIT ? OFFSET ?",
                    (*self._span[table][run], run, first - 1 - after, after),
                )
            ]
            if len(rows) != first - 1 - after:
                raise LabStoreError(
                    f"the store's {table} of run {run} changed under the shipper",
                    path=str(self._path),
                )
        start = max(0, after + 1 - first)
        return rows + held[start:]

    # -- one shipment ------------------------------------------------------------------

    def ship(self) -> ShipReport:
        """Ship everything the store holds that the lab does not (one or more passes)."""
        report = ShipReport(bench=self.bench)
        started = time.perf_counter()
        while True:
            before = report.total
            more = self._pass(report)
            if not more or report.total == before:
                break
        report.seconds = time.perf_counter() - started
        return report

    def _pass(self, report: ShipReport) -> bool:
        """One pass; True if the store held more than one pass reads."""
        try:
            server = self._server_db()
            work, more = self._work()
            for batch in _batches(work):
                self._ship_batch(server, batch, report)
            return more
        except LabctlError:
            self._drop_server()
            raise
        except sqlite3.Error as exc:
            raise LabStoreError(f"cannot read the store: {exc}", path=str(self._path)) from exc
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                self._drop_server()
                raise failure(exc, self.url) from None
            raise

    def _work(self) -> tuple[list[dict[str, Any]], bool]:
        """What to ship, per run, read in one snapshot of the store; and whether more waits."""
        run_columns = _columns("runs")
        with self._snapshot() as db:
            if not self._cursor:
                self._count_store(db)
            self._read_new(db)
            more = any(
                db.execute(
                    f"SELECT 1 FROM {t} WHERE rowid > ? LIMIT 1", (self._cursor[t],)
                ).fetchone()
                is not None
                for t in APPENDED
            )
            formulations = [
                _clean(row)
                for row in db.execute(
                    f"SELECT {', '.join(_columns('formulations'))} FROM formulations"
                )
                if row[0] not in self._lab_formulations
            ]
            runs = {
                row[0]: _clean(row)
                for row in db.execute(f"SELECT {', '.join(run_columns)} FROM runs ORDER BY rowid")
            }
            status = run_columns.index("status")
            work = []
            for run, row in runs.items():
                behind = {
                    table: self._count[table].get(run, 0) - self._marks.get((table, run), 0)
                    for table in APPENDED
                }
                changed = self._lab_runs.get(run) != row or row[status] in _OPEN_STATES
                if not changed and not any(n > 0 for n in behind.values()):
                    continue
                unit: dict[str, Any] = {
                    "run": run,
                    "behind": behind,
                    "runs": [row] if changed else [],
                }
                for table in ("steps", "wafers", "moves"):
                    unit[table] = (
                        [
                            _clean(r)
                            for r in db.execute(
                                f"SELECT {', '.join(_columns(table))} FROM {table}"
                                " WHERE run_id = ?",
                                (run,),
                            )
                        ]
                        if changed
                        else []
                    )
                work.append(unit)
        if formulations:
            work.insert(0, {"run": None, "formulations": formulations, "behind": {}})
        return work, more

    def _sql_for(self, table: str) -> Any:
        """The upsert of a keyed table, composed once from the schema's column names."""
        if table in self._sql:
            return self._sql[table]
        from psycopg import sql

        columns = ("bench_id", *_columns(table))
        key = ("bench_id", *KEYED[table])
        values = [c for c in columns if c not in key]
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({key}) "
        ).format(
            table=sql.Identifier(table),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            marks=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            key=sql.SQL(", ").join(map(sql.Identifier, key)),
        )
        if table == "formulations":  # content-addressed: never changes
            statement += sql.SQL("DO NOTHING")
        else:
            statement += sql.SQL(
                "DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})"
            ).format(
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in values
                ),
                old=sql.SQL(", ").join(sql.Identifier(table, c) for c in values),
                new=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in values),
            )
        self._sql[table] = statement
        return statement

    def _copy_sql(self, table: str) -> Any:
        from psycopg import sql

        name = f"copy {table}"
        if name not in self._sql:
            columns = ("bench_id", "run_id", "n", *_columns(table)[1:])
            self._sql[name] = sql.SQL("COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)").format(
                table=sql.Identifier(table),
                columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            )
            self._sql[f"types {table}"] = _copy_types(table, columns)
        return self._sql[name]

    def _ship_batch(self, server: Any, batch: list[dict[str, Any]], report: ShipReport) -> None:
        """One transaction: the batch's rows and marks, under the bench's advisory lock."""
        bench = self.bench
        runs = [unit["run"] for unit in batch if unit["run"] is not None]
        shipped: dict[str, int] = {}
        marks_now: dict[tuple[str, str], int] = {}
        with server.transaction(), server.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            cursor.execute(
                "SELECT run_id, table_name, shipped FROM ship_marks"
                " WHERE bench_id = %s AND run_id = ANY(%s)",
                (bench, runs),
            )
            for run, table, count in cursor.fetchall():
                marks_now[(table, run)] = int(count)
            for table in KEYED:
                rows = [(bench, *row) for unit in batch for row in unit.get(table, ())]
                if rows:
                    cursor.executemany(self._sql_for(table), rows)
                    shipped[table] = len(rows)
            new_marks = []
            stamp = now_text()
            for table in APPENDED:
                with cursor.copy(self._copy_sql(table)) as copy:
                    copy.set_types(self._sql[f"types {table}"])
                    for run in runs:
                        after = marks_now.get((table, run), 0)
                        rows = self._tail(table, run, after)
                        for offset, row in enumerate(rows, start=after + 1):
                            copy.write_row((bench, run, offset, *row[1:]))
                        if rows:
                            new_marks.append((bench, run, table, after + len(rows), stamp))
                            shipped[table] = shipped.get(table, 0) + len(rows)
                            marks_now[(table, run)] = after + len(rows)
            if new_marks:
                cursor.executemany(
                    "INSERT INTO ship_marks (bench_id, run_id, table_name, shipped, shipped_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (bench_id, run_id, table_name)"
                    " DO UPDATE SET shipped = EXCLUDED.shipped, shipped_at = EXCLUDED.shipped_at",
                    new_marks,
                )
        # Committed: remember what the lab now holds.
        report.transactions += 1
        for table, count in shipped.items():
            report.add(table, count)
        for unit in batch:
            for row in unit.get("runs", ()):
                self._lab_runs[row[0]] = row
            for row in unit.get("formulations", ()):
                self._lab_formulations.add(row[0])
        for key, count in marks_now.items():
            self._marks[key] = count
            table, run = key
            first, held = self._pending[table].get(run, (0, []))
            if held and first + len(held) - 1 <= count:
                del self._pending[table][run]
            elif held and first <= count:
                self._pending[table][run] = (count + 1, held[count + 1 - first :])


def _copy_types(table: str, columns: Sequence[str]) -> list[str]:
    """The PostgreSQL type of each column of a binary COPY, from the one schema."""
    from sqlalchemy.dialects import postgresql

    from .schema import lab_metadata

    names = {"TEXT": "text", "INTEGER": "int4", "BIGINT": "int8", "DOUBLE PRECISION": "float8"}
    found = lab_metadata().tables[table].c
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return [names[found[c].type.compile(dialect=dialect)] for c in columns]


def _batches(work: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Runs grouped so one transaction writes about :data:`ROWS_PER_TRANSACTION` rows."""
    batch: list[dict[str, Any]] = []
    size = 0
    for unit in work:
        rows = sum(max(0, n) for n in unit["behind"].values()) + sum(
            len(unit.get(t, ())) for t in KEYED
        )
        if batch and size + rows > ROWS_PER_TRANSACTION:
            yield batch
            batch, size = [], 0
        batch.append(unit)
        size += rows
    if batch:
        yield batch


class BackgroundShipper:
    """Ships a data directory's store every ``interval`` s from a daemon thread.

    Never raises into the caller and never holds it up: a lab store that is
    down (or refuses) is tried again later, after 1, 2, 4 ... at most
    ``retry_max`` s; each new problem is logged once, the URL masked.
    :meth:`stop` makes a last shipment if it can within ``timeout`` s.
    """

    def __init__(
        self,
        data_dir: str | Path,
        url: str,
        *,
        bench: str | None = None,
        interval: float = 1.0,
        retry_max: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.url = url
        self.bench = bench
        self.interval = interval
        self.retry_max = retry_max
        self.shipped = ShipReport()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._final = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labctl-shipper", daemon=True)

    def start(self) -> BackgroundShipper:
        self._thread.start()
        return self

    def _loop(self) -> None:
        shipper: Shipper | None = None
        wait = self.interval
        try:
            while True:
                final = self._stop.is_set()
                try:
                    if shipper is None:
                        shipper = Shipper(self.data_dir, self.url, bench=self.bench)
                        self.shipped.bench = shipper.bench
                    report = shipper.ship()
                    for table, count in report.rows.items():
                        self.shipped.add(table, count)
                    self.shipped.transactions += report.transactions
                    if self.last_error is not None:
                        log.info("lab store %s reached again", mask(self.url))
                    self.last_error = None
                    wait = self.interval
                except (LabctlError, sqlite3.Error, OSError) as exc:
                    message = str(exc)
                    if message != self.last_error:
                        log.warning("shipping to the lab store: %s (trying again later)", message)
                    self.last_error = message
                    wait = min(self.retry_max, max(self.interval, wait * 2))
                    if isinstance(exc, InputError):
                        wait = self.retry_max
                if final:
                    return
                self._stop.wait(wait)
        except Exception:  # never into the run: the bench's record is its own store
            log.exception("the lab-store shipper stopped")
        finally:
            if shipper is not None:
                shipper.close()
            self._final.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ship once more (if the lab store answers within ``timeout`` s), then end."""
        self._stop.set()
        if self._thread.is_alive():
            self._final.wait(timeout)


#: Set in a process whose parent ships its data directory (a queue's entry): no second shipper.
ENV_SHIPPED_BY_PARENT = "LABCTL_SHIPPED_BY_PARENT"


def start_shipping(data_dir: str | Path) -> BackgroundShipper | None:
    """Start shipping ``data_dir`` in the background if ``$LABCTL_DATABASE_URL`` names a lab store.

    None - nothing started - without it, without the lab client installed,
    or in a process whose parent already ships (``$LABCTL_SHIPPED_BY_PARENT``).
    ``$LABCTL_BENCH`` names the bench the first time. Never raises for the
    lab store: a bench works the same with the server down. The caller
    calls :meth:`BackgroundShipper.stop` when its run ends.
    """
    from .labdb import ENV_URL, is_lab_url

    url = os.environ.get(ENV_URL, "").strip()
    if not is_lab_url(url) or os.environ.get(ENV_SHIPPED_BY_PARENT) == "1":
        return None
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        log.warning(
            "%s is set but the lab client is not installed: pip install 'labctl[lab]'", ENV_URL
        )
        return None
    return BackgroundShipper(data_dir, url, bench=os.environ.get("LABCTL_BENCH") or None).start()


@contextlib.contextmanager
def shipping(data_dir: str | Path) -> Iterator[BackgroundShipper | None]:
    """:func:`start_shipping` for the length of a block."""
    shipper = start_shipping(data_dir)
    try:
        yield shipper
    finally:
        if shipper is not None:
            shipper.stop()
