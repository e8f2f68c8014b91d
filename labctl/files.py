"""Reading the user's data files (station, formulation, recipe): TOML, never executed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["read_toml"]


def read_toml(path: str | Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a TOML file; every failure is ``error`` naming the file and what is wrong.

    A missing or unreadable file, bytes that are not UTF-8 and TOML syntax
    errors each give one line: ``<file>: file: no such file``,
    ``<file>: TOML syntax: ...``.
    """
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
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
