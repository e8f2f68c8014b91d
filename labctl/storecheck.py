"""Check a run store file, and copy out what a damaged one still holds.

``labctl store check`` is built on this module. :func:`check_store` runs
SQLite's full ``integrity_check`` (every page, every index against its
table - slower than the ``quick_check`` a store gets at every open) and the
schema checks of :mod:`labctl.store`; :func:`copy_out` writes a new store,
with the current schema, holding every row still readable.

Both read the damaged file through a read-only connection: it is never
changed, whatever is found.

Reading a damaged table: the whole table in rowid order first; where that
fails, reading goes on by rowid from the row after the last one read,
probing forward (1, 2, 4, ... rowids on, then halving back) for the first
rowid from which reading works again, and skipping the range in between.
How many rows were lost is told by ``count(*)`` when SQLite can still count
the table - through the table itself or through any of its indexes - and is
otherwise unknown; the unreadable rowid ranges are reported either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, StorageError
from .store import (
    RunStore,
    StoreError,
    header_problem,
    is_damage,
    open_read_only,
    problem_lines,
    read_only_medium,
    schema_problem,
)

__all__ = ["CheckReport", "TableCopy", "check_store", "copy_out"]

_MIN_ROWID = -(2**63)
_MAX_ROWID = 2**63 - 1


@dataclass
class CheckReport:
    """The verdict on one store file: ``problems`` is empty when it is sound."""

    path: Path
    problems: list[str] = field(default_factory=list)
    #: Nothing can be read from it at all (empty, not SQLite, unreadable schema).
    unreadable: bool = False

    @property
    def sound(self) -> bool:
        return not self.problems


@dataclass
class TableCopy:
    """What :func:`copy_out` got from one table.

    ``lost`` is ``None`` when it cannot be told; ``unreadable`` lists the
    rowid ranges (first, last) that could not be read.
    """

    table: str
    recovered: int
    lost: int | None
    unreadable: list[tuple[int, int]] = field(default_factory=list)
    note: str = ""

    def summary(self) -> str:
        """One line: ``samples   53640 recovered, 60 lost (rowids 101-160 unreadable)``."""
        lost = "lost: unknown" if self.lost is None else f"{self.lost} lost"
        ranges = ", ".join(_range_text(first, last) for first, last in self.unreadable)
        details = [f"rowids {ranges} unreadable"] if ranges else []
        details += [self.note] if self.note else []
        suffix = f" ({'; '.join(details)})" if details else ""
        return f"{self.table:14s} {self.recovered:8d} recovered, {lost}{suffix}"


def _range_text(first: int, last: int) -> str:
    if first == _MIN_ROWID:
        return "all" if last == _MAX_ROWID else f"up to {last}"
    return f"{first} and after" if last == _MAX_ROWID else f"{first}-{last}"


def _store_path(data_dir: Path) -> Path:
    path = Path(data_dir) / RunStore.FILENAME
    if not path.is_file():
        raise InputError(f"no run store ({RunStore.FILENAME}) here", field=f"--data {data_dir}")
    return path


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection; SQLite's own failures (not damage) become ``StoreError``."""
    try:
        db = open_read_only(path, immutable=read_only_medium(path.parent))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open: {exc}", path=str(path)) from exc
    try:
        yield db
    finally:
        db.close()


