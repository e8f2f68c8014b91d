"""Who may read what labctl writes: its owner, or its owner's group when asked.

A formulation is a company's secret, and the store, the bench's files, the
reports and the exports all carry it. Everything labctl creates - the data
directory and every directory under it, the store (with SQLite's ``-wal`` and
``-shm``), the bench's state files, locks, reports, exports, a served bench's
station file (which holds the wafer handler's token) - is made

* owner-only: directories ``0700``, files ``0600`` (the default), or
* group-readable: directories ``0750``, files ``0640``, when the user asks
  (``labctl --group-readable ...`` or ``LABCTL_GROUP_READABLE=1``).

Nothing is ever writable by group or others, whatever the umask: modes are
given to ``os.open``/``os.mkdir`` (a umask can only take bits away) and then
set with ``fchmod``/``chmod`` (to give back the group bits a strict umask
took). A file is written aside under a fresh name (``O_EXCL``: never through
a symlink someone planted) and renamed into place, so it is never visible
with a wider mode or half written.

labctl does not change the mode of a directory it finds already there (it
may be the user's, shared on purpose). If the data directory lets others in
beyond the mode asked for, the commands that take its bench (``run``,
``resume``, ``queue run``: :class:`labctl.benchlock.BenchLock` calls
:func:`data_directory`) print one warning line, once, naming the ``chmod``
that fixes it; the commands that only read say nothing (their one line is
the answer or the error).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import InputError

__all__ = [
    "GROUP_READABLE_ENV",
    "data_directory",
    "dir_mode",
    "exposure_warning",
    "file_mode",
    "group_readable",
    "new_file",
    "open_append",
    "private_dir",
    "private_output",
    "set_group_readable",
    "write_private",
]

#: ``LABCTL_GROUP_READABLE=1``: what labctl creates is readable by the owner's group.
GROUP_READABLE_ENV = "LABCTL_GROUP_READABLE"
#: Data directories warned about already, in this process and its children.
_WARNED_ENV = "LABCTL_MODE_WARNED"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def group_readable() -> bool:
    """The setting: ``$LABCTL_GROUP_READABLE`` (1/true/yes/on or 0/false/no/off/empty).

    Raises :class:`InputError` for any other value: a typo must not leave
    files with a mode the user did not mean.
    """
    value = os.environ.get(GROUP_READABLE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(
        f"{os.environ[GROUP_READABLE_ENV]!r} is not 1 or 0 (true/false, yes/no, on/off)",
        field=GROUP_READABLE_ENV,
    )


def set_group_readable(on: bool) -> None:
    """Make the setting ``on`` for this process and the processes it starts."""
    os.environ[GROUP_READABLE_ENV] = "1" if on else "0"


def _group(group: bool | None) -> bool:
    return group_readable() if group is None else group


def dir_mode(group: bool | None = None) -> int:
    """``0o750`` when the group may read, else ``0o700`` (``None``: the setting)."""
    return 0o750 if _group(group) else 0o700


def file_mode(group: bool | None = None) -> int:
    """``0o640`` when the group may read, else ``0o600`` (``None``: the setting)."""
    return 0o640 if _group(group) else 0o600


def _fchmod(fd: int, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    # Windows: POSIX modes do not apply; the user's profile ACLs do.


def private_dir(path: str | Path, *, group: bool | None = None) -> Path:
    """``path`` as a directory; each one created on the way gets :func:`dir_mode`.

    A directory already there keeps its mode. Raises ``OSError`` as
    ``mkdir`` does.
    """
    path = Path(path)
    mode = dir_mode(group)
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by another process: its mode stands
        # mkdir's mode passes through the umask, which may have taken group bits.
        os.chmod(directory, mode)
    return path


def new_file(path: str | Path, *, group: bool | None = None, flags: int = os.O_WRONLY) -> int:
    """A new, empty file at ``path`` with :func:`file_mode`; returns its descriptor.

    Whatever was at ``path`` (a leftover of a killed process, a symlink) is
    removed first; the file is created with ``O_EXCL``, so it is never one
    that someone else made or pointed elsewhere.
    """
    mode = file_mode(group)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | _CLOEXEC, mode)
    try:
        _fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: str | Path, *, group: bool | None = None, read: bool = False) -> int:
    """Open ``path`` for appending, creating it with :func:`file_mode` if it is missing.

    An existing file keeps its mode. A symlink at ``path`` is refused
    (``ELOOP``) where the platform can tell.
    """
    access = (os.O_RDWR if read else os.O_WRONLY) | os.O_APPEND | _NOFOLLOW | _CLOEXEC
    mode = file_mode(group)
    for _ in range(3):
        try:
            fd = os.open(path, access | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            try:
                return os.open(path, access)
            except FileNotFoundError:
                continue  # removed between the two opens: create it after all
        try:
            _fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        return fd
    return os.open(path, access | os.O_CREAT, mode)


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def private_output(path: str | Path, *, group: bool | None = None) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through; it appears there, complete, on success.

    Written aside with :func:`file_mode` and renamed into place (replacing
    any file of that name); on an exception nothing is left behind. The
    directory must exist.
    """
    target = Path(path)
    temporary = _aside(target)
    fd = new_file(temporary, group=group)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_private(path: str | Path, data: bytes, *, group: bool | None = None) -> Path:
    """Write ``data`` to ``path`` (:func:`private_output`); the directory must exist."""
    with private_output(path, group=group) as stream:
        stream.write(data)
    return Path(path)


def exposure_warning(directory: str | Path, *, group: bool | None = None) -> str | None:
    """What is wrong with an existing data directory's mode, as one line, or None."""
    directory = Path(directory)
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
    except OSError:
        return None
    if os.name == "nt":  # pragma: no cover - POSIX modes mean nothing there
        return None
    wanted = dir_mode(group)
    extra = mode & ~wanted & 0o077
    if extra:
        who = "other users" if extra & 0o007 else "its group"
        what = "write to" if extra & 0o022 else "read"
        return (
            f"{directory}: {who} can {what} this data directory (mode {mode:04o}); labctl"
            f" leaves an existing directory as it is: chmod {wanted:o} {directory}"
        )
    if _group(group) and (mode & 0o050) != 0o050:
        return (
            f"{directory}: group access was asked for, but the group cannot open this data"
            f" directory (mode {mode:04o}): chmod {wanted:o} {directory}"
        )
    return None


def data_directory(path: str | Path, *, group: bool | None = None) -> bool:
    """Make the data directory (:func:`private_dir`); True if it was made now.

    One that was already there is left as it is, and if its mode lets others
    in (or keeps the group out when group access was asked for) one warning
    line goes to stderr - once per directory, in this process and the
    processes it starts.
    """
    path = Path(path)
    existed = path.is_dir()
    private_dir(path, group=group)
    if existed:
        problem = exposure_warning(path, group=group)
        if problem is not None:
            key = str(path.resolve())
            warned = os.environ.get(_WARNED_ENV, "").split(os.pathsep)
            if key not in warned:
                os.environ[_WARNED_ENV] = os.pathsep.join([*filter(None, warned), key])
                sys.stderr.write(f"labctl: warning: {problem}\n")
                sys.stderr.flush()
    return not existed
