"""The transport contract, and its pyvisa and pyserial implementations.

A driver talks bytes through a :class:`Transport`; it never opens a port or a
VISA resource itself. The contract is small on purpose (httpx's
``BaseTransport`` is the model): ``write``, ``read`` (up to a terminator),
``read_bytes`` (an exact count), ``query``, ``close``, ``reconnect``, a
``timeout`` and a ``lock``. Framing - echoes, prompts, checksums, line ends -
is the driver's business and lives in one place per driver.

Rules learned the hard way on pyvisa's issue tracker, kept here once:

* one re-entrant lock per transport; a driver holds it across a whole
  exchange (write, echo, value, prompt) so two threads never interleave;
* after a timeout or a garbled frame the link is *suspect*: before the next
  write, input is drained until the line is quiet, so a late reply can never
  be taken as the answer to the next command;
* terminations are whatever the driver asks for on each read, set explicitly,
  never pyvisa's default; nothing is appended on write;
* serial input is read in chunks (whatever the OS has), not a byte at a time;
* zero bytes from a read that was told data is ready is end of stream: the
  peer closed the link. That is :class:`~labctl.errors.LinkLost` at once,
  never "no data yet" until the timeout (see :class:`_EofRaisingSocket`);
* :meth:`Transport.reconnect` reopens the link with the same settings.

Every pyvisa, pyserial and OS exception is mapped into :mod:`labctl.errors`
here, at the boundary (:data:`EXCEPTION_MAP`, :func:`map_exception`).

pyvisa is imported the first time a VISA link or resource manager is made
(:func:`resource_manager`), with its entries of the maps: 33 ms that a run on
the virtual bench, or on serial links only, never needs. No pyvisa exception
can exist before then.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import select
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import serial
import serial.serialutil

from .errors import (
    CommunicationError,
    GarbledReply,
    InstrumentTimeout,
    LabctlError,
    LinkLost,
)

__all__ = [
    "EXCEPTION_MAP",  # noqa: F822 - given by __getattr__ below, pyvisa's entries and all
    "LinkSettings",
    "SerialTransport",
    "Transport",
    "VisaTransport",
    "map_exception",
]

log = logging.getLogger(__name__)
#: Held while pyvisa is imported and while a resource manager is made.
_rm_lock = threading.Lock()

#: pyvisa, once :func:`_load_pyvisa` has imported it (None before: nothing VISA yet).
pyvisa: Any = None
_SC: Any = None
#: VISA status codes with a more precise meaning than "communication failed".
_VISA_CODE_MAP: dict[int, type[CommunicationError]] = {}

#: Every exception class pyvisa and pyserial define, and what it becomes
#: (:data:`EXCEPTION_MAP`; pyvisa's entries join when pyvisa is imported).
#: ``tests/labctl/test_errors.py`` fails if either library grows a class that
#: is not listed here.
_EXCEPTION_MAP: dict[type[BaseException], type[LabctlError]] = {
    # pyserial
    serial.serialutil.SerialException: LinkLost,
    serial.serialutil.SerialTimeoutException: InstrumentTimeout,
    serial.serialutil.PortNotOpenError: LinkLost,
    # the OS and the standard library, below both
    TimeoutError: InstrumentTimeout,
    ConnectionError: LinkLost,
    OSError: LinkLost,
}
_PARITY_VISA: dict[str, Any] = {}
_STOP_VISA: dict[int, Any] = {}


def _load_pyvisa() -> Any:
    """Import pyvisa (once) and add its exceptions, status codes and constants to the maps."""
    global pyvisa, _SC, _MAPPED, _MAPPED_OR_OURS
    if pyvisa is not None:
        return pyvisa
    import pyvisa as module
    import pyvisa.constants
    import pyvisa.errors

    sc = module.constants.StatusCode
    _VISA_CODE_MAP.update(
        {
            sc.error_timeout: InstrumentTimeout,
            sc.error_connection_lost: LinkLost,
            sc.error_resource_not_found: LinkLost,
            sc.error_resource_busy: LinkLost,
            sc.error_resource_locked: LinkLost,
            sc.error_invalid_object: LinkLost,
            sc.error_invalid_resource_name: LinkLost,
            sc.error_closing_failed: LinkLost,
            sc.error_io: LinkLost,
            sc.error_machine_not_available: LinkLost,
            sc.error_library_not_found: LinkLost,
            sc.error_serial_framing: GarbledReply,
            sc.error_serial_parity: GarbledReply,
            sc.error_serial_overrun: GarbledReply,
            sc.error_input_protocol_violation: GarbledReply,
            sc.error_raw_read_protocol_violation: GarbledReply,
        }
    )
    errors = module.errors
    _EXCEPTION_MAP.update(
        {
            errors.Error: CommunicationError,
            errors.VisaIOError: CommunicationError,  # refined by error_code
            errors.VisaIOWarning: CommunicationError,
            errors.VisaTypeError: CommunicationError,
            errors.UnknownHandler: CommunicationError,
            errors.OSNotSupported: LinkLost,
            errors.InvalidBinaryFormat: GarbledReply,
            errors.InvalidSession: LinkLost,
            errors.LibraryError: LinkLost,
        }
    )
    constants = module.constants
    _PARITY_VISA.update(
        {"N": constants.Parity.none, "E": constants.Parity.even, "O": constants.Parity.odd}
    )
    _STOP_VISA.update({1: constants.StopBits.one, 2: constants.StopBits.two})
    _MAPPED = tuple(_EXCEPTION_MAP)
    _MAPPED_OR_OURS = (*_MAPPED, CommunicationError)
    _SC = sc
    pyvisa = module
    return module


def __getattr__(name: str) -> Any:
    """``EXCEPTION_MAP``: the whole map, pyvisa's entries included (imports pyvisa)."""
    if name == "EXCEPTION_MAP":
        with _rm_lock:
            _load_pyvisa()
        return _EXCEPTION_MAP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def map_exception(exc: BaseException, instrument: str | None = None) -> LabctlError:
    """Translate a pyvisa / pyserial / OS exception into the labctl tree.

    The most specific entry of :data:`EXCEPTION_MAP` along the exception's
    MRO wins; a :class:`pyvisa.errors.VisaIOError` is refined by its VISA
    status code. The original text is kept in the message.
    """
    if isinstance(exc, LabctlError):
        return exc
    target: type[LabctlError] = CommunicationError
    if pyvisa is not None and isinstance(exc, pyvisa.errors.VisaIOError):
        target = _VISA_CODE_MAP.get(exc.error_code, CommunicationError)
    else:
        for klass in type(exc).__mro__:
            if klass in _EXCEPTION_MAP:
                target = _EXCEPTION_MAP[klass]
                break
    detail = str(exc) or type(exc).__name__
    if issubclass(target, CommunicationError):
        return target(detail, instrument=instrument)
    return target(detail)  # pragma: no cover - every entry is a CommunicationError today


