"""The lab-wide queue: entries in the lab store (PostgreSQL) that any fitting bench runs.

An entry names a bench (``--bench``) or none - then any bench whose runner
has every role the entry needs takes it. Runners claim entries with
``SELECT ... FOR UPDATE SKIP LOCKED``: two runners never take the same one,
and neither waits for the other.

A bench runs a claimed entry through its own overnight queue
(:mod:`protocols.queue`): the entry is copied, files and all, into the
bench's store as a local entry that names the lab entry, and runs there,
supervised, exactly like a local one. So what happens to a wafer when a
runner dies is settled where the wafer's journal is: the bench's next
``queue run`` resumes the entry's run (its run id was recorded before the
run started); it is never restarted, and never by another bench - the
others only ever take *pending* entries.

While a bench works an entry, its runner renews the entry's lease
(``lease_until``) every third of the lease. An entry whose lease has run
out is shown ``dead`` (its runner is gone, or cut off from the lab store):
others see it and leave it. The lab store being down never stops a run:
the lease is renewed again, and the outcome written, when it is back.

States in the lab (``status``)::

    pending -> running -> done | failed | cancelled
    pending -> cancelled                 (queue cancel --lab)
    running -> cancelling -> cancelled   (the bench stops it at its next safe point)
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import InputError, LabctlError
from labctl.labdb import LabUnavailable, connect, ensure_schema, failure, mask
from labctl.queue_entries import CANCELLING, PENDING, RUNNING
from labctl.station import ROLES
from labctl.store import RunStore, _process_alive, now_text

from .queue import entry_options, run_queue
from .runner import RunRequest

__all__ = ["LabQueueSummary", "add", "cancel", "entries", "run_lab_queue"]

#: How long a claim holds without renewal, s (the runner renews every third of it).
LEASE_S = 60.0
_LOCAL_ENDED = {"done": "done", "failed": "failed", "cancelled": "cancelled"}


@dataclass
class LabQueueSummary:
    claimed: int = 0
    done: int = 0
    failed: int = 0
    resumed: int = 0
    cancelled: int = 0


def _db(url: str, purpose: str) -> Any:
    connection = connect(url, purpose=purpose)
    try:
        ensure_schema(connection, url)
    except BaseException:
        connection.close()
        raise
    return connection


def _call(url: str, work: Callable[[Any], Any], purpose: str = "labctl queue") -> Any:
    """``work(connection)`` in one transaction; psycopg's errors mapped to labctl's."""
    import psycopg

    connection = _db(url, purpose)
    try:
        with connection.transaction():
            return work(connection)
    except psycopg.Error as exc:
        raise failure(exc, url) from None
    finally:
        connection.close()


def add(
    request: RunRequest, url: str, *, bench: str | None = None, roles: Sequence[str] = ROLES
) -> int:
    """Check a run request completely and add it to the lab queue; its number."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InputError(f"unknown role {unknown[0]!r}; roles: {', '.join(ROLES)}", field="--role")
    if bench is not None:
        from labctl.names import RUN_ID, check_name

        check_name(bench, RUN_ID, field="--bench")
    options = entry_options(request)

    def insert(connection: Any) -> int:
        row = connection.execute(
            "INSERT INTO lab_queue (protocol, options, bench_id, roles, status, added_at)"
            " VALUES (%s, %s, %s, %s::jsonb, 'pending', %s) RETURNING id",
            (
                request.protocol,
                json.dumps(options, sort_keys=True),
                bench,
                json.dumps(sorted(set(roles))),
                now_text(),
            ),
        ).fetchone()
        return int(row[0])

    return int(_call(url, insert))


def entries(url: str) -> list[dict[str, Any]]:
    """Every entry, oldest first; a running one whose lease ran out is shown ``dead``."""
    from psycopg.rows import dict_row

    def read(connection: Any) -> list[dict[str, Any]]:
        with connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(
                "SELECT id, protocol, bench_id, roles, status, claimed_by, runner, run_id,"
                " added_at, started_at, ended_at, reason, lease_until,"
                " (status IN ('running', 'cancelling') AND lease_until < now()) AS expired"
                " FROM lab_queue ORDER BY id"
            )
            rows = [dict(row) for row in cursor.fetchall()]
        for row in rows:
            row["lease_until"] = row["lease_until"].isoformat() if row["lease_until"] else None
            if row.pop("expired"):
                row["status"] = "dead"
                row["reason"] = (
                    f"bench {row['claimed_by']}'s runner ({row['runner']}) stopped renewing its"
                    f" lease at {row['lease_until']}: only bench {row['claimed_by']} resumes it"
                )
        return rows

    result: list[dict[str, Any]] = _call(url, read)
    return result


