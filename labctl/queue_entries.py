"""The overnight queue's entries in the run store: their states, their files, the asked-for moves.

An entry lives in the store (table ``queue``); what it kept (the
formulation, recipe and station file *content* of ``queue add``) lives with
it. This module is the core's part of the queue - reading entries and the
transitions a person asks for - so ``labctl queue list|cancel|remove|retry``
and ``labctl web`` need nothing above the core. Running entries (``queue
add``'s checks, ``queue run``) is the protocol layer's:
:mod:`protocols.queue`, which also gives these names.

States of an entry::

    pending -> running -> done | failed
    pending -> cancelled                         (queue cancel)
    running -> cancelling -> cancelled           (queue cancel: stops at the next safe point)
    failed | cancelled -> pending                (queue retry)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError
from .files import MAX_FILE_BYTES
from .store import RunStore, _process_alive, now_text

__all__ = [
    "CANCELLED",
    "CANCELLING",
    "DONE",
    "FAILED",
    "FILE_ROLES",
    "PENDING",
    "RESUMABLE",
    "RUNNING",
    "cancel",
    "describe_files",
    "entry_of",
    "file_states",
    "public_entry",
    "read_entry",
    "remove",
    "retry",
    "stored_entry_files",
]

PENDING = "pending"
RUNNING = "running"
CANCELLING = "cancelling"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
#: The files an entry keeps, in the order they are listed.
FILE_ROLES = ("formulation", "recipe", "station")
#: Run statuses an entry's run is resumed from (the rest have ended for good).
RESUMABLE = ("created", "running", "killed", "aborted")


def stored_entry_files(entry: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """role -> {path, sha256, content}; empty for an entry added by an older labctl."""
    files: dict[str, dict[str, str]] = entry["options"].get("files") or {}
    return files


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
    files = stored_entry_files(entry)
    return {role: _on_disk(files[role]) for role in FILE_ROLES if role in files}


def describe_files(entry: Mapping[str, Any]) -> str:
    """A few words for ``queue list``: have the files changed since ``queue add``?"""
    if not stored_entry_files(entry):
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
        for role, kept in stored_entry_files(entry).items()
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


# -- cancel, remove, retry ----------------------------------------------------------------


def read_entry(store: RunStore, entry_id: int) -> dict[str, Any]:
    entry = store.queue_entry(entry_id)
    if entry is None:
        raise InputError(
            "no such queue entry (see `labctl queue list`)", field=f"queue #{entry_id}"
        )
    return entry


def entry_of(data_dir: Path, entry_id: int) -> dict[str, Any]:
    store = RunStore(data_dir, create=False)
    try:
        return read_entry(store, entry_id)
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
        entry = read_entry(store, entry_id)
        if entry["status"] == PENDING and store.queue_transition(
            entry_id,
            (PENDING,),
            status=CANCELLED,
            ended_at=now_text(),
            reason="cancelled before it ran",
        ):
            return f"queue #{entry_id}: cancelled; it will not run"
        entry = read_entry(store, entry_id)  # a runner may have taken it meanwhile
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
        status = read_entry(store, entry_id)["status"]
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
        entry = read_entry(store, entry_id)
        if store.queue_remove(entry_id, _REMOVABLE):
            kept = f" (run {entry['run_id']} stays recorded)" if entry["run_id"] else ""
            return f"queue #{entry_id}: removed{kept}"
        status = read_entry(store, entry_id)["status"]
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
    if run["status"] not in RESUMABLE:
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
        entry = read_entry(store, entry_id)
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
            status = read_entry(store, entry_id)["status"]
            raise _refuse(
                entry_id, f"is {status} now: only a failed or cancelled entry can be retried"
            )
        return said
    finally:
        store.close()
