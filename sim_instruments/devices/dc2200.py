"""Simulated Thorlabs DC2200 LED driver with its LED head: the exposure source.

SCPI over USBTMC (``\\n``), short and long forms, case-insensitive; set
commands are silent and refusals go to the error queue. Physics: the LED's
irradiance at the wafer plane is proportional to its current, ages slowly
with on-time (exponential, L70 = ``led_l70_hours``: a year of nightly runs
costs about 2 %), has a little noise, and drops to (almost) nothing on a lamp
failure while the current keeps flowing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import physics
from .base import SimDevice
from .scpi import ErrorQueue, ScpiDispatcher

__all__ = ["DC2200Sim"]

IDN = "Thorlabs,DC2200,M00412345,1.3.0"
MODES = ("CC", "PWM", "CB")


def _number(text: str) -> float:
    value = float(text)
    if value != value:
        raise ValueError(text)
    return value


class DC2200Sim(SimDevice):
    role: ClassVar[str] = "exposure_source"
    input_terminator: ClassVar[bytes] = b"\n"
    latency: ClassVar[float] = 0.0005

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ErrorQueue()
        self.mode = "CC"
        self.current = 0.0
        self.brightness = 0.0
        self.pwm = {"CURR": 0.0, "FREQ": 1000.0, "DCYC": 50.0, "COUN": 0}
        self.output = False
        #: Hours the LED has been on (aging follows on-time).
        self.on_hours = 0.0
        self.dispatcher = ScpiDispatcher(self.queue)
        add = self.dispatcher.add
        add("*IDN?", lambda a: IDN)
        add("*RST", self._reset)
        add("*CLS", lambda a: self.queue.clear())
        add("SYSTem:ERRor[:NEXT]?", lambda a: self.queue.pop())
        add("SOURce1:MODE", self._set_mode)
        add("SOURce1:MODE?", lambda a: self.mode)
        for pattern in ("SOURce1:CCURrent:CURRent", "SOURce1:CCURent:CURRent"):
            add(pattern, self._set_current)
            add(pattern + "?", lambda a: f"{self.current:.4f}")
        add("SOURce1:CBRightness:BRIGhtness", self._set_brightness)
        add("SOURce1:CBRightness:BRIGhtness?", lambda a: f"{self.brightness:.2f}")
        for key, low, high in (
            ("CURRent", 0.0, None),
            ("FREQuency", 1.0, 20000.0),
            ("DCYCle", 1.0, 99.0),
            ("COUNt", 0, 1_000_000),
        ):
            add(f"SOURce1:PWM:{key}", self._pwm_setter(key[:4].upper(), low, high))
            add(f"SOURce1:PWM:{key}?", self._pwm_getter(key[:4].upper()))
        add("OUTPut1:STATe", self._set_output)
        add("OUTPut1:STATe?", lambda a: "1" if self.output else "0")
        add("SENSe3:CURRent:DATA?", self._measured_current)
        add("SOURce1:CURRent:LIMit?", lambda a: f"{self.limit:.4f}")
        add("SOURce1:CURRent:LIMit:TRIPped?", lambda a: "0")
        add("OUTPut1:PROTection:INTLock:TRIPped?", lambda a: "0")

    @property
    def limit(self) -> float:
        return self.bench.parameters.led_current_limit

    # -- physics -----------------------------------------------------------------

    def evolve(self, now: float) -> None:
        if self.output and now > self.now:
            self.on_hours += (now - self.now) / 3600.0
        self.now = max(self.now, now)

    def drive_current(self) -> float:
        """Current through the LED now (A)."""
        if not self.output:
            return 0.0
        if self.mode == "CC":
            return self.current
        if self.mode == "CB":
            return self.limit * self.brightness / 100.0
        return self.pwm["CURR"] * self.pwm["DCYC"] / 100.0

    def irradiance(self, noisy: bool = True) -> float:
        """Irradiance at the wafer plane (mW/cm^2) now."""
        bench = self.bench.parameters
        value = bench.irradiance_per_amp * self.drive_current()
        value *= physics.led_output_fraction(bench, self.on_hours)
        if self.physical_fault("lamp_failure"):
            value *= bench.lamp_failure_output
        if noisy and value > 0:
            value *= 1.0 + self.rng.gauss(0.0, bench.led_noise)
        return max(0.0, value)

    # -- protocol ----------------------------------------------------------------

    def handle(self, line: bytes) -> bytes | None:
        reply = self.dispatcher.dispatch(line.decode("ascii", "replace").strip())
        return None if reply is None else reply.encode("ascii") + b"\n"

    def _reset(self, argument: str) -> None:
        self.mode, self.current, self.brightness, self.output = "CC", 0.0, 0.0, False
        self.bench.changed()

    def _set_mode(self, argument: str) -> None:
        if argument.upper() not in MODES:
            self.queue.push(-224, "Illegal parameter value")
            return
        self.mode = argument.upper()
        self.bench.changed()

    def _checked(self, argument: str, low: float, high: float | None) -> float | None:
        try:
            value = _number(argument)
        except ValueError:
            self.queue.push(
                -104 if argument else -109, "Data type error" if argument else "Missing parameter"
            )
            return None
        if value < low or (high is not None and value > high):
            self.queue.push(-222, "Data out of range")
            return None
        return value

    def _set_current(self, argument: str) -> None:
        value = self._checked(argument, 0.0, self.limit)
        if value is not None:
            self.current = value
            self.bench.changed()

    def _set_brightness(self, argument: str) -> None:
        value = self._checked(argument, 0.0, 100.0)
        if value is not None:
            self.brightness = value
            self.bench.changed()

    def _pwm_setter(self, key: str, low: float, high: float | None) -> Any:
        def setter(argument: str) -> None:
            value = self._checked(argument, low, high if high is not None else self.limit)
            if value is not None:
                self.pwm[key] = int(value) if key == "COUN" else value
                self.bench.changed()

        return setter

    def _pwm_getter(self, key: str) -> Any:
        def getter(argument: str) -> str:
            value = self.pwm[key]
            return str(value) if key == "COUN" else f"{value:.4f}"

        return getter

    def _set_output(self, argument: str) -> None:
        word = argument.upper()
        if word not in ("ON", "OFF", "1", "0"):
            self.queue.push(-224, "Illegal parameter value")
            return
        self.output = word in ("ON", "1")
        self.bench.changed()

    def _measured_current(self, argument: str) -> str:
        current = self.drive_current()
        if current > 0:
            current *= 1.0 + self.rng.gauss(0.0, 0.0005)
        return f"{current:.4f}"

    def error_reply(self, line: bytes) -> bytes | None:
        # An SCPI instrument does not answer a refused command: it queues the
        # error, which the driver reads with SYST:ERR? after a set command.
        self.queue.push(-200, "Execution error")
        return None

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "current": self.current,
            "brightness": self.brightness,
            "pwm": self.pwm,
            "output": self.output,
            "on_hours": self.on_hours,
            "queue": self.queue.entries,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queue.entries = [tuple(e) for e in state.pop("queue", [])]
        for key, value in state.items():
            setattr(self, key, value)

    def safe_state_report(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "current_A": self.current,
            "irradiance_mW_cm2": self.irradiance(noisy=False),
        }
