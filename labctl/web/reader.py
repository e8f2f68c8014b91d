"""What the page reads, behind a small interface.

:class:`BenchReader` is everything :mod:`labctl.web` asks of the data: the
read side of :class:`labctl.store.RunStore` (``runs``, ``run``, ``steps``,
``wafers``, ``events``, ``measurement_rows``, ``sample_rows``,
``formulation``, ``queue`` - the same names and row shapes, so the analysis
and the report take a reader where they take a store), plus reads of what is
*new* since a row id (``events_after``, ``samples_after``,
``measurements_after``) and a cheap :meth:`~BenchReader.change_mark`.

:class:`SqliteReader` is one bench's store. It never writes and never holds
the run up:

- the file is opened read-only (``mode=ro``; ``immutable`` on a read-only
  file system), in autocommit: every query is its own short read, its rows
  fetched at once, so no read transaction outlives a query - in WAL mode a
  reader then never blocks the runner's commits nor its checkpoints;
- ``change_mark`` is ``PRAGMA data_version``, which moves when another
  connection commits: the live page polls it (microseconds) and reads
  nothing while nothing changed;
- what is new is read by row id (``rowid > ?``), as cheap as the new rows
  however large the store.

The lab store (PostgreSQL, every bench: ``docs/lab-store.md``) can stand
behind the same interface - each row with its ``bench`` - without the page
changing: ``docs/web.md`` says what a reader must give.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..store import (
    RunStore,
    StoreError,
    as_seen,
    header_problem,
    is_damage,
    open_read_only,
    read_only_medium,
    schema_problem,
)

__all__ = ["BenchReader", "SqliteReader"]


class BenchReader(Protocol):
    """What the page reads. Row shapes are those of :class:`labctl.store.RunStore`.

    Every row of a run carries ``bench`` (the bench it ran on). Rows read
    "after" an id carry that ``id``: increasing within a run, opaque otherwise.
    """

    #: Where the data is, for people ("/lab/bench-3/labctl-data", "postgresql://lab/...").
    location: str

    def benches(self) -> list[str]:
        """The benches this reader sees (one for a bench's own store)."""
        ...

    def change_mark(self) -> Any:
        """A value that changes whenever anything was written (compare with ``!=``)."""
        ...

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as a reader should see them (:func:`labctl.store.as_seen`)."""
        ...

    def running(self) -> list[dict[str, Any]]:
        """Runs that are running now (their process alive), newest first."""
        ...

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run (its id, or a prefix of exactly one), JSON fields decoded; None if none."""
        ...

    def steps(self, run_id: str) -> list[dict[str, Any]]: ...

    def wafers(self, run_id: str) -> dict[str, dict[str, Any]]: ...

    def events(self, run_id: str) -> list[dict[str, Any]]: ...

    def events_after(self, run_id: str, after: int) -> list[dict[str, Any]]: ...

    def measurement_rows(self, run_id: str) -> list[dict[str, Any]]: ...

    def measurements_after(self, run_id: str, after: int) -> list[dict[str, Any]]: ...

    def sample_rows(self, run_id: str) -> list[dict[str, Any]]: ...

    def samples_after(self, run_id: str, after: int) -> list[dict[str, Any]]: ...

    def formulation(self, content_hash: str) -> dict[str, Any] | None: ...

    def queue(self) -> list[dict[str, Any]]:
        """The queue's entries in order; ``options`` without the kept files' content."""
        ...

    def completed_bench_times(self, protocol: str, limit: int = 5) -> list[dict[str, Any]]:
        """The latest completed runs of ``protocol``: ``run_id``, ``parameters`` (JSON text),
        ``bench_total`` (s on the run's clock from its start to its last step's end)."""
        ...

    def close(self) -> None: ...


_RUN_COLUMNS = (
    "run_id, protocol, status, reason, operator, created_at, started_at, ended_at,"
    " formulation_hash, simulated, pid"
)
_SAMPLE_COLUMNS = "rowid AS id, run_id, seq, channel, t, value, unit, bench_time, wall_time"


class SqliteReader:
    """One bench's run store, read-only (see the module docstring). Thread-safe."""

    def __init__(self, data_dir: str | Path, *, checked: bool = False) -> None:
        """Open the store of ``data_dir`` for reading; refuse a missing or damaged one.

        Raises :class:`InputError` (no store there) or
        :class:`labctl.store.StoreError` (damaged, or a schema this labctl
        does not read), one line each. ``checked``: a :class:`RunStore` of
        this process has the file open and checked it - its header is not
        read again: closing a plain descriptor of the file would drop that
        store's SQLite locks (POSIX; see :mod:`labctl.store`).
        """
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / RunStore.FILENAME
        self.location = str(self.data_dir.resolve())
        if not self.path.is_file():
            where = "no such directory" if not self.data_dir.is_dir() else "no run store in it"
            raise InputError(
                f"{where} (expected {RunStore.FILENAME}); give the data directory of your runs"
                " with --data or LABCTL_DATA",
                field=f"--data {self.data_dir}",
            )
        self._lock = threading.Lock()
        try:
            problem = None if checked else header_problem(self.path)
            if problem is not None:
                raise StoreError(problem, path=str(self.path))
            # On a read-only medium nothing changes the file, and SQLite could
            # not make WAL's shared-memory index there.
            self._db = open_read_only(self.path, immutable=read_only_medium(self.data_dir))
            problem = schema_problem(self._db)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        except OSError as exc:
            raise StoreError(exc.strerror or str(exc), path=str(self.path)) from exc
        if problem is not None:
            self._db.close()
            raise StoreError(problem, path=str(self.path))
        self._db.execute("PRAGMA busy_timeout=2000")
        bench = self._rows("SELECT value FROM meta WHERE key='bench_id'")
        #: Shipped benches have an id (``labctl sync``); else the host's name, for people.
        self.bench = str(bench[0]["value"]) if bench else socket.gethostname()

    # -- plumbing ---------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if is_damage(exc):
            return StoreError(
                f"damaged: {exc}; run `labctl store check --data {self.data_dir}`",
                path=str(self.path),
            )
        return StoreError(f"read failed: {exc}", path=str(self.path))

    def _rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One short read: executed, every row fetched, the statement closed."""
        with self._lock:
            try:
                cursor = self._db.execute(sql, parameters)
                try:
                    names = [d[0] for d in cursor.description or ()]
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        return [dict(zip(names, row, strict=True)) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- the interface ----------------------------------------------------------------

    def benches(self) -> list[str]:
        return [self.bench]

    def change_mark(self) -> Any:
        return self._rows("PRAGMA data_version")[0]["data_version"]

    def _seen(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [as_seen({**row, "bench": self.bench}) for row in rows]

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            return self._seen(self._rows(f"{sql} LIMIT ?", (int(limit),)))
        return self._seen(self._rows(sql))

    def running(self) -> list[dict[str, Any]]:
        rows = self._rows(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE status='running'"
            " ORDER BY created_at DESC, rowid DESC"
        )
        return [row for row in self._seen(rows) if row["status"] == "running"]

    def run(self, run_id: str) -> dict[str, Any] | None:
        from ..names import RUN_ID, check_name, shown

        check_name(run_id, RUN_ID, field="run")
        rows = self._rows("SELECT * FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            rows = self._rows(
                "SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY created_at LIMIT 2",
                (len(run_id), run_id),
            )
            if len(rows) > 1:
                raise InputError(
                    f"{shown(run_id)} begins several runs; give more of the id", field="run"
                )
        if not rows:
            return None
        row = dict(rows[0])
        for key in ("parameters", "recipe", "station", "software"):
            row[key] = json.loads(row[key]) if row[key] else None
        return as_seen({**row, "bench": self.bench})

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM steps WHERE run_id=? ORDER BY seq", (run_id,))
        for row in rows:
            row["parameters"] = json.loads(row["parameters"]) if row["parameters"] else {}
            row["result"] = json.loads(row["result"]) if row["result"] else None
        return rows

    def wafers(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT * FROM wafers WHERE run_id=?", (run_id,))
        return {r["wafer_id"]: {"replaces": None, **r} for r in rows}

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT rowid AS id, at, kind, message FROM events WHERE run_id=? ORDER BY rowid",
            (run_id,),
        )

    def events_after(self, run_id: str, after: int) -> list[dict[str, Any]]:
        # `+run_id`: the rowid range, not a scan of the run's rows.
        return self._rows(
            "SELECT rowid AS id, at, kind, message FROM events"
            " WHERE rowid > ? AND +run_id = ? ORDER BY rowid",
            (int(after), run_id),
        )

    def measurement_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT rowid AS id, * FROM measurements WHERE run_id=? ORDER BY rowid", (run_id,)
        )

    def measurements_after(self, run_id: str, after: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT rowid AS id, * FROM measurements WHERE rowid > ? AND +run_id = ?"
            " ORDER BY rowid",
            (int(after), run_id),
        )

    def sample_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE run_id=? ORDER BY rowid", (run_id,)
        )

    def samples_after(self, run_id: str, after: int) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE rowid > ? AND +run_id = ? ORDER BY rowid",
            (int(after), run_id),
        )

    def formulation(self, content_hash: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM formulations WHERE hash=?", (content_hash,))
        return rows[0] if rows else None

    def queue(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM queue ORDER BY id")
        for row in rows:
            options = json.loads(row["options"]) if row["options"] else {}
            files = options.get("files") or {}
            # Paths and hashes only: the content is the formulation, a company's secret.
            options["files"] = {
                role: {"path": kept.get("path"), "sha256": kept.get("sha256")}
                for role, kept in files.items()
            }
            row["options"] = options
            row["bench"] = self.bench
        return rows

    def completed_bench_times(self, protocol: str, limit: int = 5) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT r.run_id, r.parameters,"
            " (SELECT MAX(bench_finished) FROM steps s WHERE s.run_id = r.run_id) AS bench_total"
            " FROM runs r WHERE r.status='completed' AND r.protocol=?"
            " ORDER BY r.created_at DESC LIMIT ?",
            (protocol, int(limit)),
        )
