"""A real PostgreSQL for the lab-store tests: pgserver's binaries in a temporary directory.

``LabServer`` starts one server (no TCP: a Unix socket in its directory),
makes a database per test, and can stop and start the server again - the
tests and benchmarks/lab_night.py stop it under a shipper. No mock: the
tests run the SQL a lab's server runs.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

#: Fast contrast-curve runs with several formulations (base loading differs).
FORMULATIONS = ("in_claims.toml", "b2_55_percent.toml", "ratio_2_98.toml")


class LabServer:
    """One PostgreSQL 16 server in ``root``; every database on it is a test's own."""

    def __init__(self, root: Path | None = None) -> None:
        """``root``: where the server keeps its data; default a new directory of its own.

        Not under pytest's base temporary directory: as root, pgserver runs the
        server as its own user and opens the path to it for that user, and every
        pytest session (another's, at the same time) makes that path owner-only
        again - the server then cannot read its own configuration.
        """
        import logging
        import tempfile
        import warnings

        logging.getLogger("pgserver").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
            import pgserver

        self._made = root is None
        root = Path(tempfile.mkdtemp(prefix="labctl-pg-")) if root is None else root
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._server: Any = pgserver.get_server(root / "pg", cleanup_mode="stop")
        self.uri = self._server.get_uri()
        self.socket_dir = parse_qs(urlparse(self.uri).query)["host"][0]

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        """The URL of ``database`` for ``user`` (no password: trust, unless a test sets one)."""
        return f"postgresql://{user}@/{database}?host={self.socket_dir}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser (autocommit); its rows, if any."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            cursor = connection.execute(statement)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _pg_ctl(self, *arguments: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(arguments), pgdata=self.root / "pg", user=self._server.system_user, timeout=30)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would, no checkpoint)."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        """Start it again, on the same socket and data."""
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.root / "pg" / "log"),
            "start",
        )

    def require_password(self, role: str, password: str) -> None:
        """Make ``role`` log in with ``password`` (scram-sha-256) from now on."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", role):
            raise ValueError(role)
        self.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        hba = self.root / "pg" / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        hba.write_text("\n".join([f"local all {role} scram-sha-256", *lines]) + "\n")
        self.sql("SELECT pg_reload_conf()")

    def close(self) -> None:
        """Stop the server; remove its directory if it made it."""
        import shutil

        self._server.cleanup()
        if self._made:
            shutil.rmtree(self.root, ignore_errors=True)


# -- what the lab holds against what the benches hold --------------------------------------

#: Row order of each shipped table on a bench and in the lab (the lab has no rowid).
_ORDER = {
    "formulations": ("hash", "hash"),
    "runs": ("run_id", "run_id"),
    "steps": ("run_id, seq", "run_id, seq"),
    "wafers": ("run_id, wafer_id", "run_id, wafer_id"),
    "moves": ("id", "id"),
    "measurements": ("run_id, rowid", "run_id, n"),
    "events": ("run_id, rowid", "run_id, n"),
    "samples": ("run_id, rowid", "run_id, n"),
}


def bench_rows(data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every shipped table of a bench's store, row by row, in a fixed order."""
    import sqlite3

    from labctl.schema import SHIPPED, shipped_columns

    db = sqlite3.connect(f"{(data_dir / 'labctl.sqlite').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {
            table: db.execute(
                f"SELECT {', '.join(shipped_columns(table))} FROM {table}"
                f" ORDER BY {_ORDER[table][0]}"
            ).fetchall()
            for table in SHIPPED
        }
    finally:
        db.close()


def lab_rows(url: str, bench: str) -> dict[str, list[tuple[Any, ...]]]:
    """The same tables as the lab store holds them for ``bench``."""
    import psycopg

    from labctl.schema import SHIPPED, shipped_columns

    out = {}
    with psycopg.connect(url) as connection:
        for table in SHIPPED:
            names = ", ".join(f'"{c}"' for c in shipped_columns(table))
            out[table] = [
                tuple(row)
                for row in connection.execute(
                    f"SELECT {names} FROM {table} WHERE bench_id = %s"  # type: ignore[arg-type]
                    f" ORDER BY {_ORDER[table][1]}",
                    (bench,),
                )
            ]
    return out


def lost_and_duplicated(data_dir: Path, url: str, bench: str) -> dict[str, tuple[int, int]]:
    """Per table: (rows of the bench missing from the lab, rows in the lab not on the bench).

    Compared row by row, every column - (0, 0) everywhere is an exact copy. A
    row stored twice in the lab counts as one not on the bench.
    """
    from collections import Counter

    here, there = bench_rows(data_dir), lab_rows(url, bench)
    out = {}
    for table, rows in here.items():
        mine, theirs = Counter(rows), Counter(there[table])
        out[table] = (sum((mine - theirs).values()), sum((theirs - mine).values()))
    return out
