"""Framing shared by SCPI instruments over USBTMC (Thorlabs DC2200, PM100D).

Commands and replies end with ``\\n``; no echo, no prompt. A command that
changes something is followed by ``SYST:ERR?`` so a refused command surfaces
as an :class:`~labctl.errors.InstrumentError` with the instrument's code and
text, instead of passing silently (SCPI instruments do not answer a set
command). Queries are not followed by ``SYST:ERR?``: a refused query times
out or answers garbage, both of which are caught anyway, and the hot path
stays one round trip.
"""

from __future__ import annotations

from typing import ClassVar

from labctl.errors import InstrumentError
from labctl.transport import LinkSettings

from .base import Identity, Instrument

__all__ = ["ScpiInstrument", "parse_scpi_error"]

_END = b"\n"


def parse_scpi_error(reply: str) -> tuple[int, str]:
    """Split a ``SYST:ERR?`` reply such as ``-113,"Undefined header"``."""
    code_text, _, message = reply.partition(",")
    return int(code_text), message.strip().strip('"')


class ScpiInstrument(Instrument):
    """An SCPI instrument with a ``SYST:ERR?`` queue."""

    link_defaults: ClassVar[LinkSettings] = LinkSettings(timeout=2.0)

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        transport = self.transport
        if expect_reply:
            raw = transport.query(command.encode("ascii") + _END, _END)
            try:
                return raw[:-1].decode("ascii")
            except UnicodeDecodeError:
                raise self._garbled(f"non-ASCII reply {raw!r} to {command!r}") from None
        transport.write(command.encode("ascii") + _END)
        self.check_errors(command)
        return ""

    def check_errors(self, command: str | None = None) -> None:
        """Pop the SCPI error queue; raise the first error found (queue is emptied)."""
        first: tuple[int, str] | None = None
        for _ in range(32):  # the queue is finite; never loop forever on a broken reply
            reply = self.ask("SYST:ERR?")
            try:
                code, message = parse_scpi_error(reply)
            except ValueError:
                raise self._garbled(f"SYST:ERR? answered {reply!r}") from None
            if code == 0:
                break
            first = first or (code, message)
        if first is not None:
            raise InstrumentError(first[1], instrument=self.name, code=first[0], command=command)

    def identify(self) -> Identity:
        reply = self.ask("*IDN?")
        parts = [p.strip() for p in reply.split(",")]
        if len(parts) != 4:
            raise self._garbled(f"*IDN? answered {reply!r}, expected 4 fields")
        return Identity(*parts)

    def clear_status(self) -> None:
        """``*CLS``: clear the status registers and the error queue."""
        self.transport.write(b"*CLS\n")