def cancel(url: str, entry_id: int) -> str:
    """Cancel a pending entry; ask a running one to stop at its next safe point."""

    def change(connection: Any) -> str:
        row = connection.execute(
            "SELECT status, claimed_by FROM lab_queue WHERE id = %s FOR UPDATE", (entry_id,)
        ).fetchone()
        if row is None:
            raise InputError("no such entry in the lab queue", field=f"lab queue #{entry_id}")
        status, bench = row
        if status == PENDING:
            connection.execute(
                "UPDATE lab_queue SET status = 'cancelled', ended_at = %s,"
                " reason = 'cancelled before it ran' WHERE id = %s",
                (now_text(), entry_id),
            )
            return f"lab queue #{entry_id}: cancelled; it will not run"
        if status == RUNNING:
            connection.execute(
                "UPDATE lab_queue SET status = 'cancelling' WHERE id = %s", (entry_id,)
            )
            return (
                f"lab queue #{entry_id}: asked to stop; bench {bench} stops it at its next"
                " safe point"
            )
        raise InputError(f"is {status}: there is nothing to cancel", field=f"lab queue #{entry_id}")

    result: str = _call(url, change)
    return result


class _Lease(threading.Thread):
    """Renews the leases of a bench's running entries and carries news both ways.

    Every ``period`` s: the lease of each entry the bench is running is
    renewed and its run id (once the run has one) written; an entry the lab
    asks to cancel is asked to stop in the bench's queue. A lab store that is
    down is tried again at the next tick; nothing here ever stops a run.
    """

    def __init__(self, data_dir: Path, url: str, bench: str, lease: float) -> None:
        super().__init__(name="labctl-lease", daemon=True)
        self.data_dir, self.url, self.bench, self.lease = data_dir, url, bench, lease
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.lease / 3):
            try:
                self.renew()
            except (LabctlError, OSError):
                continue  # the lab is away: the next tick tries again

    def renew(self) -> None:
        store = RunStore(self.data_dir, create=False)
        try:
            local = {
                entry["options"]["lab"]["id"]: entry
                for entry in store.queue()
                if "lab" in entry["options"]
            }

            def work(connection: Any) -> list[int]:
                rows = connection.execute(
                    "UPDATE lab_queue SET lease_until = now() + make_interval(secs => %s)"
                    " WHERE claimed_by = %s AND status IN ('running', 'cancelling')"
                    " RETURNING id, status, run_id",
                    (self.lease, self.bench),
                ).fetchall()
                stop = []
                for entry_id, status, run_id in rows:
                    mine = local.get(entry_id)
                    if mine is not None and mine["run_id"] and run_id != mine["run_id"]:
                        connection.execute(
                            "UPDATE lab_queue SET run_id = %s WHERE id = %s",
                            (mine["run_id"], entry_id),
                        )
                    if status == CANCELLING and mine is not None:
                        stop.append(mine["id"])
                return stop

            for local_id in _call(self.url, work, "labctl lease"):
                store.queue_transition(local_id, (RUNNING,), status=CANCELLING)
        finally:
            store.close()


def _runner_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"[:120]


def _reconcile(store: RunStore, url: str, bench: str, report: Callable[[str], None]) -> int:
    """Bring the lab up to date with this bench's entries; make local what it claimed.

    An entry claimed by this bench and not yet in its store (the runner died
    between the two) is added now - its run never started. One that ended
    here has its outcome written. Returns how many claimed entries are still
    to run (or resume) here.
    """
    local = {e["options"]["lab"]["id"]: e for e in store.queue() if "lab" in e["options"]}

    def work(connection: Any) -> int:
        rows = connection.execute(
            "SELECT id, protocol, options, status, local_id FROM lab_queue"
            " WHERE claimed_by = %s AND status IN ('running', 'cancelling') ORDER BY id",
            (bench,),
        ).fetchall()
        waiting = 0
        for entry_id, protocol, options, status, local_id in rows:
            mine = local.get(entry_id)
            if mine is None:
                kept = json.loads(options)
                kept["lab"] = {"id": entry_id, "store": mask(url)}
                new_id = store.queue_add(protocol, kept)
                connection.execute(
                    "UPDATE lab_queue SET local_id = %s WHERE id = %s", (new_id, entry_id)
                )
                report(f"lab queue #{entry_id}: queued here as #{new_id}")
                waiting += 1
                continue
            if local_id != mine["id"]:
                connection.execute(
                    "UPDATE lab_queue SET local_id = %s WHERE id = %s", (mine["id"], entry_id)
                )
            ended = _LOCAL_ENDED.get(mine["status"])
            if ended is None:
                if status == CANCELLING:
                    store.queue_transition(mine["id"], (PENDING,), status="cancelled")
                # Not counted: an entry another live runner of this bench is running.
                if mine["status"] == PENDING or not _process_alive(mine["pid"]):
                    waiting += 1
                continue
            connection.execute(
                "UPDATE lab_queue SET status = %s, run_id = %s, reason = %s, ended_at = %s"
                " WHERE id = %s",
                (ended, mine["run_id"], mine["reason"], mine["ended_at"] or now_text(), entry_id),
            )
            report(f"lab queue #{entry_id}: {ended} on bench {bench} ({mine['reason'] or ''})")
        return waiting

    result: int = _call(url, work)
    return result


