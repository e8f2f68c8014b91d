"""Intras SCK-300P spin coater (MiM-nano firmware), over its ASCII serial protocol.

Wire format (``shared/domain/instruments.md``):

* host -> device: ``Cmd[,param]:CRC\\r\\n``. The firmware ends a line at
  ``\\n``, drops bytes below 0x20 and keeps at most 20 characters. The CRC is
  optional on input; this driver always sends it, so a corrupted command is
  refused (``ERR,3``) instead of executed.
* device -> host: ``OK,<value>:<CRC>\\r\\n`` or ``ERR,<code>:<CRC>\\r\\n``;
  ``GetVersion`` answers ``MIM-nano 1.0.3:8B`` with no ``OK,``. The CRC is
  CRC-8 (polynomial 0x07, initial value 0) over the text before ``:``, as two
  upper-case hex digits. Every reply's CRC is checked.
* at power-up the board prints ``MIM-nano 1.0.3\\r\\n`` with no CRC.

The controller has no ramp, recipe memory or lid sensing: the host times spin
profiles and reads the speed back with ``GetRPM``.

Assumed (not in the public record), kept in this module's constants:

* the maximum speed, :data:`MAX_SPEED` (10000 rpm);
* ranges of the motor calibration values (0-9999; the 20-character line
  limit would cut anything longer once the CRC is appended);
* that ``GetRPM`` reports the measured speed, not the setpoint;
* the stop sequence of a known client: ``SetRPM,0``, 5 s, ``BLDCoff``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labctl.errors import HardwareStateError, InstrumentError, SetpointError
from labctl.settings import Setting, Settings, integer, table
from labctl.transport import LinkSettings
from labctl.units import Q_, U

from .base import Identity, Instrument, control, measurement, setting

__all__ = ["IntrasSCK300P", "crc8"]

#: Assumed top speed of the motor (rpm).
MAX_SPEED = 10000
#: Longest line the firmware keeps (characters, before CR LF).
MAX_LINE = 20
#: What a known client sends at start-up to calibrate the BLDC driver.
DEFAULT_CALIBRATION = {"start_pwm": 110, "slope": 950, "intercept": 550}
#: Time the known client waits between SetRPM,0 and BLDCoff (s).
SPIN_DOWN_WAIT = 5.0

ERROR_TEXT = {
    1: "unrecognized command",
    2: "bad parameter",
    3: "bad CRC",
    4: "invalid state (is the motor on?)",
}

_TERMINATOR = b"\r\n"


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0, no reflection, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class IntrasSCK300P(Instrument):
    """Spin coater. Speeds in rpm; also serves puddle development."""

    maker: ClassVar[str] = "Intras"
    model: ClassVar[str] = "SCK-300P"
    link_defaults: ClassVar[LinkSettings] = LinkSettings(baud_rate=19200, timeout=1.0)
    station_settings: ClassVar[Settings] = Settings(
        Setting(
            "calibration",
            table(
                Setting(
                    "start_pwm",
                    integer(0, 9999),
                    "Motor calibration sent at connect: PWM at start-up.",
                    default=DEFAULT_CALIBRATION["start_pwm"],
                ),
                Setting(
                    "slope",
                    integer(0, 9999),
                    "Motor calibration sent at connect: speed-to-PWM slope.",
                    default=DEFAULT_CALIBRATION["slope"],
                ),
                Setting(
                    "intercept",
                    integer(0, 9999),
                    "Motor calibration sent at connect: speed-to-PWM intercept.",
                    default=DEFAULT_CALIBRATION["intercept"],
                ),
            ),
            "Motor calibration sent at connect (a known client's values by default).",
        ),
    )

    speed = measurement("GetRPM", "Measured spindle speed (rpm).", unit=U.rpm, parse=int)
    target_speed = setting(
        "SetRPM,{}",
        "Speed setpoint (rpm). Refused by the controller (ERR,4) while the motor is off.",
        unit=U.rpm,
        limits=(0, MAX_SPEED),
        fmt="{:.0f}",
    )
    pwm = control(
        "GetPWM",
        "SetPWM,{}",
        "Open-loop motor drive, 0-1000 (dimensionless).",
        limits=(0, 1000),
        parse=int,
        fmt="{:.0f}",
    )
    direction = control(
        "GetDIR",
        "SetDIR,{}",
        "Spin direction flag, 0 or 1 (sense not documented).",
        values=(0, 1),
        parse=int,
        fmt="{:d}",
    )
    start_pwm = control(
        "GetStartPWM",
        "SetStartPWM,{}",
        "Motor calibration: PWM at start-up.",
        limits=(0, 9999),
        parse=int,
        fmt="{:.0f}",
    )
    slope = control(
        "GetSlope",
        "SetSlope,{}",
        "Motor calibration: speed-to-PWM slope.",
        limits=(0, 9999),
        parse=int,
        fmt="{:.0f}",
    )
    intercept = control(
        "GetIntercept",
        "SetIntercept,{}",
        "Motor calibration: speed-to-PWM intercept.",
        limits=(0, 9999),
        parse=int,
        fmt="{:.0f}",
    )

    # -- framing (the only place that knows the wire format) ---------------

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        line = f"{command}:{crc8(command.encode('ascii')):02X}"
        if len(line) > MAX_LINE:
            raise SetpointError(
                f"{line!r} is {len(line)} characters; the firmware keeps {MAX_LINE}",
                source=self.name,
                field=command.split(",")[0],
            )
        transport = self.transport
        transport.write(line.encode("ascii") + _TERMINATOR)
        raw = transport.read(_TERMINATOR)
        return self._parse_reply(command, raw)

    def _parse_reply(self, command: str, raw: bytes) -> str:
        try:
            text = raw[: -len(_TERMINATOR)].decode("ascii")
        except UnicodeDecodeError:
            raise self._garbled(f"non-ASCII reply {raw!r} to {command!r}") from None
        body, colon, checksum = text.rpartition(":")
        if not colon:
            if text.startswith("MIM-nano"):
                self.transport.mark_suspect()
                raise HardwareStateError(
                    f"power-up banner {text!r} in reply to {command!r}: the controller "
                    "restarted, motor state lost",
                    instrument=self.name,
                )
            raise self._garbled(f"reply {raw!r} to {command!r} has no CRC")
        if checksum != f"{crc8(body.encode('ascii')):02X}":
            raise self._garbled(f"bad CRC in reply {raw!r} to {command!r}")
        if body.startswith("OK,"):
            return body[3:]
        if body.startswith("ERR,"):
            try:
                code = int(body[4:])
            except ValueError:
                raise self._garbled(f"unreadable error reply {raw!r}") from None
            raise InstrumentError(
                ERROR_TEXT.get(code, "unknown error"),
                instrument=self.name,
                code=code,
                command=command,
            )
        if command == "GetVersion":
            return body
        raise self._garbled(f"reply {raw!r} to {command!r} is neither OK nor ERR")

    def _write_setting(self, command: str, value_text: str) -> None:
        # A setter answers OK,<value it took>: anything else means it did not.
        reply = self.send(command)
        if reply != value_text:
            raise HardwareStateError(
                f"{command!r} answered OK,{reply}: the controller did not take {value_text}",
                instrument=self.name,
            )

    # -- session ----------------------------------------------------------

    def identify(self) -> Identity:
        # A board that was just reset prints its banner unasked; clear it first.
        self.transport.resynchronize()
        firmware = self.ask("GetVersion")
        return Identity(self.maker, self.model, "unknown", firmware)

    def _configure_session(self) -> None:
        calibration = self.settings["calibration"]
        self.start_pwm = calibration["start_pwm"]
        self.slope = calibration["slope"]
        self.intercept = calibration["intercept"]

    def motor_on(self) -> None:
        """Energize the BLDC motor (``BLDCon``); needed before a speed is set."""
        self.send("BLDCon")

    def motor_off(self) -> None:
        """De-energize the motor (``BLDCoff``); the spindle coasts."""
        self.send("BLDCoff")

    def spin(self, speed: Any) -> None:
        """Turn the motor on if needed and set ``speed`` (rpm quantity)."""
        target_speed = type(self).target_speed
        target_speed.validate(self, speed)
        try:
            self.target_speed = speed
        except InstrumentError as exc:
            if exc.code != 4:
                raise
            self.motor_on()
            self.target_speed = speed

    def stop(self) -> None:
        """Stop as the known client does: ``SetRPM,0``, wait 5 s, ``BLDCoff``.

        Safe to call in any state: a motor that is already off (``ERR,4`` to
        ``SetRPM,0``) is simply switched off again.
        """
        try:
            self.target_speed = Q_(0, U.rpm)
        except InstrumentError as exc:
            if exc.code != 4:
                raise
        else:
            self.wait(SPIN_DOWN_WAIT)
        self.motor_off()

    def safe_state(self) -> None:
        """Spinner stopped, motor off."""
        self.stop()