_MAPPED: tuple[type[BaseException], ...] = tuple(_EXCEPTION_MAP)
_MAPPED_OR_OURS: tuple[type[BaseException], ...] = (*_MAPPED, CommunicationError)


@contextlib.contextmanager
def _mapped(instrument: str) -> Iterator[None]:
    try:
        yield
    except _MAPPED as exc:
        raise map_exception(exc, instrument) from exc


@dataclass(frozen=True)
class LinkSettings:
    """How to reach one instrument: what a station file's ``[link]`` holds.

    ``timeout`` is in seconds. Serial fields are ignored for network links.
    """

    timeout: float = 2.0
    baud_rate: int = 9600
    data_bits: int = 8
    parity: str = "N"
    stop_bits: float = 1
    rtscts: bool = False
    #: How long the line must stay silent for a resynchronization to end (s).
    resync_quiet: float = 0.05
    #: The longest a resynchronization may drain before giving up (s).
    resync_limit: float = 2.0
    #: For this long after a timeout (s), input that is already waiting when
    #: a command is about to be sent is a late reply and is thrown away.
    late_window: float = 30.0


class Transport(ABC):
    """A byte link to one instrument.

    Subclasses implement the ``_``-prefixed primitives; this class adds the
    lock, the timeout, error mapping and resynchronization, once.
    """

    def __init__(self, name: str, settings: LinkSettings) -> None:
        #: Used in every error message: which link failed.
        self.name = name
        self.settings = settings
        #: Held by a driver for a whole exchange; re-entrant.
        self.lock = threading.RLock()
        self._timeout = settings.timeout
        self._suspect = False
        #: Until this time (``_now()``) a late reply may still arrive.
        self._late_until = -math.inf
        self._is_open = False
        #: Bytes discarded by resynchronizations, for diagnosis.
        self.discarded: list[bytes] = []

    # -- the contract ------------------------------------------------------

    @property
    def timeout(self) -> Any:
        """Read timeout, a time quantity."""
        from .units import Q_, U

        return Q_(self._timeout, U.s)

    @timeout.setter
    def timeout(self, value: Any) -> None:
        from .clock import seconds

        self._timeout = seconds(value)
        if self._is_open:
            with _mapped(self.name):
                self._apply_timeout(self._timeout)

    @contextlib.contextmanager
    def temporary_timeout(self, value: Any) -> Iterator[None]:
        """Use another timeout inside a ``with`` block (a long measurement)."""
        with self.lock:
            previous = self._timeout
            self.timeout = value
            try:
                yield
            finally:
                self.timeout = previous

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> None:
        """Open the link. Idempotent."""
        if self._is_open:
            return
        with self.lock, _mapped(self.name):
            self._open()
            self._is_open = True
            self._apply_timeout(self._timeout)

    def close(self) -> None:
        """Close the link. Idempotent; never raises for an already dead link."""
        with self.lock:
            if not self._is_open:
                return
            self._is_open = False
            try:
                self._close()
            except _MAPPED as exc:  # a dead link is closed enough
                log.debug("%s: error while closing: %s", self.name, exc)

    def reconnect(self) -> None:
        """Close and reopen the link with the same settings; input is discarded."""
        with self.lock:
            self.close()
            self.open()
            self._suspect = True

    # The four I/O calls below are the hot path (every query of every
    # driver): error mapping is an inline try/except rather than a
    # context manager, which would cost about 2 us a call.

    def write(self, data: bytes) -> None:
        """Send ``data`` as is (the driver has framed it)."""
        with self.lock:
            if not self._is_open:
                self.open()
            if self._suspect or self._late_until > -math.inf:
                self._before_command()
            try:
                self._write(data)
            except _MAPPED_OR_OURS as exc:
                raise self._failed(exc) from exc
            except BaseException:
                # Cut short by something else (a signal's exception, a bug):
                # a reply may be half read or still coming - resync first.
                self._suspect = True
                raise

    def read(self, terminator: bytes) -> bytes:
        """Read up to and including ``terminator``; return it with the terminator."""
        with self.lock:
            if not self._is_open:
                self.open()
            try:
                return self._read_until(terminator)
            except _MAPPED_OR_OURS as exc:
                raise self._failed(exc) from exc
            except BaseException:
                # Cut short by something else (a signal's exception, a bug):
                # a reply may be half read or still coming - resync first.
                self._suspect = True
                raise

    def read_bytes(self, count: int) -> bytes:
        """Read exactly ``count`` bytes."""
        with self.lock:
            if not self._is_open:
                self.open()
            try:
                return self._read_exact(count)
            except _MAPPED_OR_OURS as exc:
                raise self._failed(exc) from exc
            except BaseException:
                # Cut short by something else (a signal's exception, a bug):
                # a reply may be half read or still coming - resync first.
                self._suspect = True
                raise

    def query(self, data: bytes, terminator: bytes) -> bytes:
        """Write ``data`` and read one reply up to ``terminator``, under the lock."""
        with self.lock:
            if not self._is_open:
                self.open()
            if self._suspect or self._late_until > -math.inf:
                self._before_command()
            try:
                self._write(data)
                return self._read_until(terminator)
            except _MAPPED_OR_OURS as exc:
                raise self._failed(exc) from exc
            except BaseException:
                # Cut short by something else (a signal's exception, a bug):
                # a reply may be half read or still coming - resync first.
                self._suspect = True
                raise

    def _failed(self, exc: BaseException) -> LabctlError:
        """The labctl error for a failed I/O call; the link becomes suspect."""
        mapped = map_exception(exc, self.name)
        if isinstance(mapped, CommunicationError):
            self._suspect = True
        if isinstance(mapped, InstrumentTimeout):
            self._late_until = self._now() + self.settings.late_window
        return mapped

    def _before_command(self) -> None:
        """Resynchronize a suspect link; throw away a late reply that has arrived."""
        if self._suspect:
            junk = self.resynchronize()
            if junk:
                log.warning(
                    "%s: out of step; discarded %r before the next command", self.name, junk
                )
            return
        if self._now() > self._late_until:
            self._late_until = -math.inf
            return
        junk = self._take_pending()
        if junk:
            log.warning("%s: discarded late reply %r", self.name, junk)
            self.discarded.append(junk)

    def _now(self) -> float:
        """The clock the late-reply window is measured on (s)."""
        return time.monotonic()

    def mark_suspect(self) -> None:
        """Tell the transport a reply did not parse: resynchronize before next write."""
        self._suspect = True

    def resynchronize(self) -> bytes:
        """Drain input until the line is quiet; return what was thrown away."""
        with self.lock:
            self._ensure_open()
            with _mapped(self.name):
                junk = self._drain(self.settings.resync_quiet, self.settings.resync_limit)
            self._suspect = False
            if junk:
                log.info("%s: discarded %r while resynchronizing", self.name, junk)
                self.discarded.append(junk)
            return junk

    # -- helpers -----------------------------------------------------------

    def _ensure_open(self) -> None:
        if not self._is_open:
            self.open()

    # -- primitives --------------------------------------------------------

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _apply_timeout(self, timeout: float) -> None: ...

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _read_until(self, terminator: bytes) -> bytes: ...

    @abstractmethod
    def _read_exact(self, count: int) -> bytes: ...

    @abstractmethod
    def _drain(self, quiet: float, limit: float) -> bytes: ...

    def _take_pending(self) -> bytes:
        """Input that has already arrived, without waiting (a very short drain)."""
        return self._drain(0.001, 0.01)


