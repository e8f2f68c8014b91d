"""The page's actions and the token that guards them.

Reading the page needs nothing; each action needs the token:

- :meth:`Actions.stop` - stop a running run at its next safe point (before
  its next step), as a first Ctrl-C does: a ``stop_request`` event of the
  run, which the run's process reads at every safe point
  (``protocols.runner.StopRequests``). A run of the queue has its entry
  marked ``cancelling`` too, so the entry ends ``cancelled`` (and can be
  retried), not ``failed``.
- :meth:`Actions.cancel` and :meth:`Actions.retry` - ``labctl queue cancel``
  and ``labctl queue retry``, exactly (:mod:`labctl.queue_entries`).

Every action is recorded with who asked and from where: as an event of the
run it concerns (kinds ``stop_request`` and ``web``), in the queue entry's
reason, and - refused ones too - as one JSON line in
``<data>/web-actions.log`` (owner-only).

The token is made at the first start: 32 random bytes (URL-safe base64) in
``<data>/web-token``, mode 0600 whatever ``--group-readable`` says, and
printed once. A token file that others can read, or that is not a regular
file of this user, is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import private
from ..errors import InputError, LabctlError
from ..store import RunStore, now_text

__all__ = ["TOKEN_FILE", "Actions", "Outcome", "ensure_token", "token_status"]

TOKEN_FILE = "web-token"
AUDIT_FILE = "web-actions.log"
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]{20,200}")
_BEARER = re.compile(r"Bearer +([^\s]+) *", re.IGNORECASE)


def _read_token(path: Path) -> str:
    where = str(path)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source=where, field="web token") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError("is not a regular file; remove it for a new token", source=where)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise InputError("belongs to another user; remove it for a new token", source=where)
    mode = stat.S_IMODE(info.st_mode)
    if os.name != "nt" and mode & 0o077:
        raise InputError(
            f"others can read it (mode {mode:04o}): chmod 600 {where}, or remove it for a new"
            " token",
            source=where,
        )
    with open(path, encoding="ascii", errors="replace") as stream:
        token = stream.read(1000).strip()
    if not _TOKEN_TEXT.fullmatch(token):
        raise InputError("is not a labctl web token; remove it for a new one", source=where)
    return token


def ensure_token(data_dir: Path) -> tuple[str, bool]:
    """The data directory's web token, made now if there is none: (token, made now).

    Made aside (0600, ``O_EXCL``) and linked into place, so a second
    ``labctl web`` starting at the same moment reads the first one's, never a
    half-written file.
    """
    path = Path(data_dir) / TOKEN_FILE
    if path.exists() or path.is_symlink():
        return _read_token(path), False
    token = secrets.token_urlsafe(32)
    aside = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # never group-readable: it is a password
            os.write(fd, f"{token}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(aside, path)
        except FileExistsError:
            return _read_token(path), False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(aside)
    return token, True


def token_status(header: str | None, token: str) -> int:
    """200 for ``Authorization: Bearer <the token>``; 401 without one; 403 for a wrong one."""
    if not header:
        return 401
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        return 401
    given = match.group(1).encode("utf-8", "replace")
    return 200 if secrets.compare_digest(given, token.encode("ascii")) else 403


@dataclass
class Outcome:
    """What an action answers: an HTTP status and a JSON body (``message`` always)."""

    status: int
    body: dict[str, Any]


def _who(given: Any) -> tuple[str | None, str | None]:
    """(name, problem): the name a client gave for the record, checked as an operator's."""
    from ..names import OPERATOR, name_problem, shown

    if given is None or given == "":
        return "an unnamed token holder", None
    problem = name_problem(OPERATOR, given)
    if problem is not None:
        return None, f"who: {shown(given)} {problem}"
    return str(given), None


