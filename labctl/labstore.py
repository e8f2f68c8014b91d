"""The lab store read as a run store: what ``runs``, ``show``, ``export``, ``report``
and ``compare`` need, over PostgreSQL (``--data postgresql://...``).

:class:`LabStore` has the read methods of :class:`labctl.store.RunStore`
that the read commands use, returning the same values (JSON columns decoded
the same way, the same tidy DataFrames), over the runs every bench shipped -
or one bench's (``bench=``). A run id names a run on one bench; one that two
benches share (a store copied to a second bench) must be given with
``--bench``. Rows carry their ``bench_id`` besides.

It only reads: the session is read-only (``default_transaction_read_only``),
so a role with ``SELECT`` alone is enough (docs/lab-store.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InputError
from .labdb import connect, failure, mask, require_schema
from .store import measurements_frame, samples_frame, steps_frame

__all__ = ["LabStore"]

_JSON_RUN_COLUMNS = ("parameters", "recipe", "station", "software")


class LabStore:
    """Read-only view of the lab store at ``url`` (optionally one bench's runs)."""

    def __init__(self, url: str, *, bench: str | None = None) -> None:
        self.url = url
        self.bench = bench
        #: Where reports and plots go by default: ``./labctl-lab`` (never the server).
        self.data_dir = Path("labctl-lab")
        self.path = mask(url)
        self._benches: dict[str, str] = {}
        self._db = connect(url, autocommit=True, purpose="labctl read")
        try:
            self._db.execute("SET default_transaction_read_only = on")
            require_schema(self._db, url)
        except BaseException:
            self._db.close()
            raise
        if bench is not None:
            from .names import RUN_ID, check_name

            check_name(bench, RUN_ID, field="--bench")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LabStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        try:
            with self._db.cursor(row_factory=dict_row) as cursor:
                cursor.execute(sql, parameters)
                return [dict(row) for row in cursor.fetchall()]
        except psycopg.Error as exc:
            raise failure(exc, self.url) from None

    def _bench_clause(self) -> tuple[str, tuple[Any, ...]]:
        return ("AND bench_id = %s", (self.bench,)) if self.bench is not None else ("", ())

    # -- runs ------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """Every run (of the bench, if one was named), oldest first, with its ``bench_id``."""
        clause, values = self._bench_clause()
        return self._query(
            "SELECT bench_id, run_id, protocol, status, reason, operator, created_at, started_at,"
            " ended_at, formulation_hash, simulated, pid FROM runs WHERE TRUE "
            f"{clause} ORDER BY created_at, bench_id, run_id",
            values,
        )

    def run(self, run_id: str) -> dict[str, Any]:
        """The run ``run_id`` names - its exact id or a prefix of one run's id - as RunStore.run."""
        from .names import RUN_ID, candidates_line, check_name, shown

        check_name(run_id, RUN_ID, field="run")
        clause, values = self._bench_clause()
        rows = self._query(f"SELECT * FROM runs WHERE run_id = %s {clause}", (run_id, *values))
        if not rows:
            rows = self._query(
                "SELECT * FROM runs WHERE left(run_id, %s) = %s "
                f"{clause} ORDER BY created_at LIMIT 6",
                (len(run_id), run_id, *values),
            )
            ids = {row["run_id"] for row in rows}
            if not rows:
                where = f" on bench {self.bench}" if self.bench else ""
                raise InputError(
                    f"no such run {shown(run_id)}{where} in the lab store", field="run"
                )
            if len(ids) > 1:
                names = candidates_line(sorted(ids)[:5])
                raise InputError(
                    f"{shown(run_id)} begins several runs: {names}; give more of the id",
                    field="run",
                )
        if len(rows) > 1:
            benches = ", ".join(sorted(row["bench_id"] for row in rows))
            raise InputError(
                f"run {rows[0]['run_id']} is on several benches ({benches}): give --bench",
                field="run",
            )
        row = rows[0]
        for key in _JSON_RUN_COLUMNS:
            row[key] = json.loads(row[key]) if row[key] else None
        self._benches[row["run_id"]] = row["bench_id"]
        return row

    def _bench_of(self, run_id: str) -> str:
        if run_id not in self._benches:
            self.run(run_id)
        return self._benches[run_id]

    def _rows(self, table: str, run_id: str, order: str) -> list[dict[str, Any]]:
        rows = self._query(
            f"SELECT * FROM {table} WHERE bench_id = %s AND run_id = %s ORDER BY {order}",
            (self._bench_of(run_id), run_id),
        )
        for row in rows:
            row.pop("bench_id", None)
            row.pop("n", None)
        return rows

    def formulation(self, content_hash: str) -> dict[str, Any] | None:
        """The formulation with this hash (any bench's copy: the hash is of its content)."""
        clause, values = self._bench_clause()
        rows = self._query(
            "SELECT hash, name, source, content, canonical FROM formulations WHERE hash = %s "
            f"{clause} ORDER BY bench_id LIMIT 1",
            (content_hash, *values),
        )
        return rows[0] if rows else None

    # -- a run's records -------------------------------------------------------------

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        out = []
        for row in self._rows("steps", run_id, "seq"):
            row["parameters"] = json.loads(row["parameters"])
            row["result"] = json.loads(row["result"]) if row["result"] else None
            out.append(row)
        return out

    def wafers(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self._rows("wafers", run_id, "wafer_id")
        return {r["wafer_id"]: {"replaces": None, **r} for r in rows}

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return [
            {"at": r["at"], "kind": r["kind"], "message": r["message"]}
            for r in self._rows("events", run_id, "n")
        ]

    def moves(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows("moves", run_id, "id")

    def measurement_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows("measurements", run_id, "n")

    def sample_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows("samples", run_id, "n")

    # -- tidy tables, as RunStore gives them ---------------------------------------------

    def measurements(self, run_id: str) -> Any:
        return measurements_frame(self.measurement_rows(run_id))

    def samples(self, run_id: str) -> Any:
        return samples_frame(self.sample_rows(run_id))

    def steps_frame(self, run_id: str) -> Any:
        return steps_frame(self._rows("steps", run_id, "seq"))

    def export_frames(self, run_id: str) -> dict[str, Any]:
        return {
            "measurements": self.measurements(run_id),
            "samples": self.samples(run_id),
            "steps": self.steps_frame(run_id),
        }
