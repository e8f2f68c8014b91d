"""Simulated Intras SCK-300P spin coater (MiM-nano 1.0.3), with spin-coat physics.

Wire protocol as the firmware does it: a line ends at ``\\n``; bytes below
0x20 are dropped (so ``\\r`` goes); at most 20 characters are kept; an
optional ``:CRC`` is checked (``ERR,3`` when wrong). Replies
``OK,<value>:<CRC>\\r\\n`` / ``ERR,<code>:<CRC>\\r\\n``; the CRC is CRC-8
(polynomial 0x07, init 0) over the text before ``:``.

Physics: the motor follows its setpoint with a first-order response; a
wafer with a wet film thins and dries as it spins
(:func:`sim_instruments.physics.spin_film_step`) until it sets - by drying
below ``film_set_wetness``, or in a bake; a set, baked or developed film
(:attr:`sim_instruments.wafer.Wafer.flows` false) never thins on the spinner,
so a develop's spin-dry leaves a film coated at any speed as it is. A
developer puddle develops the film until it is rinsed.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .. import physics
from .base import SimDevice

__all__ = ["SCK300PSim"]

FIRMWARE = "MIM-nano 1.0.3"
MAX_SPEED = 10000
MAX_LINE = 20
#: Open-loop speed per unit of PWM (rpm per count), assumed.
RPM_PER_PWM = 9.0
#: Coast-down time constant with the motor off (s), assumed.
COAST_TIME = 3.0


def _crc_table() -> list[int]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc(text: str) -> str:
    value = 0
    for byte in text.encode("ascii", "replace"):
        value = _TABLE[value ^ byte]
    return f"{value:02X}"


def framed(body: str) -> bytes:
    return f"{body}:{crc(body)}\r\n".encode("ascii")


class SCK300PSim(SimDevice):
    role: ClassVar[str] = "spin_coater"
    input_terminator: ClassVar[bytes] = b"\n"
    baud_rate: ClassVar[int | None] = 19200
    latency: ClassVar[float] = 0.002

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.motor_on = False
        self.closed_loop = True
        self.target_rpm = 0.0
        self.pwm = 0
        self.direction = 0
        self.calibration = {"StartPWM": 0, "Slope": 0, "Intercept": 0}
        self.speed = 0.0
        #: What sits on the wafer: None, "developer" or "water".
        self.puddle: str | None = None

    def banner(self) -> bytes:
        return f"{FIRMWARE}\r\n".encode("ascii")

    # -- physics -----------------------------------------------------------------

    def commanded_speed(self) -> float:
        if not self.motor_on or self.physical_fault("spinner_stall"):
            return 0.0
        return self.target_rpm if self.closed_loop else self.pwm * RPM_PER_PWM

    def evolve(self, now: float) -> None:
        bench = self.bench.parameters
        step = bench.spin_step
        wafer = self.bench.wafer_on(self.role)
        resist = wafer.resist_parameters if wafer is not None else None
        while self.now < now:
            target = self.commanded_speed()
            wet = wafer is not None and resist is not None and wafer.flows
            stall = self.fault_start("spinner_stall")
            stall_pending = stall is not None and self.now < stall < now
            if abs(self.speed - target) < 0.01 and not wet and not stall_pending:
                # Steady: nothing to integrate, jump (a night of idle polling stays cheap).
                self.speed = target
                if wafer is not None and self.puddle == "developer":
                    wafer.develop_time += now - self.now
                self.now = now
                return
            end = min(now, self.now + step)
            if stall is not None and self.now < stall < end:
                end = stall
            dt = end - self.now
            target = self.commanded_speed()
            # Powered, the controller brakes to its target; unpowered, it coasts.
            tau = bench.motor_time_constant if self.motor_on else COAST_TIME
            if self.physical_fault("spinner_stall"):
                tau = bench.motor_time_constant  # a stalled rotor stops hard
            speed_before = self.speed
            self.speed = target + (self.speed - target) * math.exp(-dt / tau)
            mean_speed = 0.5 * (speed_before + self.speed)
            if wafer is not None and resist is not None and wafer.flows:
                wafer.spun_thickness, wafer.wetness = physics.spin_film_step(
                    resist, wafer.spun_thickness, wafer.wetness, mean_speed, dt
                )
            if wafer is not None and self.puddle == "developer":
                wafer.develop_time += dt
            self.now = end

    # -- protocol ----------------------------------------------------------------

    def handle(self, line: bytes) -> bytes | None:
        text = bytes(b for b in line if b >= 0x20).decode("ascii", "replace")[:MAX_LINE]
        if not text:
            return None
        body, colon, checksum = text.partition(":")
        if colon and checksum.upper() != crc(body):
            return framed("ERR,3")
        name, _, parameter = body.partition(",")
        return self.command(name, parameter)

    def command(self, name: str, parameter: str) -> bytes:
        if name == "GetVersion" and not parameter:
            return framed(FIRMWARE)
        if name == "GetRPM" and not parameter:
            ripple = (
                self.rng.gauss(0.0, self.bench.parameters.motor_ripple) if self.speed > 1 else 0
            )
            return framed(f"OK,{max(0, round(self.speed + ripple))}")
        if name in ("BLDCon", "BLDCoff") and not parameter:
            self.motor_on = name == "BLDCon"
            self.bench.changed()
            return framed("OK,0")
        getters = {
            "GetPWM": lambda: self.pwm,
            "GetDIR": lambda: self.direction,
            "GetStartPWM": lambda: self.calibration["StartPWM"],
            "GetSlope": lambda: self.calibration["Slope"],
            "GetIntercept": lambda: self.calibration["Intercept"],
        }
        if name in getters and not parameter:
            return framed(f"OK,{getters[name]()}")
        setters = {"SetRPM", "SetPWM", "SetDIR", "SetStartPWM", "SetSlope", "SetIntercept"}
        if name not in setters:
            return framed("ERR,1")
        if not parameter.isdigit():
            return framed("ERR,2")
        value = int(parameter)
        if name == "SetRPM":
            if value > MAX_SPEED:
                return framed("ERR,2")
            if not self.motor_on:
                return framed("ERR,4")
            self.target_rpm = float(value)
            self.closed_loop = True
        elif name == "SetPWM":
            if value > 1000:
                return framed("ERR,2")
            self.pwm = value
            self.closed_loop = False
        elif name == "SetDIR":
            if value not in (0, 1):
                return framed("ERR,2")
            self.direction = value
        else:
            if value > 9999:
                return framed("ERR,2")
            self.calibration[name[3:]] = value
        self.bench.changed()
        return framed(f"OK,{value}")

    def error_reply(self, line: bytes) -> bytes:
        return framed("ERR,4")

    # -- bench actions (a person or a handler at the spinner) -----------------------

    def dispense_developer(self) -> None:
        self.puddle = "developer"

    def rinse(self) -> None:
        self.puddle = "water"

    def spin_dry(self) -> None:
        self.puddle = None

    def state(self) -> dict[str, Any]:
        return {
            "motor_on": self.motor_on,
            "closed_loop": self.closed_loop,
            "target_rpm": self.target_rpm,
            "pwm": self.pwm,
            "direction": self.direction,
            "calibration": self.calibration,
            "speed": self.speed,
            "puddle": self.puddle,
        }

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def safe_state_report(self) -> dict[str, Any]:
        return {"motor_on": self.motor_on, "speed_rpm": self.speed, "target_rpm": self.target_rpm}
