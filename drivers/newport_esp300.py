"""Newport ESP300 / ESP301 motion controller (dose-matrix stage), over RS-232.

Wire format (``shared/domain/instruments.md``): 19200 8N1, RTS/CTS
(often disabled in practice: the station file decides). Commands end with
``\\r``, replies with ``\\r\\n``; no echo, no prompt. Syntax
``[axis]MN[params]``; several commands on one line are separated by ``;``.

A command that sets something gets no reply, so the driver appends ``;TB?``
to it - one line, one round trip - and reads the error FIFO's answer
``code, timestamp, message``: code 0 is ``NO ERROR DETECTED``; codes above
100 are axis errors (first digit the axis). The FIFO is emptied at connect so
an old error is never blamed on a new command. Queries are sent alone.

Positions are in millimetres: the driver reads each axis's units (``SN?``)
at connect and refuses to drive an axis that is not set to mm (code 2),
rather than guess a conversion. Soft travel limits (``SL?``/``SR?``) are read
at connect; a target outside them is refused before it is sent.

Assumed: ``VE?`` answers ``<model> Version <firmware...>``; the controller
reports no serial number. After hitting a travel limit the controller is
silent for 2-5 s: a query then times out and the caller decides.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labctl.errors import HardwareStateError, InstrumentError, InstrumentTimeout, SetpointError
from labctl.settings import Setting, Settings, integer, list_of
from labctl.transport import LinkSettings
from labctl.units import Q_, U

from .base import Identity, Instrument, measurement, setting

__all__ = ["EspAxis", "NewportESP300"]

_COMMAND_END = b"\r"
_REPLY_END = b"\r\n"
#: ``SN`` code for millimetres.
UNITS_MM = 2
#: How often motion-done is polled (s).
POLL_INTERVAL = 0.05
#: Longest wait for a move and for a home search.
MOVE_TIMEOUT = Q_(60.0, U.s)
HOME_TIMEOUT = Q_(120.0, U.s)


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def parse_error_entry(reply: str) -> tuple[int, int, str]:
    """Split a ``TB?`` reply ``'9, 451339, AXIS NUMBER NOT AVAILABLE'``."""
    code, timestamp, message = (part.strip() for part in reply.split(",", 2))
    return int(code), int(timestamp), message


class NewportESP300(Instrument):
    """The controller: framing, error FIFO, identity. Axes via :meth:`axis`."""

    maker: ClassVar[str] = "Newport"
    model: ClassVar[str] = "ESP300"
    link_defaults: ClassVar[LinkSettings] = LinkSettings(baud_rate=19200, timeout=2.0)
    station_settings: ClassVar[Settings] = Settings(
        Setting(
            "axes",
            list_of(integer(1, 3), (1, 3), unique=True),
            "Axes configured at connect; the exposure tool moves the first as x, the second as y.",
            default=[1],
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._axes: dict[int, EspAxis] = {}

    # -- framing ----------------------------------------------------------

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        line = command if expect_reply else f"{command};TB?"
        raw = self.transport.query(line.encode("ascii") + _COMMAND_END, _REPLY_END)
        if not raw.endswith(_REPLY_END):
            raise self._garbled(f"reply {raw!r} to {command!r} does not end in CR LF")
        try:
            text = raw[:-2].decode("ascii").strip()
        except UnicodeDecodeError:
            raise self._garbled(f"non-ASCII reply {raw!r} to {command!r}") from None
        if expect_reply:
            return text
        try:
            code, _, message = parse_error_entry(text)
        except ValueError:
            raise self._garbled(f"TB? after {command!r} answered {text!r}") from None
        if code != 0:
            raise InstrumentError(message, instrument=self.name, code=code, command=command)
        return ""

    # -- session ----------------------------------------------------------

    def identify(self) -> Identity:
        reply = self.ask("VE?")
        model, _, firmware = reply.partition(" ")
        firmware = firmware.removeprefix("Version").strip()
        if not model:
            raise self._garbled(f"VE? answered {reply!r}")
        return Identity(self.maker, model, "unknown", firmware or "unknown")

    def _configure_session(self) -> None:
        self.clear_errors()
        for number in self.settings["axes"]:
            self.axis(number).configure()

    def clear_errors(self) -> list[tuple[int, int, str]]:
        """Pop the 10-deep error FIFO until empty; return what was in it."""
        entries = []
        for _ in range(10):
            code, timestamp, message = parse_error_entry(self.ask("TB?"))
            if code == 0:
                break
            entries.append((code, timestamp, message))
        return entries

    def axis(self, number: int) -> EspAxis:
        """Axis ``number`` (1-3), sharing this controller's link."""
        if number not in self._axes:
            if not 1 <= number <= 3:
                raise SetpointError(
                    "axes are numbered 1 to 3", source=self.name, field=f"axis {number}"
                )
            self._axes[number] = EspAxis(self, number)
        return self._axes[number]

    def safe_state(self) -> None:
        """Nothing moves: stop every configured axis (``ST``)."""
        for axis in self._axes.values():
            axis.stop()


