"""The overnight queue: runs one protocol after another, unattended, and survives a crash.

Entries live in the run store (table ``queue``), so the queue outlives the
process that works through it. ``run_queue`` takes entries in order; an entry
left *running* by a dead process is resumed (its run id was recorded before
the run started), never started again. The failure policy is explicit:
``continue`` goes on with the next entry, ``stop`` stops the queue. An
optional notification command runs after every entry with the outcome in its
environment (``LABCTL_QUEUE_ID``, ``LABCTL_RUN_ID``, ``LABCTL_STATUS``,
``LABCTL_REASON``); it is executed directly, not through a shell.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.benchlock import BenchLock
from labctl.errors import InputError, LabctlError
from labctl.store import RunStore, _process_alive, now_text

from .runner import RunOutcome, RunRequest, resume, start, validate

__all__ = ["POLICIES", "QueueSummary", "add", "execute_entry", "run_queue"]

POLICIES = ("continue", "stop")


@dataclass
class QueueSummary:
    done: int = 0
    failed: int = 0
    resumed: int = 0
    stopped: bool = False


def add(request: RunRequest) -> int:
    """Check a run request completely and put it at the end of the queue."""
    request.unattended = True
    validate(request)  # refused now, not at 3 a.m.
    options = {
        "sim": request.sim,
        "station": str(Path(request.station).resolve()) if request.station else None,
        "formulation": str(Path(request.formulation).resolve()),
        "recipe": str(Path(request.recipe).resolve()) if request.recipe else None,
        "overrides": list(request.overrides),
        "operator": request.operator,
        "seed": request.seed,
    }
    store = RunStore(request.data_dir)
    try:
        return store.queue_add(request.protocol, options)
    finally:
        store.close()


def _request(entry: dict[str, Any], data_dir: Path) -> RunRequest:
    options = entry["options"]
    return RunRequest(
        protocol=entry["protocol"],
        data_dir=data_dir,
        formulation=Path(options["formulation"]),
        sim=options["sim"],
        station=Path(options["station"]) if options["station"] else None,
        recipe=Path(options["recipe"]) if options["recipe"] else None,
        overrides=tuple(options["overrides"]),
        unattended=True,
        operator=options["operator"],
        seed=options["seed"],
    )


def _notify(
    command: str | None, entry_id: int, run_id: str | None, status: str, reason: str
) -> None:
    if not command:
        return
    environment = {
        **os.environ,
        "LABCTL_QUEUE_ID": str(entry_id),
        "LABCTL_RUN_ID": run_id or "",
        "LABCTL_STATUS": status,
        "LABCTL_REASON": reason,
    }
    try:
        subprocess.run(
            shlex.split(command), env=environment, timeout=60, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        # A broken notifier must not stop the night's work.
        print(f"labctl: notification command failed: {exc}")


def _remember_run(store: RunStore, entry_id: int, run_id: str) -> None:
    store.queue_update(entry_id, run_id=run_id)


def execute_entry(
    data_dir: Path, entry_id: int, *, report: Callable[[str], None] = print
) -> tuple[str, str, str | None]:
    """Run (or resume) one claimed entry in this process; return (status, reason, run_id).

    The caller holds the bench lock and has claimed the entry; a supervised
    queue calls this in its child (``labctl queue run-entry``).
    """
    store = RunStore(data_dir)
    try:
        entry = next((e for e in store.queue() if e["id"] == entry_id), None)
        if entry is None:
            raise InputError("no such queue entry", field=f"queue #{entry_id}")
        outcome: RunOutcome | None = None
        try:
            if entry["run_id"]:
                run = store.run(entry["run_id"])
                if run["status"] not in ("created", "running", "killed", "aborted"):
                    return run["status"], run["reason"] or "", entry["run_id"]
                report(f"queue #{entry_id}: resuming run {entry['run_id']}")
                station = Path(entry["options"]["station"]) if entry["options"]["station"] else None
                outcome = resume(
                    entry["run_id"],
                    data_dir,
                    station=station,
                    lock=False,
                    wait=math.inf,
                    on_wait=report,
                )
            else:
                report(f"queue #{entry_id}: {entry['protocol']}")
                outcome = start(
                    _request(entry, data_dir),
                    on_created=functools.partial(_remember_run, store, entry_id),
                    lock=False,
                    wait=math.inf,  # another data directory's runner may hold the bench
                    on_wait=report,
                )
            return outcome.status, outcome.reason, outcome.run_id
        except LabctlError as exc:
            run_id = next((e["run_id"] for e in store.queue() if e["id"] == entry_id), None)
            return "failed", str(exc), run_id
    finally:
        store.close()


#: How often a supervised entry whose run process died is resumed before it counts failed.
RESUMES_AFTER_DEATH = 1


def _supervised_entry(
    data_dir: Path, entry_id: int, lock: BenchLock, report: Callable[[str], None]
) -> tuple[str, str, str | None]:
    """Run one entry in a child process; if the child dies, recover the bench and resume."""
    from .supervisor import run_child

    deaths = 0
    while True:
        store = RunStore(data_dir)
        try:
            entry = next(e for e in store.queue() if e["id"] == entry_id)
        finally:
            store.close()
        options = entry["options"]
        station = Path(options["station"]) if options["station"] else None
        ended = run_child(
            ["queue", "run-entry", str(entry_id), "--data", str(data_dir)],
            data_dir=data_dir,
            sim=bool(options["sim"]),
            station_file=station,
            seed=int(options["seed"] or 0),
            unattended=True,
            lock=lock,
            report=report,
        )
        store = RunStore(data_dir)
        try:
            entry = next(e for e in store.queue() if e["id"] == entry_id)
            run_id = entry["run_id"]
            record = store.run(run_id) if run_id else None
        finally:
            store.close()
        if not ended.died:
            if record is None:
                return "failed", f"the entry's process exited {ended.returncode}", run_id
            return record["status"], record["reason"] or "", run_id
        deaths += 1
        if record is None or deaths > RESUMES_AFTER_DEATH:
            why = "its run process died" + (f" {deaths} times" if deaths > 1 else "")
            return "failed", why, run_id
        report(f"queue #{entry_id}: its run process died; resuming run {run_id}")


def run_queue(
    data_dir: Path,
    *,
    policy: str = "continue",
    notify: str | None = None,
    report: Callable[[str], None] = print,
    after_entry: Callable[[int, str], None] | None = None,
    supervised: bool = False,
) -> QueueSummary:
    """Work through the queue of ``data_dir``; return what happened.

    Each entry runs while this process holds the bench lock (a second runner
    on the same data directory waits for it, then takes the next entry).
    ``supervised`` runs each entry in a child process and recovers the bench
    the moment one dies (what ``labctl queue run`` does).
    """
    if policy not in POLICIES:
        raise InputError(f"{policy!r} is not one of {', '.join(POLICIES)}", field="--policy")
    summary = QueueSummary()
    lock = BenchLock(data_dir, purpose="labctl queue run")
    while True:
        lock.acquire(wait=math.inf, on_wait=report)
        try:
            store = RunStore(data_dir)
            try:
                entries = store.queue()
                crashed = [
                    e for e in entries if e["status"] == "running" and not _process_alive(e["pid"])
                ]
                pending = [e for e in entries if e["status"] == "pending"]
                if crashed:
                    entry, resuming = crashed[0], True
                elif pending:
                    entry, resuming = pending[0], False
                else:
                    return summary
                entry_id = entry["id"]
                if not store.queue_claim(entry_id, entry["status"], entry["pid"]):
                    continue  # another queue runner took it first
                store.queue_update(entry_id, started_at=entry["started_at"] or now_text())
            finally:
                store.close()
            if resuming:
                summary.resumed += 1
                report(f"queue #{entry_id}: picking up after a crash")
            if supervised:
                status, reason, run_id = _supervised_entry(data_dir, entry_id, lock, report)
            else:
                status, reason, run_id = execute_entry(data_dir, entry_id, report=report)
            ok = status == "completed"
            store = RunStore(data_dir)
            try:
                store.queue_update(
                    entry_id,
                    status="done" if ok else "failed",
                    ended_at=now_text(),
                    reason=f"{status}: {reason}",
                )
            finally:
                store.close()
        finally:
            lock.release()
        report(f"queue #{entry_id}: {status} ({reason})")
        _notify(notify, entry_id, run_id, status, reason)
        if after_entry is not None:
            after_entry(entry_id, status)
        if ok:
            summary.done += 1
        else:
            summary.failed += 1
            if policy == "stop":
                summary.stopped = True
                report(f"queue: stopped after #{entry_id} failed (policy stop)")
                return summary
