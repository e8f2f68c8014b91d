"""One bench, one runner: an exclusive lock on the data directory's bench.

Two processes that drive one bench at once wreck each other's wafers (two
``queue run`` processes on one data directory once failed 16 of 30 entries).
:class:`BenchLock` is an OS file lock (``flock`` on POSIX, ``msvcrt.locking``
on Windows) on ``<data>/bench.lock``: the kernel drops it when the holder
dies, however it dies, so a lock is never left stale. The file also says who
holds it (pid, command, since) so the one refused can name the holder.

A supervisor process (``labctl run`` / ``queue run``) takes the lock and
runs the protocol in a child; the child is told through
:data:`HELD_BY_ENV` that its parent holds it for it.

A served bench enforces a second lock of its own on its wafer handler (see
``docs/instruments/wafer_handler.md``), which covers two data directories on
one bench.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .errors import BenchBusy, StorageError
from .private import data_directory, open_append

__all__ = ["HELD_BY_ENV", "LOCK_FILE", "BenchLock", "held_by_parent"]

LOCK_FILE = "bench.lock"
#: Set by a supervisor for its child: the pid that holds the bench lock for it.
HELD_BY_ENV = "LABCTL_BENCH_LOCK_HELD_BY"


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - not run on Linux CI
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class BenchLock:
    """The exclusive lock of one data directory's bench.

    Use as a context manager, or :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, data_dir: str | Path, *, purpose: str = "") -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self.purpose = purpose or " ".join(["labctl", *sys.argv[1:3]])
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def holder(self) -> str:
        """Who holds the lock, as the lock file says (``"unknown"`` if it cannot say)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "unknown"
        if not isinstance(info, dict) or "pid" not in info:
            return "unknown"
        return f"pid {info['pid']} ({info.get('purpose', '?')}, since {info.get('since', '?')})"

    def acquire(
        self,
        *,
        wait: float = 0.0,
        poll: float = 0.5,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """Take the lock; wait up to ``wait`` s for it (``math.inf``: until it is free).

        Raises :class:`BenchBusy` naming the holder when it cannot be had.
        """
        if self._handle is not None:
            return
        try:
            data_directory(self.path.parent)  # warns (once) if others can get in
            # Held open; owner-only (or group-readable when asked), like every labctl file.
            handle = os.fdopen(open_append(self.path, read=True), "a+", encoding="utf-8")
        except OSError as exc:
            raise StorageError.from_os_error(exc, self.path) from exc
        deadline = time.monotonic() + wait
        told = False
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                handle.close()
                holder = self.holder()
                raise BenchBusy(
                    f"{self.path.parent}: the bench is in use by {holder}", holder=holder
                )
            if on_wait is not None and not told:
                on_wait(f"waiting for the bench: in use by {self.holder()}")
                told = True
            time.sleep(poll)
        info = {
            "pid": os.getpid(),
            "purpose": self.purpose,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with contextlib.suppress(OSError):  # who holds it is a courtesy, the lock is the fact
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(info))
            handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
            handle.close()  # closing drops the lock

    def __enter__(self) -> BenchLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def held_by_parent(data_dir: str | Path) -> bool:
    """True when this process is a supervised child whose parent holds the bench lock."""
    parent = os.environ.get(HELD_BY_ENV)
    if not parent or not parent.isdigit() or int(parent) != os.getppid():
        return False
    lock = BenchLock(data_dir)
    try:
        info = json.loads(lock.path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("pid") == int(parent)