_resource_managers: dict[str, Any] = {}


def _keep_reply_spaces() -> None:
    """Make pyvisa-sim keep spaces at the ends of replies.

    pyvisa-sim 0.7 strips spaces around every query *and reply* of a
    definition file (``parser._get_pair``), so an instrument whose prompt ends
    in a space - the SC10's ``b'> '`` - cannot be described. The query is
    still stripped (harmless); the reply is kept byte for byte.
    """
    try:
        from pyvisa_sim import parser
    except ImportError:  # pragma: no cover - pyvisa-sim is a dependency
        return
    if getattr(parser, "_labctl_keeps_reply_spaces", False):
        return
    no_response = parser.NoResponse

    def get_pair(dd: dict[str, str]) -> tuple[str, Any]:
        return dd["q"].strip(" "), dd.get("r", no_response)

    def get_triplet(dd: dict[str, str]) -> tuple[str, Any, Any]:
        return (
            dd["q"].strip(" "),
            dd.get("r", no_response),
            dd.get("e", no_response),
        )

    parser._get_pair = get_pair
    parser._get_triplet = get_triplet
    parser._labctl_keeps_reply_spaces = True


def resource_manager(backend: str) -> Any:
    """One :class:`pyvisa.ResourceManager` per backend string per process."""
    with _rm_lock:
        pyvisa = _load_pyvisa()
        manager = _resource_managers.get(backend)
        if manager is None:
            if backend.endswith("@sim"):
                _keep_reply_spaces()
            with _mapped(f"VISA backend {backend}"):
                manager = pyvisa.ResourceManager(backend)
            _resource_managers[backend] = manager
        return manager


