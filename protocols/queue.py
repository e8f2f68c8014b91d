"""The overnight queue: runs one protocol after another, unattended, and survives a crash.

Entries live in the run store (table ``queue``), so the queue outlives the
process that works through it. ``run_queue`` takes entries in order; an entry
left *running* by a dead process is resumed (its run id was recorded before
the run started), never started again. The failure policy is explicit:
``continue`` goes on with the next entry, ``stop`` stops the queue. An
optional notification command runs after every entry with the outcome in its
environment (``LABCTL_QUEUE_ID``, ``LABCTL_RUN_ID``, ``LABCTL_STATUS``,
``LABCTL_REASON``); it is executed directly, not through a shell.

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
from labctl.files import MAX_FILE_BYTES, file_bytes, stored_files
from labctl.progress import StepProgress
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

PENDING = "pending"
RUNNING = "running"
CANCELLING = "cancelling"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
#: The files an entry keeps, in the order they are listed.
FILE_ROLES = ("formulation", "recipe", "station")
#: Run statuses an entry's run is resumed from (the rest have ended for good).
_RESUMABLE = ("created", "running", "killed", "aborted")


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


def _stored(entry: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """role -> {path, sha256, content}; empty for an entry added by an older labctl."""
    files: dict[str, dict[str, str]] = entry["options"].get("files") or {}
    return files


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


def _on_disk(kept: Mapping[str, str]) -> str:
    """The file now against what was kept: ``same``, ``changed``, ``gone``, ``unreadable (...)``."""
    try:
        # The disk's bytes (never a stored copy), and never more than a user's
        # file may hold: a file swapped for a huge one is "changed", unread.
        with open(kept["path"], "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return "gone"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return "same" if hashlib.sha256(data).hexdigest() == kept["sha256"] else "changed"


def file_states(entry: Mapping[str, Any]) -> dict[str, str]:
    """Each kept file's state on disk now (see :func:`_on_disk`), by role."""
    files = _stored(entry)
    return {role: _on_disk(files[role]) for role in FILE_ROLES if role in files}


def describe_files(entry: Mapping[str, Any]) -> str:
    """A few words for ``queue list``: have the files changed since ``queue add``?"""
    if not _stored(entry):
        return "files read at run time (added by an older labctl)"
    changed = [f"{role} {state}" for role, state in file_states(entry).items() if state != "same"]
    return "files as added" if not changed else "; ".join(changed) + " since added"


def public_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry for ``queue list --json``: the files' paths, hashes and states, not their text."""
    out = dict(entry)
    options = dict(entry["options"])
    states = file_states(entry)
    options["files"] = {
        role: {"path": kept["path"], "sha256": kept["sha256"], "on_disk": states[role]}
        for role, kept in _stored(entry).items()
    }
    out["options"] = options
    out["files"] = describe_files(entry)
    if entry["status"] in (RUNNING, CANCELLING) and not _process_alive(entry.get("pid")):
        # Shown, not recorded: the next `queue run` resumes it (or `queue cancel` stops it).
        out["status"] = "interrupted"
        out["reason"] = (
            f"its queue runner (pid {entry.get('pid')}) is gone: `labctl queue run` resumes"
            f" it, `labctl queue cancel {entry['id']}` drops it"
        )
    return out


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


# -- cancel, remove, retry ----------------------------------------------------------------


def _read_entry(store: RunStore, entry_id: int) -> dict[str, Any]:
    entry = store.queue_entry(entry_id)
    if entry is None:
        raise InputError(
            "no such queue entry (see `labctl queue list`)", field=f"queue #{entry_id}"
        )
    return entry


def _entry(data_dir: Path, entry_id: int) -> dict[str, Any]:
    store = RunStore(data_dir, create=False)
    try:
        return _read_entry(store, entry_id)
    finally:
        store.close()


def _refuse(entry_id: int, problem: str) -> InputError:
    return InputError(problem, field=f"queue #{entry_id}")


