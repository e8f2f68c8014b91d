"""Simulated Newport ESP301 motion controller: two axes (mm) carrying the wafer and the meter.

Wire protocol: commands end with ``\\r``, replies ``\\r\\n``; ``[axis]MN[params]``,
case-insensitive, several commands per line separated by ``;``; set commands
are silent and errors go to a 10-deep FIFO read with ``TE?`` (code) or
``TB?`` (``code, timestamp, message``; timestamps in 400 us servo ticks).

Assumed where the public record is silent: a motion command on an axis whose
motor is off is refused with code ``<axis>08`` MOTOR NOT ENABLED; a target
outside the software limits with code 7 PARAMETER OUT OF RANGE; ``WS`` makes
the controller busy until the axis stops.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from .base import SimDevice

__all__ = ["ESP301Sim"]

VERSION = "ESP301 Version 3.0.2 06/12/17"
AXES = (1, 2)
TICK = 0.0004
MESSAGES = {
    0: "NO ERROR DETECTED",
    6: "COMMAND DOES NOT EXIST",
    7: "PARAMETER OUT OF RANGE",
    9: "AXIS NUMBER NOT AVAILABLE",
    8: "MOTOR NOT ENABLED",
}
_COMMAND = re.compile(r"\s*(\d*)\s*([A-Za-z]{2})(\??)\s*(.*?)\s*")


class Axis:
    def __init__(self, travel: float) -> None:
        self.position = 0.0
        self.target = 0.0
        self.motor_on = False
        self.left = -travel
        self.right = travel
        self.units = 2

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ESP301Sim(SimDevice):
    role: ClassVar[str] = "exposure_stage"
    input_terminator: ClassVar[bytes] = b"\r"
    baud_rate: ClassVar[int | None] = 19200
    latency: ClassVar[float] = 0.002

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        travel = self.bench.parameters.stage_travel
        self.axes = {n: Axis(travel) for n in AXES}
        self.errors: list[tuple[int, int]] = []

    # -- physics -----------------------------------------------------------------

    def evolve(self, now: float) -> None:
        dt = now - self.now
        if dt > 0:
            step = self.bench.parameters.stage_speed * dt
            for axis in self.axes.values():
                if not axis.motor_on:
                    continue
                delta = axis.target - axis.position
                axis.position = (
                    axis.target
                    if abs(delta) <= step
                    else axis.position + step * (1 if delta > 0 else -1)
                )
        self.now = max(self.now, now)

    def position(self) -> tuple[float, float]:
        return self.axes[1].position, self.axes[2].position

    def time_to_stop(self) -> float:
        speed = self.bench.parameters.stage_speed
        return (
            max(abs(a.target - a.position) / speed for a in self.axes.values() if a.motor_on)
            if any(a.motor_on for a in self.axes.values())
            else 0.0
        )

    # -- protocol ----------------------------------------------------------------

    def _error(self, code: int) -> None:
        if len(self.errors) < 10:
            self.errors.append((code, int(self.now / TICK)))

    def execute(self, line: bytes, now: float) -> tuple[bytes | None, float]:
        replies: list[str] = []
        busy = 0.0
        for part in line.decode("ascii", "replace").split(";"):
            if not part.strip():
                continue
            reply, extra = self.command(part)
            busy += extra
            if reply is not None:
                replies.append(reply)
        if not replies:
            return None, busy
        return "".join(f"{r}\r\n" for r in replies).encode("ascii"), busy

    def handle(self, line: bytes) -> bytes | None:
        return self.execute(line, self.now)[0]

    def command(self, part: str) -> tuple[str | None, float]:
        match = _COMMAND.fullmatch(part)
        if not match:
            self._error(6)
            return None, 0.0
        axis_text, name, query, argument = match.groups()
        name = name.upper()
        if name in ("VE", "TE", "TB") and not axis_text:
            if name == "VE":
                return VERSION, 0.0
            code, stamp = self.errors.pop(0) if self.errors else (0, int(self.now / TICK))
            if name == "TE":
                return str(code), 0.0
            message = MESSAGES.get(code % 100, "AXIS ERROR")
            return f"{code}, {stamp}, {message}", 0.0
        if name not in (
            "MO",
            "MF",
            "PA",
            "PR",
            "TP",
            "DP",
            "MD",
            "WS",
            "OR",
            "DH",
            "SN",
            "SL",
            "SR",
            "ST",
        ):
            self._error(6)
            return None, 0.0
        if not axis_text or int(axis_text) not in self.axes:
            self._error(9)
            return None, 0.0
        number = int(axis_text)
        axis = self.axes[number]
        if name == "TP" or (query and name in ("DP", "MD", "MO", "SN", "SL", "SR")):
            values = {
                "TP": f"{axis.position:.5f}",
                "DP": f"{axis.target:.5f}",
                "MD": "1" if abs(axis.target - axis.position) < 1e-9 else "0",
                "MO": "1" if axis.motor_on else "0",
                "SN": str(axis.units),
                "SL": f"{axis.left:.5f}",
                "SR": f"{axis.right:.5f}",
            }
            return values[name], 0.0
        if name in ("MO", "MF"):
            axis.motor_on = name == "MO"
            if not axis.motor_on:
                axis.target = axis.position
            self.bench.changed()
            return None, 0.0
        if name == "ST":
            axis.target = axis.position
            self.bench.changed()
            return None, 0.0
        if name == "WS":
            return None, self.time_to_stop()
        try:
            value = float(argument) if argument else None
        except ValueError:
            self._error(7)
            return None, 0.0
        if name in ("PA", "PR", "OR") and not axis.motor_on:
            self._error(number * 100 + 8)
            return None, 0.0
        if name == "PA" or name == "PR":
            if value is None:
                self._error(7)
                return None, 0.0
            target = value if name == "PA" else axis.target + value
            if not axis.left <= target <= axis.right:
                self._error(7)
                return None, 0.0
            axis.target = target
        elif name == "OR":
            if value is not None and value not in range(7):
                self._error(7)
                return None, 0.0
            axis.target = 0.0
        elif name == "DH":
            offset = value or 0.0
            axis.position = axis.target = offset
        elif name in ("SL", "SR") and value is not None:
            if name == "SL":
                axis.left = value
            else:
                axis.right = value
        elif name == "SN":
            if value is None or int(value) not in range(12):
                self._error(7)
                return None, 0.0
            axis.units = int(value)
        self.bench.changed()
        return None, 0.0

    def error_reply(self, line: bytes) -> bytes | None:
        # The controller refuses the command (an error in the FIFO) but still
        # answers the queries on the same line, TB? included.
        self._error(7)
        queries = [
            p
            for p in line.decode("ascii", "replace").split(";")
            if p.strip().upper().startswith(("TB", "TE", "VE"))
        ]
        if not queries:
            return None
        return self.execute(";".join(queries).encode("ascii"), self.now)[0]

    def state(self) -> dict[str, Any]:
        return {"axes": {str(n): a.to_dict() for n, a in self.axes.items()}, "errors": self.errors}

    def restore(self, state: dict[str, Any]) -> None:
        for number, values in state["axes"].items():
            axis = self.axes[int(number)]
            for key, value in values.items():
                setattr(axis, key, value)
        self.errors = [tuple(e) for e in state["errors"]]

    def safe_state_report(self) -> dict[str, Any]:
        return {f"axis{n}_moving": abs(a.target - a.position) > 1e-9 for n, a in self.axes.items()}