class _EofRaisingSocket:
    """A socket whose ``recv`` raises :class:`ConnectionAbortedError` at end of stream.

    Why: pyvisa-py's TCPIP SOCKET session (``pyvisa_py/tcpip.py``,
    ``TCPIPSocketSession.read``) selects the socket readable, calls
    ``recv`` and treats ``b""`` - the peer closed the connection - like a
    select timeout: "no data yet". A readable socket at EOF stays readable,
    so it spins on ``select`` + ``recv`` until the VISA timeout runs out
    (seen: 75 % CPU for 600 s when the served ellipsometer died), and then
    reports a *timeout*, which the retry policy treats as a slow instrument
    instead of a lost link. ``ConnectionAbortedError`` is an :class:`OSError`
    that pyvisa-py does not catch on reads (nor does pyvisa's ``read_raw``);
    it reaches :class:`Transport` and :data:`EXCEPTION_MAP` makes it
    :class:`~labctl.errors.LinkLost`.

    Everything else - ``fileno`` (for ``select``), ``send``, ``setsockopt``,
    ``getsockopt``, ``close`` - goes to the wrapped socket unchanged.
    """

    __slots__ = ("_socket",)

    def __init__(self, sock: Any) -> None:
        self._socket = sock

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data: bytes = self._socket.recv(bufsize, flags)
        # A blocking socket returns b"" only at end of stream (a non-blocking
        # one with nothing to read raises BlockingIOError instead).
        if not data and bufsize > 0:
            raise ConnectionAbortedError(
                errno.ECONNABORTED, "the peer closed the connection (end of stream)"
            )
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


