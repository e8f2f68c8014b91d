"""Record every byte a run's links move, and replay a recording with no hardware.

``labctl run ... --record FILE`` wraps each role's transport, the run's
clock and its wafer handler so that everything the run exchanged with the
bench - the bytes each transport wrote and read, each resynchronization's
drained input, the wafer handler's lines (on a bench with a handler on TCP)
and its calls - goes to one text file as it happens, one line per event,
written with one ``write`` each (a killed run leaves every line it got to).
``labctl replay FILE`` runs the same protocol again on transports that
answer from the file and fails at the first byte that differs.

The format is in ``docs/recording.md``; in short::

    labctl-recording 1
    h run {"run_id": "...", "protocol": "contrast-curve", ...}
    h formulation {"source": "...", "hash": "...", "content": "..."}
    h station {"source": "...", "table": {...}}
    mark setup {}
    mark connect {"clock": {...}, "links": {...}}
    x 1 0.0 1764000000.123456 spin_coater open
    x 2 0.0 1764000000.123502 spin_coater write "GetVer:10%0D%0A"
    x 3 0.0125 1764000000.125011 spin_coater read "%0D%0A" "OK,V2.1:99%0D%0A"
    t clock mono 0.0125
    ...
    mark end {"status": "completed", "reason": "..."}

Bytes are written between double quotes: printable ASCII stands for itself,
every other byte (and ``"`` and ``%``) is ``%XX`` - every value of every
byte round-trips exactly (:func:`escape_bytes`, :func:`unescape_bytes`).

Time: a run waits on its clock (virtual in process, the served bench's sped
up one, or real time), and how many times a loop polls can depend on what
the clock said. So every reading of the run's clock is recorded too (``t``
lines), and the replay clock gives back the same readings at the same
places - between the same two exchanges - so the replayed protocol takes the
same decisions and makes the same exchanges, in virtual time: a night
replays in seconds. A replay that strays from the recording (a changed
driver) falls back to a clock that stands still between exchanges and moves
on the sleeps it is asked for, and fails at the first differing byte.

This module is the core's: it knows transports, clocks and station files.
The wafer handler it records and replays is whatever object the run hands
it; the whole-run replay (protocol, engine, handler) is
:func:`protocols.replay.replay`, and :func:`protocols.testing.assert_replays`.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import __version__
from .clock import Clock
from .errors import InputError, LabctlError
from .private import new_file
from .transport import LinkSettings, Transport

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PHASES",
    "TOKEN_WITHHELD",
    "Event",
    "NullRecorder",
    "Recorder",
    "Recording",
    "RecordingEnded",
    "ReplayClock",
    "ReplayMismatch",
    "ReplaySession",
    "ReplayTransport",
    "escape_bytes",
    "read_recording",
    "unescape_bytes",
]

log = logging.getLogger(__name__)

#: The first line of every recording: ``labctl-recording <version>``.
FORMAT = "labctl-recording"
FORMAT_VERSION = 1
#: The parts of a session, in order. ``setup``: the wafer handler's lock and
#: clock, before any instrument; ``connect``: every role connected;
#: ``recover``: runs found killed made safe (not replayed: a replay's store
#: has none); ``run``: the protocol, and safe state at its exit; ``end``.
PHASES = ("setup", "connect", "recover", "run", "end")
#: Phases a replay may leave out: their exchanges are skipped, not failed.
OPTIONAL_PHASES = ("setup", "recover")
#: Stands for the wafer handler's token, in the recorded station and lines.
TOKEN_WITHHELD = "token-withheld-from-recording"
#: The role of the wafer handler's line and calls.
HANDLER_ROLE = "wafer_handler"

#: Operations on a link, and what their line holds after the operation.
LINK_OPS = ("open", "close", "write", "read", "readn", "drain", "pending")
#: Operations on the wafer handler's calls.
CALL_OPS = ("call", "result")


# -- bytes <-> text ----------------------------------------------------------------------

_ESCAPE = {
    i: chr(i) if 0x20 <= i <= 0x7E and chr(i) not in '"%' else f"%{i:02X}" for i in range(256)
}
_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_TEXT = re.compile(r'[^\x20-\x7e]|"|%(?![0-9A-Fa-f]{2})')


def escape_bytes(data: bytes) -> str:
    """``data`` as text for a recording (without the quotes): ``%XX`` for all but printable ASCII.

    ``"`` and ``%`` are escaped too; a space stays a space.
    """
    return data.decode("latin-1").translate(_ESCAPE)


def unescape_bytes(text: str) -> bytes:
    """The bytes :func:`escape_bytes` wrote; ``ValueError`` naming the first bad character."""
    bad = _BAD_TEXT.search(text)
    if bad is not None:
        shown = text[bad.start() : bad.start() + 3]
        raise ValueError(f"{shown!r} at character {bad.start() + 1} is not a byte (%XX or ASCII)")
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text).encode("latin-1")


def _quoted(data: bytes) -> str:
    return f'"{escape_bytes(data)}"'


_NEWLINE = '"%0A"'


def _shown(data: bytes, limit: int = 120) -> str:
    text = repr(data)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(data)} bytes)"


# -- errors on the record ------------------------------------------------------------------


def _labctl_error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    pending: list[type[BaseException]] = [LabctlError]
    while pending:
        klass = pending.pop()
        found[f"{klass.__module__}.{klass.__qualname__}"] = klass
        pending.extend(klass.__subclasses__())
    return found


#: Packages whose errors a recording may name (imported by name, never from a path).
_ERROR_PACKAGES = ("labctl", "drivers", "protocols")


def _error_class(name: str) -> type[BaseException] | None:
    """The exception class a recording names: a built-in one, or a :class:`LabctlError`."""
    if "." not in name:
        klass = getattr(builtins, name, None)
        # Not SystemExit: a recording must not end its own replay with a status of its choosing.
        if isinstance(klass, type) and (issubclass(klass, Exception) or klass is KeyboardInterrupt):
            return klass
        return None
    found = _labctl_error_classes().get(name)
    module = name.rpartition(".")[0]
    if found is None and module.partition(".")[0] in _ERROR_PACKAGES:
        # Not imported yet (an error class of a module the replay has not needed so far).
        try:
            importlib.import_module(module)
        except ImportError:
            return None
        found = _labctl_error_classes().get(name)
    return found


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


@dataclass(frozen=True)
class ErrorRecord:
    """An exception as a recording keeps it: its class and what it carried."""

    name: str
    args: tuple[Any, ...]
    attributes: dict[str, Any]

    @classmethod
    def of(cls, exc: BaseException) -> ErrorRecord:
        klass = type(exc)
        if isinstance(exc, LabctlError):
            name = f"{klass.__module__}.{klass.__qualname__}"
            attributes = {k: _jsonable(v) for k, v in vars(exc).items() if not k.startswith("_")}
        else:
            # The nearest built-in class (socket.gaierror -> OSError): what a replay can raise.
            builtin = next(k for k in klass.__mro__ if k.__module__ == "builtins")
            name, attributes = builtin.__name__, {}
        return cls(name, tuple(_jsonable(a) for a in exc.args), attributes)

    def text(self) -> str:
        payload = {"args": list(self.args), **self.attributes}
        return f"!{self.name} {json.dumps(payload, ensure_ascii=True, sort_keys=True)}"

    def build(self) -> BaseException:
        """The exception again: same class, same message, same attributes."""
        klass = _error_class(self.name)
        if klass is None:  # checked when the file was read
            raise AssertionError(f"unknown error class {self.name}")
        if issubclass(klass, LabctlError):
            exc = klass.__new__(klass)
            exc.args = self.args
            exc.__dict__.update(self.attributes)
            return exc
        try:
            return klass(*self.args)
        except Exception:  # arguments its constructor will not take: the message all the same
            bare = klass.__new__(klass)
            bare.args = self.args
            return bare

    def __str__(self) -> str:
        return f"{self.name.rpartition('.')[2]}: {self.args[0] if self.args else ''}"


# -- the file ----------------------------------------------------------------------------


@dataclass(slots=True)
class Event:
    """One exchange line (``x``) of a recording."""

    number: int
    line: int
    run_time: float | None
    wall_time: float
    role: str
    op: str
    #: What the caller gave: bytes written, a read's terminator, a count, a method name.
    detail: Any = None
    #: What came back: bytes read, a call's arguments or result.
    data: Any = None
    error: ErrorRecord | None = None

    def describe(self) -> str:
        return _describe(self.role, self.op, self.detail, self.data)


def _describe(role: str, op: str, detail: Any, data: Any = None) -> str:
    if op == "write":
        return f"{role} write {_shown(detail)}"
    if op == "read":
        return f"{role} read until {_shown(detail)}"
    if op == "readn":
        return f"{role} read {detail} bytes"
    if op == "call":
        arguments = ", ".join(json.dumps(a) for a in (data or []))
        return f"{role} {detail}({arguments})"
    if op == "result":
        return f"{role} result"
    return f"{role} {op}"


@dataclass
class Mark:
    """A ``mark`` line: where a phase of the session starts."""

    phase: str
    #: Exchanges before it.
    position: int
    info: dict[str, Any]
    line: int


@dataclass
class Recording:
    """A recording, read and checked (:func:`read_recording`)."""

    path: Path
    version: int
    header: dict[str, Any]
    events: list[Event]
    marks: list[Mark]
    #: ``t`` lines: (mark index, exchanges before it, role, kind) -> values in order.
    times: dict[tuple[int, int, str, str], list[Any]]
    #: False: no ``mark end`` - the run was killed, or is still going.
    complete: bool

    @property
    def run(self) -> dict[str, Any]:
        run: dict[str, Any] = self.header["run"]
        return run

    def mark(self, phase: str) -> Mark | None:
        return next((m for m in self.marks if m.phase == phase), None)

    def info(self, phase: str, key: str) -> Any:
        """``key`` of the ``mark <phase>`` line's object (None if either is missing)."""
        mark = self.mark(phase)
        return None if mark is None else mark.info.get(key)

    @property
    def end(self) -> dict[str, Any] | None:
        mark = self.mark("end")
        return None if mark is None else mark.info


