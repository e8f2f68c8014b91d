"""The standard experiments: claim 14, a spin curve, a contrast curve.

Each is a plain function of a :class:`labctl.engine.Run`, built from
:mod:`protocols.steps`, with its parameters declared (units, ranges) in
:data:`PROTOCOLS` so a recipe is checked before anything moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.exposure import ExposureTool
from labctl.engine import Run
from labctl.units import Q_, U

from . import steps
from .recipes import COMMON, Parameter, q

__all__ = ["PROTOCOLS", "Protocol", "claim14", "contrast_curve", "spin_curve"]


def _grid(count: int, pitch: float) -> list[tuple[float, float]]:
    """``count`` field centres on a square grid of ``pitch`` mm, centred on the wafer."""
    side = math.ceil(math.sqrt(count))
    offset = (side - 1) / 2.0
    cells = [((i % side - offset) * pitch, (offset - i // side) * pitch) for i in range(count)]
    return cells


def _coat_and_soft_bake(run: Run, wafer: str) -> None:
    p = run.parameters
    steps.new_wafer(run, wafer)
    steps.transfer(run, wafer, "spin_coater")
    steps.coat(
        run,
        wafer,
        spread_speed=p["spread_speed"],
        spread_time=p["spread_time"],
        speed=p["coat_speed"],
        duration=p["coat_time"],
    )
    steps.transfer(run, wafer, "cassette")
    steps.soft_bake(run, wafer, p["soft_bake_temperature"], p["soft_bake_time"])


def _develop(run: Run, wafer: str) -> None:
    p = run.parameters
    steps.transfer(run, wafer, "spin_coater")
    steps.develop(
        run,
        wafer,
        duration=p["develop_time"],
        rinse=p["rinse_time"],
        dry_speed=p["dry_speed"],
        dry_time=p["dry_time"],
    )
    steps.transfer(run, wafer, "cassette")


def _measure(run: Run, wafer: str, sites: list[dict[str, Any]], label: str) -> Any:
    steps.transfer(run, wafer, "ellipsometer")
    result = steps.measure(run, wafer, sites, label=label, recipe=run.parameters["recipe"])
    steps.transfer(run, wafer, "cassette")
    return result


def _dose_matrix(
    run: Run, wafer: str, doses: list[Any], positions: list[tuple[float, float]]
) -> list[Any]:
    tool = ExposureTool.from_station(run.station)
    steps.calibrate_exposure(run, tool)
    steps.transfer(run, wafer, "exposure_stage")
    records = []
    for index, (dose, (x, y)) in enumerate(zip(doses, positions, strict=True)):
        records.append(
            steps.expose(run, wafer, tool, dose, Q_(x, U.mm), Q_(y, U.mm), f"F{index + 1:02d}")
        )
    steps.calibrate_exposure(run, tool, verify=True)
    steps.transfer(run, wafer, "cassette")
    return records


def _field_sites(records: list[Any]) -> list[dict[str, Any]]:
    """Measurement sites at the exposed fields, carrying their doses asked and delivered."""
    return [
        {
            "site": r["field"],
            "x": r["x"],
            "y": r["y"],
            "dose_requested": r["dose_requested"],
            "dose_delivered": r["dose_delivered"],
        }
        for r in records
    ]


def contrast_curve(run: Run) -> None:
    """One wafer: a log-spaced dose matrix, thickness before and after development."""
    p = run.parameters
    wafer = p["wafer"]
    count = p["fields"]
    low, high = p["dose_min"].m_as(U.mJ_per_cm2), p["dose_max"].m_as(U.mJ_per_cm2)
    doses = [Q_(low * (high / low) ** (i / (count - 1)), U.mJ_per_cm2) for i in range(count)]
    positions = _grid(count, p["field_pitch"].m_as(U.mm))
    with run.wafer_scope(wafer):
        _coat_and_soft_bake(run, wafer)
        before_sites = [
            {"site": f"F{i + 1:02d}", "x": Q_(x, U.mm), "y": Q_(y, U.mm)}
            for i, (x, y) in enumerate(positions)
        ]
        _measure(run, wafer, before_sites, "before")
        records = _dose_matrix(run, wafer, doses, positions)
        steps.post_exposure_bake(run, wafer, p["peb_temperature"], p["peb_time"])
        _develop(run, wafer)
        after_sites = _field_sites(records)
        _measure(run, wafer, after_sites, "after")


def spin_curve(run: Run) -> None:
    """One wafer per speed: coat, soft bake, a 5-point thickness map."""
    p = run.parameters
    base = p["wafer"]
    points = [(0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (-20.0, 0.0), (0.0, -20.0)]
    for index, speed in enumerate(p["speeds"]):
        wafer = f"{base}-{index + 1:02d}"
        run.parameters = {**p, "coat_speed": speed}
        with run.wafer_scope(wafer):
            _coat_and_soft_bake(run, wafer)
            sites = [
                {"site": f"P{i + 1}", "x": Q_(x, U.mm), "y": Q_(y, U.mm)}
                for i, (x, y) in enumerate(points)
            ]
            _measure(run, wafer, sites, f"spin {speed.m_as(U.rpm):g} rpm")
    run.parameters = p


def claim14(run: Run) -> None:
    """Claim 14: form the film, irradiate it, develop it - then measure what remains."""
    p = run.parameters
    wafer = p["wafer"]
    positions = _grid(9, 10.0)
    with run.wafer_scope(wafer):
        _coat_and_soft_bake(run, wafer)
        records = _dose_matrix(run, wafer, [p["dose"]] * len(positions), positions)
        steps.post_exposure_bake(run, wafer, p["peb_temperature"], p["peb_time"])
        _develop(run, wafer)
        sites = _field_sites(records)
        sites.append({"site": "unexposed", "x": Q_(0, U.mm), "y": Q_(30, U.mm)})
        _measure(run, wafer, sites, "after")


@dataclass(frozen=True)
class Protocol:
    """A named protocol: its function, its parameters, a step-count estimate (for progress)."""

    name: str
    function: Callable[[Run], None]
    parameters: tuple[Parameter, ...]
    doc: str

    def expected_steps(self, values: dict[str, Any]) -> int:
        per_wafer = 17  # coat, two bakes with transfers, develop, measures
        if self.name == "contrast-curve":
            return per_wafer + int(values["fields"]) + 4
        if self.name == "spin-curve":
            return 10 * len(values["speeds"])
        return per_wafer + 9 + 2


PROTOCOLS: dict[str, Protocol] = {
    "contrast-curve": Protocol(
        "contrast-curve",
        contrast_curve,
        (
            *COMMON,
            Parameter("dose_min", q(5, "mJ/cm**2"), "mJ/cm**2", 0.1, 5000, "lowest dose"),
            Parameter("dose_max", q(200, "mJ/cm**2"), "mJ/cm**2", 0.1, 5000, "highest dose"),
            Parameter("fields", 16, None, 3, 36, "number of fields, log-spaced doses"),
            Parameter("field_pitch", q(8, "mm"), "mm", 5.5, 12, "field centre spacing"),
        ),
        "dose matrix on one wafer, thickness before and after development",
    ),
    "spin-curve": Protocol(
        "spin-curve",
        spin_curve,
        (
            *COMMON,
            Parameter(
                "speeds",
                [q(s, "rpm") for s in (1000, 2000, 3000, 4000, 5000, 6000)],
                "rpm",
                500,
                10000,
                "one wafer per speed",
                is_list=True,
            ),
        ),
        "film thickness against spin speed",
    ),
    "claim14": Protocol(
        "claim14",
        claim14,
        (*COMMON, Parameter("dose", q(60, "mJ/cm**2"), "mJ/cm**2", 0.1, 5000, "exposure dose")),
        "form a film, irradiate it, develop it (claim 14), 9 fields at one dose",
    ),
}
