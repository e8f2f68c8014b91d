"""Reading the user's data files (station, formulation, recipe): TOML, never executed."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["file_bytes", "read_toml", "stored_files"]

#: Files that read as stored bytes, not as the disk has them (see :func:`stored_files`).
_STORED: ContextVar[Mapping[Path, bytes] | None] = ContextVar("labctl_stored_files", default=None)


@contextmanager
def stored_files(files: Mapping[Path, bytes]) -> Iterator[None]:
    """Inside it, each of these files reads as the bytes given, whatever the disk holds now.

    The overnight queue keeps the formulation, recipe and station file it was
    given and runs exactly those: every loader reads through :func:`file_bytes`,
    so the path still names the file in messages and records, and a station
    file's relative paths still resolve against its own directory.
    """
    outer = _STORED.get() or {}
    token = _STORED.set({**outer, **{Path(p).resolve(): data for p, data in files.items()}})
    try:
        yield
    finally:
        _STORED.reset(token)


def file_bytes(path: str | Path) -> bytes:
    """The bytes of a user's file: its stored copy inside :func:`stored_files`, else the disk's."""
    stored = _STORED.get()
    if stored:
        data = stored.get(Path(path).resolve())
        if data is not None:
            return data
    return Path(path).read_bytes()


def read_toml(path: str | Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a TOML file; every failure is ``error`` naming the file and what is wrong.

    A missing or unreadable file, bytes that are not UTF-8 and TOML syntax
    errors each give one line: ``<file>: file: no such file``,
    ``<file>: TOML syntax: ...``.
    """
    source = str(path)
    try:
        text = file_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise error("no such file", source=source, field="file") from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", source=source, field="file") from None
    except OSError as exc:
        raise error(exc.strerror or str(exc), source=source, field="file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(str(exc), source=source, field="TOML syntax") from None