_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_ROLE = r"[a-z][a-z0-9_]*"
_X_LINE = re.compile(
    rf"x (\d+) ({_NUMBER}|-) ({_NUMBER}) ({_ROLE}) ([a-z]+)(?: (.*))?\Z", re.ASCII | re.S
)
_T_LINE = re.compile(rf"t ({_ROLE}) ([a-z]+) (\S+)\Z", re.ASCII)
_MARK_LINE = re.compile(r"mark ([a-z]+) (\{.*\})\Z", re.ASCII | re.S)
_H_LINE = re.compile(r"h ([a-z_]+) (.+)\Z", re.ASCII | re.S)
_BYTES = r'"([^"]*)"'
_ERROR = r"!([A-Za-z_][\w.]*) (\{.*\})"
_REST = {
    "open": re.compile(rf"(?:{_ERROR})?\Z", re.S),
    "close": re.compile(rf"(?:{_ERROR})?\Z", re.S),
    "write": re.compile(rf"{_BYTES}(?: {_ERROR})?\Z", re.S),
    "read": re.compile(rf"{_BYTES} (?:{_BYTES}|{_ERROR})\Z", re.S),
    "readn": re.compile(rf"(\d+) (?:{_BYTES}|{_ERROR})\Z", re.S),
    "drain": re.compile(rf"(?:{_BYTES}|{_ERROR})\Z", re.S),
    "pending": re.compile(rf"(?:{_BYTES}|{_ERROR})\Z", re.S),
    "call": re.compile(r"([a-z_]+) (\[.*\])\Z", re.S),
    "result": re.compile(rf"(?:{_ERROR}|([^!].*))\Z", re.S),
}
_TIME_KINDS = ("mono", "now", "stop")
_REQUIRED_HEADER = ("run", "formulation", "station")


class _Bad(Exception):
    def __init__(self, line: int, problem: str) -> None:
        self.line, self.problem = line, problem