class EspAxis(Instrument):
    """One axis of an ESP300/301. Positions in mm."""

    maker: ClassVar[str] = "Newport"
    model: ClassVar[str] = "ESP300 axis"

    def __init__(self, controller: NewportESP300, number: int) -> None:
        super().__init__(
            controller.transport, name=f"{controller.name} axis {number}", clock=controller.clock
        )
        self.controller = controller
        self.number = number
        self.travel_limits: tuple[Any, Any] = (Q_(-1e9, U.mm), Q_(1e9, U.mm))

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        return self.controller._exchange(f"{self.number}{command}", expect_reply=expect_reply)

    position = measurement("TP?", "Actual position (mm).", unit=U.mm)
    target_position = measurement("DP?", "Target (desired) position (mm).", unit=U.mm)
    motion_done = measurement("MD?", "True when motion is done.", parse=_flag)
    motor_enabled = measurement("MO?", "True when the motor is powered.", parse=_flag)
    units_code = measurement("SN?", "Units code (2 = mm).", parse=lambda t: int(float(t)))
    left_limit = measurement("SL?", "Left (negative) software travel limit (mm).", unit=U.mm)
    right_limit = measurement("SR?", "Right (positive) software travel limit (mm).", unit=U.mm)
    _move_absolute = setting(
        "PA{}", "Start an absolute move (mm).", unit=U.mm, limits="travel_limits", fmt="{:.5f}"
    )
    _move_relative = setting("PR{}", "Start a relative move (mm).", unit=U.mm, fmt="{:.5f}")

    def identify(self) -> Identity:
        return self.controller.identity or self.controller.identify()

    def configure(self) -> None:
        """Read units and travel limits (refusing an axis not in mm); power the motor."""
        code = self.units_code
        if code != UNITS_MM:
            raise HardwareStateError(
                f"units code {code}, not {UNITS_MM} (mm): set the axis to mm on the controller",
                instrument=self.name,
            )
        self.travel_limits = (self.left_limit, self.right_limit)
        # The controller powers up with its motors off; a move would be refused.
        self.motor_on()

    def motor_on(self) -> None:
        """Power the motor (``MO``)."""
        self.send("MO")

    def motor_off(self) -> None:
        """Remove motor power (``MF``)."""
        self.send("MF")

    def stop(self) -> None:
        """Stop motion with the configured deceleration (``ST``)."""
        self.send("ST")

    def start_move_to(self, position: Any) -> None:
        """Start an absolute move to ``position`` (mm) within the travel limits."""
        self._move_absolute = position

    def start_move_by(self, distance: Any) -> None:
        """Start a relative move by ``distance`` (mm); the target is range-checked."""
        target = self.target_position + distance
        type(self)._move_absolute.validate(self, target)
        self._move_relative = distance

    def wait_until_done(self, timeout: Any = MOVE_TIMEOUT) -> None:
        """Poll ``MD?`` on the clock until motion is done, or raise after ``timeout``."""
        limit = timeout.m_as(U.s)
        start = self.clock.monotonic()
        while not self.motion_done:
            if self.clock.monotonic() - start > limit:
                raise InstrumentTimeout(f"motion not done after {limit:g} s", instrument=self.name)
            self.clock.sleep(POLL_INTERVAL)

    def move_to(self, position: Any, timeout: Any = MOVE_TIMEOUT) -> Any:
        """Move to ``position`` (mm), wait, and return the position read back."""
        self.start_move_to(position)
        self.wait_until_done(timeout)
        return self.position

    def home(self, mode: int = 0, timeout: Any = HOME_TIMEOUT) -> None:
        """Search for home (``OR<mode>``, mode 0-6) and wait."""
        if mode not in range(7):
            raise SetpointError(f"{mode} is not a home mode 0 to 6", source=self.name, field="OR")
        self.send(f"OR{mode}")
        self.wait_until_done(timeout)
