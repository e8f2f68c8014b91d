"""The labctl error tree.

Every error labctl raises on purpose derives from :class:`LabctlError`. Lower
level exceptions (pyvisa, pyserial, sqlite, OS) are mapped into this tree at
the boundary where they occur, with ``raise ... from exc`` so the cause stays
visible to a developer, while a user sees one line::

    LabctlError
    ├── InputError                  a user's file, option or value is refused
    │   ├── StationFileError        station TOML: unknown driver, missing field...
    │   ├── FormulationError        formulation TOML
    │   ├── RecipeError             recipe TOML / --set values
    │   └── SetpointError           a value outside an instrument's range or of
    │                               the wrong unit, refused before a byte is sent
    ├── CommunicationError          the link to an instrument failed
    │   ├── InstrumentTimeout       no (complete) reply in time
    │   ├── LinkLost                port/socket closed, unplugged, not found
    │   └── GarbledReply            a reply that does not parse: bad checksum,
    │                               wrong echo, missing prompt, bad encoding
    ├── InstrumentError             the instrument's own error reply, with its
    │                               code and text (ERR,4  /  e  /  -113,"...")
    ├── HardwareStateError          a read-back contradicts what was commanded
    │                               (shutter still open after an exposure)
    ├── InterlockTrip               a watcher stopped the bench
    ├── StorageError                the data disk failed under labctl: no space
    │   │                           (ENOSPC), read-only (EROFS), I/O error (EIO)
    │   └── StoreError              the run store cannot be opened, read or
    │                               written (damaged, wrong schema) - store.py
    └── BenchBusy                   another process holds the bench (its lock)

``CommunicationError`` is the only family a caller may retry, and only for
queries; an action that changes a wafer is confirmed by a read-back instead.
"""

from __future__ import annotations

__all__ = [
    "BenchBusy",
    "CommunicationError",
    "FormulationError",
    "GarbledReply",
    "HardwareStateError",
    "InputError",
    "InstrumentError",
    "InstrumentTimeout",
    "InterlockTrip",
    "LabctlError",
    "LinkLost",
    "RecipeError",
    "SetpointError",
    "StationFileError",
    "StorageError",
]


class LabctlError(Exception):
    """Root of every error labctl raises on purpose."""


class InputError(LabctlError):
    """A user's input is refused: names where (file, field) and what is allowed.

    ``str()`` gives one line, ``"<source>: <field>: <problem>"``, suitable for
    the command line without a traceback.
    """

    def __init__(self, problem: str, *, source: str | None = None, field: str | None = None):
        self.problem = problem
        self.source = source
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        return ": ".join([*parts, self.problem])


class StationFileError(InputError):
    """A station file cannot be used (syntax, unknown driver, bad link)."""


class FormulationError(InputError):
    """A formulation file is malformed or inconsistent."""


class RecipeError(InputError):
    """A recipe file or a ``--set`` override is malformed or out of range."""


class SetpointError(InputError):
    """A value outside an instrument's range, or of the wrong dimension.

    Raised by a driver before any byte is sent; ``field`` names the command.
    """


class CommunicationError(LabctlError):
    """The link to an instrument failed; ``instrument`` names which one."""

    def __init__(self, message: str, *, instrument: str | None = None):
        self.instrument = instrument
        self.message = message
        super().__init__(f"{instrument}: {message}" if instrument else message)


class InstrumentTimeout(CommunicationError):
    """No complete reply arrived within the transport's timeout."""


class LinkLost(CommunicationError):
    """The port or socket is gone (closed, unplugged, refused, not found)."""


class GarbledReply(CommunicationError):
    """A reply arrived but does not parse as the protocol says it must."""


class InstrumentError(LabctlError):
    """The instrument answered with its own error reply.

    ``code`` is the instrument's code as it sent it (an ``int`` where the
    protocol numbers errors), ``text`` its message or our reading of the code,
    ``command`` what provoked it.
    """

    def __init__(
        self,
        text: str,
        *,
        instrument: str | None = None,
        code: int | str | None = None,
        command: str | None = None,
    ):
        self.instrument = instrument
        self.code = code
        self.text = text
        self.command = command
        where = f"{instrument}: " if instrument else ""
        what = f" to {command!r}" if command else ""
        coded = f" (code {code})" if code is not None else ""
        super().__init__(f"{where}error reply{what}{coded}: {text}")


class HardwareStateError(LabctlError):
    """A read-back contradicts the state the software commanded."""

    def __init__(self, message: str, *, instrument: str | None = None):
        self.instrument = instrument
        super().__init__(f"{instrument}: {message}" if instrument else message)


class InterlockTrip(LabctlError):
    """A watcher found a quantity outside its band and stopped the bench."""

    def __init__(self, message: str, *, interlock: str | None = None):
        self.interlock = interlock
        super().__init__(f"interlock {interlock}: {message}" if interlock else message)


class StorageError(LabctlError):
    """The disk under the data directory failed: full, read-only or an I/O error.

    ``path`` names the file, ``errno`` the OS error number when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None):
        self.path = path
        self.errno = errno
        super().__init__(f"{path}: {message}" if path else message)

    @classmethod
    def from_os_error(cls, exc: OSError, path: object = None) -> StorageError:
        """The one-line form of an ``OSError`` from a data file (``raise ... from exc``)."""
        where = path if path is not None else exc.filename
        return cls(
            exc.strerror or str(exc), path=None if where is None else str(where), errno=exc.errno
        )


class BenchBusy(LabctlError):
    """Another process holds the bench: ``holder`` says which (pid, command, since)."""

    def __init__(self, message: str, *, holder: str | None = None):
        self.holder = holder
        super().__init__(message)