def _json(text: str, line: int, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Bad(line, f"{what}: not JSON ({exc.msg} at character {exc.pos + 1})") from None
    except RecursionError:
        raise _Bad(line, f"{what}: nested too deep") from None


def _bytes(text: str, line: int, what: str) -> bytes:
    try:
        return unescape_bytes(text)
    except ValueError as exc:
        raise _Bad(line, f"{what}: {exc}") from None


def _error(name: str | None, payload: str | None, line: int) -> ErrorRecord | None:
    if name is None:
        return None
    if _error_class(name) is None:
        raise _Bad(line, f"unknown error class {name!r} (a labctl error or a built-in exception)")
    fields = _json(payload or "", line, "error")
    if not isinstance(fields, dict) or not isinstance(fields.get("args"), list):
        raise _Bad(line, 'error: expected {"args": [...], ...}')
    args = tuple(fields.pop("args"))
    return ErrorRecord(name, args, fields)


def _parse_rest(op: str, rest: str, line: int) -> tuple[Any, Any, ErrorRecord | None]:
    """(detail, data, error) of an exchange line's operation."""
    pattern = _REST.get(op)
    if pattern is None:
        known = ", ".join((*LINK_OPS, *CALL_OPS))
        raise _Bad(line, f"unknown operation {op!r} (known: {known})")
    match = pattern.match(rest)
    if match is None:
        raise _Bad(line, f"{op}: cannot read {rest[:60]!r} (see docs/recording.md)")
    groups = match.groups()
    if op in ("open", "close"):
        return None, None, _error(groups[0], groups[1], line)
    if op == "write":
        return _bytes(groups[0], line, "written bytes"), None, _error(groups[1], groups[2], line)
    if op == "read":
        terminator = _bytes(groups[0], line, "terminator")
        data = None if groups[1] is None else _bytes(groups[1], line, "bytes read")
        return terminator, data, _error(groups[2], groups[3], line)
    if op == "readn":
        data = None if groups[1] is None else _bytes(groups[1], line, "bytes read")
        return int(groups[0]), data, _error(groups[2], groups[3], line)
    if op in ("drain", "pending"):
        data = None if groups[0] is None else _bytes(groups[0], line, "bytes read")
        return None, data, _error(groups[1], groups[2], line)
    if op == "call":
        arguments = _json(groups[1], line, "call arguments")
        if not isinstance(arguments, list):
            raise _Bad(line, "call arguments: expected a JSON list")
        return groups[0], arguments, None
    # result
    if groups[2] is not None:
        return None, _json(groups[2], line, "result"), None
    return None, None, _error(groups[0], groups[1], line)


def _time_value(kind: str, text: str, line: int) -> Any:
    if kind == "now":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad(line, f"now: {text!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise _Bad(line, f"now: {text!r} has no time zone")
        return moment
    if kind == "stop":
        if text not in ("0", "1"):
            raise _Bad(line, f"stop: {text!r} is not 0 or 1")
        return text == "1"
    if not re.fullmatch(_NUMBER, text, re.ASCII):
        raise _Bad(line, f"{kind}: {text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(line, f"{kind}: {text!r} is not finite")
    return value


def read_recording(path: str | Path) -> Recording:
    """Read and check a whole recording; :class:`InputError` naming the line if it is bad.

    A recording without its ``mark end`` (a run killed, or still going) reads
    as incomplete; a last line cut short (no line end) is refused.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", source=source, field="file") from None
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source=source, field="file") from None
    try:
        return _parse(path, raw)
    except _Bad as bad:
        raise InputError(bad.problem, source=source, field=f"line {bad.line}") from None


def _parse(path: Path, raw: bytes) -> Recording:
    if not raw:
        raise _Bad(1, f"empty file: a recording starts with '{FORMAT} {FORMAT_VERSION}'")
    lines = raw.split(b"\n")
    if lines[-1]:
        raise _Bad(len(lines), "cut short (no line end): the file is truncated or damaged")
    lines.pop()
    first = lines[0].decode("ascii", "replace").rstrip("\r")
    words = first.split(" ")
    if len(words) != 2 or words[0] != FORMAT or not words[1].isdigit():
        raise _Bad(1, f"not a labctl recording (it starts with '{FORMAT} {FORMAT_VERSION}')")
    version = int(words[1])
    if version != FORMAT_VERSION:
        raise _Bad(1, f"format version {version}; this labctl reads version {FORMAT_VERSION}")
    header: dict[str, Any] = {}
    events: list[Event] = []
    marks: list[Mark] = []
    times: dict[tuple[int, int, str, str], list[Any]] = {}
    for number, raw_line in enumerate(lines[1:], start=2):
        try:
            text = raw_line.decode("ascii").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise _Bad(
                number, f"byte {exc.start + 1} is not ASCII (bytes are %XX escaped)"
            ) from None
        if not text or text.startswith("#"):
            continue
        kind = text.partition(" ")[0]
        if marks and marks[-1].phase == "end":
            raise _Bad(number, "a line after 'mark end'")
        if kind == "h":
            if events or marks:
                raise _Bad(number, "a header line ('h') after the session began")
            match = _H_LINE.match(text)
            if match is None:
                raise _Bad(number, "a header line is 'h <key> <JSON>'")
            header[match.group(1)] = _json(match.group(2), number, f"header {match.group(1)}")
            continue
        missing = [key for key in _REQUIRED_HEADER if key not in header]
        if missing:
            raise _Bad(number, f"the header has no {missing[0]!r} line before the session")
        if kind == "x":
            match = _X_LINE.match(text)
            if match is None:
                raise _Bad(number, "an exchange is 'x <n> <run time> <wall time> <role> <op> ...'")
            sequence = int(match.group(1))
            if sequence != len(events) + 1:
                raise _Bad(
                    number,
                    f"exchange number {sequence} where {len(events) + 1} was due"
                    " (a line lost, or edited?)",
                )
            detail, data, error = _parse_rest(match.group(5), match.group(6) or "", number)
            run_time = None if match.group(2) == "-" else float(match.group(2))
            event = Event(
                sequence,
                number,
                run_time,
                float(match.group(3)),
                match.group(4),
                match.group(5),
                detail,
                data,
                error,
            )
            events.append(event)
        elif kind == "t":
            match = _T_LINE.match(text)
            if match is None:
                raise _Bad(number, "a time line is 't <role> <mono|now|stop> <value>'")
            role, what = match.group(1), match.group(2)
            if what not in _TIME_KINDS:
                raise _Bad(number, f"unknown time kind {what!r} (known: {', '.join(_TIME_KINDS)})")
            if not marks:
                raise _Bad(number, "a time line before the first 'mark'")
            value = _time_value(what, match.group(3), number)
            times.setdefault((len(marks) - 1, len(events), role, what), []).append(value)
        elif kind == "mark":
            match = _MARK_LINE.match(text)
            if match is None:
                raise _Bad(number, "a mark is 'mark <phase> <JSON object>'")
            phase = match.group(1)
            if phase not in PHASES:
                raise _Bad(number, f"unknown phase {phase!r} (known: {', '.join(PHASES)})")
            if marks and PHASES.index(phase) <= PHASES.index(marks[-1].phase):
                raise _Bad(number, f"phase {phase!r} after {marks[-1].phase!r}")
            info = _json(match.group(2), number, f"mark {phase}")
            if not isinstance(info, dict):
                raise _Bad(number, f"mark {phase}: expected a JSON object")
            marks.append(Mark(phase, len(events), info, number))
        else:
            raise _Bad(number, f"unknown line kind {kind[:20]!r} (h, mark, x, t or #)")
    missing = [key for key in _REQUIRED_HEADER if key not in header]
    if missing:
        raise _Bad(
            len(lines),
            f"the header has no {missing[0]!r} line: the run stopped before its bench opened",
        )
    _check_header(header, len(lines))
    complete = bool(marks) and marks[-1].phase == "end"
    return Recording(path, version, header, events, marks, times, complete)


def _check_header(header: dict[str, Any], line: int) -> None:
    run = header["run"]
    if not isinstance(run, dict) or not all(
        isinstance(run.get(key), str) for key in ("run_id", "protocol")
    ):
        raise _Bad(line, "header run: expected an object with run_id and protocol")
    formulation = header["formulation"]
    if not isinstance(formulation, dict) or not isinstance(formulation.get("content"), str):
        raise _Bad(line, "header formulation: expected an object with its content")
    station = header["station"]
    if not isinstance(station, dict) or not isinstance(station.get("table"), dict):
        raise _Bad(line, "header station: expected an object with its table")


# -- recording -----------------------------------------------------------------------------


def _station_table(config: Any) -> dict[str, Any]:
    """The station file a config was read from, as data; the handler's token withheld."""
    from .errors import StationFileError
    from .files import read_toml

    table = read_toml(config.source, StationFileError)
    handler = table.get("handler")
    if isinstance(handler, dict) and "token" in handler:
        table["handler"] = {**handler, "token": TOKEN_WITHHELD}
    return table


class Recorder:
    """Writes a recording as the run goes: every line with one ``write``, at once.

    Made with :meth:`create` (the file is new and owner-only, as every file
    labctl writes: :mod:`labctl.private`). The runner calls :meth:`begin` with
    the station file once it is read, :meth:`station` to wrap the station,
    :meth:`attach_handler` on a wafer handler reached over TCP,
    :meth:`handler` on the run's handler, :meth:`phase` at each part of the
    session and :meth:`end` when the protocol is over; after that nothing
    more is written. Thread-safe.
    """

    def __init__(self, path: Path | None, fd: int | None) -> None:
        self.path = path
        self._fd: int | None = fd
        self._lock = threading.Lock()
        self._exchanges = 0
        self._clock: Clock | None = None
        self._token: bytes | None = None
        self._links: dict[str, str] = {}
        self._handler_info: dict[str, Any] = {}
        self._guard: Any = None
        self._wire_open = False
        self._ended = False
        #: Seconds spent formatting and writing lines (the recording's cost to the run).
        self.busy = 0.0
        #: Why the recording stopped before the run did (a full disk), if it did.
        self.failure: OSError | None = None

    @classmethod
    def create(
        cls, path: str | Path, *, run: Mapping[str, Any], formulation: Mapping[str, Any]
    ) -> Recorder:
        """A new recording at ``path`` (replacing a file there) with the run's header."""
        path = Path(path)
        recorder = cls(path, new_file(path))
        recorder._write(f"{FORMAT} {FORMAT_VERSION}")
        recorder._header("labctl", __version__)
        recorder._header("run", dict(run))
        recorder._header("formulation", dict(formulation))
        return recorder

    # -- lines -------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        started = time.perf_counter()
        with self._lock:
            if self._fd is not None and not self._ended:
                self._emit(text + "\n")
        self.busy += time.perf_counter() - started

    def _emit(self, line: str) -> None:
        """Write one line (the lock held). A disk that refuses ends the recording, not the run."""
        assert self._fd is not None
        view = memoryview(line.encode("ascii"))
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            # The run goes on: a recording is a witness, and a full disk must not
            # become a lost link to an instrument. What was written stays readable.
            self.failure = exc
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
            log.error("recording %s stopped: %s", self.path, exc.strerror or exc)

    def _header(self, key: str, value: Any) -> None:
        self._write(f"h {key} {json.dumps(value, ensure_ascii=True, default=str)}")

    def exchange(
        self,
        role: str,
        op: str,
        fields: str = "",
        *,
        error: BaseException | None = None,
    ) -> None:
        """One ``x`` line: ``fields`` already formatted; ``error`` if the operation raised."""
        started = time.perf_counter()
        clock = self._clock
        run_time = "-" if clock is None else repr(float(clock.monotonic()))
        parts = [fields] if fields else []
        if error is not None:
            parts.append(ErrorRecord.of(error).text())
        rest = (" " + " ".join(parts)) if parts else ""
        with self._lock:
            if self._fd is None or self._ended:
                return
            self._exchanges += 1
            self._emit(f"x {self._exchanges} {run_time} {time.time():.6f} {role} {op}{rest}\n")
        self.busy += time.perf_counter() - started

    def time_event(self, role: str, kind: str, value: Any) -> None:
        """One ``t`` line: a reading of a clock (``mono``, ``now``) or a seen stop (``stop``)."""
        if kind == "now":
            text = value.isoformat()
        elif kind == "stop":
            text = "1" if value else "0"
        else:
            text = repr(float(value))
        self._write(f"t {role} {kind} {text}")

    # -- the session ---------------------------------------------------------------------

    def begin(self, config: Any) -> None:
        """The station (a :class:`~labctl.station.StationConfig`): its file goes in the header."""
        self._token = (
            config.handler_token.encode("ascii") if config.handler_token is not None else None
        )
        self._header("station", {"source": str(config.source), "table": _station_table(config)})
        self.phase("setup")

    def phase(self, name: str, **info: Any) -> None:
        """A ``mark`` line: the session enters phase ``name`` (:data:`PHASES`)."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        if name == "connect":
            info.setdefault("links", dict(self._links))
            info.setdefault("clock", self._clock_info())
            if self._guard is not None and self._guard.owner is not None:
                info.setdefault("handler_owner", self._guard.owner)
        elif name == "run":
            info.setdefault("handler", dict(self._handler_info))
            info.setdefault("wire_open", self._wire_open)
        self._write(f"mark {name} {json.dumps(info, ensure_ascii=True, default=str)}")

    def end(self, status: str, reason: str) -> None:
        """The protocol is over: ``mark end`` with how it ended; nothing is written after."""
        self.phase("end", status=status, reason=reason)
        with self._lock:
            self._ended = True

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _clock_info(self) -> dict[str, Any]:
        clock = self._clock
        if clock is None:
            return {}
        info: dict[str, Any] = {"type": type(clock).__name__}
        for name in ("speed", "epoch"):
            value = getattr(clock, name, None)
            if isinstance(value, int | float):
                info[name] = float(value)
        # Where the clock's monotonic reading 0 falls on its calendar: now() for a replay
        # that strays from the recording.
        info["origin"] = (clock.now() - timedelta(seconds=clock.monotonic())).isoformat()
        return info

    # -- wrappers ------------------------------------------------------------------------

    def station(self, station: Any) -> Any:
        """The same station again, its transports and clock recording into this file.

        ``station`` is a :class:`~labctl.station.Station` that has not
        connected; the one returned is built from its config, clock and
        transport factory, and replaces it.
        """
        from .station import Station, make_transport

        config = station.config
        factory = station.transport_factory or (
            lambda role_config, settings: make_transport(
                role_config, settings, base_dir=config.base_dir
            )
        )
        self._clock = station.clock

        def recording_factory(role_config: Any, settings: LinkSettings) -> Transport:
            inner = factory(role_config, settings)
            self._links[role_config.role] = inner.name
            return RecordingTransport(inner, role_config.role, self)

        return Station(
            config, clock=RecordingClock(station.clock, self), transport_factory=recording_factory
        )

    def attach_handler(self, handler: Any) -> None:
        """Record the line traffic of a wafer handler reached over TCP (its ``stream_hook``)."""
        self._guard = handler
        handler.stream_hook = self._stream

    def handler(self, handler: Any) -> Any:
        """The run's wafer handler, its calls recorded (role ``wafer_handler``)."""
        locates = hasattr(handler, "where")
        self._handler_info = {
            "attended": bool(getattr(handler, "attended", True)),
            "where": locates,
            "wire": self._guard is not None and getattr(handler, "inner", None) is self._guard,
        }
        klass = _LocatingRecordingHandler if locates else _RecordingHandler
        return klass(handler, self)

    def stop_event(self, event: Any) -> Any:
        """The run's stop request (first Ctrl-C), each stop it reports recorded."""
        return _RecordingStop(event, self)

    def _stream(self, open_stream: Callable[[], Any]) -> Any:
        try:
            stream = open_stream()
        except BaseException as exc:
            self.exchange(HANDLER_ROLE, "open", error=exc)
            raise
        self.exchange(HANDLER_ROLE, "open")
        self._wire_open = True
        return _RecordingStream(stream, self)

    def _withheld(self, data: bytes) -> bytes:
        if self._token:
            return data.replace(self._token, TOKEN_WITHHELD.encode("ascii"))
        return data


class NullRecorder(Recorder):
    """Records nothing: a run without ``--record`` goes through the same hooks unchanged."""

    def __init__(self) -> None:
        super().__init__(None, None)

    def begin(self, config: Any) -> None:
        pass

    def phase(self, name: str, **info: Any) -> None:
        pass

    def end(self, status: str, reason: str) -> None:
        pass

    def station(self, station: Any) -> Any:
        return station

    def attach_handler(self, handler: Any) -> None:
        pass

    def handler(self, handler: Any) -> Any:
        return handler

    def stop_event(self, event: Any) -> Any:
        return event


class RecordingClock:
    """A clock that records every reading of the clock it wraps (``t clock ...`` lines)."""

    def __init__(self, inner: Clock, recorder: Recorder) -> None:
        self.inner = inner
        self._recorder = recorder

    def monotonic(self) -> float:
        value = self.inner.monotonic()
        self._recorder.time_event("clock", "mono", value)
        return value

    def now(self) -> datetime:
        value = self.inner.now()
        self._recorder.time_event("clock", "now", value)
        return value

    def sleep(self, duration: Any) -> None:
        self.inner.sleep(duration)

    def __getattr__(self, name: str) -> Any:
        # speed, epoch, advance ...: what the wrapped clock has.
        return getattr(self.inner, name)


class RecordingTransport(Transport):
    """A transport that records every byte another one moves.

    The lock, the timeout, resynchronization and error mapping are this
    object's (the :class:`Transport` base's); the wrapped transport is used
    only through its primitives, so each primitive call is one line.
    """

    def __init__(self, inner: Transport, role: str, recorder: Recorder) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner = inner
        self.role = role
        self._recorder = recorder

    def _io(
        self, op: str, fields: str, action: Callable[[], Any], shown: Callable[[Any], str]
    ) -> Any:
        try:
            result = action()
        except BaseException as exc:
            self._recorder.exchange(self.role, op, fields, error=_mapped(exc, self.name))
            raise
        text = shown(result)
        self._recorder.exchange(self.role, op, " ".join(p for p in (fields, text) if p))
        return result

    def _open(self) -> None:
        self._io("open", "", self.inner._open, lambda _: "")

    def _close(self) -> None:
        self._io("close", "", self.inner._close, lambda _: "")

    def _apply_timeout(self, timeout: float) -> None:
        # The wrapped transport reads on its own copy of the timeout.
        self.inner._timeout = timeout
        self.inner._apply_timeout(timeout)

    def _write(self, data: bytes) -> None:
        self._io("write", _quoted(data), lambda: self.inner._write(data), lambda _: "")

    def _read_until(self, terminator: bytes) -> bytes:
        data: bytes = self._io(
            "read", _quoted(terminator), lambda: self.inner._read_until(terminator), _quoted
        )
        return data

    def _read_exact(self, count: int) -> bytes:
        data: bytes = self._io("readn", str(count), lambda: self.inner._read_exact(count), _quoted)
        return data

    def _drain(self, quiet: float, limit: float) -> bytes:
        data: bytes = self._io("drain", "", lambda: self.inner._drain(quiet, limit), _quoted)
        return data

    def _take_pending(self) -> bytes:
        data: bytes = self._io("pending", "", self.inner._take_pending, _quoted)
        return data

    def _now(self) -> float:
        value = self.inner._now()
        self._recorder.time_event(self.role, "mono", value)
        return value


def _mapped(exc: BaseException, name: str) -> BaseException:
    """What the transport base will make of ``exc``: the error the run sees, recorded."""
    from .transport import _MAPPED, map_exception

    if isinstance(exc, _MAPPED) and not isinstance(exc, LabctlError):
        return map_exception(exc, name)
    return exc


class _RecordingStream:
    """The wafer handler's socket stream, each line both ways recorded."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner = inner
        self._recorder = recorder
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        try:
            self._inner.write(data)
        except BaseException as exc:
            self._recorder.exchange(HANDLER_ROLE, "write", self._shown(data), error=exc)
            raise
        self._pending += data
        return len(data)

    def _shown(self, data: bytes) -> str:
        return _quoted(self._recorder._withheld(data))

    def flush(self) -> None:
        data = bytes(self._pending)
        self._pending.clear()
        try:
            self._inner.flush()
        except BaseException as exc:
            self._recorder.exchange(HANDLER_ROLE, "write", self._shown(data), error=exc)
            raise
        self._recorder.exchange(HANDLER_ROLE, "write", self._shown(data))

    def readline(self) -> bytes:
        try:
            line: bytes = self._inner.readline()
        except BaseException as exc:
            self._recorder.exchange(HANDLER_ROLE, "read", _NEWLINE, error=exc)
            raise
        self._recorder.exchange(HANDLER_ROLE, "read", f"{_NEWLINE} {_quoted(line)}")
        return line

    def close(self) -> None:
        self._recorder._wire_open = False
        try:
            self._inner.close()
        except BaseException as exc:
            self._recorder.exchange(HANDLER_ROLE, "close", error=exc)
            raise
        self._recorder.exchange(HANDLER_ROLE, "close")


class _RecordingHandler:
    """A wafer handler whose calls are recorded: ``call`` and its ``result``."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.attended = bool(getattr(inner, "attended", True))
        self._recorder = recorder

    def _call(self, method: str, *arguments: Any) -> Any:
        recorder = self._recorder
        recorder.exchange(
            HANDLER_ROLE, "call", f"{method} {json.dumps(list(arguments), ensure_ascii=True)}"
        )
        try:
            result = getattr(self.inner, method)(*arguments)
        except BaseException as exc:
            recorder.exchange(HANDLER_ROLE, "result", error=exc)
            raise
        recorder.exchange(HANDLER_ROLE, "result", json.dumps(_jsonable(result), ensure_ascii=True))
        return result

    def new_wafer(self, wafer_id: str) -> None:
        self._call("new_wafer", wafer_id)

    def load(self, wafer_id: str, station: str) -> None:
        self._call("load", wafer_id, station)

    def unload(self, station: str) -> None:
        self._call("unload", station)

    def manual(self, action: str) -> None:
        self._call("manual", action)


class _LocatingRecordingHandler(_RecordingHandler):
    def where(self, wafer_id: str) -> str | None:
        place = self._call("where", wafer_id)
        return None if place is None else str(place)


class _RecordingStop:
    """A run's stop request (a :class:`threading.Event`): a stop it reports is recorded."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner = inner
        self._recorder = recorder

    def is_set(self) -> bool:
        value = bool(self._inner.is_set())
        if value:
            self._recorder.time_event("run", "stop", True)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# -- replay --------------------------------------------------------------------------------


class ReplayMismatch(LabctlError):
    """The replay did something the recording does not have: the first difference."""

    def __init__(self, message: str, *, exchange: int, role: str | None = None) -> None:
        self.exchange = exchange
        self.role = role
        super().__init__(message)


class RecordingEnded(LabctlError):
    """An incomplete recording (its run was killed) has no more exchanges: the replay stops."""


def _first_difference(expected: bytes, got: bytes) -> int:
    for index, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return index
    return min(len(expected), len(got))


@dataclass
class _Reply:
    data: Any = None
    error: ErrorRecord | None = None


_NOTHING = _Reply(b"")


class ReplaySession:
    """A recording being replayed: one cursor over its exchanges, and its clock.

    Everything that replays - transports, the handler's line and calls, the
    clock - asks this object. The first difference is kept
    (:attr:`mismatch`) and raised again at every later request, so a
    protocol that swallows an error still stops, and the first one is what
    is reported.
    """

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.events = recording.events
        self.cursor = 0
        self._skipped = 0
        #: Index of the current phase's mark in ``recording.marks`` (-1: none yet).
        self.mark_index = -1
        self.mismatch: ReplayMismatch | None = None
        self.ended: RecordingEnded | None = None
        self.finished = False
        #: Called once, when the replay stops (a difference, or the recording's end).
        self.on_stop: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._times: dict[tuple[int, int, str, str], deque[Any]] = {}
        self._time = 0.0
        self._slept = 0.0
        self._last: dict[str, float] = {}
        clock = recording.info("connect", "clock")
        origin = clock.get("origin") if isinstance(clock, dict) else None
        try:
            self._origin = datetime.fromisoformat(origin) if isinstance(origin, str) else None
        except ValueError:
            self._origin = None
        self.clock = ReplayClock(self)

    # -- phases --------------------------------------------------------------------------

    @property
    def matched(self) -> int:
        """Exchanges replayed and found equal to the recording's."""
        return self.cursor - self._skipped

    @property
    def skipped(self) -> int:
        """Recorded exchanges passed over by design (an optional phase the replay left out)."""
        return self._skipped

    def _phase_end(self) -> int:
        """Exchanges before the next mark (or all of them)."""
        following = self.recording.marks[self.mark_index + 1 :]
        return following[0].position if following else len(self.events)

    def phase(self, name: str) -> None:
        """Enter phase ``name``: the recorded exchanges before it must all have been made.

        Those of an optional phase (``setup``, ``recover``) the replay did not
        enter are skipped.
        """
        with self._lock:
            if self.mismatch is not None:
                raise self.mismatch
            marks = self.recording.marks
            index = next(
                (i for i, m in enumerate(marks) if m.phase == name and i > self.mark_index), None
            )
            target = len(marks) if index is None else index
            # The phase the replay is in must be done, and so must any it would jump
            # over - but for the optional ones, whose exchanges are skipped.
            for between in range(max(self.mark_index, 0), min(target, len(marks))):
                mark = marks[between]
                if between != self.mark_index and mark.phase in OPTIONAL_PHASES:
                    continue
                end = marks[between + 1].position if between + 1 < len(marks) else len(self.events)
                start = max(self.cursor, mark.position)
                if start < end:
                    event = self.events[start]
                    raise self.fail(
                        f"exchange #{event.number} ({event.describe()}): recorded in the"
                        f" {mark.phase} phase, which the replay ended without it",
                        event.number,
                        event.role,
                    )
            if index is None:
                if name in OPTIONAL_PHASES and self.recording.complete:
                    return  # a session without one: nothing to leave out
                # The recording stops before this phase: its run was cut short.
                self.mark_index = len(marks)
                self._skip_to(len(self.events))
                return
            self.mark_index = index
            self._skip_to(marks[index].position)

    def _skip_to(self, position: int) -> None:
        if position > self.cursor:
            self._skipped += position - self.cursor
            self.cursor = position

    def finish(self) -> None:
        """The replayed run is over: every recorded exchange must have been made.

        An incomplete recording that ran out first is not a difference.
        """
        with self._lock:
            if self.mismatch is not None:
                raise self.mismatch
            self.finished = True
            if self.ended is not None:
                return
            end = self._phase_end()
            if self.cursor < end:
                event = self.events[self.cursor]
                raise self.fail(
                    f"exchange #{event.number} ({event.describe()}): recorded, but the replayed"
                    f" run ended without it ({end - self.cursor} recorded exchange(s) not made)",
                    event.number,
                    event.role,
                )

    def assert_done(self) -> int:
        """:meth:`finish`, as a test assertion: ``AssertionError`` with the first difference.

        Returns the exchanges matched.
        """
        try:
            self.finish()
        except ReplayMismatch as exc:
            raise AssertionError(str(exc)) from None
        return self.matched

    def fail(self, message: str, number: int, role: str | None) -> ReplayMismatch:
        """Keep the first difference (``message``, one line); return the one kept."""
        if self.mismatch is None:
            self.mismatch = ReplayMismatch(message, exchange=number, role=role)
            self._stopped()
        return self.mismatch

    def _stopped(self) -> None:
        if self.on_stop is not None:
            self.on_stop()

    # -- exchanges -----------------------------------------------------------------------

    def expect(self, role: str, op: str, detail: Any = None, data: Any = None) -> _Reply:
        """The next recorded exchange, which must be ``role op detail``; what it returned."""
        with self._lock:
            if self.finished:
                return _NOTHING  # closing links after the end: not part of the session
            if self.mismatch is not None:
                raise self.mismatch
            if self.ended is not None:
                raise self.ended
            number = self.cursor + 1
            end = self._phase_end()
            if self.cursor >= end:
                made = _describe(role, op, detail, data)
                if self.cursor >= len(self.events) and not self.recording.complete:
                    self.ended = RecordingEnded(
                        f"the recording ends after exchange #{len(self.events)} (its run was"
                        f" cut short there): the replay stops at {made}"
                    )
                    self._stopped()
                    raise self.ended
                phase = self._phase_name()
                after = (
                    f"the recording's next, #{number}, is in its"
                    f" {self.recording.marks[self.mark_index + 1].phase} phase"
                    if self.cursor < len(self.events)
                    else "the recording has no more"
                )
                raise self.fail(
                    f"exchange #{number}: the replay made {made}, which the recording's"
                    f" {phase} phase does not have ({after})",
                    number,
                    role,
                )
            event = self.events[self.cursor]
            if (
                (event.role, event.op) != (role, op)
                or event.detail != detail
                or (op == "call" and event.data != data)
            ):
                raise self.fail(self._difference(event, role, op, detail, data), number, role)
            self.cursor += 1
            if event.run_time is not None and event.run_time > self._time:
                self._time = event.run_time
                self._slept = 0.0
            if op == "call":
                return _Reply(None, None)
            return _Reply(event.data, event.error)

    def _phase_name(self) -> str:
        marks = self.recording.marks
        return marks[self.mark_index].phase if 0 <= self.mark_index < len(marks) else "first"

    def _difference(self, event: Event, role: str, op: str, detail: Any, data: Any) -> str:
        where = f"exchange #{event.number} ({event.role}"
        if (event.role, event.op) == (role, op) and isinstance(detail, bytes):
            expected: bytes = event.detail
            at = _first_difference(expected, detail)
            what = {"write": "", "read": " until"}.get(op, "")
            return (
                f"{where} {op}{what}): expected {_shown(expected)}, got {_shown(detail)}"
                f" (first difference at byte {at})"
            )
        return f"{where}): expected {event.describe()}, got {_describe(role, op, detail, data)}"

    # -- time ----------------------------------------------------------------------------

    def reading(self, role: str, kind: str) -> Any:
        """The recorded reading of a clock at this point of the session, or None."""
        with self._lock:
            key = (self.mark_index, self.cursor, role, kind)
            queue = self._times.get(key)
            if queue is None:
                queue = deque(self.recording.times.get(key, ()))
                self._times[key] = queue
            return queue.popleft() if queue else None

    def monotonic(self) -> float:
        value = self.reading("clock", "mono")
        with self._lock:
            if value is not None:
                if value >= self._time:
                    self._time = value
                self._slept = 0.0
            else:
                # Strayed from the recording: stand still, but move on the sleeps.
                self._time += self._slept
                self._slept = 0.0
            return self._time

    def now(self) -> datetime:
        value = self.reading("clock", "now")
        if value is not None:
            return value  # type: ignore[no-any-return]
        origin = self._origin or datetime.fromisoformat("2026-01-01T00:00:00+00:00")
        with self._lock:
            self._time += self._slept
            self._slept = 0.0
            return origin + timedelta(seconds=self._time)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._slept += seconds

    def transport_now(self, role: str) -> float:
        value = self.reading(role, "mono")
        if value is None:
            return self._last.get(role, 0.0)
        self._last[role] = float(value)
        return float(value)

    def stop_seen(self) -> bool:
        return bool(self.reading("run", "stop"))

    # -- what replays ------------------------------------------------------------------

    def transport(self, role: str, settings: LinkSettings | None = None) -> ReplayTransport:
        links = self.recording.info("connect", "links")
        name = links.get(role) if isinstance(links, dict) else None
        return ReplayTransport(
            self, role, settings or LinkSettings(), name=name if isinstance(name, str) else None
        )

    def transport_factory(self, role_config: Any, settings: LinkSettings) -> Transport:
        """A :class:`~labctl.station.Station` transport factory: each role replays."""
        return self.transport(role_config.role, settings)

    def station_config(self, *, allow_import: bool = False) -> Any:
        """The recorded station file, checked as ``labctl run`` checks one."""
        from .station import parse_station

        recorded = self.recording.header["station"]
        source = f"{self.recording.path} (station {recorded.get('source', '?')})"
        return parse_station(
            recorded["table"],
            source=source,
            base_dir=self.recording.path.resolve().parent,
            allow_import=allow_import,
        )

    def station(self, *, allow_import: bool = False) -> Any:
        """A station whose drivers talk to replaying transports, on the replay clock.

        A session not yet in any phase enters ``connect`` (the wafer handler's
        setup, if recorded, is left out).
        """
        from .station import Station

        if self.mark_index < 0:
            self.phase("connect")
        return Station(
            self.station_config(allow_import=allow_import),
            clock=self.clock,
            transport_factory=self.transport_factory,
        )

    def stream_hook(self, open_stream: Callable[[], Any]) -> Any:
        """For a handler's ``stream_hook``: its line replays (nothing is opened)."""
        reply = self.expect(HANDLER_ROLE, "open")
        if reply.error is not None:
            raise reply.error.build()
        return _ReplayStream(self)

    def handler(self, inner: Any = None) -> Any:
        """The run's wafer handler, answering from the recorded calls.

        ``inner``: a handler whose own traffic is recorded too (one on a
        replayed line); its calls are made, and their lines checked.
        """
        info = self.recording.info("run", "handler")
        info = info if isinstance(info, dict) else {}
        klass = _LocatingReplayHandler if info.get("where", True) else _ReplayHandler
        handler = klass(self, inner if info.get("wire") else None)
        handler.attended = bool(info.get("attended", False))
        return handler

    def call(self, method: str, arguments: list[Any], inner: Any) -> Any:
        """A handler call: checked against the recording, answered from it or made on ``inner``."""
        self.expect(HANDLER_ROLE, "call", method, _jsonable(arguments))
        if inner is None:
            self._skip_line()
            reply = self.expect(HANDLER_ROLE, "result")
            if reply.error is not None:
                raise reply.error.build()
            return reply.data
        try:
            result = getattr(inner, method)(*arguments)
        except (ReplayMismatch, RecordingEnded):
            raise
        except BaseException as exc:
            reply = self.expect(HANDLER_ROLE, "result")
            if reply.error is None or ErrorRecord.of(exc).text() != reply.error.text():
                recorded = reply.error or json.dumps(reply.data)
                raise self.fail(
                    f"exchange #{self.cursor} ({HANDLER_ROLE} result of {method}): recorded"
                    f" {recorded}, the replay raised {ErrorRecord.of(exc)}",
                    self.cursor,
                    HANDLER_ROLE,
                ) from exc
            raise
        reply = self.expect(HANDLER_ROLE, "result")
        if reply.error is not None or _jsonable(result) != reply.data:
            recorded = reply.error or json.dumps(reply.data)
            raise self.fail(
                f"exchange #{self.cursor} ({HANDLER_ROLE} result of {method}): recorded"
                f" {recorded}, the replay got {json.dumps(_jsonable(result))}",
                self.cursor,
                HANDLER_ROLE,
            )
        return result

    def _skip_line(self) -> None:
        """Pass over the handler's recorded line traffic (a replay that answers its calls)."""
        with self._lock:
            end = self._phase_end()
            while self.cursor < end:
                event = self.events[self.cursor]
                if event.role != HANDLER_ROLE or event.op not in LINK_OPS:
                    return
                self.cursor += 1
                self._skipped += 1


class ReplayClock:
    """The run's clock on replay: the recorded readings, in virtual time.

    Each reading of the recorded run's clock is given back at the same place
    (between the same two exchanges); where the replay asks for more
    readings than were recorded there, the clock stands at the last time
    seen and moves on by the sleeps asked for since. ``sleep`` never waits.
    """

    def __init__(self, session: ReplaySession) -> None:
        self._session = session

    def monotonic(self) -> float:
        return self._session.monotonic()

    def now(self) -> datetime:
        return self._session.now()

    def sleep(self, duration: Any) -> None:
        from .clock import seconds

        self._session.sleep(seconds(duration))


class ReplayTransport(Transport):
    """A transport that answers from a recording and fails at the first byte that differs."""

    def __init__(
        self,
        session: ReplaySession,
        role: str,
        settings: LinkSettings,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"{role} (replay)", settings)
        self.role = role
        self._session = session

    def _answer(self, op: str, detail: Any = None) -> Any:
        reply = self._session.expect(self.role, op, detail)
        if reply.error is not None:
            raise reply.error.build()
        return reply.data

    def _open(self) -> None:
        self._answer("open")

    def _close(self) -> None:
        self._answer("close")

    def _apply_timeout(self, timeout: float) -> None:
        pass

    def _write(self, data: bytes) -> None:
        self._answer("write", bytes(data))

    def _read_until(self, terminator: bytes) -> bytes:
        data: bytes = self._answer("read", bytes(terminator))
        return data

    def _read_exact(self, count: int) -> bytes:
        data: bytes = self._answer("readn", count)
        return data

    def _drain(self, quiet: float, limit: float) -> bytes:
        data: bytes = self._answer("drain")
        return data

    def _take_pending(self) -> bytes:
        data: bytes = self._answer("pending")
        return data

    def _now(self) -> float:
        return self._session.transport_now(self.role)


class _ReplayStream:
    """The wafer handler's line, answered from the recording."""

    def __init__(self, session: ReplaySession) -> None:
        self._session = session
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        self._pending += data
        return len(data)

    def flush(self) -> None:
        data = bytes(self._pending)
        self._pending.clear()
        reply = self._session.expect(HANDLER_ROLE, "write", data)
        if reply.error is not None:
            raise reply.error.build()

    def readline(self) -> bytes:
        reply = self._session.expect(HANDLER_ROLE, "read", b"\n")
        if reply.error is not None:
            raise reply.error.build()
        line: bytes = reply.data
        return line

    def close(self) -> None:
        reply = self._session.expect(HANDLER_ROLE, "close")
        if reply.error is not None:
            raise reply.error.build()


class _ReplayHandler:
    """A wafer handler that answers from the recorded calls (or makes them on a replayed line)."""

    attended = False

    def __init__(self, session: ReplaySession, inner: Any = None) -> None:
        self._session = session
        self.inner = inner

    def new_wafer(self, wafer_id: str) -> None:
        self._session.call("new_wafer", [wafer_id], self.inner)

    def load(self, wafer_id: str, station: str) -> None:
        self._session.call("load", [wafer_id, station], self.inner)

    def unload(self, station: str) -> None:
        self._session.call("unload", [station], self.inner)

    def manual(self, action: str) -> None:
        self._session.call("manual", [action], self.inner)


class _LocatingReplayHandler(_ReplayHandler):
    def where(self, wafer_id: str) -> str | None:
        place = self._session.call("where", [wafer_id], self.inner)
        return None if place is None else str(place)


class ReplayStop:
    """A run's stop request on replay: set where the recorded run saw one."""

    def __init__(self, session: ReplaySession) -> None:
        self._session = session
        self._set = False

    def is_set(self) -> bool:
        return self._set or self._session.stop_seen()

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False
