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
import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import InputError, LabctlError
from labctl.store import RunStore, _process_alive, now_text

from .runner import RunOutcome, RunRequest, resume, start, validate

__all__ = ["POLICIES", "QueueSummary", "add", "run_queue"]

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


def run_queue(
    data_dir: Path,
    *,
    policy: str = "continue",
    notify: str | None = None,
    report: Callable[[str], None] = print,
    after_entry: Callable[[int, str], None] | None = None,
) -> QueueSummary:
    """Work through the queue of ``data_dir``; return what happened."""
    if policy not in POLICIES:
        raise InputError(f"{policy!r} is not one of {', '.join(POLICIES)}", field="--policy")
    summary = QueueSummary()
    store = RunStore(data_dir)
    try:
        while True:
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
            outcome: RunOutcome | None = None
            run_id: str | None
            try:
                if resuming and entry["run_id"]:
                    report(f"queue #{entry_id}: resuming run {entry['run_id']} after a crash")
                    summary.resumed += 1
                    station = (
                        Path(entry["options"]["station"]) if entry["options"]["station"] else None
                    )
                    outcome = resume(entry["run_id"], data_dir, station=station)
                else:
                    report(f"queue #{entry_id}: {entry['protocol']}")
                    outcome = start(
                        _request(entry, data_dir),
                        on_created=functools.partial(_remember_run, store, entry_id),
                    )
                status, reason, run_id = outcome.status, outcome.reason, outcome.run_id
            except LabctlError as exc:
                status, reason = "failed", str(exc)
                run_id = next((e["run_id"] for e in store.queue() if e["id"] == entry_id), None)
            ok = status == "completed"
            store.queue_update(
                entry_id,
                status="done" if ok else "failed",
                ended_at=now_text(),
                reason=f"{status}: {reason}",
            )
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
    finally:
        store.close()
