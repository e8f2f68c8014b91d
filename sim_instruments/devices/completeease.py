"""Simulated J.A. Woollam ellipsometer behind CompleteEASE's remote-control socket.

Wire protocol: ``Func(args)\\r\\n`` in, one ``\\r\\n`` line out, Latin-1.
``RunRecipe`` answers, after the measurement time, the fitted parameters as
``name=value±error`` entries separated by ``; `` (labctl's documented
assumption, see ``docs/instruments/woollam_completeease.md``), with the ``±``
as the single Latin-1 byte 0xB1.

Physics: the film thickness at the stage position, with realistic noise; the
Cauchy parameters of the resist; for the single-wavelength recipe (632.8 nm)
the thickness is only known modulo ``l / (2 sqrt(n^2 - sin^2 t))`` and the fit
lands on the branch nearest the recipe's starting guess, as a real
single-wavelength fit does.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

from .. import physics
from .base import SimDevice

__all__ = ["CompleteEaseSim"]

SPECTROSCOPIC = "Resist on Si"
SINGLE_WAVELENGTH = "Resist on Si 632.8nm"
RECIPES = (SPECTROSCOPIC, SINGLE_WAVELENGTH)
#: CompleteEASE needs a moment after start-up (s).
INITIALIZING = 2.0
_CALL = re.compile(r"\s*([A-Za-z]+)\((.*)\)\s*")


class CompleteEaseSim(SimDevice):
    role: ClassVar[str] = "ellipsometer"
    input_terminator: ClassVar[bytes] = b"\n"
    latency: ClassVar[float] = 0.005

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.x = 0.0
        self.y = 0.0
        self.acquiring = False

    def execute(self, line: bytes, now: float) -> tuple[bytes | None, float]:
        text = line.decode("latin-1").rstrip("\r")
        reply, duration = self.call(text)
        return (reply.encode("latin-1") + b"\r\n"), duration

    def handle(self, line: bytes) -> bytes | None:
        return self.execute(line, self.now)[0]

    def call(self, text: str) -> tuple[str, float]:
        match = _CALL.fullmatch(text)
        if not match:
            return "Error: unknown command", 0.0
        name, argument = match.groups()
        if name == "Status" and not argument:
            if self.now < INITIALIZING:
                return "Initializing ...", 0.0
            return ("Acquiring Data" if self.acquiring else "Waiting to Acquire Data"), 0.0
        if name in ("StartAcq", "StopAcq") and not argument:
            self.acquiring = name == "StartAcq"
            return "OK", 0.0
        if name == "Trigger" and not argument:
            return "OK", 0.0
        if name == "ListRecipes" and not argument:
            return "/".join(RECIPES), 0.0
        if name == "MoveTo":
            try:
                x_text, y_text = argument.split(",")
                x, y = float(x_text), float(y_text)
            except ValueError:
                return "Error: MoveTo needs x,y in mm", 0.0
            limit = 100.0
            if abs(x) > limit or abs(y) > limit:
                return "Error: position out of range", 0.0
            distance = math.hypot(x - self.x, y - self.y)
            self.x, self.y = x, y
            self.bench.changed()
            return "OK", distance / self.bench.parameters.ellipsometer_stage_speed
        if name == "RunRecipe":
            recipe, slash, _export = argument.partition("/")
            if not slash or recipe not in RECIPES:
                return "Error: recipe not found", 0.0
            return self.measure(recipe), self.bench.parameters.ellipsometer_point_time
        return "Error: unknown command", 0.0

    def measure(self, recipe: str) -> str:
        wafer = self.bench.wafer_on(self.role)
        if wafer is None:
            return "Error: no sample on the stage"
        bench = self.bench.parameters
        true_thickness = wafer.thickness_at(self.x, self.y)
        noise = bench.ellipsometer_noise + bench.ellipsometer_relative_noise * true_thickness
        thickness = max(0.0, true_thickness + self.rng.gauss(0.0, noise))
        resist = wafer.resist_parameters or physics.ResistParameters()
        a = resist.cauchy_a + self.rng.gauss(0.0, 0.0005)
        b = resist.cauchy_b + self.rng.gauss(0.0, 0.0002)
        c = max(0.0, resist.cauchy_c + self.rng.gauss(0.0, 0.00002))
        mse = 1.5 + abs(self.rng.gauss(0.0, 0.5)) + (4.0 if true_thickness < 5.0 else 0.0)
        if recipe == SINGLE_WAVELENGTH:
            index = resist.refractive_index(bench.single_wavelength / 1000.0)
            period = physics.single_wavelength_period(
                index, bench.single_wavelength, bench.ellipsometer_angle
            )
            guess = bench.single_wavelength_guess
            branches = round((guess - thickness) / period)
            thickness = thickness + branches * period
            if thickness < 0:
                thickness += period
        error = noise / 2.0
        return (
            f"MSE={mse:.2f}; Thickness # 1 (nm)={thickness:.2f}±{error:.2f}; "
            f"A={a:.4f}±0.0004; B={b:.5f}±0.00010; C={c:.6f}±0.000020"
        )

    def error_reply(self, line: bytes) -> bytes:
        return b"Error: hardware not ready\r\n"

    def state(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "acquiring": self.acquiring}

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
