"""Simulated Torrey Pines hotplate (SC-series protocol, a 350 C HP-series model).

Wire protocol: commands end with ``\\r``, replies ``\\r\\n``; no echo; bad
syntax answers ``e``. Physics: the plate follows its setpoint at finite
heating and cooling rates; loading a cold wafer dips it, recovered with the
plate's time constant; the wafer on the proximity pins lags the plate with a
first-order time constant; a wafer on the plate sets (its film no longer
flows once above ``film_set_temperature``), loses solvent and, once exposed,
accumulates the PEB integral - faster while it holds more solvent
(:func:`sim_instruments.physics.bake_step`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from .. import physics
from .base import SimDevice

__all__ = ["HotplateSim"]

MODEL = "HP61"
FIRMWARE = "1.0"
SERIAL = "TP061234"
SETPOINT_RANGE = (10.0, 350.0)
#: Integration step while something changes (s).
STEP = 0.25
#: A wafer counts as "in PEB" above this temperature (degC).
PEB_THRESHOLD = 60.0


class HotplateSim(SimDevice):
    role: ClassVar[str] = "hotplate"
    input_terminator: ClassVar[bytes] = b"\r"
    baud_rate: ClassVar[int | None] = 9600
    latency: ClassVar[float] = 0.02

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        room = self.bench.parameters.room_temperature
        self.setpoint = room
        self.idle = True
        self.plate = room
        self.dip = 0.0
        self.stir = 0

    # -- physics -----------------------------------------------------------------

    def target(self) -> float:
        return self.bench.parameters.room_temperature if self.idle else self.setpoint

    def evolve(self, now: float) -> None:
        bench = self.bench.parameters
        wafer = self.bench.wafer_on(self.role)
        resist = wafer.resist_parameters if wafer is not None else None
        tau = physics.proximity_time_constant(bench)
        while self.now < now:
            runaway = self.fault_start("heater_runaway")
            target = self.target()
            settled = abs(self.plate - target) < 1e-6 and self.dip < 1e-4
            runaway_active = runaway is not None and runaway <= self.now
            runaway_pending = runaway is not None and self.now < runaway < now
            if settled and wafer is None and not runaway_active and not runaway_pending:
                self.now = now
                return
            end = min(now, self.now + STEP)
            if runaway_pending and runaway is not None:
                end = min(end, runaway)
            dt = end - self.now
            if runaway_active:
                self.plate = min(bench.runaway_limit, self.plate + bench.runaway_rate * dt)
            else:
                self.plate = physics.plate_ramp(self.plate, target, dt, bench)
            self.dip *= math.exp(-dt / bench.plate_recovery_time)
            if wafer is not None:
                surface = self.plate - self.dip
                start_temperature = wafer.temperature
                wafer.temperature = surface + (wafer.temperature - surface) * math.exp(-dt / tau)
                mean_temperature = 0.5 * (start_temperature + wafer.temperature)
                if resist is not None:
                    if wafer.wetness > 0 and mean_temperature > resist.film_set_temperature:
                        wafer.set_film()
                    in_peb = bool(wafer.exposures) and mean_temperature > PEB_THRESHOLD
                    if in_peb and wafer.solvent_before_peb is None:
                        wafer.solvent_before_peb = wafer.solvent
                    wafer.solvent, increment = physics.bake_step(
                        resist,
                        wafer.solvent,
                        mean_temperature,
                        dt,
                        wafer.peb_time if in_peb else None,
                    )
                    if in_peb:
                        wafer.thermal_dose += increment
                        wafer.peb_time += dt
            self.now = end

    def wafer_loaded(self, wafer: Any) -> None:
        """A wafer lands on the pins: the plate dips by its heat capacity."""
        self.dip += self.bench.parameters.plate_dip_per_degree * max(
            0.0, self.plate - wafer.temperature
        )

    @property
    def surface_temperature(self) -> float:
        return self.plate - self.dip

    # -- protocol ------------------------------------------------------------------

    def handle(self, line: bytes) -> bytes | None:
        text = line.decode("ascii", "replace").strip()
        reply = self.command(text)
        return f"{reply}\r\n".encode("ascii")

    def command(self, text: str) -> str:
        if text == "v":
            return f"{MODEL} v{FIRMWARE}"
        if text == "V":
            return SERIAL
        if text == "p":
            reading = self.surface_temperature + self.rng.gauss(
                0.0, self.bench.parameters.plate_noise
            )
            return f"{reading:.1f}"
        if text == "s":
            return "off" if self.idle else f"{self.setpoint:.1f}"
        if text in ("i", "I"):
            self.idle = text == "i"
            self.bench.changed()
            return "ok"
        if text in ("m", "r"):
            return str(self.stir)
        if text.startswith("m") and len(text) == 2 and text[1].isdigit():
            self.stir = int(text[1])
            self.bench.changed()
            return "ok"
        if text.startswith("n"):
            try:
                value = float(text[1:])
            except ValueError:
                return "e"
            if not (SETPOINT_RANGE[0] <= value <= SETPOINT_RANGE[1]) or math.isnan(value):
                return "e"
            self.setpoint = value
            self.bench.changed()
            return "ok"
        return "e"

    def error_reply(self, line: bytes) -> bytes:
        return b"e\r\n"

    def state(self) -> dict[str, Any]:
        return {
            "setpoint": self.setpoint,
            "idle": self.idle,
            "plate": self.plate,
            "dip": self.dip,
            "stir": self.stir,
        }

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def safe_state_report(self) -> dict[str, Any]:
        return {"idle": self.idle, "setpoint_degC": self.setpoint, "plate_degC": self.plate}
