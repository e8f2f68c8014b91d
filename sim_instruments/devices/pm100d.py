"""Simulated Thorlabs PM100D power meter with an S120VC photodiode head.

SCPI over USBTMC (``\\n``). The head sits on the exposure stage: it reads the
LED only while the shutter is open and the stage holds it under the beam;
otherwise it reads dark noise. The reading is corrected for the wavelength
set with ``SENS:CORR:WAV``: a silicon photodiode's responsivity rises with
wavelength, so a meter left at 852 nm under a 365 nm LED reads about 43 % of
the true power - the error a forgotten wavelength setting causes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import SimDevice
from .scpi import ErrorQueue, ScpiDispatcher

__all__ = ["PM100DSim"]

IDN = "Thorlabs,PM100D,P0009084,2.4.0"
SENSOR = "S120VC,11062201,10-Jun-2025,1,18,289"
WAVELENGTH_RANGE = (200.0, 1100.0)
#: Wavelength of the bench's LED (nm).
SOURCE_WAVELENGTH = 365.0


class PM100DSim(SimDevice):
    role: ClassVar[str] = "exposure_meter"
    input_terminator: ClassVar[bytes] = b"\n"
    latency: ClassVar[float] = 0.003

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ErrorQueue()
        self.wavelength = 852.0
        self.unit = "W"
        self.auto_range = True
        self.averaging = 1
        d = ScpiDispatcher(self.queue)
        d.add("*IDN?", lambda a: IDN)
        d.add("*RST", lambda a: self._reset())
        d.add("*CLS", lambda a: self.queue.clear())
        d.add("SYSTem:ERRor[:NEXT]?", lambda a: self.queue.pop())
        d.add("SYSTem:SENSor:IDN?", lambda a: SENSOR)
        for pattern in ("MEASure[:SCALar]:POWer?", "MEASure[:SCALar]:POWer", "READ?", "FETCh?"):
            d.add(pattern, lambda a: self._power_reading())
        d.add("MEASure[:SCALar]:ENERgy?", lambda a: "0.00000000E+00")
        d.add("CONFigure?", lambda a: "POW")
        d.add("CALibration:STRing?", lambda a: '"10-Jun-2025"')
        d.add("SENSe:CORRection:WAVelength", self._set_wavelength)
        d.add("SENSe:CORRection:WAVelength?", self._get_wavelength)
        d.add("SENSe:POWer[:DC]:UNIT", self._set_unit)
        d.add("SENSe:POWer[:DC]:UNIT?", lambda a: self.unit)
        d.add("SENSe[:POWer][:DC]:RANGe:AUTO", self._set_auto)
        d.add("SENSe[:POWer][:DC]:RANGe:AUTO?", lambda a: "1" if self.auto_range else "0")
        d.add("SENSe:AVERage[:COUNt]", self._set_averaging)
        d.add("SENSe:AVERage[:COUNt]?", lambda a: str(self.averaging))
        self.dispatcher = d

    def _reset(self) -> None:
        self.wavelength, self.unit, self.auto_range, self.averaging = 852.0, "W", True, 1
        self.bench.changed()

    def true_power(self) -> float:
        """Optical power on the head now (W)."""
        return self.bench.light_on_meter() * self.bench.parameters.meter_aperture / 1000.0

    def _power_reading(self) -> str:
        bench = self.bench.parameters
        power = self.true_power() * SOURCE_WAVELENGTH / self.wavelength
        power *= 1.0 + self.rng.gauss(0.0, bench.meter_noise / max(1, self.averaging) ** 0.5)
        power += self.rng.gauss(0.0, bench.meter_dark)
        if self.unit == "DBM":
            import math

            return f"{10 * math.log10(max(power, 1e-15) * 1000):.8E}"
        return f"{power:.8E}"

    def _set_wavelength(self, argument: str) -> None:
        try:
            value = float(argument)
        except ValueError:
            self.queue.push(-104, "Data type error")
            return
        if not WAVELENGTH_RANGE[0] <= value <= WAVELENGTH_RANGE[1]:
            self.queue.push(-222, "Data out of range")
            return
        self.wavelength = value
        self.bench.changed()

    def _get_wavelength(self, argument: str) -> str:
        word = argument.upper()
        if word in ("MIN", "MINIMUM"):
            return f"{WAVELENGTH_RANGE[0]:.6E}"
        if word in ("MAX", "MAXIMUM"):
            return f"{WAVELENGTH_RANGE[1]:.6E}"
        return f"{self.wavelength:.6E}"

    def _set_unit(self, argument: str) -> None:
        if argument.upper() not in ("W", "DBM"):
            self.queue.push(-224, "Illegal parameter value")
            return
        self.unit = argument.upper()
        self.bench.changed()

    def _set_auto(self, argument: str) -> None:
        if argument.upper() not in ("ON", "OFF", "1", "0"):
            self.queue.push(-224, "Illegal parameter value")
            return
        self.auto_range = argument.upper() in ("ON", "1")
        self.bench.changed()

    def _set_averaging(self, argument: str) -> None:
        if not argument.isdigit() or not 1 <= int(argument) <= 10000:
            self.queue.push(-222, "Data out of range")
            return
        self.averaging = int(argument)
        self.bench.changed()

    def handle(self, line: bytes) -> bytes | None:
        reply = self.dispatcher.dispatch(line.decode("ascii", "replace").strip())
        return None if reply is None else reply.encode("ascii") + b"\n"

    def execute(self, line: bytes, now: float) -> tuple[bytes | None, float]:
        # Each reading integrates about 3 ms per averaged sample.
        reply = self.handle(line)
        busy = 0.003 * self.averaging if reply and b"E" in reply[:20] else 0.0
        return reply, busy

    def error_reply(self, line: bytes) -> bytes | None:
        self.queue.push(-200, "Execution error")
        return None

    def state(self) -> dict[str, Any]:
        return {
            "wavelength": self.wavelength,
            "unit": self.unit,
            "auto_range": self.auto_range,
            "averaging": self.averaging,
            "queue": self.queue.entries,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.queue.entries = [tuple(e) for e in state.pop("queue", [])]
        for key, value in state.items():
            setattr(self, key, value)
