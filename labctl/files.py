"""Reading the user's data files (station, formulation, recipe): TOML, never executed.

A file is bounded before it is parsed, because the parser is not: ``tomllib``
reads a dotted key of n parts in time and memory that grow with n² (a 200 KB
key of 100,000 parts took it past 24 GB) and nests arrays and inline tables
by recursion (a few thousand ``[`` are a ``RecursionError``). So, in order:

1. size: at most :data:`MAX_FILE_BYTES`, from ``fstat`` and a read of at most
   one byte more - a file that grows, or a device, is never read whole;
2. UTF-8;
3. a linear scan of the text (:func:`toml_bounds_problem`) that knows TOML's
   strings and comments: nesting of ``[`` and ``{`` at most
   :data:`MAX_NESTING`, a dotted key at most :data:`MAX_KEY_PARTS` parts, a bare
   number at most :data:`~labctl.names.MAX_NUMBER_CHARS` characters;
4. only then ``tomllib``, with ``RecursionError``, ``MemoryError`` and the
   ``ValueError`` of an integer too long for Python also turned into the
   caller's one-line error.

Every refusal names the file; the scan's name the line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import accumulate, compress, count, islice
from pathlib import Path
from typing import Any

from .errors import InputError
from .names import MAX_NUMBER_CHARS

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_KEY_PARTS",
    "MAX_NESTING",
    "file_bytes",
    "read_toml",
    "stored_files",
    "toml_bounds_problem",
]

#: The largest station, formulation or recipe file read (bytes): 1 MiB. The
#: files labctl ships are 0.2-2 KB; a formulation of a hundred components,
#: each with a page of notes, is under 100 KB. A file past this is a mistake
#: (a wrong path, a data dump) or an attack, and is refused before it is read -
#: which also bounds the copy of a formulation each run keeps in the store.
#: tomllib parses the worst 1 MiB this scan lets through in about a second.
MAX_FILE_BYTES = 1 << 20
#: The deepest nesting of arrays and inline tables (``[``/``{``, a table
#: header's brackets counted): labctl's files reach 2.
MAX_NESTING = 16
#: The most parts of a dotted key (``roles.hotplate.settings`` has 3): labctl's
#: files use at most 3; the parser's cost grows with the square of this.
MAX_KEY_PARTS = 16

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


class _TooLarge(Exception):
    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit

    def problem(self) -> str:
        size = f"{self.size} bytes" if self.size is not None else f"over {self.limit} bytes"
        return f"too large ({size}; allowed: at most {self.limit} bytes)"


def _bounded_bytes(path: str | Path, limit: int) -> bytes:
    """The bytes of a file of at most ``limit`` bytes; :class:`_TooLarge` for a larger one."""
    stored = _STORED.get()
    if stored:
        data = stored.get(Path(path).resolve())
        if data is not None:
            if len(data) > limit:
                raise _TooLarge(len(data), limit)
            return data
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > limit:
            raise _TooLarge(size, limit)
        # st_size is 0 for a device or a pipe and stale for a growing file:
        # read one byte more than allowed, never the whole thing.
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge(None, limit)
    return data


def file_bytes(path: str | Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a user's file: its stored copy inside :func:`stored_files`, else the disk's.

    At most ``limit`` bytes (default :data:`MAX_FILE_BYTES`): a larger file
    is :class:`~labctl.errors.InputError` (``<file>: file: too large ...``)
    without being read whole. Raises :class:`OSError` as ``open`` does.
    """
    try:
        return _bounded_bytes(path, limit)
    except _TooLarge as exc:
        raise InputError(exc.problem(), source=str(path), field="file") from None


# -- the scan before the parser -------------------------------------------------------

#: What the scan skips: strings and comments, whole (possessive quantifiers: no
#: backtracking, linear); an unterminated one to the end of its line (or of the
#: file, for a multi-line string) - where tomllib stops with an error too.
_SKIPPED = re.compile(
    r'"""(?:[^"\\]++|\\[\s\S]|"(?!""))*+(?:"""(?:"{0,2}))?'
    r"|'''(?:[^']++|'(?!''))*+(?:'''(?:'{0,2}))?"
    r'|"(?:[^"\\\n]++|\\.)*+"?'
    r"|'[^'\n]*+'?"
    r"|#[^\n]*+"
)
_BRACKET = re.compile(r"[\[\]{}]")
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
#: MAX_KEY_PARTS dots with no key boundary (= , line end, bracket) between them.
_DOTTED = re.compile(r"\.(?:[^=,\n\[\]{}.]*+\.){" + str(MAX_KEY_PARTS - 1) + "}")
#: A bare token (TOML's bare keys, numbers, dates) that starts like a number
#: and is longer than MAX_NUMBER_CHARS.
_LONG_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_+\-:.])[0-9+\-][A-Za-z0-9_+\-:.]{" + str(MAX_NUMBER_CHARS) + "}"
)


