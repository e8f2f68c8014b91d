"""Thorlabs SC10 shutter controller (exposure shutter), over RS-232.

Wire format (``shared/domain/instruments.md``): 9600 8N1, no flow control.
The host sends ``cmd\\r``; the controller echoes ``cmd\\r``; a query then
sends ``value\\r``; every exchange ends with the two-byte prompt ``b'> '``
and no terminator::

    b'ens?\\r'    ->  b'ens?\\r0\\r> '
    b'rep=10\\r'  ->  b'rep=10\\r> '

The prompt has a space in it, so it cannot be a read termination (pyvisa
waits on one byte): the framing reads the echo up to ``\\r``, then two bytes -
either the prompt, or the start of a value line that is read to ``\\r`` and
followed by the prompt. That logic is :meth:`ThorlabsSC10._exchange`, and
nowhere else. The echo is checked against the command sent: a mismatch means
the line is out of step and is resynchronized.

``ens`` *toggles* the enable state (there is no ``ens=``); :meth:`fire` and
:meth:`close_shutter` therefore read ``ens?`` first and never send ``ens``
blindly.

Assumed (not in the public record), kept here:

* error strings ``CMD_NOT_DEFINED`` / ``CMD_ARG_INVALID`` come after the echo
  as a line of their own, before the prompt;
* ``id?`` answers a line containing ``SC10`` and ``VERSION <firmware>``;
  the controller reports no serial number;
* in single mode ``ens?`` returns to 0 once the timed exposure has closed;
* ``trig``: 0 internal, 1 external; ``xto``: 0 trigger output follows the
  trigger, 1 it follows the shutter.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labctl.errors import HardwareStateError, InstrumentError
from labctl.transport import LinkSettings
from labctl.units import U

from .base import Identity, Instrument, control, measurement

__all__ = ["MAX_TIME_MS", "ThorlabsSC10"]

#: ``open=`` and ``shut=`` take at most six digits of milliseconds.
MAX_TIME_MS = 999_999

_PROMPT = b"> "
_CR = b"\r"
_ERRORS = ("CMD_NOT_DEFINED", "CMD_ARG_INVALID")


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


class ThorlabsSC10(Instrument):
    """Shutter controller. Times in ms."""

    maker: ClassVar[str] = "Thorlabs"
    model: ClassVar[str] = "SC10"
    link_defaults: ClassVar[LinkSettings] = LinkSettings(baud_rate=9600, timeout=1.0)

    mode = control(
        "mode?",
        "mode={}",
        "Operating mode.",
        values={"manual": 1, "auto": 2, "single": 3, "repeat": 4, "external_gate": 5},
    )
    repeat_count = control(
        "rep?",
        "rep={}",
        "Exposures in repeat mode (1-99).",
        limits=(1, 99),
        parse=int,
        fmt="{:.0f}",
    )
    trigger = control("trig?", "trig={}", "Trigger source.", values={"internal": 0, "external": 1})
    trigger_output = control(
        "xto?", "xto={}", "What the trigger output follows.", values={"trigger": 0, "shutter": 1}
    )
    open_time = control(
        "open?",
        "open={}",
        "Open time of a timed exposure (ms, whole).",
        unit=U.ms,
        limits=(1, MAX_TIME_MS),
        parse=int,
        fmt="{:.0f}",
    )
    shut_time = control(
        "shut?",
        "shut={}",
        "Shut time between repeated exposures (ms, whole).",
        unit=U.ms,
        limits=(1, MAX_TIME_MS),
        parse=int,
        fmt="{:.0f}",
    )
    enabled = measurement("ens?", "Enable state (True while the shutter is enabled).", parse=_flag)
    closed = measurement("closed?", "True when the shutter reports closed.", parse=_flag)
    interlock_tripped = measurement("interlock?", "True when the interlock is open.", parse=_flag)
    fast_baud = measurement("baud?", "True at 115200 baud, False at 9600.", parse=_flag)

    # -- framing ----------------------------------------------------------

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        transport = self.transport
        sent = command.encode("ascii") + _CR
        transport.write(sent)
        echo = transport.read(_CR)
        if echo != sent:
            raise self._garbled(f"echo {echo!r} does not match {sent!r}")
        head = transport.read_bytes(2)
        if head == _PROMPT:
            return ""
        line = head[:-1] if head.endswith(_CR) else head + transport.read(_CR)[:-1]
        prompt = transport.read_bytes(2)
        if prompt != _PROMPT:
            raise self._garbled(f"expected the prompt {_PROMPT!r} after {line!r}, got {prompt!r}")
        try:
            value = line.decode("ascii")
        except UnicodeDecodeError:
            raise self._garbled(f"non-ASCII reply {line!r} to {command!r}") from None
        if value in _ERRORS:
            raise InstrumentError(value, instrument=self.name, code=value, command=command)
        return value

    # -- session ----------------------------------------------------------

    def identify(self) -> Identity:
        reply = self.ask("id?")
        if "SC10" not in reply.upper():
            raise self._garbled(f"id? answered {reply!r}, which is not an SC10")
        _, _, firmware = reply.upper().partition("VERSION")
        return Identity(self.maker, self.model, "unknown", firmware.strip() or "unknown")

    def toggle_enable(self) -> None:
        """Send ``ens``: toggles the enable state. Prefer :meth:`fire` / :meth:`close_shutter`."""
        self.send("ens")

    def fire(self, open_time: Any) -> None:
        """One timed exposure: single mode, ``open=<ms>``, then ``ens``.

        Refuses to send ``ens`` when the controller is already enabled (it
        would toggle the shutter off, not fire it) or the interlock is open.
        Returns at once; the shutter closes by itself after ``open_time``.
        """
        type(self).open_time.validate(self, open_time)
        if self.interlock_tripped:
            raise HardwareStateError("interlock open: cannot expose", instrument=self.name)
        self.mode = "single"
        self.open_time = open_time
        if self.enabled:
            raise HardwareStateError(
                "already enabled: 'ens' would toggle it off; state unknown", instrument=self.name
            )
        self.send("ens")

    def open_manual(self) -> None:
        """Open and hold open (manual mode, enable), confirmed by ``closed?`` = 0."""
        if self.interlock_tripped:
            raise HardwareStateError("interlock open: cannot open", instrument=self.name)
        self.mode = "manual"
        if not self.enabled:
            self.send("ens")
        if self.closed:
            raise HardwareStateError("shutter reports closed after enable", instrument=self.name)

    def close_shutter(self) -> None:
        """Disable if enabled, then confirm ``closed?`` reads 1."""
        if self.enabled:
            self.send("ens")
        if not self.closed:
            raise HardwareStateError("shutter reports open after disable", instrument=self.name)

    def save_settings(self) -> None:
        """``save``: store mode, times and repeat count in the controller."""
        self.send("save")

    def safe_state(self) -> None:
        """Shutter closed (confirmed by read-back)."""
        self.close_shutter()