def _claim(store: RunStore, url: str, bench: str, roles: Sequence[str], lease: float) -> int | None:
    """Take the oldest pending entry this bench may run; its number, or None."""

    def work(connection: Any) -> int | None:
        row = connection.execute(
            "SELECT id FROM lab_queue WHERE status = 'pending'"
            " AND (bench_id IS NULL OR bench_id = %s) AND roles <@ %s::jsonb"
            " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
            (bench, json.dumps(sorted(set(roles)))),
        ).fetchone()
        if row is None:
            return None
        connection.execute(
            "UPDATE lab_queue SET status = 'running', claimed_by = %s, runner = %s,"
            " started_at = %s, lease_until = now() + make_interval(secs => %s) WHERE id = %s",
            (bench, _runner_name(), now_text(), lease, row[0]),
        )
        return int(row[0])

    claimed: int | None = _call(url, work)
    return claimed


def run_lab_queue(
    data_dir: Path,
    url: str,
    *,
    bench: str | None = None,
    roles: Sequence[str] = ROLES,
    lease: float = LEASE_S,
    report: Callable[[str], None] = print,
    retry_max: float = 10.0,
    **local: Any,
) -> LabQueueSummary:
    """Work through the lab queue on this bench until nothing is left for it.

    First whatever this bench claimed and has not finished (a dead runner's
    entry is resumed here, by its own bench), then one pending entry after
    another. ``local`` goes to :func:`protocols.queue.run_queue` (``notify``,
    ``supervised``, ``progress``, ``on_outcome``). A lab store that cannot be
    reached is tried again after 1, 2, 4 ... at most ``retry_max`` s - the
    bench's own runs go on regardless.
    """
    summary = LabQueueSummary()
    store = RunStore(data_dir)
    try:
        bench_id = store.bench_id(bench)
    finally:
        store.close()
    renewer = _Lease(data_dir, url, bench_id, lease)
    renewer.start()
    wait = 1.0
    try:
        while True:
            try:
                store = RunStore(data_dir)
                try:
                    waiting = _reconcile(store, url, bench_id, report)
                    claimed = None if waiting else _claim(store, url, bench_id, roles, lease)
                    if claimed is not None:
                        summary.claimed += 1
                        report(f"lab queue #{claimed}: taken by bench {bench_id}")
                        waiting = _reconcile(store, url, bench_id, report)
                finally:
                    store.close()
                wait = 1.0
            except LabUnavailable as exc:
                report(f"lab queue: {exc}; trying again in {wait:.0f} s")
                time.sleep(wait)
                wait = min(retry_max, wait * 2)
                waiting = _local_waiting(data_dir)
                if not waiting:
                    continue
            if not waiting:
                return summary
            done = run_queue(data_dir, report=report, **local)
            summary.done += done.done
            summary.failed += done.failed
            summary.resumed += done.resumed
            summary.cancelled += done.cancelled
    finally:
        renewer.halt.set()


def _local_waiting(data_dir: Path) -> int:
    """Lab entries this bench holds that have not ended here (run while the lab is away)."""
    store = RunStore(data_dir)
    try:
        return sum(
            1
            for entry in store.queue()
            if "lab" in entry["options"]
            and (
                entry["status"] == PENDING
                or (entry["status"] == RUNNING and not _process_alive(entry["pid"]))
            )
        )
    finally:
        store.close()
