"""The overnight queue: runs one protocol after another, unattended, and survives a crash.

Entries live in the run store (table ``queue``), so the queue outlives the
process that works through it. ``run_queue`` takes entries in order; an entry
left *running* by a dead process is resumed (its run id was recorded before
the run started), never started again. The failure policy is explicit:
``continue`` goes on with the next entry, ``stop`` stops the queue. An
optional notification command runs after every entry with the outcome in its
environment (``LABCTL_QUEUE_ID``, ``LABCTL_RUN_ID``, ``LABCTL_STATUS``,
``LABCTL_REASON``); it is executed directly, not through a shell.

Reading entries and the moves a person asks for (``cancel``, ``remove``,
``retry``, :func:`public_entry`) are the core's - :mod:`labctl.queue_entries`,
re-exported here - so ``labctl web`` and ``queue list`` need no protocol code.

An entry keeps what it was given: :func:`add` stores the formulation, recipe
and station file *content* with the entry (with each file's SHA-256 and
path), and the entry runs exactly that, read through
:func:`labctl.files.stored_files` - a file edited or deleted after ``queue
add`` changes nothing, and the entry says so when it runs (a printed line and
a ``queue`` event of its run).

States of an entry::

    pending -> running -> done | failed
    pending -> cancelled                         (queue cancel)
    running -> cancelling -> cancelled           (queue cancel: stops at the next safe point)
    failed | cancelled -> pending                (queue retry)

``failed`` is every run that did not complete (failed, interlocked,
incomplete, aborted, killed; the entry's reason says which). A retry is a new
attempt (a new run; the old one stays recorded) unless the entry's run has a
wafer in an unknown state - killed mid-run, or stopped inside a step - which
is resumed instead: only its own run can record what became of that wafer,
and nothing physical is done twice.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.benchlock import BenchLock
from labctl.errors import InputError, LabctlError
from labctl.files import file_bytes, stored_files
from labctl.progress import StepProgress
from labctl.queue_entries import (
    CANCELLED,
    CANCELLING,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    cancel,
    describe_files,
    file_states,
    public_entry,
    remove,
    retry,
)
from labctl.queue_entries import RESUMABLE as _RESUMABLE
from labctl.queue_entries import entry_of as _entry
from labctl.queue_entries import read_entry as _read_entry
from labctl.queue_entries import stored_entry_files as _stored
from labctl.store import RunStore, _process_alive, now_text

from .runner import RunOutcome, RunRequest, resume, start, validate

__all__ = [
    "POLICIES",
    "QueueSummary",
    "add",
    "cancel",
    "describe_files",
    "entry_options",
    "execute_entry",
    "file_states",
    "public_entry",
    "remove",
    "retry",
    "run_queue",
]

POLICIES = ("continue", "stop")



@dataclass
class QueueSummary:
    done: int = 0
    failed: int = 0
    resumed: int = 0
    stopped: bool = False
    cancelled: int = 0


# -- what an entry keeps ------------------------------------------------------------------


def _keep(path: Path, role: str) -> dict[str, str]:
    """A file as it is now: its path, the SHA-256 of its bytes, its text."""
    resolved = Path(path).resolve()
    try:
        data = file_bytes(resolved)  # bounded, as validate() read it
        text = data.decode("utf-8")  # checked as UTF-8 by validate() already
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(
            f"cannot be kept with the entry: {problem or exc}", source=str(path), field=role
        ) from None
    return {"path": str(resolved), "sha256": hashlib.sha256(data).hexdigest(), "content": text}


def _overlay(files: Mapping[str, Mapping[str, str]]) -> dict[Path, bytes]:
    return {Path(kept["path"]): kept["content"].encode("utf-8") for kept in files.values()}


def add(request: RunRequest) -> int:
    """Check a run request completely and put it at the end of the queue, files and all."""
    options = entry_options(request)
    store = RunStore(request.data_dir)
    try:
        return store.queue_add(request.protocol, options)
    finally:
        store.close()


def entry_options(request: RunRequest) -> dict[str, Any]:
    """A queue entry's options: the request checked completely, its files' content kept.

    What :func:`add` stores (the lab-wide queue keeps the same: protocols/lab_queue.py).
    """
    request.unattended = True
    validate(request)  # refused now, not at 3 a.m.
    given = (
        ("formulation", request.formulation),
        ("recipe", request.recipe),
        ("station", request.station),
    )
    files = {role: _keep(path, role) for role, path in given if path is not None}
    # What is kept is what is checked: the files may have changed since the check above.
    with stored_files(_overlay(files)):
        validate(request)
    options = {
        "sim": request.sim,
        "station": files["station"]["path"] if "station" in files else None,
        "formulation": files["formulation"]["path"],
        "recipe": files["recipe"]["path"] if "recipe" in files else None,
        "overrides": list(request.overrides),
        "operator": request.operator,
        "seed": request.seed,
        # Trust given at `queue add --allow-import` holds for the night's run.
        "allow_import": request.allow_import,
        "files": files,
    }
    return options


def _file_notes(entry: Mapping[str, Any]) -> list[str]:
    """What to say before an entry runs about its files on disk."""
    prefix = f"queue #{entry['id']}"
    files = _stored(entry)
    if not files:
        return [
            f"{prefix}: added by an older labctl that kept only the files' paths: "
            "runs the files as they are on disk now"
        ]
    notes = []
    for role, state in file_states(entry).items():
        if state == "same":
            continue
        kept = files[role]
        what = "changed since it was added" if state == "changed" else f"is {state}"
        notes.append(
            f"{prefix}: {role} {kept['path']} {what}; "
            f"running the content added (sha256 {kept['sha256'][:12]})"
        )
    return notes


# -- running entries ----------------------------------------------------------------------


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
        allow_import=bool(options.get("allow_import", False)),
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


def _remember_run(store: RunStore, entry_id: int, notes: list[str], run_id: str) -> None:
    store.queue_update(entry_id, run_id=run_id)
    for note in notes:
        store.event(run_id, "queue", note)


class _CancelRequest(threading.Event):
    """A run's stop request that ``labctl queue cancel`` can set from another process.

    The engine asks at every safe point (before each step, and while it holds
    for an interlock); the entry's state in the store is read there, so a
    cancel is honoured at the next one. A first Ctrl-C sets it as usual.
    """

    def __init__(self, store: RunStore, entry_id: int) -> None:
        super().__init__()
        self._store = store
        self._entry_id = entry_id

    def is_set(self) -> bool:
        if super().is_set():
            return True
        try:
            entry = self._store.queue_entry(self._entry_id)
        except LabctlError:
            return False  # a store that cannot be read asks for nothing
        if entry is not None and entry["status"] == CANCELLING:
            self.set()
            return True
        return False


def execute_entry(
    data_dir: Path,
    entry_id: int,
    *,
    report: Callable[[str], None] = print,
    progress: Callable[[StepProgress], None] | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> tuple[str, str, str | None]:
    """Run (or resume) one claimed entry in this process; return (status, reason, run_id).

    The entry runs the files it kept (see the module docstring); a file that
    has changed or gone since is reported here and in a ``queue`` event of the
    run. ``progress`` is told of every step (see :mod:`labctl.progress`);
    ``on_outcome`` gets the outcome of a run that ran (to print its headline
    and write its report). ``queue cancel`` stops it at its next safe point.

    The caller holds the bench lock and has claimed the entry; a supervised
    queue calls this in its child (``labctl queue run-entry``).
    """
    store = RunStore(data_dir)
    try:
        entry = store.queue_entry(entry_id)
        if entry is None:
            raise InputError("no such queue entry", field=f"queue #{entry_id}")
        if entry["status"] == CANCELLING:
            return CANCELLED, "cancelled before it started", entry["run_id"]
        notes = _file_notes(entry)
        for note in notes:
            report(note)
        stop = _CancelRequest(store, entry_id)
        outcome: RunOutcome | None = None
        options = entry["options"]
        try:
            with stored_files(_overlay(_stored(entry))):
                if entry["run_id"]:
                    run = store.run(entry["run_id"])
                    if run["status"] not in _RESUMABLE:
                        return run["status"], run["reason"] or "", entry["run_id"]
                    report(f"queue #{entry_id}: resuming run {entry['run_id']}")
                    for note in notes:
                        store.event(entry["run_id"], "queue", note)
                    outcome = resume(
                        entry["run_id"],
                        data_dir,
                        station=Path(options["station"]) if options["station"] else None,
                        allow_import=bool(options.get("allow_import", False)),
                        progress=progress,
                        lock=False,
                        wait=math.inf,
                        on_wait=report,
                        stop=stop,
                    )
                else:
                    report(f"queue #{entry_id}: {entry['protocol']}")
                    outcome = start(
                        _request(entry, data_dir),
                        on_created=functools.partial(_remember_run, store, entry_id, notes),
                        progress=progress,
                        lock=False,
                        wait=math.inf,  # another data directory's runner may hold the bench
                        on_wait=report,
                        stop=stop,
                    )
        except LabctlError as exc:
            # Kept on the entry: a supervising parent reads why its child gave up.
            store.queue_update(entry_id, reason=str(exc))
            now = store.queue_entry(entry_id)
            return "failed", str(exc), now["run_id"] if now is not None else None
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome.status, outcome.reason, outcome.run_id
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
        entry = _entry(data_dir, entry_id)
        options = entry["options"]
        station = Path(options["station"]) if options["station"] else None
        # A child that dies is recovered from here: with the station file it ran.
        with stored_files(_overlay(_stored(entry))):
            ended = run_child(
                ["queue", "run-entry", str(entry_id), "--data", str(data_dir)],
                data_dir=data_dir,
                sim=bool(options["sim"]),
                station_file=station,
                seed=int(options["seed"] or 0),
                allow_import=bool(options.get("allow_import", False)),
                unattended=True,
                lock=lock,
                report=report,
            )
        store = RunStore(data_dir)
        try:
            entry = _read_entry(store, entry_id)
            run_id = entry["run_id"]
            record = store.run(run_id) if run_id else None
        finally:
            store.close()
        if record is None and entry["status"] == CANCELLING:
            return CANCELLED, "cancelled before it started", run_id
        if not ended.died:
            if record is None:
                why = entry["reason"] or f"the entry's process exited {ended.returncode}"
                return "failed", why, run_id
            return record["status"], record["reason"] or "", run_id
        deaths += 1
        if record is None or deaths > RESUMES_AFTER_DEATH:
            why = "its run process died" + (f" {deaths} times" if deaths > 1 else "")
            return "failed", why, run_id
        if entry["status"] == CANCELLING:
            return record["status"], "its run process died after it was cancelled", run_id
        report(f"queue #{entry_id}: its run process died; resuming run {run_id}")


def run_queue(data_dir: Path, **options: Any) -> QueueSummary:
    """Work through the queue of ``data_dir`` (see :func:`_work_through`), shipping as it goes.

    With ``$LABCTL_DATABASE_URL`` set, this process ships the store to the
    lab store for the whole queue - between entries, and a dead entry's
    record too - and its entries' processes leave it to this one.
    """
    from labctl.shipper import ENV_SHIPPED_BY_PARENT, start_shipping

    shipper = start_shipping(data_dir)
    before = os.environ.get(ENV_SHIPPED_BY_PARENT)
    if shipper is not None:
        os.environ[ENV_SHIPPED_BY_PARENT] = "1"  # inherited by the entries' child processes
    try:
        return _work_through(data_dir, **options)
    finally:
        if shipper is not None:
            if before is None:
                os.environ.pop(ENV_SHIPPED_BY_PARENT, None)
            else:
                os.environ[ENV_SHIPPED_BY_PARENT] = before
            shipper.stop()


def _work_through(
    data_dir: Path,
    *,
    policy: str = "continue",
    notify: str | None = None,
    report: Callable[[str], None] = print,
    after_entry: Callable[[int, str], None] | None = None,
    supervised: bool = False,
    progress: Callable[[StepProgress], None] | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> QueueSummary:
    """Work through the queue of ``data_dir``; return what happened.

    ``progress`` is told of every step of an entry run in this process, and
    ``on_outcome`` of its end (a supervised entry's child shows its own:
    ``labctl queue run-entry``).

    Each entry runs while this process holds the bench lock (a second runner
    on the same data directory waits for it, then takes the next entry).
    ``supervised`` runs each entry in a child process and recovers the bench
    the moment one dies (what ``labctl queue run`` does). A cancelled entry
    is neither done nor failed: the failure policy does not see it.
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
                for orphan in entries:
                    # Cancelled, then its runner died: not resumed.
                    if (
                        orphan["status"] == CANCELLING
                        and not _process_alive(orphan["pid"])
                        and store.queue_transition(
                            orphan["id"],
                            (CANCELLING,),
                            status=CANCELLED,
                            ended_at=now_text(),
                            reason="cancelled; its queue runner died before the run stopped",
                        )
                    ):
                        report(f"queue #{orphan['id']}: cancelled (its runner had died)")
                crashed = [
                    e for e in entries if e["status"] == RUNNING and not _process_alive(e["pid"])
                ]
                pending = [e for e in entries if e["status"] == PENDING]
                if crashed:
                    entry, resuming = crashed[0], True
                elif pending:
                    entry, resuming = pending[0], False
                else:
                    return summary
                entry_id = entry["id"]
                if not store.queue_claim(entry_id, entry["status"], entry["pid"]):
                    continue  # another queue runner took it first (or it was cancelled)
                store.queue_update(
                    entry_id, started_at=entry["started_at"] or now_text(), reason=None
                )
            finally:
                store.close()
            if resuming:
                summary.resumed += 1
                report(f"queue #{entry_id}: picking up after a crash")
            if supervised:
                status, reason, run_id = _supervised_entry(data_dir, entry_id, lock, report)
            else:
                status, reason, run_id = execute_entry(
                    data_dir, entry_id, report=report, progress=progress, on_outcome=on_outcome
                )
            ok = status == "completed"
            store = RunStore(data_dir)
            try:
                now = store.queue_entry(entry_id)
                cancelled = not ok and now is not None and now["status"] == CANCELLING
                ending = f"{status}: {reason}"
                if cancelled and status != CANCELLED:
                    ending = f"cancelled while running: {ending}"
                store.queue_update(
                    entry_id,
                    status=DONE if ok else CANCELLED if cancelled else FAILED,
                    ended_at=now_text(),
                    reason=ending,
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
        elif cancelled:
            summary.cancelled += 1
        else:
            summary.failed += 1
            if policy == "stop":
                summary.stopped = True
                report(f"queue: stopped after #{entry_id} failed (policy stop)")
                return summary
