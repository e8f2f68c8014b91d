"""The run store: one SQLite file (WAL) in the data directory.

Everything a run does is written here as it happens: the run itself
(protocol, parameters, formulation, station snapshot, software, operator,
status), the step journal (a step is committed as *started* before any
instrument moves and as *finished* with its results after), wafers and their
state, time series, measurements, events (faults, retries, interlocks) and
the overnight queue.

Every value carries its unit: time series and measurements store the unit
beside the number, and :meth:`RunStore.measurements` /
:meth:`RunStore.samples` return tidy pandas DataFrames whose column names say
the unit (pandas is imported only when a DataFrame is asked for).

Commits use ``synchronous=FULL``: a journal entry that returned is on disk,
whatever happens to the process or the machine next.

A store is checked every time it is opened, before anything reads or writes
it: the file's header, SQLite's ``quick_check`` of every page (about 22 ms
for 300 contrast-curve runs, 23 MB, with the file in the page cache; it grows
with the file) and the schema version. A damaged store is refused - one line naming the file, what
is wrong and ``labctl store check`` - and left exactly as it was found; a new
store appears at its path complete (built aside, then linked into place), so
an empty or half-made file is never labctl's own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shlex
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import private
from .errors import InputError, StorageError

__all__ = [
    "CHANNEL_UNITS",
    "EXPORT_FORMATS",
    "EXPORT_TABLES",
    "SCHEMA_VERSION",
    "ExportColumn",
    "RunStore",
    "StoreError",
    "as_seen",
    "check_export_target",
    "default_data_dir",
    "export_json",
    "header_problem",
    "is_damage",
    "measurements_frame",
    "open_read_only",
    "problem_lines",
    "read_only_medium",
    "samples_frame",
    "schema_problem",
    "steps_frame",
    "write_export",
]

SCHEMA_VERSION = 1
#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: SQLite's primary result codes that mean the file itself is damaged.
_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS formulations (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT, content TEXT NOT NULL,
    canonical TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, protocol TEXT NOT NULL, parameters TEXT NOT NULL,
    recipe TEXT, formulation_hash TEXT REFERENCES formulations(hash), station TEXT,
    software TEXT NOT NULL, operator TEXT NOT NULL, attended INTEGER NOT NULL,
    simulated INTEGER NOT NULL, seed INTEGER, created_at TEXT NOT NULL,
    started_at TEXT, ended_at TEXT, status TEXT NOT NULL, reason TEXT, pid INTEGER);
CREATE TABLE IF NOT EXISTS wafers (
    run_id TEXT NOT NULL REFERENCES runs(run_id), wafer_id TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, replaces TEXT, PRIMARY KEY (run_id, wafer_id));
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id), seq INTEGER NOT NULL,
    name TEXT NOT NULL, wafer_id TEXT, repeatable INTEGER NOT NULL,
    status TEXT NOT NULL, parameters TEXT NOT NULL, result TEXT, error TEXT,
    started_at TEXT NOT NULL, finished_at TEXT, attempts INTEGER NOT NULL DEFAULT 1,
    bench_started REAL, bench_finished REAL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, channel TEXT NOT NULL,
    t REAL NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, bench_time REAL, wall_time TEXT);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_id, seq, channel);
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, wafer_id TEXT NOT NULL,
    label TEXT NOT NULL, site TEXT NOT NULL, x_mm REAL NOT NULL, y_mm REAL NOT NULL,
    dose_requested_mJ_cm2 REAL, dose_delivered_mJ_cm2 REAL,
    thickness_nm REAL NOT NULL, thickness_error_nm REAL, refractive_index REAL,
    mse REAL, formulation_hash TEXT, measured_at TEXT NOT NULL, bench_time REAL,
    wall_time TEXT);
CREATE INDEX IF NOT EXISTS measurements_run ON measurements(run_id, wafer_id);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, wafer_id TEXT NOT NULL,
    after_seq INTEGER NOT NULL, origin TEXT NOT NULL, destination TEXT NOT NULL,
    reason TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    started_at TEXT NOT NULL, finished_at TEXT);
CREATE INDEX IF NOT EXISTS moves_run ON moves(run_id, wafer_id);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, protocol TEXT NOT NULL, options TEXT NOT NULL,
    status TEXT NOT NULL, run_id TEXT, added_at TEXT NOT NULL, started_at TEXT,
    ended_at TEXT, reason TEXT, pid INTEGER);
"""


MEASUREMENT_COLUMNS = (
    "run_id",
    "seq",
    "wafer_id",
    "label",
    "site",
    "x_mm",
    "y_mm",
    "dose_requested_mJ_cm2",
    "dose_delivered_mJ_cm2",
    "thickness_nm",
    "thickness_error_nm",
    "refractive_index",
    "mse",
    "formulation_hash",
    "measured_at",
    "bench_time",
    "wall_time",
)


class StoreError(StorageError):
    """The run store cannot be read or written."""


def _check_hint(data_dir: str | Path) -> str:
    """What to type next about a damaged store."""
    return f"run `labctl store check --data {shlex.quote(str(data_dir))}`"


def _damaged(path: Path, data_dir: Path, problem: str) -> StoreError:
    """The one-line refusal of a damaged store: the file, what is wrong, what to do."""
    return StoreError(f"{problem}; {_check_hint(data_dir)}", path=str(path))