def _make_eof_visible(resource: Any) -> None:
    """Wrap a pyvisa-py TCPIP SOCKET session's socket in :class:`_EofRaisingSocket`.

    Only that one session type needs it: other backends (a vendor VISA,
    pyvisa-sim) and other interfaces are left as they are.
    """
    if resource.resource_info.interface_type != pyvisa.constants.InterfaceType.tcpip:
        return
    try:
        from pyvisa_py.tcpip import TCPIPSocketSession  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - pyvisa-py is a dependency
        return
    sessions = getattr(resource.visalib, "sessions", None)
    if not isinstance(sessions, dict):
        return
    session = sessions.get(resource.session)
    if not isinstance(session, TCPIPSocketSession):
        return
    interface = getattr(session, "interface", None)
    if interface is not None and not isinstance(interface, _EofRaisingSocket):
        session.interface = _EofRaisingSocket(interface)


class VisaTransport(Transport):
    """A VISA resource through pyvisa: ``@py`` (pyvisa-py) by default.

    ``backend`` is any pyvisa backend string: ``"@py"``, ``"@sim"`` or
    ``"path/to/definitions.yaml@sim"`` for pyvisa-sim, ``"@ivi"`` for a
    vendor VISA library.
    """

    def __init__(
        self,
        resource_name: str,
        settings: LinkSettings | None = None,
        *,
        backend: str = "@py",
        name: str | None = None,
    ) -> None:
        super().__init__(name or resource_name, settings or LinkSettings())
        self.resource_name = resource_name
        self.backend = backend
        self._resource: Any = None
        self._read_termination: str | None = None

    def _open(self) -> None:
        manager = resource_manager(self.backend)
        try:
            resource = manager.open_resource(self.resource_name)
        except (ValueError, ImportError) as exc:
            # pyvisa-py says "Please install PyUSB to use this resource type"
            # (and the like) with a ValueError: the link cannot exist here.
            problem = " ".join(str(exc).split()) or type(exc).__name__
            raise LinkLost(
                f"cannot open {self.resource_name} with backend {self.backend}: {problem}",
                instrument=self.name,
            ) from exc
        # A peer that closes the socket is a lost link now, not a timeout later.
        _make_eof_visible(resource)
        # Nothing is appended on write; reads stop where the driver says.
        resource.write_termination = ""
        resource.read_termination = None
        self._read_termination = None
        if resource.resource_info.interface_type == pyvisa.constants.InterfaceType.asrl:
            s = self.settings
            resource.baud_rate = s.baud_rate
            resource.data_bits = s.data_bits
            resource.parity = _PARITY_VISA[s.parity]
            resource.stop_bits = _STOP_VISA[int(s.stop_bits)]
            resource.flow_control = (
                pyvisa.constants.ControlFlow.rts_cts
                if s.rtscts
                else pyvisa.constants.ControlFlow.none
            )
            resource.end_output = pyvisa.constants.SerialTermination.none
        self._resource = resource

    def _close(self) -> None:
        resource, self._resource = self._resource, None
        if resource is not None:
            resource.close()

    def _apply_timeout(self, timeout: float) -> None:
        self._resource.timeout = timeout * 1000.0

    def _write(self, data: bytes) -> None:
        self._resource.write_raw(data)

    def _set_termination(self, terminator: bytes) -> None:
        wanted = terminator.decode("latin-1")
        if wanted != self._read_termination:
            # pyvisa stops on the last character; the driver checks the rest.
            self._resource.read_termination = wanted
            self._read_termination = wanted

    def _read_until(self, terminator: bytes) -> bytes:
        self._set_termination(terminator)
        # pyvisa stops on the terminator's last byte; a bare "\n" where
        # "\r\n" was due is left for the driver's framing to call garbled.
        data: bytes = self._resource.read_raw()
        return data

    def _read_exact(self, count: int) -> bytes:
        data: bytes = self._resource.read_bytes(count)
        return data

    def _drain(self, quiet: float, limit: float) -> bytes:
        resource = self._resource
        junk = bytearray()
        previous_timeout = resource.timeout
        deadline = time.monotonic() + limit
        resource.timeout = max(1.0, quiet * 1000.0)
        try:
            while time.monotonic() < deadline:
                try:
                    junk += resource.read_bytes(1, break_on_termchar=False)
                except pyvisa.errors.VisaIOError as exc:
                    if exc.error_code == _SC.error_timeout:
                        break
                    raise
        finally:
            resource.timeout = previous_timeout
        return bytes(junk)

    @property
    def visa_resource(self) -> Any:
        """The open pyvisa resource (for diagnostics and benchmarks)."""
        return self._resource


