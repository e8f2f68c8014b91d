"""Simulated Thorlabs SC10 shutter controller, timing real exposures.

Wire protocol: the host sends ``cmd\\r``; the controller echoes ``cmd\\r``,
a query adds ``value\\r``, and every exchange ends with the prompt ``> ``.
Errors ``CMD_NOT_DEFINED`` / ``CMD_ARG_INVALID`` come after the echo. ``ens``
toggles the enable state.

Physics: in single mode ``ens`` opens the shutter for the programmed time
plus the shutter's bias and jitter; in manual mode ``ens`` opens and closes
it; repeat and auto modes cycle open/shut. Light that passes while it is open
is delivered by the bench to whatever is under the beam (a wafer field or
the meter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from .base import SimDevice

__all__ = ["SC10Sim"]

IDENTITY = "THORLABS SC10 VERSION 1.07"
MODES = {1: "manual", 2: "auto", 3: "single", 4: "repeat", 5: "external_gate"}
MAX_MS = 999_999


class SC10Sim(SimDevice):
    role: ClassVar[str] = "exposure_shutter"
    input_terminator: ClassVar[bytes] = b"\r"
    baud_rate: ClassVar[int | None] = 9600
    latency: ClassVar[float] = 0.001

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = 1
        self.open_ms = 100
        self.shut_ms = 100
        self.repeat = 1
        self.trigger = 0
        self.trigger_output = 0
        self.baud = 0
        self.enabled = False
        #: Open intervals still to happen or in progress: [open_at, close_at].
        self.schedule: list[list[float]] = []
        self.interlock = False

    # -- physics -----------------------------------------------------------------

    def is_open(self, at: float | None = None) -> bool:
        at = self.now if at is None else at
        return any(start <= at < end for start, end in self.schedule)

    def evolve(self, now: float) -> None:
        # Deliver the light of every interval that has closed by now.
        remaining = []
        for start, end in self.schedule:
            if end <= now:
                self.bench.deliver_light(start, end)
            else:
                remaining.append([start, end])
        self.schedule = remaining
        if not self.schedule and self.mode in (3, 4) and self.enabled:
            self.enabled = False  # a timed sequence has run out: enable drops back
        self.now = max(self.now, now)

    def _actual(self, milliseconds: int) -> float:
        bench = self.bench.parameters
        error = bench.shutter_bias + self.rng.gauss(0.0, bench.shutter_jitter)
        return max(0.0, (milliseconds + error) / 1000.0)

    def _toggle(self) -> None:
        now = self.now
        if self.enabled:
            self.enabled = False
            # Disabling closes now: cut short whatever is open, drop the rest.
            cut = []
            for start, end in self.schedule:
                if start < now:
                    cut.append([start, min(end, now)])
            self.schedule = cut
            return
        self.enabled = True
        if self.mode == 1:  # manual: open until disabled
            self.schedule = [[now, float("inf")]]
        elif self.mode == 3:
            self.schedule = [[now, now + self._actual(self.open_ms)]]
        elif self.mode in (2, 4):
            cycles = self.repeat if self.mode == 4 else 10_000
            start = now
            intervals = []
            for _ in range(cycles):
                end = start + self._actual(self.open_ms)
                intervals.append([start, end])
                start = end + self.shut_ms / 1000.0
            self.schedule = intervals
        # external gate: the shutter follows an input this bench does not drive

    # -- protocol ----------------------------------------------------------------

    def handle(self, line: bytes) -> bytes | None:
        command = line.decode("ascii", "replace")
        value = self.command(command)
        echo = command.encode("ascii", "replace") + b"\r"
        if value is None:
            return echo + b"> "
        return echo + value.encode("ascii") + b"\r> "

    def command(self, command: str) -> str | None:
        queries: dict[str, Callable[[], str]] = {
            "id?": lambda: IDENTITY,
            "ens?": lambda: "1" if self.enabled else "0",
            "rep?": lambda: str(self.repeat),
            "mode?": lambda: str(self.mode),
            "trig?": lambda: str(self.trigger),
            "xto?": lambda: str(self.trigger_output),
            "open?": lambda: str(self.open_ms),
            "shut?": lambda: str(self.shut_ms),
            "closed?": lambda: "0" if self.is_open() else "1",
            "interlock?": lambda: "1" if self.interlock else "0",
            "baud?": lambda: str(self.baud),
        }
        if command in queries:
            return queries[command]()
        if command == "ens":
            if self.interlock:
                return "CMD_ARG_INVALID"
            self._toggle()
            self.bench.changed()
            return None
        if command in ("save", "savp"):
            return "1"
        if command in ("resp", "default"):
            if command == "default":
                self.mode, self.open_ms, self.shut_ms, self.repeat = 1, 100, 100, 1
                self.bench.changed()
            return None
        name, equals, argument = command.partition("=")
        limits = {
            "rep": (1, 99),
            "mode": (1, 5),
            "trig": (0, 1),
            "xto": (0, 1),
            "open": (0, MAX_MS),
            "shut": (0, MAX_MS),
            "baud": (0, 1),
        }
        if not equals or name not in limits:
            return "CMD_NOT_DEFINED"
        if not argument.isdigit() or len(argument) > 6:
            return "CMD_ARG_INVALID"
        value = int(argument)
        low, high = limits[name]
        if not low <= value <= high:
            return "CMD_ARG_INVALID"
        attribute = {
            "rep": "repeat",
            "mode": "mode",
            "trig": "trigger",
            "xto": "trigger_output",
            "open": "open_ms",
            "shut": "shut_ms",
            "baud": "baud",
        }[name]
        setattr(self, attribute, value)
        self.bench.changed()
        return None

    def error_reply(self, line: bytes) -> bytes:
        return line + b"\rCMD_ARG_INVALID\r> "

    def state(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in (
                "mode",
                "open_ms",
                "shut_ms",
                "repeat",
                "trigger",
                "trigger_output",
                "baud",
                "enabled",
                "schedule",
                "interlock",
            )
        }

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def safe_state_report(self) -> dict[str, Any]:
        return {"open": self.is_open(), "enabled": self.enabled}