def check_store(data_dir: Path) -> CheckReport:
    """The full check of ``<data_dir>/labctl.sqlite``; raises ``InputError`` if there is none."""
    path = _store_path(data_dir)
    report = CheckReport(path)
    try:
        header = header_problem(path)
    except OSError as exc:
        raise StorageError.from_os_error(exc, path) from exc
    if header is not None:
        report.problems.append(header)
        report.unreadable = True
        return report
    with _reading(path) as db:
        for pragma in ("integrity_check", "quick_check"):
            # integrity_check also reads every index against its table, and may
            # stop at a page it cannot read; quick_check still lists the rest.
            try:
                rows = db.execute(f"PRAGMA {pragma}").fetchall()
            except sqlite3.Error as exc:
                if not is_damage(exc):
                    raise StoreError(f"cannot check: {exc}", path=str(path)) from exc
                report.problems.append(f"{pragma} stopped: {exc}")
                continue
            if rows != [("ok",)]:
                report.problems.extend(problem_lines(rows) or [str(rows)])
            break
        try:
            schema = schema_problem(db)
        except sqlite3.DatabaseError as exc:
            schema = f"its schema cannot be read: {exc}"
            report.unreadable = True
        if schema is not None:
            report.problems.append(schema)
    return report


def copy_out(data_dir: Path, out_dir: Path) -> tuple[Path, list[TableCopy]]:
    """Write ``<out_dir>/labctl.sqlite``: the current schema, every row still readable.

    Rows keep their rowids (the order of events and samples). Returns the new
    file and what each table gave. Raises ``InputError`` if the target exists
    or nothing at all can be read from the source.
    """
    source_path = _store_path(data_dir)
    out_dir = Path(out_dir)
    target = out_dir / RunStore.FILENAME
    if out_dir.resolve() == source_path.parent.resolve():
        raise InputError("must not be the data directory itself", field=f"--copy-out {out_dir}")
    if target.exists():
        raise InputError(
            f"{target} exists: give a new or empty directory", field=f"--copy-out {out_dir}"
        )
    try:
        header = header_problem(source_path)
    except OSError as exc:
        raise StorageError.from_os_error(exc, source_path) from exc
    if header is not None:
        raise InputError(f"nothing can be read from it: {header}", field=str(source_path))
    with _reading(source_path) as source:
        try:
            source_tables = _tables(source)
        except sqlite3.DatabaseError as exc:
            raise InputError(
                f"nothing can be read from it: its schema is unreadable ({exc})",
                field=str(source_path),
            ) from exc
        RunStore(out_dir).close()  # the current schema, made as labctl makes every store
        try:
            destination = sqlite3.connect(target, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open: {exc}", path=str(target)) from exc
        try:
            destination.execute("PRAGMA synchronous=FULL")
            copies = [
                _copy_table(source, destination, table, source_tables)
                for table in _tables(destination)
            ]
        except sqlite3.Error as exc:
            raise StoreError(f"write failed: {exc}", path=str(target)) from exc
        finally:
            destination.close()
    for table in sorted(set(source_tables) - {c.table for c in copies}):
        copies.append(TableCopy(table, 0, None, note="not in the current schema: not copied"))
    return target, copies


def _tables(db: sqlite3.Connection) -> dict[str, list[str]]:
    """Table name -> column names, in the order the schema made them."""
    names = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY rowid"
        )
    ]
    return {
        name: [row[1] for row in db.execute(f"PRAGMA table_info({_quote(name)})")] for name in names
    }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rowid_alias(db: sqlite3.Connection, table: str) -> str | None:
    """The INTEGER PRIMARY KEY column that is the rowid itself, if the table has one."""
    keys = [row for row in db.execute(f"PRAGMA table_info({_quote(table)})") if row[5]]
    if len(keys) == 1 and str(keys[0][2]).upper() == "INTEGER":
        return str(keys[0][1])
    return None


