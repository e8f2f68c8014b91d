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

``ens`` *toggles* the enable state (there is no ``ens=`` and no "close"
command); :meth:`fire` and :meth:`close_shutter` therefore read ``ens?``
first and never send ``ens`` blindly. Reading first is not enough to close:
in single and repeat mode the enable drops by itself when the timed sequence
ends, and if that happens between the ``ens?`` read and the ``ens`` the
toggle fires a *second* sequence. :meth:`close_shutter` never sends ``ens``
in those modes while the sequence can still end by itself: it waits it out;
in the other modes it toggles once and reads back, and undoes a toggle that
opened (see its docstring).

Assumed (not in the public record), kept here:

* error strings ``CMD_NOT_DEFINED`` / ``CMD_ARG_INVALID`` come after the echo
  as a line of their own, before the prompt;
* ``id?`` answers a line containing ``SC10`` and ``VERSION <firmware>``;
  the controller reports no serial number;
* in single mode ``ens?`` returns to 0 once the timed exposure has closed,
  in repeat mode once the last of ``rep`` exposures has; in manual, auto
  and external-gate mode it stays 1 until the next ``ens``;
* ``trig``: 0 internal, 1 external; ``xto``: 0 trigger output follows the
  trigger, 1 it follows the shutter.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from labctl.errors import HardwareStateError, InstrumentError
from labctl.transport import LinkSettings
from labctl.units import Q_, U

from .base import Identity, Instrument, control, measurement

__all__ = ["MAX_TIME_MS", "SEQUENCE_MARGIN", "SEQUENCE_POLL", "ThorlabsSC10"]

#: ``open=`` and ``shut=`` take at most six digits of milliseconds.
MAX_TIME_MS = 999_999
#: Added to a timed sequence's programmed length before :meth:`ThorlabsSC10.close_shutter`
#: stops waiting for it to end by itself: shutter delays, jitter, link time.
SEQUENCE_MARGIN = Q_(1.0, U.s)
#: How often :meth:`ThorlabsSC10.close_shutter` reads ``ens?`` while a timed
#: sequence runs out.
SEQUENCE_POLL = Q_(0.05, U.s)
#: Modes in which an enabled sequence ends by itself (enable drops back to 0).
_SELF_ENDING_MODES = ("single", "repeat")

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
        """Close the shutter without ever sending an ``ens`` that could open it.

        The SC10 has no close command; ``ens`` toggles. Reading ``ens?`` = 1
        and then sending ``ens`` is a race in single and repeat mode: the
        timed sequence may end (enable drops to 0) between the read and the
        toggle, and the toggle then starts a second sequence - a second,
        unplanned exposure, seen in real aborts. So:

        * reads ``ens?``; not enabled: confirms ``closed?`` and is done,
          nothing sent (an ``ens`` would enable). Enabled: reads ``mode?``;
        * single / repeat mode, enabled: sends no ``ens``. It polls ``ens?``
          every :data:`SEQUENCE_POLL` on the driver's clock until the
          sequence has run out, for at most its programmed length read from
          the controller (``open?``; ``rep?`` x (``open?`` + ``shut?``))
          plus :data:`SEQUENCE_MARGIN`, then confirms ``closed?``. Only if it
          is still enabled after that (the controller is not doing what it
          was told) does it fall back to the toggle below;
        * manual, auto, external gate (enable never ends by itself): sends
          ``ens`` once and reads back ``ens?`` and ``closed?``. If it now
          reads enabled, that toggle opened it (something disabled it after
          the read): one more ``ens``, read back, and
          :class:`HardwareStateError` if it is still enabled or open. It
          never toggles in a loop.

        Waiting out a timed shot costs no dose: in safe state the engine
        switches the LED source off *before* it closes the shutter, so no
        light passes while this waits. Raises :class:`HardwareStateError`,
        naming what it read, when the shutter cannot be confirmed closed.
        """
        if not self.enabled:
            if not self.closed:
                # Disabled and still open: an "ens" would enable it, not close it.
                raise HardwareStateError(
                    "shutter reports open after disable (enable off, closed? 0); "
                    "'ens' would enable it, so nothing was sent",
                    instrument=self.name,
                )
            return
        mode = self.mode
        if mode in _SELF_ENDING_MODES:
            bound = self._sequence_length(mode) + SEQUENCE_MARGIN.m_as(U.s)
            if self._wait_until_disabled(bound):
                if not self.closed:
                    raise HardwareStateError(
                        f"{mode} sequence ended (enable off) but the shutter reports open",
                        instrument=self.name,
                    )
                return
        self._disable_by_toggle(mode)

    def _sequence_length(self, mode: str) -> float:
        """The programmed length of the timed sequence of ``mode`` (s), read from the device."""
        open_s = float(self.open_time.m_as(U.s))
        if mode == "single":
            return open_s
        shut_s = float(self.shut_time.m_as(U.s))
        return float(self.repeat_count) * (open_s + shut_s)

    def _wait_until_disabled(self, bound: float) -> bool:
        """Poll ``ens?`` for about ``bound`` seconds; True once it reads 0.

        A fixed number of polls, not a time comparison: the same bytes on any
        clock, so a simulated run repeats byte for byte, and on a real link
        the exchanges only add to the wait.
        """
        polls = max(1, math.ceil(bound / SEQUENCE_POLL.m_as(U.s)))
        for _ in range(polls):
            self.wait(SEQUENCE_POLL)
            if not self.enabled:
                return True
        return False

    def _disable_by_toggle(self, mode: str) -> None:
        """``ens`` once, read back; undo it once if it enabled. Never a loop."""
        self.send("ens")
        enabled = self.enabled
        closed = self.closed
        if enabled:
            # Our toggle enabled it: it went off after we read it on. Undo,
            # once. (In single mode that toggle fired a shot: this cuts it.)
            self.send("ens")
            enabled_again = self.enabled
            closed_again = self.closed
            if enabled_again or not closed_again:
                raise HardwareStateError(
                    f"shutter not closed in {mode} mode: after one 'ens' it read "
                    f"enabled, closed={int(closed)}; after a second 'ens' "
                    f"enabled={int(enabled_again)}, closed={int(closed_again)}",
                    instrument=self.name,
                )
            return
        if not closed:
            raise HardwareStateError(
                f"shutter reports open after disable (mode {mode}, enable off)",
                instrument=self.name,
            )

    def save_settings(self) -> None:
        """``save``: store mode, times and repeat count in the controller."""
        self.send("save")

    def safe_state(self) -> None:
        """Shutter closed (confirmed by read-back) by commands that cannot open it.

        See :meth:`close_shutter`: a timed shot in progress is waited out,
        never toggled (a toggle just after it ended would fire another one).
        The engine turns the LED source off first, so the wait delivers no
        more light.
        """
        self.close_shutter()