def cancel(data_dir: Path, entry_id: int) -> str:
    """Cancel an entry; return the line that says what happens.

    A pending entry will not run. A running one is asked to stop at its next
    safe point (before its next step): its run ends ``aborted``, the bench
    safe, and the entry ``cancelled``. Anything else: :class:`InputError`.
    """
    store = RunStore(data_dir, create=False)
    try:
        entry = _read_entry(store, entry_id)
        if entry["status"] == PENDING and store.queue_transition(
            entry_id,
            (PENDING,),
            status=CANCELLED,
            ended_at=now_text(),
            reason="cancelled before it ran",
        ):
            return f"queue #{entry_id}: cancelled; it will not run"
        entry = _read_entry(store, entry_id)  # a runner may have taken it meanwhile
        status, run_id = entry["status"], entry["run_id"]
        if status == RUNNING and not _process_alive(entry["pid"]):
            # Its runner died: the next `queue run` would resume it - now it will not.
            if store.queue_transition(
                entry_id,
                (RUNNING,),
                status=CANCELLED,
                ended_at=now_text(),
                reason="cancelled after its queue runner died",
            ):
                return (
                    f"queue #{entry_id}: cancelled; its queue runner had died, so "
                    f"run {run_id or '(none)'} will not be resumed "
                    f"(`labctl queue retry {entry_id}` would resume it)"
                )
        elif status == RUNNING and store.queue_transition(entry_id, (RUNNING,), status=CANCELLING):
            return (
                f"queue #{entry_id}: asked to stop; run {run_id or '(starting)'} stops at its "
                "next safe point (before its next step), the bench safe, and the entry is "
                "then cancelled"
            )
        status = _read_entry(store, entry_id)["status"]
        if status == CANCELLING:
            raise _refuse(entry_id, "already asked to stop at its next safe point")
        raise _refuse(entry_id, f"is {status}: there is nothing to cancel")
    finally:
        store.close()


#: States an entry can be removed in (a running one is cancelled first).
_REMOVABLE = (PENDING, CANCELLED, DONE, FAILED)


def remove(data_dir: Path, entry_id: int) -> str:
    """Remove an entry that is not running from the queue; its runs stay recorded."""
    store = RunStore(data_dir, create=False)
    try:
        entry = _read_entry(store, entry_id)
        if store.queue_remove(entry_id, _REMOVABLE):
            kept = f" (run {entry['run_id']} stays recorded)" if entry["run_id"] else ""
            return f"queue #{entry_id}: removed{kept}"
        status = _read_entry(store, entry_id)["status"]
        raise _refuse(
            entry_id,
            f"is {status}: cancel it first (labctl queue cancel {entry_id}), "
            "then remove it once it has stopped",
        )
    finally:
        store.close()


def _unknown_wafer(store: RunStore, run_id: str) -> str | None:
    """Why a run's wafer is in an unknown state (so only resuming it can settle it), or None."""
    try:
        run = store.run(run_id)
    except InputError:
        return None
    if run["status"] in ("running", "killed"):
        return f"its process died mid-run (run {run['status']})"
    if run["status"] not in _RESUMABLE:
        return None
    for step in store.steps(run_id):
        if step["wafer_id"] and step["status"] in ("started", "interrupted"):
            return (
                f"step {step['seq']} ({step['name']}) on {step['wafer_id']} "
                "was cut short: its physical state is unknown"
            )
    for move in store.moves(run_id):
        if move["status"] == "started":
            return f"wafer {move['wafer_id']} was being moved when the run stopped"
    return None


#: States an entry can be retried from.
_RETRYABLE = (FAILED, CANCELLED)


def retry(data_dir: Path, entry_id: int) -> str:
    """Put a failed or cancelled entry back in the queue; return the line that says how.

    A new attempt (a new run, with the content the entry kept), unless its
    run has a wafer in an unknown state: then that run is resumed.
    """
    store = RunStore(data_dir, create=False)
    try:
        entry = _read_entry(store, entry_id)
        if entry["status"] not in _RETRYABLE:
            raise _refuse(
                entry_id,
                f"is {entry['status']}: only a failed or cancelled entry can be retried",
            )
        run_id = entry["run_id"]
        unknown = _unknown_wafer(store, run_id) if run_id else None
        if unknown is not None:
            fields: dict[str, Any] = {"reason": f"retried: resumes run {run_id}"}
            said = (
                f"queue #{entry_id}: pending again; run {run_id} has a wafer in an unknown "
                f"state ({unknown}): it will be resumed, not restarted"
            )
        else:
            options = dict(entry["options"])
            attempts = list(options.get("attempts", []))
            if run_id:
                attempts.append(
                    {"run_id": run_id, "ended": entry["reason"], "ended_at": entry["ended_at"]}
                )
            options["attempts"] = attempts
            fields = {
                "options": options,
                "run_id": None,
                "started_at": None,
                "reason": f"retried: attempt {len(attempts) + 1}",
            }
            kept = f"; run {run_id} stays recorded" if run_id else ""
            said = f"queue #{entry_id}: pending again as attempt {len(attempts) + 1}{kept}"
        if not store.queue_transition(
            entry_id, _RETRYABLE, status=PENDING, pid=None, ended_at=None, **fields
        ):
            status = _read_entry(store, entry_id)["status"]
            raise _refuse(
                entry_id, f"is {status} now: only a failed or cancelled entry can be retried"
            )
        return said
    finally:
        store.close()