def is_damage(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file is not a database or is malformed."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _DAMAGE_CODES


def header_problem(path: Path) -> str | None:
    """What is wrong with the first bytes of a store file, or None (raises ``OSError``)."""
    with open(path, "rb") as file:
        head = file.read(len(SQLITE_HEADER))
    if not head:
        return "empty (truncated?) store file"
    if len(head) < len(SQLITE_HEADER):
        return f"{len(head)}-byte (truncated?) store file"
    if head != SQLITE_HEADER:
        return "not an SQLite database (the file does not start with its header)"
    return None


def read_only_medium(directory: Path) -> bool:
    """True if ``directory`` is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): writable as far as we know
        return False


#: Store files this process holds open, by (device, inode), with a count. Such a
#: file is not checked again at the next open: the check reads the header with
#: a plain open()/close(), and on POSIX closing any descriptor of a file drops
#: every lock the process holds on it - SQLite's included - so another process
#: could then checkpoint and remove the write-ahead log under a live connection
#: ("disk I/O error"). The file was checked when this process first opened it.
_OPEN_FILES: dict[tuple[int, int] | None, int] = {}
_OPEN_FILES_LOCK = threading.Lock()


def open_read_only(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    """A connection that cannot change the file, not even by a checkpoint at close.

    ``immutable`` is for a read-only file system, where nothing can change the
    file and SQLite could not make the shared-memory index of WAL mode.
    """
    options = "mode=ro&immutable=1" if immutable else "mode=ro"
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?{options}",
        uri=True,
        timeout=10.0,
        check_same_thread=False,
        isolation_level=None,
    )


def schema_problem(db: sqlite3.Connection) -> str | None:
    """What is wrong with a store's schema version, or None (a new, empty file is fine)."""
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not names:
        return None
    if "meta" not in names:
        return "not a labctl run store (it has no meta table)"
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        if "runs" in names and db.execute("SELECT 1 FROM runs LIMIT 1").fetchone():
            return "its schema version is missing, yet it holds runs"
        return None  # made by a labctl that died before it finished: completed at open
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        return f"its schema version {row[0]!r} is not a number"
    if version != SCHEMA_VERSION:
        return f"schema version {version}, this labctl reads {SCHEMA_VERSION}"
    return None


def default_data_dir() -> Path:
    """``$LABCTL_DATA`` or ``./labctl-data``."""
    return Path(os.environ.get("LABCTL_DATA", "labctl-data"))


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


#: Nullable columns added to a table of schema version 1 since its first
#: release: added in place when a store made before them is opened for writing.
_ADDED_COLUMNS = (
    ("wafers", "replaces", "TEXT"),
    # Both clocks of every recorded time (see the module docstring).
    ("steps", "bench_started", "REAL"),
    ("steps", "bench_finished", "REAL"),
    ("samples", "bench_time", "REAL"),
    ("samples", "wall_time", "TEXT"),
    ("measurements", "bench_time", "REAL"),
    ("measurements", "wall_time", "TEXT"),
)


def _add_columns(db: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column in have:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # Checked again under the write lock: another process may have added it.
            if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class RunStore:
    """The SQLite run store of one data directory. Thread-safe."""

    FILENAME = "labctl.sqlite"

    def __init__(self, data_dir: str | Path, *, create: bool = True) -> None:
        """Open (``create=True``: or make) the store of ``data_dir``.

        Read commands pass ``create=False``: a mistyped ``--data`` is then an
        :class:`InputError` naming the directory, never a new empty store.
        """
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / self.FILENAME
        #: On a read-only file system: it can be read, and every write fails.
        self.read_only = False
        if not create and not self.path.is_file():
            where = "no such directory" if not self.data_dir.is_dir() else "no run store in it"
            raise InputError(
                f"{where} (expected {self.FILENAME}); give the data directory of your runs"
                " with --data or LABCTL_DATA",
                field=f"--data {self.data_dir}",
            )
        try:
            # Owner-only (or group-readable when asked); the bench lock warns about an open one.
            private.private_dir(self.data_dir)
            if not self.path.exists():
                _create(self.path)
            self.read_only = read_only_medium(self.data_dir)
            stat = self.path.stat()
            self._file_key: tuple[int, int] | None = (stat.st_dev, stat.st_ino)
            with _OPEN_FILES_LOCK:
                already_open = _OPEN_FILES.get(self._file_key, 0) > 0
            if not already_open:
                self._check()
            self._db = (
                open_read_only(self.path, immutable=True) if self.read_only else self._connect()
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot open the run store") from exc
        except OSError as exc:
            raise StoreError(
                exc.strerror or str(exc), path=str(exc.filename or self.path), errno=exc.errno
            ) from exc
        self._lock = threading.RLock()
        with _OPEN_FILES_LOCK:
            _OPEN_FILES[self._file_key] = _OPEN_FILES.get(self._file_key, 0) + 1

    def _check(self) -> None:
        """Refuse a damaged store before anything reads or writes it; never change it."""
        problem = header_problem(self.path)
        wal = Path(f"{self.path}-wal")
        if problem is None and self.read_only and wal.exists() and wal.stat().st_size:
            raise StoreError(
                f"on a read-only file system with an unfinished write-ahead log ({wal.name}):"
                " copy the data directory to a writable disk to read it",
                path=str(self.path),
            )
        if problem is None:
            db = open_read_only(self.path, immutable=self.read_only)
            try:
                rows = db.execute("PRAGMA quick_check").fetchall()
                if rows != [("ok",)]:
                    found = problem_lines(rows) or [str(rows)]
                    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
                    problem = f"damaged: {found[0]}{more}"
                else:
                    problem = schema_problem(db)
            except sqlite3.Error as exc:
                if not is_damage(exc):
                    raise
                problem = f"damaged: {exc}"
            finally:
                db.close()
        if problem is not None:
            raise _damaged(self.path, self.data_dir, problem)

    def _connect(self) -> sqlite3.Connection:
        """The connection of a checked store; adds what the schema has and the file lacks."""
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=10000")
            present = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            wanted = set(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
            version = (
                db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if "meta" in present
                else None
            )
            if not (wanted <= present and version is not None):
                # Tables added to the schema since, or a store a killed labctl began.
                db.executescript(
                    f"BEGIN IMMEDIATE; {SCHEMA} INSERT OR IGNORE INTO meta VALUES"
                    f" ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
                )
            _add_columns(db)
        except BaseException:
            db.close()
            raise
        return db

    # -- plumbing -----------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._error(exc, "write failed") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cursor = self._db.execute(sql, parameters)
                names = [d[0] for d in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise self._error(exc, "read failed") from exc

    def _error(self, exc: sqlite3.Error, what: str) -> StoreError:
        """The labctl error for an SQLite one; a damaged file gets the hint to check it."""
        if is_damage(exc):
            return _damaged(self.path, self.data_dir, f"{what}: {exc}")
        return StoreError(f"{what}: {exc}", path=str(self.path))

    def close(self) -> None:
        with self._lock:
            self._db.close()
            key, self._file_key = self._file_key, None
        if key is not None:
            with _OPEN_FILES_LOCK:
                _OPEN_FILES[key] = _OPEN_FILES.get(key, 1) - 1

    # -- formulations and runs ------------------------------------------------------

    def save_formulation(
        self, content_hash: str, name: str, source: str, content: str, canonical: Any
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO formulations VALUES (?, ?, ?, ?, ?)",
                (content_hash, name, source, content, _dumps(canonical)),
            )

    def create_run(self, run: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, protocol, parameters, recipe, formulation_hash, station,"
                " software, operator, attended, simulated, seed, created_at, status, pid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'created', ?)",
                (
                    run["run_id"],
                    run["protocol"],
                    _dumps(run["parameters"]),
                    _dumps(run.get("recipe")),
                    run.get("formulation_hash"),
                    _dumps(run.get("station")),
                    _dumps(run["software"]),
                    run["operator"],
                    int(run["attended"]),
                    int(run["simulated"]),
                    run.get("seed"),
                    now_text(),
                    os.getpid(),
                ),
            )

    def set_station(self, run_id: str, station: Any) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET station=? WHERE run_id=?", (_dumps(station), run_id))

    def mark_running(self, run_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status='running', reason=NULL, pid=?,"
                " started_at=COALESCE(started_at, ?) WHERE run_id=?",
                (os.getpid(), now_text(), run_id),
            )

    def finish_run(self, run_id: str, status: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, reason=?, ended_at=? WHERE run_id=?",
                (status, reason, now_text(), run_id),
            )

    def run(self, run_id: str) -> dict[str, Any]:
        """The run ``run_id`` names: its exact id, or else a prefix of exactly one run's id.

        Never a pattern: ``%`` and ``_`` are characters like any other, and an
        id outside the run-id grammar (:data:`labctl.names.RUN_ID`: empty,
        spaces, ``%``...) is refused before the store is asked. Raises
        :class:`InputError` - ``no such run``, or ``begins several runs`` with
        a few of them named.
        """
        from .names import RUN_ID, candidates_line, check_name, shown

        check_name(run_id, RUN_ID, field="run")
        rows = self._query("SELECT * FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            # A prefix, compared as text (substr), never through LIKE.
            matches = self._query(
                "SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY created_at LIMIT 6",
                (len(run_id), run_id),
            )
            if len(matches) == 1:
                rows = matches
            elif not matches:
                raise InputError(f"no such run {shown(run_id)}", field="run")
            else:
                names = candidates_line([m["run_id"] for m in matches][:5])
                more = " and more" if len(matches) > 5 else ""
                raise InputError(
                    f"{shown(run_id)} begins several runs: {names}{more}; give more of the id",
                    field="run",
                )
        row = dict(rows[0])
        for key in ("parameters", "recipe", "station", "software"):
            row[key] = json.loads(row[key]) if row[key] else None
        return row

    def runs(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query(
                "SELECT run_id, protocol, status, reason, operator, created_at, started_at,"
                " ended_at, formulation_hash, simulated, pid FROM runs ORDER BY created_at"
            )
        ]

    def formulation(self, content_hash: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM formulations WHERE hash=?", (content_hash,))
        return dict(rows[0]) if rows else None

    def bench_id(self, name: str | None = None) -> str:
        """The id every row this store ships to a lab store carries (docs/lab-store.md).

        Made once and kept in ``meta`` (``bench_id``): ``name`` (``--bench``,
        ``$LABCTL_BENCH``) the first time, else ``<host>-<8 hex digits>``. A
        different ``name`` later is refused with :class:`InputError`: the rows
        shipped so far carry the id this store already has.
        """
        import socket
        import uuid

        from .names import RUN_ID, Grammar, check_name

        grammar = Grammar("bench id", RUN_ID.pattern, 64, RUN_ID.rule, "bench-3")
        if name is not None:
            check_name(name, grammar, field="--bench")
        rows = self._query("SELECT value FROM meta WHERE key='bench_id'")
        if not rows:
            host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.")[:40]
            made = name or f"{host or 'bench'}-{uuid.uuid4().hex[:8]}"
            with self._transaction() as db:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('bench_id', ?)", (made,))
            rows = self._query("SELECT value FROM meta WHERE key='bench_id'")
        kept = str(rows[0]["value"])
        if name is not None and name != kept:
            raise InputError(
                f"this data directory is bench {kept!r} (kept in its store since its first"
                f" shipment); its rows in the lab carry that id, so it cannot become {name!r}",
                field="--bench",
            )
        return kept

    def interrupted_runs(self) -> list[dict[str, Any]]:
        """Runs marked running whose process is gone (killed)."""
        rows = self._query("SELECT run_id, pid FROM runs WHERE status='running'")
        return [dict(r) for r in rows if not _process_alive(r["pid"])]

    # -- the step journal ------------------------------------------------------------

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM steps WHERE run_id=? ORDER BY seq", (run_id,))
        out = []
        for row in rows:
            row = dict(row)
            row["parameters"] = json.loads(row["parameters"])
            row["result"] = json.loads(row["result"]) if row["result"] else None
            out.append(row)
        return out

    def step_started(
        self,
        run_id: str,
        seq: int,
        name: str,
        wafer_id: str | None,
        repeatable: bool,
        parameters: Any,
        *,
        bench_time: float | None = None,
    ) -> None:
        """Journal a step as started; returns only once it is on disk.

        ``bench_time``: s on the run's clock since the run started (see
        :meth:`last_bench_time`); the wall time is taken here (UTC).
        """
        with self._transaction() as db:
            existing = db.execute(
                "SELECT status FROM steps WHERE run_id=? AND seq=?", (run_id, seq)
            ).fetchone()
            if existing is None:
                db.execute(
                    "INSERT INTO steps (run_id, seq, name, wafer_id, repeatable, status,"
                    " parameters, started_at, bench_started)"
                    " VALUES (?, ?, ?, ?, ?, 'started', ?, ?, ?)",
                    (
                        run_id,
                        seq,
                        name,
                        wafer_id,
                        int(repeatable),
                        _dumps(parameters),
                        now_text(),
                        bench_time,
                    ),
                )
            else:
                db.execute(
                    "UPDATE steps SET status='started', attempts=attempts+1, error=NULL,"
                    " started_at=?, bench_started=?, bench_finished=NULL WHERE run_id=? AND seq=?",
                    (now_text(), bench_time, run_id, seq),
                )

    def step_finished(
        self,
        run_id: str,
        seq: int,
        result: Any,
        *,
        samples: Sequence[tuple[Any, ...]] = (),
        measurements: Sequence[dict[str, Any]] = (),
        bench_time: float | None = None,
    ) -> None:
        """Journal a step as finished with its results, samples and measurements - one commit.

        Either all of it is on disk or none: a measurement step killed before
        this commit is re-run on resume and writes its rows once. ``samples``:
        see :meth:`add_samples`; ``bench_time``: as in :meth:`step_started`.
        """
        with self._transaction() as db:
            db.executemany(_INSERT_SAMPLE, _sample_rows(run_id, seq, samples))
            if measurements:
                columns = MEASUREMENT_COLUMNS
                db.executemany(
                    f"INSERT INTO measurements ({', '.join(columns)}) VALUES"
                    f" ({', '.join('?' for _ in columns)})",
                    [tuple(row.get(c) for c in columns) for row in measurements],
                )
            db.execute(
                "UPDATE steps SET status='finished', result=?, finished_at=?, bench_finished=?"
                " WHERE run_id=? AND seq=?",
                (_dumps(result), now_text(), bench_time, run_id, seq),
            )

    def step_failed(
        self, run_id: str, seq: int, status: str, error: str, *, bench_time: float | None = None
    ) -> None:
        """A step ended without its result; ``bench_time`` None: when is unknown (on resume)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE steps SET status=?, error=?, finished_at=?, bench_finished=?"
                " WHERE run_id=? AND seq=?",
                (status, error, now_text(), bench_time, run_id, seq),
            )

    def step_skipped(
        self,
        run_id: str,
        seq: int,
        name: str,
        wafer_id: str | None,
        parameters: Any,
        reason: str,
        *,
        bench_time: float | None = None,
    ) -> None:
        # A step that already has a record (it started, was interrupted, failed)
        # keeps it: skipping it now must not erase what happened then.
        with self._transaction() as db:
            db.execute(
                "INSERT INTO steps (run_id, seq, name, wafer_id, repeatable, status,"
                " parameters, error, started_at, bench_started)"
                " VALUES (?, ?, ?, ?, 0, 'skipped', ?, ?, ?, ?)"
                " ON CONFLICT(run_id, seq) DO NOTHING",
                (run_id, seq, name, wafer_id, _dumps(parameters), reason, now_text(), bench_time),
            )

    # -- wafers, events ----------------------------------------------------------------

    def set_wafer(
        self, run_id: str, wafer_id: str, state: str, reason: str = "", replaces: str | None = None
    ) -> None:
        """A wafer's state; ``replaces``: the quarantined wafer it stands in for (kept once set)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO wafers (run_id, wafer_id, state, reason, replaces)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, wafer_id)"
                " DO UPDATE SET state=excluded.state, reason=excluded.reason,"
                " replaces=COALESCE(excluded.replaces, wafers.replaces)",
                (run_id, wafer_id, state, reason, replaces),
            )

    def wafers(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Wafer id -> ``state``, ``reason``, ``replaces`` (None unless a replacement)."""
        rows = self._query("SELECT * FROM wafers WHERE run_id=?", (run_id,))
        return {r["wafer_id"]: {"replaces": None, **r} for r in rows}

    def event(self, run_id: str, kind: str, message: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, now_text(), kind, message)
            )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query(
                "SELECT at, kind, message FROM events WHERE run_id=? ORDER BY rowid", (run_id,)
            )
        ]

    def event_mark(self) -> int:
        """A mark after the newest event of any run (0 if none), for :meth:`events_since`."""
        rows = self._query("SELECT COALESCE(MAX(rowid), 0) AS mark FROM events")
        return int(rows[0]["mark"]) if rows else 0

    def events_since(self, run_id: str, mark: int) -> list[dict[str, Any]]:
        """A run's events recorded after :meth:`event_mark` gave ``mark``.

        A range of rowids: as cheap as the rows that are new, however many
        events the store holds (a runner asks at every safe point).
        """
        return [
            dict(r)
            for r in self._query(
                "SELECT at, kind, message FROM events WHERE rowid > ? AND run_id=? ORDER BY rowid",
                (mark, run_id),
            )
        ]

    # -- wafer moves the engine makes on its own ----------------------------------------

    def move_started(
        self,
        run_id: str,
        wafer_id: str,
        *,
        after_seq: int,
        origin: str,
        destination: str,
        reason: str,
    ) -> int:
        """Journal a wafer move the engine is about to make (parking, bringing back).

        On disk before the wafer moves, like a step; ``after_seq`` is the last
        journaled step when it happened, so a resume can tell which came last.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO moves (run_id, wafer_id, after_seq, origin, destination, reason,"
                " status, started_at) VALUES (?, ?, ?, ?, ?, ?, 'started', ?)",
                (run_id, wafer_id, after_seq, origin, destination, reason, now_text()),
            )
            return int(cursor.lastrowid or 0)

    def move_ended(self, move_id: int, status: str, error: str | None = None) -> None:
        """``finished`` (the wafer is at the destination) or ``failed`` (it did not move)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE moves SET status=?, error=?, finished_at=? WHERE id=?",
                (status, error, now_text(), move_id),
            )

    def moves(self, run_id: str) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query("SELECT * FROM moves WHERE run_id=? ORDER BY id", (run_id,))
        ]

    def last_seq(self, run_id: str) -> int:
        """The last step that was started (skipped ones never were)."""
        rows = self._query(
            "SELECT MAX(seq) AS seq FROM steps WHERE run_id=? AND status != 'skipped'", (run_id,)
        )
        return int(rows[0]["seq"] or 0) if rows else 0

    # -- data ------------------------------------------------------------------------

    def add_samples(self, run_id: str, seq: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Time series points of one step, in one commit.

        Each is ``(channel, t, value, unit, bench_time, wall_time)``: ``t`` s
        since the step started and ``bench_time`` s since the run started, both
        on the run's clock; ``wall_time`` ISO 8601 UTC. The two clocks may be
        left off (``(channel, t, value, unit)``): they are then unknown.
        """
        if not rows:
            return
        with self._transaction() as db:
            db.executemany(_INSERT_SAMPLE, _sample_rows(run_id, seq, rows))

    def add_measurements(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = MEASUREMENT_COLUMNS
        with self._transaction() as db:
            db.executemany(
                f"INSERT INTO measurements ({', '.join(columns)}) VALUES"
                f" ({', '.join('?' for _ in columns)})",
                [tuple(row.get(c) for c in columns) for row in rows],
            )

    def measurement_rows(self, run_id: str) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query(
                "SELECT * FROM measurements WHERE run_id=? ORDER BY rowid", (run_id,)
            )
        ]

    def sample_rows(self, run_id: str) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query("SELECT * FROM samples WHERE run_id=? ORDER BY rowid", (run_id,))
        ]

    def last_bench_time(self, run_id: str) -> float:
        """The latest bench time a run recorded (s since it started; 0.0 for a new run).

        A resumed run's clock goes on from here, so bench time never goes
        back within a run; the time no process ran it is not counted (the wall
        times show that gap).
        """
        rows = self._query(
            "SELECT MAX(latest) AS latest FROM ("
            " SELECT MAX(MAX(COALESCE(bench_started, 0)), MAX(COALESCE(bench_finished, 0)))"
            "  AS latest FROM steps WHERE run_id=?"
            " UNION ALL SELECT MAX(bench_time) FROM samples WHERE run_id=?"
            " UNION ALL SELECT MAX(bench_time) FROM measurements WHERE run_id=?)",
            (run_id, run_id, run_id),
        )
        latest = rows[0]["latest"] if rows else None
        return float(latest or 0.0)

    # -- tidy tables (pandas) and the export --------------------------------------------

    def measurements(self, run_id: str) -> Any:
        """Tidy DataFrame of a run's measurements (the columns of ``EXPORT_TABLES``)."""
        return measurements_frame(self.measurement_rows(run_id))

    def samples(self, run_id: str) -> Any:
        """Tidy DataFrame of a run's time series (the columns of ``EXPORT_TABLES``)."""
        return samples_frame(self.sample_rows(run_id))

    def steps_frame(self, run_id: str) -> Any:
        """Tidy DataFrame of a run's step journal (the columns of ``EXPORT_TABLES``)."""
        rows = self._query("SELECT * FROM steps WHERE run_id=? ORDER BY seq", (run_id,))
        return steps_frame(rows)

    def export_frames(self, run_id: str) -> dict[str, Any]:
        """What ``labctl export`` writes: table name -> DataFrame (see ``EXPORT_TABLES``)."""
        return {
            "measurements": self.measurements(run_id),
            "samples": self.samples(run_id),
            "steps": self.steps_frame(run_id),
        }

    # -- queue ---------------------------------------------------------------------------

    def queue_add(self, protocol: str, options: dict[str, Any]) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO queue (protocol, options, status, added_at)"
                " VALUES (?, ?, 'pending', ?)",
                (protocol, _dumps(options), now_text()),
            )
            return int(cursor.lastrowid or 0)

    def queue(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM queue ORDER BY id")
        out = []
        for row in rows:
            row = dict(row)
            row["options"] = json.loads(row["options"])
            out.append(row)
        return out

    def queue_claim(self, entry_id: int, status: str, pid: int | None) -> bool:
        """Take an entry for this process, if it is still as it was seen (one winner)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE queue SET status='running', pid=? WHERE id=? AND status=? AND pid IS ?",
                (os.getpid(), entry_id, status, pid),
            )
            return cursor.rowcount == 1

    def queue_update(self, entry_id: int, **fields: Any) -> None:
        if not fields:
            return
        names = ", ".join(f"{k}=?" for k in fields)
        with self._transaction() as db:
            db.execute(f"UPDATE queue SET {names} WHERE id=?", (*fields.values(), entry_id))

    def queue_entry(self, entry_id: int) -> dict[str, Any] | None:
        """One entry (``options`` decoded), or None if there is no such entry."""
        rows = self._query("SELECT * FROM queue WHERE id=?", (entry_id,))
        if not rows:
            return None
        row = dict(rows[0])
        row["options"] = json.loads(row["options"])
        return row

    def queue_transition(self, entry_id: int, expected: Sequence[str], **fields: Any) -> bool:
        """Change an entry only if its status is one of ``expected`` (one winner).

        ``options`` may be given as a dict (stored as JSON). False: the entry
        is gone or was in another state when the change was tried.
        """
        if "options" in fields and not isinstance(fields["options"], str):
            fields["options"] = _dumps(fields["options"])
        names = ", ".join(f"{k}=?" for k in fields)
        marks = ", ".join("?" for _ in expected)
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE queue SET {names} WHERE id=? AND status IN ({marks})",
                (*fields.values(), entry_id, *expected),
            )
            return cursor.rowcount == 1

    def queue_remove(self, entry_id: int, expected: Sequence[str]) -> bool:
        """Delete an entry if its status is one of ``expected``; its runs stay recorded."""
        marks = ", ".join("?" for _ in expected)
        with self._transaction() as db:
            cursor = db.execute(
                f"DELETE FROM queue WHERE id=? AND status IN ({marks})", (entry_id, *expected)
            )
            return cursor.rowcount == 1


_INSERT_SAMPLE = (
    "INSERT INTO samples (run_id, seq, channel, t, value, unit, bench_time, wall_time)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _sample_rows(
    run_id: str, seq: int, samples: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Rows for ``_INSERT_SAMPLE``; a point without its two clocks has them unknown (NULL)."""
    rows = []
    for sample in samples:
        channel, t, value, unit, *clocks = sample
        bench_time, wall_time = (*clocks, None, None)[:2]
        rows.append((run_id, seq, channel, t, value, unit, bench_time, wall_time))
    return rows


# -- the export: tidy tables, one convention -------------------------------------------


@dataclass(frozen=True)
class ExportColumn:
    """One column of an exported table, as docs/runs.md lists it."""

    name: str
    #: ``text``, ``integer``, ``real``, ``boolean``, ``JSON`` or ``ISO 8601 UTC``.
    type: str
    #: The unit's canonical spelling (:func:`labctl.units.canonical_unit`); ``""`` if none.
    unit: str
    meaning: str


#: The unit each time-series channel is exported in; a value recorded in another
#: unit (or another spelling of it, as older stores hold) is converted.
CHANNEL_UNITS = {"spin_speed": "rpm", "plate_temperature": "degC", "irradiance": "mW/cm^2"}

_BENCH_TIME = "s on the run's clock since the run started (virtual on --sim); empty if unknown"
_WALL_TIME = "wall-clock time, UTC"

#: Every exported table, column by column, in file order. docs/runs.md lists
#: the same (a test holds them together).
EXPORT_TABLES: dict[str, tuple[ExportColumn, ...]] = {
    "measurements": (
        ExportColumn("run_id", "text", "", "the run"),
        ExportColumn("seq", "integer", "", "the measure step (steps.seq)"),
        ExportColumn("wafer_id", "text", "", "the wafer"),
        ExportColumn("label", "text", "", "which measurement: before, after, spin <speed> rpm"),
        ExportColumn("site", "text", "", "the site: a field (F01...), P1..P5, unexposed"),
        ExportColumn("x_mm", "real", "mm", "site position on the wafer, x"),
        ExportColumn("y_mm", "real", "mm", "site position on the wafer, y"),
        ExportColumn(
            "dose_requested_mJ_cm2",
            "real",
            "mJ/cm^2",
            "dose asked of the exposure tool; empty where the site was not exposed",
        ),
        ExportColumn(
            "dose_delivered_mJ_cm2",
            "real",
            "mJ/cm^2",
            "dose delivered (measured irradiance x actual open time); empty where not exposed",
        ),
        ExportColumn("thickness_nm", "real", "nm", "film thickness (ellipsometer fit)"),
        ExportColumn("thickness_error_nm", "real", "nm", "the fit's thickness uncertainty"),
        ExportColumn("refractive_index", "real", "", "n at 632.8 nm (Cauchy fit); empty if none"),
        ExportColumn("mse", "real", "", "the fit's mean squared error"),
        ExportColumn("formulation_hash", "text", "", "SHA-256 of the formulation that made it"),
        ExportColumn("bench_time", "real", "s", f"when measured: {_BENCH_TIME}"),
        ExportColumn("wall_time", "ISO 8601 UTC", "", f"when measured: {_WALL_TIME}"),
    ),
    "samples": (
        ExportColumn("run_id", "text", "", "the run"),
        ExportColumn("seq", "integer", "", "the step that recorded it (steps.seq)"),
        ExportColumn("channel", "text", "", "spin_speed, plate_temperature or irradiance"),
        ExportColumn("value", "real", "", "the reading, in the unit of the `unit` column"),
        ExportColumn(
            "unit",
            "text",
            "",
            "one per channel: rpm (spin_speed), degC (plate_temperature), mW/cm^2 (irradiance)",
        ),
        ExportColumn(
            "bench_time_in_step", "real", "s", "s on the run's clock since its step started"
        ),
        ExportColumn("bench_time", "real", "s", f"when read: {_BENCH_TIME}"),
        ExportColumn("wall_time", "ISO 8601 UTC", "", f"when read: {_WALL_TIME}; empty if unknown"),
    ),
    "steps": (
        ExportColumn("run_id", "text", "", "the run"),
        ExportColumn("seq", "integer", "", "the step's number in the journal, from 1"),
        ExportColumn("name", "text", "", "coat, soft bake, expose, measure, transfer, ..."),
        ExportColumn("wafer_id", "text", "", "the wafer it acts on; empty for set-up steps"),
        ExportColumn("repeatable", "boolean", "", "done again on resume if cut short"),
        ExportColumn(
            "status",
            "text",
            "",
            "finished, started, failed, interlocked, interrupted or skipped",
        ),
        ExportColumn("attempts", "integer", "", "times it was started (resumes, retries)"),
        ExportColumn("error", "text", "", "why it did not finish; empty if it did"),
        ExportColumn(
            "parameters", "JSON", "", "its setpoints: an object; quantities as {value, unit}"
        ),
        ExportColumn(
            "result", "JSON", "", "what it returned (quantities as {value, unit}); null if none"
        ),
        ExportColumn("bench_time", "real", "s", f"its (last) start: {_BENCH_TIME}"),
        ExportColumn("bench_time_finished", "real", "s", f"its end: {_BENCH_TIME}"),
        ExportColumn("wall_time", "ISO 8601 UTC", "", f"its (last) start: {_WALL_TIME}"),
        ExportColumn(
            "wall_time_finished", "ISO 8601 UTC", "", f"its end: {_WALL_TIME}; empty if none"
        ),
    ),
}


def export_json(value: Any) -> str:
    """A journal value (parameters, result) as the export's JSON text.

    A quantity is ``{"value": 90, "unit": "s"}`` - the unit in its canonical
    spelling; a number that is not finite (no reading) is ``null``; keys are
    sorted. Always valid JSON (``json.loads`` reads it; no NaN).
    """
    return json.dumps(_export_value(value), sort_keys=True, allow_nan=False, ensure_ascii=False)


def _export_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__quantity__"}:
            magnitude, unit = value["__quantity__"]
            return {"value": _export_value(magnitude), "unit": _unit_text(unit or "")}
        if set(value) == {"__float__"}:
            return None  # a NaN or an infinity: no number to give
        return {str(key): _export_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_export_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _unit_text(unit: str) -> str:
    """The canonical spelling of a stored unit; a spelling pint cannot read is kept as it is."""
    from .units import canonical_unit

    try:
        return canonical_unit(unit)
    except Exception:  # pint raises several kinds for a unit it cannot parse
        return unit


def _frame(rows: list[dict[str, Any]], table: str) -> Any:
    import pandas as pd

    names = [column.name for column in EXPORT_TABLES[table]]
    frame = pd.DataFrame(rows, columns=names)
    for column in EXPORT_TABLES[table]:
        if column.type == "real":
            frame[column.name] = pd.to_numeric(frame[column.name], errors="coerce").astype(
                "float64"
            )
        elif column.type == "integer":
            frame[column.name] = frame[column.name].astype("int64")
        elif column.type == "boolean":
            frame[column.name] = frame[column.name].astype(bool)
    return frame


def measurements_frame(rows: Sequence[dict[str, Any]]) -> Any:
    """Measurement rows of the store as the exported table (``measured_at`` is not in it:
    it is the bench clock's calendar, virtual on --sim; ``bench_time``/``wall_time`` say when)."""
    return _frame([dict(row) for row in rows], "measurements")


def samples_frame(rows: Sequence[dict[str, Any]]) -> Any:
    """Sample rows of the store as the exported table: one unit (and spelling) per channel."""
    out = []
    for row in rows:
        unit = _unit_text(row["unit"])
        value = row["value"]
        wanted = CHANNEL_UNITS.get(row["channel"])
        if wanted is not None and unit != wanted:
            from .units import Q_

            value, unit = float(Q_(value, unit).m_as(wanted)), wanted
        out.append(
            {
                "run_id": row["run_id"],
                "seq": row["seq"],
                "channel": row["channel"],
                "value": value,
                "unit": unit,
                "bench_time_in_step": row["t"],
                "bench_time": row.get("bench_time"),
                "wall_time": row.get("wall_time"),
            }
        )
    return _frame(out, "samples")


def steps_frame(rows: Sequence[dict[str, Any]]) -> Any:
    """Step journal rows of the store (JSON text as stored) as the exported table."""
    out = []
    for row in rows:
        parameters = json.loads(row["parameters"]) if row["parameters"] else {}
        result = json.loads(row["result"]) if row["result"] else None
        out.append(
            {
                "run_id": row["run_id"],
                "seq": row["seq"],
                "name": row["name"],
                "wafer_id": row["wafer_id"],
                "repeatable": bool(row["repeatable"]),
                "status": row["status"],
                "attempts": row["attempts"],
                "error": row["error"],
                "parameters": export_json(parameters),
                "result": export_json(result),
                "bench_time": row.get("bench_started"),
                "bench_time_finished": row.get("bench_finished"),
                "wall_time": row["started_at"],
                "wall_time_finished": row["finished_at"],
            }
        )
    return _frame(out, "steps")


#: ``labctl export --format`` -> file extension.
EXPORT_FORMATS = ("csv", "parquet")


def check_export_target(out_dir: Path, fmt: str) -> None:
    """Refuse an export that cannot be written - before anything is created.

    ``fmt`` must be one of :data:`EXPORT_FORMATS` and, for Parquet, pyarrow
    installed; ``out_dir`` an existing, writable directory, or a new one in
    an existing, writable directory. Raises :class:`InputError` (one line).
    """
    import importlib.util

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"{fmt!r} is not one of {', '.join(EXPORT_FORMATS)}", field="--format")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InputError(
            "Parquet needs pyarrow, which is not installed: pip install 'labctl[parquet]'"
            " (or export --format csv)",
            field="--format",
        )
    where = str(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError("not a directory (allowed: a directory)", source=where, field="--out")
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise InputError("directory not writable", source=where, field="--out")
        return
    parent = out_dir.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{parent} is not a directory", source=where, field="--out")
    if not parent.is_dir():
        raise InputError(
            f"no such directory: {parent} (allowed: a new directory in an existing one)",
            source=where,
            field="--out",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot create it: {parent} is not writable", source=where, field="--out")


def write_export(
    frames: dict[str, Any], out_dir: Path, run_id: str, fmt: str
) -> list[tuple[Path, int]]:
    """Write each frame to ``out_dir/<run>_<table>.<fmt>``; return (path, rows) of each.

    Call :func:`check_export_target` first. A failure of the disk is one
    :class:`StorageError` naming the file.
    """
    written = []
    try:
        private.private_dir(out_dir)
    except OSError as exc:
        raise InputError(
            f"cannot create it: {exc.strerror or exc}", source=str(out_dir), field="--out"
        ) from None
    path = out_dir
    try:
        for name, frame in frames.items():
            path = out_dir / f"{run_id}_{name}.{fmt}"
            with private.private_output(path) as stream:  # owner-only, whole or not at all
                if fmt == "csv":
                    frame.to_csv(stream, index=False, encoding="utf-8")
                else:
                    frame.to_parquet(stream, index=False)
            written.append((path, len(frame)))
    except OSError as exc:
        raise StorageError(
            exc.strerror or str(exc), path=str(exc.filename or path), errno=exc.errno
        ) from exc
    return written


def problem_lines(rows: list[tuple[Any, ...]]) -> list[str]:
    """SQLite's check report as one problem a line (its rows may hold several)."""
    lines = (line.strip() for row in rows for line in str(row[0]).splitlines())
    return [line for line in lines if line and not line.startswith("*** in database")]


def _create(path: Path) -> None:
    """Make a new, empty store at ``path``: it appears there complete or not at all.

    Built aside and hard-linked into place, so a process that opens the path
    meanwhile never sees a half-made (or empty) file, and of two processes
    creating it at once the first one's stands.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        # Made by us with the private mode: SQLite keeps it, and gives its -wal and
        # -shm the main file's mode (its own default would be 0644).
        os.close(private.new_file(temporary))
        db = sqlite3.connect(temporary, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA} INSERT INTO meta VALUES"
                f" ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
            )
        finally:
            db.close()
        os.chmod(temporary, private.file_mode())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: its store stands
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            # No hard links on this file system: a rename, unless one appeared.
            if not path.exists():
                os.replace(temporary, path)
    finally:
        for leftover in (temporary, *(Path(f"{temporary}{end}") for end in ("-wal", "-shm"))):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def as_seen(run: dict[str, Any]) -> dict[str, Any]:
    """A run record as a reader should see it: *running* with its process gone is *killed*.

    Only what is shown changes; the record stays *running* until a process
    that can reach the bench makes it safe and records the death
    (:func:`labctl.engine.recover_killed_runs`, at the next run or resume).
    """
    if run.get("status") != "running" or _process_alive(run.get("pid")):
        return run
    return {
        **run,
        "status": "killed",
        "reason": f"its process (pid {run.get('pid')}) is gone; not yet recovered:"
        " the next run or `labctl resume` on this bench makes the bench safe and records it",
    }


def _process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def wait_for(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s (test helper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