_PARITY_SERIAL = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class SerialTransport(Transport):
    """A serial port (or any pyserial URL: ``socket://``, ``loop://``).

    Reads take whatever the OS holds in one system call, 4 KiB at a time,
    into a buffer of our own; frames are cut from that buffer.
    """

    def __init__(
        self, port: str, settings: LinkSettings | None = None, *, name: str | None = None
    ) -> None:
        super().__init__(name or port, settings or LinkSettings())
        self.port = port
        self._serial: Any = None
        self._fd: int | None = None
        self._buffer = bytearray()

    def _open(self) -> None:
        s = self.settings
        port = serial.serial_for_url(
            self.port,
            do_not_open=True,
            baudrate=s.baud_rate,
            bytesize=s.data_bits,
            parity=_PARITY_SERIAL[s.parity],
            stopbits=s.stop_bits,
            rtscts=s.rtscts,
            timeout=self._timeout,
        )
        port.open()
        self._serial = port
        self._buffer.clear()
        # A plain POSIX port: read the file descriptor directly (select +
        # os.read), which is what pyserial does minus its per-byte overhead.
        fileno = getattr(port, "fileno", None)
        self._fd = None
        if callable(fileno) and type(port).__module__.startswith("serial.serialposix"):
            self._fd = fileno()

    def _close(self) -> None:
        port, self._serial = self._serial, None
        self._fd = None
        if port is not None:
            port.close()

    def _apply_timeout(self, timeout: float) -> None:
        self._serial.timeout = timeout

    def _write(self, data: bytes) -> None:
        if self._fd is not None:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        else:
            self._serial.write(data)

    def _fill(self, deadline: float) -> None:
        """Append whatever arrives before ``deadline`` (monotonic s) to the buffer."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InstrumentTimeout(
                f"no complete reply within {self._timeout:g} s (got {bytes(self._buffer)!r})",
                instrument=self.name,
            )
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return
            chunk = os.read(self._fd, 4096)
            if not chunk:
                raise LinkLost("the port closed (end of file)", instrument=self.name)
        else:
            self._serial.timeout = remaining
            chunk = self._serial.read(self._serial.in_waiting or 1)
        self._buffer += chunk

    def _read_until(self, terminator: bytes) -> bytes:
        deadline = time.monotonic() + self._timeout
        buffer = self._buffer
        while True:
            index = buffer.find(terminator)
            if index >= 0:
                end = index + len(terminator)
                frame = bytes(buffer[:end])
                del buffer[:end]
                return frame
            try:
                self._fill(deadline)
            except InstrumentTimeout:
                buffer.clear()
                raise

    def _read_exact(self, count: int) -> bytes:
        deadline = time.monotonic() + self._timeout
        buffer = self._buffer
        while len(buffer) < count:
            try:
                self._fill(deadline)
            except InstrumentTimeout:
                buffer.clear()
                raise
        frame = bytes(buffer[:count])
        del buffer[:count]
        return frame

    def _take_pending(self) -> bytes:
        junk = bytearray(self._buffer)
        self._buffer.clear()
        if self._fd is not None:
            while select.select([self._fd], [], [], 0)[0]:
                chunk = os.read(self._fd, 4096)
                if not chunk:
                    break
                junk += chunk
        else:
            waiting = self._serial.in_waiting
            if waiting:
                junk += self._serial.read(waiting)
        return bytes(junk)

    def _drain(self, quiet: float, limit: float) -> bytes:
        junk = bytearray(self._buffer)
        self._buffer.clear()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                self._fill(min(deadline, time.monotonic() + quiet))
            except InstrumentTimeout:
                break
            if not self._buffer:
                break
            junk += self._buffer
            self._buffer.clear()
        return bytes(junk)
