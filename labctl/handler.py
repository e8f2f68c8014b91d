"""The wafer handler of a station file: labctl's handler protocol over TCP.

A station file's ``[handler]`` (:mod:`labctl.station`) names a wafer handler
reached over TCP - a real bench's, or the served virtual bench's - speaking
labctl's own small ASCII protocol (``docs/instruments/wafer_handler.md``).
:class:`SocketHandler` is its client: the runner moves wafers through it,
``labctl check`` asks it the time, a run on a served bench waits on the clock
it publishes. The protocol layer re-exports it (``protocols.handlers``) beside
the operator and virtual-bench handlers.

Only the standard library and :mod:`labctl.errors` are imported here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

__all__ = ["SocketHandler"]


class SocketHandler:
    """A wafer handler reached over TCP, speaking labctl's handler protocol.

    ``docs/instruments/wafer_handler.md``: one ASCII line per command, one
    reply line, ``OK[ value]`` or ``ERR reason``. Serves unattended runs on a
    bench that has one (the served virtual bench does).

    Every connection starts with ``AUTH <token>`` (the station file's
    ``[handler] token``); a handler that refuses it - or that asks for one
    when none is configured - is a :class:`~labctl.errors.StationFileError`
    (``handler.token``): a wrong file, not a busy bench, so nothing retries it.
    """

    attended = False

    def __init__(
        self,
        address: str,
        timeout: float = 30.0,
        *,
        token: str | None = None,
        source: str | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self.timeout = timeout
        self.token = token
        #: The station file it came from, named when the handler refuses the token.
        self.source = source
        self._stream: Any = None
        self._socket: Any = None
        #: Who this client holds the bench for (``LOCK``), re-taken on a new connection.
        self.owner: str | None = None
        #: Wraps the opening of the connection's stream: ``hook(open_stream) -> stream``.
        #: A recording (``--record``) records the lines through it; a replay answers them.
        self.stream_hook: Callable[[Callable[[], Any]], Any] | None = None

    @classmethod
    def from_station(cls, config: Any, timeout: float = 30.0) -> SocketHandler:
        """The handler of a :class:`labctl.station.StationConfig` (its ``[handler]``)."""
        return cls(
            config.handler,
            timeout,
            token=getattr(config, "handler_token", None),
            source=getattr(config, "source", None),
        )

    def _refused(self, reply: str) -> Exception:
        from labctl.errors import StationFileError

        why = reply[4:] if reply.startswith("ERR ") else reply
        if self.token is None:
            problem = f"the wafer handler asks for a token and this station file has none ({why})"
        else:
            problem = (
                f"the wafer handler refused the token ({why}): use the station file"
                " the running `labctl sim serve` wrote"
            )
        return StationFileError(problem, source=self.source, field="handler.token")

    def _exchange(self, command: str) -> str:
        try:
            self._stream.write(command.encode("ascii") + b"\n")
            self._stream.flush()
            reply = str(self._stream.readline().decode("ascii", "replace").strip())
        except BaseException:
            # Cut short (a signal, a timeout): a reply may still be on its way
            # and would answer the next command. Only a new connection is sure.
            self.close()
            raise
        if not reply:
            raise OSError("the handler closed the connection")
        return reply

    def _open_stream(self) -> Any:
        import socket

        connection = socket.create_connection(self.address, timeout=self.timeout)
        self._socket = connection
        return connection.makefile("rwb")

    def _connect(self) -> None:
        from labctl.errors import BenchBusy

        hook = self.stream_hook
        self._stream = self._open_stream() if hook is None else hook(self._open_stream)
        if self.token is not None:
            reply = self._exchange(f"AUTH {self.token}")
            if reply != "OK":
                self.close()
                raise self._refused(reply)
        if self.owner is not None:
            # The bench lock belongs to a connection: a new one must take it again.
            reply = self._exchange(f"LOCK {self.owner}")
            if reply.startswith("ERR authentication required"):
                self.close()
                raise self._refused(reply)
            if reply != "OK":
                self.close()
                raise BenchBusy(f"the bench is in use: {reply[4:]}", holder=reply[4:])

    def _call(self, command: str) -> str:
        from labctl.errors import InstrumentError, LinkLost

        for attempt in (1, 2):
            try:
                if self._stream is None:
                    self._connect()
                reply = self._exchange(command)
                if reply.startswith("ERR authentication required"):
                    self.close()
                    raise self._refused(reply)
                break
            except OSError as exc:
                self._stream = None
                if attempt == 2 or command.split()[0] not in ("WHERE", "TIME", "CLOCK", "OWNER"):
                    # An action is never re-sent blindly: the caller decides.
                    raise LinkLost(f"wafer handler {self.address}: {exc}") from exc
        if reply.startswith("ERR"):
            raise InstrumentError(reply[4:], instrument="wafer handler", command=command)
        return str(reply[3:])

    def check(self) -> float:
        """Connect, authenticate and ask the bench time (s): what ``labctl check`` asks.

        Raises :class:`~labctl.errors.StationFileError` for a refused token,
        :class:`~labctl.errors.LinkLost` when nothing answers. Moves nothing.
        """
        try:
            return float(self._call("TIME"))
        finally:
            self.close()

    def clock(self) -> tuple[float, float] | None:
        """The served bench's clock, ``(speed, epoch)``: bench s per wall s, and the
        Unix time at which it read 0; ``None`` for a handler that keeps none (a
        real bench's, which runs on real time).

        A run on a served bench waits on this clock, so its bakes, calibration
        ages and interlock hysteresis pass as fast as the bench's physics.
        """
        from labctl.errors import InstrumentError

        try:
            reply = self._call("CLOCK")
        except InstrumentError:
            return None
        fields = dict(word.partition("=")[::2] for word in reply.split())
        try:
            speed, epoch = float(fields["speed"]), float(fields["epoch"])
        except (KeyError, ValueError):
            speed = epoch = math.nan
        if not (0 < speed <= 1e6 and math.isfinite(epoch)):
            # A run on a clock it cannot read would time its bakes wrong.
            raise InstrumentError(
                f"unreadable clock {reply!r}: expected speed=<0..1e6> epoch=<Unix s>",
                instrument="wafer handler",
                command="CLOCK",
            )
        return speed, epoch

    def lock(
        self, owner: str, *, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> None:
        """Hold the bench for ``owner`` (one bench, one runner); wait up to ``wait`` s.

        Raises :class:`labctl.errors.BenchBusy` naming the holder.
        """
        import time

        from labctl.errors import BenchBusy, InstrumentError

        # One ASCII line on the wire; the owner text names a data directory, whose path may not be.
        owner = " ".join(owner.encode("ascii", "backslashreplace").decode().split()) or "labctl"
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                self._call(f"LOCK {owner}")
            except InstrumentError as exc:
                if time.monotonic() >= deadline:
                    raise BenchBusy(
                        f"the bench at {self.address[0]}:{self.address[1]} is in use: {exc.text}",
                        holder=exc.text,
                    ) from exc
                if on_wait is not None and not told:
                    on_wait(f"waiting for the bench: {exc.text}")
                    told = True
                time.sleep(0.5)
                continue
            self.owner = owner
            return

    def close(self) -> None:
        """Close the connection (which lets the bench go)."""
        stream, self._stream = self._stream, None
        connection, self._socket = self._socket, None
        for part in (stream, connection):
            if part is not None:
                with contextlib.suppress(OSError):
                    part.close()

    def new_wafer(self, wafer_id: str) -> None:
        from labctl.errors import InstrumentError

        try:
            self._call(f"WHERE {wafer_id}")  # it exists already (a resumed run): keep it
        except InstrumentError:
            self._call(f"NEW {wafer_id}")

    def load(self, wafer_id: str, station: str) -> None:
        self._call(f"LOAD {wafer_id} {station}")

    def unload(self, station: str) -> None:
        self._call(f"UNLOAD {station}")

    def manual(self, action: str) -> None:
        commands = {
            "dispense resist": "DISPENSE RESIST",
            "dispense developer": "DISPENSE DEVELOPER",
            "rinse": "RINSE",
            "dry": "DRY",
        }
        self._call(commands[action])

    def where(self, wafer_id: str) -> str | None:
        """``WHERE``: the tool holding the wafer, ``"cassette"``, or None for an unknown wafer."""
        from labctl.errors import InstrumentError

        try:
            return self._call(f"WHERE {wafer_id}") or None
        except InstrumentError:
            return None