class Actions:
    """Stop, cancel, retry - on one data directory, each recorded (see the module docstring).

    Opens the store for writing once, at start, and keeps it: an action is a
    short transaction, and the page's reads never go through it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.store = RunStore(self.data_dir, create=False)

    def close(self) -> None:
        self.store.close()

    def audit(
        self, action: str, target: str, who: str | None, origin: str, status: int, message: str
    ) -> None:
        """One JSON line in ``<data>/web-actions.log`` (refused actions too)."""
        line = json.dumps(
            {
                "at": now_text(),
                "action": action,
                "target": target,
                "who": who,
                "from": origin,
                "status": status,
                "message": message,
            },
            sort_keys=True,
        )
        try:
            fd = private.open_append(self.data_dir / AUDIT_FILE)
            try:
                os.write(fd, f"{line}\n".encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # the store's events keep what was done; the log is a second record

    def refused(self, action: str, target: str, origin: str, status: int) -> Outcome:
        """The answer to a request without the token (401) or with a wrong one (403)."""
        message = (
            "this action needs the web token: Authorization: Bearer <token> (in "
            f"{self.data_dir / TOKEN_FILE})"
            if status == 401
            else "wrong token: nothing was done"
        )
        self.audit(action, target, None, origin, status, message)
        return Outcome(status, {"message": message, "done": False})

    def _checked_who(self, action: str, target: str, origin: str, given: Any) -> Outcome | str:
        who, problem = _who(given)
        if problem is not None or who is None:
            message = problem or "who: not given"
            self.audit(action, target, None, origin, 400, message)
            return Outcome(400, {"message": message, "done": False})
        return who

    def _answer(
        self,
        action: str,
        target: str,
        who: str,
        origin: str,
        status: int,
        message: str,
        **extra: Any,
    ) -> Outcome:
        self.audit(action, target, who, origin, status, message)
        return Outcome(status, {"message": message, "done": status < 300, **extra})

    def stop(self, run_id: str, *, who: Any, origin: str) -> Outcome:
        """Ask a running run to stop at its next safe point."""
        from ..engine import STOP_REQUEST
        from ..store import as_seen

        target = f"run {run_id}"
        checked = self._checked_who("stop", target, origin, who)
        if isinstance(checked, Outcome):
            return checked
        name = checked
        try:
            record = as_seen(self.store.run(run_id))
        except InputError as exc:
            return self._answer("stop", target, name, origin, 404, str(exc))
        run_id = record["run_id"]
        target = f"run {run_id}"
        if record["status"] != "running":
            return self._answer(
                "stop",
                target,
                name,
                origin,
                409,
                f"run {run_id} is {record['status']}: there is nothing to stop",
                run_status=record["status"],
            )
        message = f"stop at the next safe point asked by {name} from {origin} (labctl web)"
        try:
            self.store.event(run_id, STOP_REQUEST, message)
            for entry in self.store.queue():
                if entry["run_id"] == run_id and entry["status"] == "running":
                    # The operator stopped it: the entry ends cancelled, not failed.
                    self.store.queue_transition(entry["id"], ("running",), status="cancelling")
        except LabctlError as exc:
            return self._answer("stop", target, name, origin, 503, f"not recorded: {exc}")
        return self._answer(
            "stop",
            target,
            name,
            origin,
            202,
            f"run {run_id}: asked to stop at its next safe point (before its next step);"
            " the bench is then put in its safe state",
            run_id=run_id,
        )

    def _queue_action(self, action: str, entry_id: int, who: Any, origin: str) -> Outcome:
        from .. import queue_entries as night

        target = f"queue #{entry_id}"
        checked = self._checked_who(action, target, origin, who)
        if isinstance(checked, Outcome):
            return checked
        name = checked
        entry = self.store.queue_entry(entry_id)
        if entry is None:
            return self._answer(action, target, name, origin, 404, f"{target}: no such entry")
        run_id = entry["run_id"]
        try:
            line = (
                night.cancel(self.data_dir, entry_id)
                if action == "cancel"
                else night.retry(self.data_dir, entry_id)
            )
        except InputError as exc:
            return self._answer(action, target, name, origin, 409, str(exc))
        except LabctlError as exc:
            return self._answer(action, target, name, origin, 503, str(exc))
        by = f"{action} by {name} from {origin} (labctl web)"
        try:
            now = self.store.queue_entry(entry_id)
            if now is not None:
                reason = f"{now['reason']}; {by}" if now["reason"] else by
                self.store.queue_update(entry_id, reason=reason)
            if run_id:
                self.store.event(run_id, "web", f"{target}: {by}: {line}")
        except LabctlError as exc:
            line += f" (who asked not recorded: {exc})"
        return self._answer(action, target, name, origin, 200, line, entry=entry_id)

    def cancel(self, entry_id: int, *, who: Any, origin: str) -> Outcome:
        """``labctl queue cancel ID``: a pending entry will not run; a running one stops."""
        return self._queue_action("cancel", entry_id, who, origin)

    def retry(self, entry_id: int, *, who: Any, origin: str) -> Outcome:
        """``labctl queue retry ID``: a failed or cancelled entry is pending again."""
        return self._queue_action("retry", entry_id, who, origin)