def _blank(match: re.Match[str]) -> str:
    # A string becomes one bare character (a quoted key still counts as a part);
    # its line ends stay, so positions keep their line numbers.
    text = match.group()
    return "\n" * text.count("\n") if text[0] == "#" else "S" + "\n" * text.count("\n")


def toml_bounds_problem(text: str) -> tuple[int, str] | None:
    """(line, problem) for TOML text past labctl's bounds, or None; linear in the text.

    Outside strings and comments it counts the nesting of ``[`` and ``{``
    (at most :data:`MAX_NESTING`), the dots of a key (a key ends at ``=``,
    ``,``, a bracket or a line end; at most :data:`MAX_KEY_PARTS` parts) and
    the length of a bare number (at most
    :data:`~labctl.names.MAX_NUMBER_CHARS` characters). Conservative: a float
    value's one dot is counted as a key's, so the bound is a little tighter
    than it says; nothing TOML allows gets past it uncounted. The first
    problem in the text is named. Each pass runs in the regex engine or in C
    iterators (at most about 0.2 s for 1 MiB), so a refusal costs no
    more than the file's size allows.
    """
    structure = _SKIPPED.sub(_blank, text)
    found: list[tuple[int, str]] = []
    # Nesting: the running sum of +1/-1 over the brackets, all in C iterators.
    # Not clamped at 0: a stray closing bracket is where tomllib stops anyway.
    depths = accumulate(map(_STEP.__getitem__, _NOT_BRACKET.sub("", structure)))
    first_too_deep = next(compress(count(), map(MAX_NESTING.__lt__, depths)), None)
    if first_too_deep is not None:
        bracket = next(islice(_BRACKET.finditer(structure), first_too_deep, None))
        found.append(
            (bracket.start(), f"nested more than {MAX_NESTING} deep (arrays, inline tables)")
        )
    dotted = _DOTTED.search(structure)
    if dotted is not None:
        found.append((dotted.end() - 1, f"a dotted key of more than {MAX_KEY_PARTS} parts"))
    number = _LONG_NUMBER.search(structure)
    if number is not None:
        found.append((number.start(), f"a number longer than {MAX_NUMBER_CHARS} characters"))
    if not found:
        return None
    position, problem = min(found)
    return structure.count("\n", 0, position) + 1, problem


def read_toml(path: str | Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a TOML file; every failure is ``error`` naming the file and what is wrong.

    A missing or unreadable file, one larger than :data:`MAX_FILE_BYTES`,
    bytes that are not UTF-8, text past the scan's bounds
    (:func:`toml_bounds_problem`) and TOML syntax errors each give one line:
    ``<file>: file: no such file``, ``<file>: file: too large ...``,
    ``<file>: line 3: nested more than 16 deep ...``,
    ``<file>: TOML syntax: ...``. Nothing past the bounds reaches the parser.
    """
    source = str(path)
    try:
        text = _bounded_bytes(path, MAX_FILE_BYTES).decode("utf-8")
    except _TooLarge as exc:
        raise error(exc.problem(), source=source, field="file") from None
    except FileNotFoundError:
        raise error("no such file", source=source, field="file") from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", source=source, field="file") from None
    except OSError as exc:
        raise error(exc.strerror or str(exc), source=source, field="file") from None
    bounds = toml_bounds_problem(text)
    if bounds is not None:
        line, problem = bounds
        raise error(f"{problem}: refused before parsing", source=source, field=f"line {line}")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(str(exc), source=source, field="TOML syntax") from None
    except ValueError as exc:  # an integer past Python's digit limit (tomllib lets it out)
        raise error(str(exc).splitlines()[0], source=source, field="TOML syntax") from None
    except (RecursionError, MemoryError):  # the scan should have refused it: a last guard
        raise error("too deeply nested or too large to read", source=source, field="file") from None