def _copy_table(
    source: sqlite3.Connection,
    destination: sqlite3.Connection,
    table: str,
    source_tables: dict[str, list[str]],
) -> TableCopy:
    if table not in source_tables:
        return TableCopy(table, 0, 0, note="absent from the damaged store")
    wanted = _tables(destination)[table]
    columns = [c for c in wanted if c in source_tables[table]]
    rows, unreadable = _readable_rows(source, table, columns)
    left_out = 0
    if table == "meta" and "key" in columns:
        # The copy's schema version is the one its schema was made with.
        kept = [r for r in rows if r[columns.index("key") + 1] != "schema_version"]
        left_out, rows = len(rows) - len(kept), kept
    alias = _rowid_alias(destination, table)
    if alias is not None and alias in columns:
        names, values = columns, [row[1:] for row in rows]
    else:
        names, values = ["rowid", *columns], rows
    before = destination.total_changes
    destination.execute("BEGIN IMMEDIATE")
    destination.executemany(
        f"INSERT OR IGNORE INTO {_quote(table)} ({', '.join(_quote(n) for n in names)})"
        f" VALUES ({', '.join('?' for _ in names)})",
        values,
    )
    destination.execute("COMMIT")
    recovered = destination.total_changes - before
    total = len(rows) if not unreadable else _row_count(source, table)
    if unreadable and total is not None:
        total -= left_out
    lost = None if total is None else max(0, total - recovered)
    notes = [f"{len(rows) - recovered} read but refused"] if len(rows) != recovered else []
    notes += ["its schema_version is the copy's own"] if left_out else []
    note = "; ".join(notes)
    return TableCopy(table, recovered, lost, unreadable, note)


def _readable_rows(
    db: sqlite3.Connection, table: str, columns: list[str]
) -> tuple[list[tuple[Any, ...]], list[tuple[int, int]]]:
    """Every row that can be read, as (rowid, *columns); and the rowid ranges that cannot."""
    select = f"SELECT rowid, {', '.join(_quote(c) for c in columns)} FROM {_quote(table)}"
    rows: list[tuple[Any, ...]] = []
    unreadable: list[tuple[int, int]] = []
    start = _MIN_ROWID
    while True:
        failed_at = _read_from(db, select, start, rows)
        if failed_at is None:
            return rows, unreadable
        resume = _next_readable(db, select, failed_at)
        if resume is None:
            unreadable.append((failed_at, _MAX_ROWID))
            return rows, unreadable
        unreadable.append((failed_at, resume - 1))
        start = resume


def _read_from(
    db: sqlite3.Connection, select: str, start: int, rows: list[tuple[Any, ...]]
) -> int | None:
    """Append the rows from rowid ``start`` on; None at the end, else the rowid it failed at."""
    last: int | None = None
    try:
        for row in db.execute(f"{select} WHERE rowid >= ? ORDER BY rowid", (start,)):
            if last is not None and row[0] <= last:
                # Out of order: a page of garbage that happened to parse.
                raise sqlite3.DatabaseError("rowids out of order")
            rows.append(tuple(row))
            last = row[0]
    except sqlite3.DatabaseError:
        if last is None:
            return start
        if last >= _MAX_ROWID:
            return None
        return last + 1
    return None


def _next_readable(db: sqlite3.Connection, select: str, failed_at: int) -> int | None:
    """The first rowid after ``failed_at`` from which reading works again (None: none)."""

    def readable_from(rowid: int) -> bool:
        try:
            db.execute(f"{select} WHERE rowid >= ? ORDER BY rowid LIMIT 1", (rowid,)).fetchall()
        except sqlite3.DatabaseError:
            return False
        return True

    low, step = failed_at, 1
    while True:
        high = min(failed_at + step, _MAX_ROWID)
        if readable_from(high):
            break
        if high == _MAX_ROWID:
            return None
        low, step = high, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        if readable_from(middle):
            high = middle
        else:
            low = middle
    return high


def _row_count(db: sqlite3.Connection, table: str) -> int | None:
    """``count(*)`` through the table or any of its indexes, whichever SQLite can still read."""
    ways = ["NOT INDEXED"]
    try:
        indexes = db.execute(f"PRAGMA index_list({_quote(table)})").fetchall()
    except sqlite3.DatabaseError:
        indexes = []
    ways += [f"INDEXED BY {_quote(str(row[1]))}" for row in indexes]
    for way in ways:
        try:
            return int(db.execute(f"SELECT count(*) FROM {_quote(table)} {way}").fetchone()[0])
        except sqlite3.DatabaseError:
            continue
    return None
