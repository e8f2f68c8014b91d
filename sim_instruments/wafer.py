"""Wafers with physical state, for the virtual bench.

A wafer carries what happened to it - coat, solvent, exposures, PEB thermal
integral, development - and computes its film at any point from that record
with :mod:`sim_instruments.physics`. The record is plain data, so the bench
persists it as JSON and a wafer outlives the process that drove it.

Coordinates are wafer coordinates in mm, origin at the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import physics
from .physics import ResistParameters

__all__ = ["Exposure", "Wafer"]


@dataclass
class Exposure:
    """One exposed field: centre (mm), side (mm), dose (mJ/cm^2), when (s)."""

    x: float
    y: float
    size: float
    dose: float
    time: float
    irradiance: float
    duration: float

    def covers(self, x: float, y: float) -> bool:
        half = self.size / 2.0
        return abs(x - self.x) <= half and abs(y - self.y) <= half


@dataclass
class Wafer:
    """One wafer and everything done to it."""

    wafer_id: str
    diameter: float = 100.0
    #: The wafer's own non-uniformity draws (standard normal).
    shape: tuple[float, float] = (0.0, 0.0)
    resist: dict[str, Any] | None = None
    #: Film thickness at the centre-average while spinning / as spun (um),
    #: including the residual solvent of the moment the film set.
    spun_thickness: float = 0.0
    #: 1 right after dispense, 0 when the film has set (it sets as it dries
    #: below ``film_set_wetness``, or when a bake heats it).
    wetness: float = 0.0
    #: Residual solvent (volume fraction of the film).
    solvent: float = 0.0
    #: Solvent when the PEB began - the film as exposed (None: no PEB yet).
    solvent_before_peb: float | None = None
    #: Temperature (degC).
    temperature: float = 23.0
    exposures: list[Exposure] = field(default_factory=list)
    #: PEB integral Phi (see physics.crosslink_fraction, physics.bake_step)
    #: and bake time after the first exposure (s).
    thermal_dose: float = 0.0
    peb_time: float = 0.0
    #: Total time under developer (s).
    develop_time: float = 0.0
    #: Where it is: a tool name or "cassette".
    location: str = "cassette"
    #: What happened, in order: (time s, event, details).
    events: list[tuple[float, str, str]] = field(default_factory=list)

    # -- state changes (called by the simulated tools) ---------------------------

    def record(self, time: float, event: str, details: str = "") -> None:
        self.events.append((time, event, details))

    @property
    def resist_parameters(self) -> ResistParameters | None:
        # Asked at every integration step: parse the stored dict once.
        if not self.resist:
            return None
        cached = self.__dict__.get("_parsed_resist")
        if cached is None or cached[0] is not self.resist:
            cached = (self.resist, ResistParameters.from_dict(self.resist))
            self.__dict__["_parsed_resist"] = cached
        return cached[1]

    @property
    def radius(self) -> float:
        return self.diameter / 2.0

    @property
    def coated(self) -> bool:
        return self.resist is not None

    def dispense(self, resist: ResistParameters, time: float) -> None:
        """A puddle of resist on the wafer: thick and wet."""
        self.resist = resist.to_dict()
        self.spun_thickness = resist.dispense_thickness
        self.wetness = 1.0
        self.solvent = resist.solvent_after_spin
        self.solvent_before_peb = None
        self.exposures.clear()
        self.thermal_dose = 0.0
        self.peb_time = 0.0
        self.develop_time = 0.0
        self.record(time, "dispense", resist.name)

    @property
    def flows(self) -> bool:
        """Whether a spin still thins the film: wet, never baked, never developed."""
        return (
            self.resist is not None
            and self.wetness > 0.0
            and self.thermal_dose <= 0.0
            and self.peb_time <= 0.0
            and self.develop_time <= 0.0
        )

    def set_film(self) -> None:
        """The film stops flowing for good (a bake, a developer)."""
        self.wetness = 0.0

    # -- what a measurement sees -------------------------------------------------

    def dose_at(self, x: float, y: float) -> float:
        """Total dose (mJ/cm^2) received at (x, y)."""
        return sum(e.dose for e in self.exposures if e.covers(x, y))

    def film_thickness(self, x: float, y: float, solvent: float | None = None) -> float:
        """Film (nm) at (x, y) before any PEB shrink, at ``solvent`` (default: now)."""
        resist = self.resist_parameters
        radius = math.hypot(x, y)
        if resist is None or radius > self.radius:
            return 0.0
        profile = physics.radial_profile(resist, radius, self.radius, self.shape)
        dry = self.spun_thickness * (1.0 - resist.solvent_after_spin)
        held = self.solvent if solvent is None else solvent
        return dry / (1.0 - held) * profile * 1000.0

    def thickness_before_exposure(self, x: float, y: float) -> float:
        """Film (nm) at (x, y) as it was exposed: the NRT's denominator."""
        return self.film_thickness(x, y, self.solvent_before_peb)

    def thickness_before_develop(self, x: float, y: float) -> float:
        """Film thickness (nm) at (x, y) as it is now, ignoring development."""
        resist = self.resist_parameters
        thickness = self.film_thickness(x, y)
        if resist is None or thickness <= 0 or self.thermal_dose <= 0:
            return thickness
        return physics.baked_thickness(resist, thickness, self.dose_at(x, y), self.thermal_dose)

    def thickness_at(self, x: float, y: float) -> float:
        """Film thickness (nm) at (x, y) now, development included."""
        resist = self.resist_parameters
        if resist is None or self.develop_time <= 0:
            return self.thickness_before_develop(x, y)
        return physics.developed_thickness(
            resist,
            self.film_thickness(x, y),
            self.dose_at(x, y),
            self.thermal_dose,
            self.develop_time,
        )

    def to_dict(self) -> dict[str, Any]:
        # Written at every change of the bench: a flat copy, not dataclasses.asdict
        # (which recurses into every tuple and costs milliseconds per wafer).
        data = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        data["shape"] = list(self.shape)
        data["exposures"] = [dict(e.__dict__) for e in self.exposures]
        data["events"] = [list(e) for e in self.events]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Wafer:
        data = dict(data)
        data["shape"] = tuple(data.get("shape", (0.0, 0.0)))
        data["exposures"] = [Exposure(**e) for e in data.get("exposures", [])]
        data["events"] = [tuple(e) for e in data.get("events", [])]
        return cls(**data)
