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
from labctl.engine import SPARE_WAFERS, Run
from labctl.units import Q_, U

from . import steps
from .recipes import COMMON, Parameter, q

__all__ = [
    "CLAIM14",
    "CONTRAST_CURVE",
    "PROTOCOLS",
    "SPIN_CURVE",
    "Protocol",
    "claim14",
    "contrast_curve",
    "spin_curve",
]


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


#: Tool limits of a dose matrix (mJ/cm^2): the declared range of dose_min/dose_max.
DOSE_FLOOR = 0.1
DOSE_CEILING = 5000.0
#: The fine wafer: this share of its fields across the transition found on the
#: coarse wafer (widened by TRANSITION_MARGIN each side), the rest split
#: between the floor below and the plateau above.
TRANSITION_SHARE = 0.75
TRANSITION_MARGIN = 1.1


#: Steps of a wafer that is coated and soft baked (new wafer, transfers, coat,
#: plate, bake: 7) and measured (3): one wafer of the spin curve.
SPIN_WAFER_STEPS = 10
#: Steps of an exposed wafer besides its exposures: the above, calibration, its
#: check and the stage transfers (4), post-exposure bake (3), develop (3), a
#: second measurement (3).
EXPOSED_WAFER_STEPS = SPIN_WAFER_STEPS + 13


def contrast_wafer_steps(fields: int) -> int:
    """Journal steps of one wafer of a dose matrix with ``fields`` exposures."""
    return EXPOSED_WAFER_STEPS + fields


def fine_wafer_fields(fine_fields: int) -> int:
    """Fields of the fine wafer :func:`plan_next_wafer` plans for ``fine_fields`` (>= 1)."""
    inner = max(6, round(fine_fields * TRANSITION_SHARE))
    return inner + max(0, fine_fields - inner)


def _log_doses(low: float, high: float, count: int) -> list[float]:
    if count == 1:
        return [math.sqrt(low * high)]
    return [low * (high / low) ** (i / (count - 1)) for i in range(count)]


def _contrast_wafer(run: Run, wafer: str, doses: list[float]) -> list[tuple[float, float]]:
    """One wafer of a contrast experiment; its (delivered dose, NRT) per field.

    A wafer quarantined on the way gives nothing, unless a replacement wafer
    did its part (unattended): then the pairs are the replacement's.
    """
    p = run.parameters
    positions = _grid(len(doses), p["field_pitch"].m_as(U.mm))

    def part(wafer: str) -> tuple[Any, Any, list[Any]]:
        _coat_and_soft_bake(run, wafer)
        before_sites = [
            {"site": f"F{i + 1:02d}", "x": Q_(x, U.mm), "y": Q_(y, U.mm)}
            for i, (x, y) in enumerate(positions)
        ]
        before = _measure(run, wafer, before_sites, "before")
        quantities = [Q_(d, U.mJ_per_cm2) for d in doses]
        records = _dose_matrix(run, wafer, quantities, positions)
        steps.post_exposure_bake(run, wafer, p["peb_temperature"], p["peb_time"])
        _develop(run, wafer)
        after = _measure(run, wafer, _field_sites(records), "after")
        return before, after, records

    done = run.wafer_part(wafer, part)
    if done is None:  # the wafer was quarantined on the way, and not replaced
        return []
    before, after, records = done[1]
    start = {s["site"]: s["thickness"].m_as(U.nm) for s in before["sites"]}
    delivered = {r["field"]: r["dose_delivered"] for r in records}
    pairs = []
    for site in after["sites"]:
        dose = delivered.get(site["site"])
        if dose is not None and start.get(site["site"]):
            pairs.append(
                (dose.m_as(U.mJ_per_cm2), site["thickness"].m_as(U.nm) / start[site["site"]])
            )
    return pairs


def plan_next_wafer(
    pairs: list[tuple[float, float]], low: float, high: float, fields: int, fine_fields: int
) -> tuple[str, float, float, list[float]] | None:
    """The next wafer of an adaptive contrast experiment, from the fields so far.

    Returns ``(why, low, high, doses)`` - ``why`` is ``"fine"`` (spread across
    the transition), ``"higher"`` or ``"lower"`` (the transition lies outside the
    doses so far: move the range by its own width, within the tool's limits) -
    or None when the range cannot move further.
    """
    from labctl.contrast import LOWER_BOUND, UPPER_BOUND, analyze_contrast

    result = analyze_contrast([d for d, _ in pairs], [n for _, n in pairs], replicates=0)
    ratio = high / low
    if result.dg.kind == LOWER_BOUND and result.onset.kind == LOWER_BOUND:
        if high >= DOSE_CEILING:
            return None
        new_low = high
        new_high = min(DOSE_CEILING, high * ratio)
        return "higher", new_low, new_high, _log_doses(new_low, new_high, fields)
    if result.dg.kind == UPPER_BOUND:
        if low <= DOSE_FLOOR:
            return None
        new_high = low
        new_low = max(DOSE_FLOOR, low / ratio)
        return "lower", new_low, new_high, _log_doses(new_low, new_high, fields)
    # The transition: from Dg (or the bracket's low end) to D100 (or its high end).
    start = result.dg.low if result.dg.low is not None else result.dg.value
    end = result.d100.high if result.d100.high is not None else result.d100.value
    start_dose = start.m_as(U.mJ_per_cm2)
    if result.onset.value is not None:  # None: film already at the lowest dose
        start_dose = min(start_dose, result.onset.value.m_as(U.mJ_per_cm2))
    end_dose = max(end.m_as(U.mJ_per_cm2), start_dose * 1.2)
    if result.d100.kind == LOWER_BOUND:  # still rising at the top: reach further up
        end_dose = max(end_dose, high * 1.5)
    inner_low = max(DOSE_FLOOR, start_dose / TRANSITION_MARGIN)
    inner_high = min(DOSE_CEILING, end_dose * TRANSITION_MARGIN)
    inner = max(6, round(fine_fields * TRANSITION_SHARE))
    outer = max(0, fine_fields - inner)
    below, above = outer // 2, outer - outer // 2
    doses = _log_doses(inner_low, inner_high, inner)
    step = (inner_high / inner_low) ** (1.0 / max(inner - 1, 1))
    doses = (
        [max(DOSE_FLOOR, inner_low / step ** (2 * (below - i))) for i in range(below)]
        + doses
        + [min(DOSE_CEILING, inner_high * step ** (3 * (i + 1))) for i in range(above)]
    )
    return "fine", min(doses), max(doses), doses


def contrast_curve(run: Run) -> None:
    """A dose matrix on a coarse wafer, then a fine one across the transition it found.

    Wafer 1 takes ``fields`` log-spaced doses from ``dose_min`` to
    ``dose_max``. If every field cleared (or none did), the next wafer moves
    the range by its own width, within the tool's limits, up to ``max_wafers``.
    Once the transition is seen, a last wafer spreads ``fine_fields`` doses
    across it (``fine_fields = 0``: no fine wafer). The analysis uses every wafer.
    """
    p = run.parameters
    ExposureTool.from_station(run.station).preflight()  # before the first wafer is coated
    base = p["wafer"]
    low, high = p["dose_min"].m_as(U.mJ_per_cm2), p["dose_max"].m_as(U.mJ_per_cm2)
    doses = _log_doses(low, high, p["fields"])
    pairs: list[tuple[float, float]] = []
    for index in range(p["max_wafers"]):
        wafer = base if index == 0 else f"{base}-{index + 1}"
        pairs += _contrast_wafer(run, wafer, doses)
        if index + 1 >= p["max_wafers"] or not pairs:
            break
        plan = plan_next_wafer(pairs, low, high, p["fields"], max(p["fine_fields"], 1))
        if plan is None:
            run.event(
                "plan",
                f"the transition lies outside the tool's dose range ({DOSE_FLOOR:g}-"
                f"{DOSE_CEILING:g} mJ/cm²); no further wafer",
            )
            break
        why, low, high, doses = plan
        if why == "fine":
            if p["fine_fields"] == 0:
                break
            run.event(
                "plan",
                f"wafer {index + 2}: {len(doses)} fields across the transition, "
                f"{min(doses):.3g}-{max(doses):.3g} mJ/cm²",
            )
            run.expect_remaining(contrast_wafer_steps(len(doses)))
            _contrast_wafer(run, f"{base}-{index + 2}", doses)
            break
        run.event(
            "plan",
            f"wafer {index + 2}: the transition is {why} than {min(d for d, _ in pairs):.3g}-"
            f"{max(d for d, _ in pairs):.3g} mJ/cm²; moving the range to {low:.3g}-{high:.3g}",
        )
        # Progress: this wafer, then the fine one if the wafer budget still allows it.
        fine_after = p["fine_fields"] > 0 and index + 2 < p["max_wafers"]
        run.expect_remaining(
            contrast_wafer_steps(len(doses))
            + (contrast_wafer_steps(fine_wafer_fields(p["fine_fields"])) if fine_after else 0)
        )
    run.expect_remaining(0)  # whatever was planned and not done, will not be


def spin_curve(run: Run) -> None:
    """One wafer per speed: coat, soft bake, a 5-point thickness map."""
    p = run.parameters
    base = p["wafer"]
    points = [(0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (-20.0, 0.0), (0.0, -20.0)]
    sites = [
        {"site": f"P{i + 1}", "x": Q_(x, U.mm), "y": Q_(y, U.mm)} for i, (x, y) in enumerate(points)
    ]
    for index, speed in enumerate(p["speeds"]):
        run.parameters = {**p, "coat_speed": speed}

        def part(wafer: str, label: str = f"spin {speed.m_as(U.rpm):g} rpm") -> None:
            _coat_and_soft_bake(run, wafer)
            _measure(run, wafer, sites, label)

        run.wafer_part(f"{base}-{index + 1:02d}", part)
    run.parameters = p


def claim14(run: Run) -> None:
    """Claim 14: form the film, irradiate it, develop it - then measure what remains.

    The film is measured before exposure at every field and at an unexposed
    site, so the report can say how much film the exposed fields kept and how
    much the unexposed film lost (a negative resist: kept, and cleared).
    """
    p = run.parameters
    ExposureTool.from_station(run.station).preflight()  # before the wafer is coated
    wafer = p["wafer"]
    positions = _grid(9, 10.0)
    unexposed = {"site": "unexposed", "x": Q_(0, U.mm), "y": Q_(30, U.mm)}
    before_sites = [
        {"site": f"F{i + 1:02d}", "x": Q_(x, U.mm), "y": Q_(y, U.mm)}
        for i, (x, y) in enumerate(positions)
    ]

    def part(wafer: str) -> None:
        _coat_and_soft_bake(run, wafer)
        _measure(run, wafer, [*before_sites, unexposed], "before")
        records = _dose_matrix(run, wafer, [p["dose"]] * len(positions), positions)
        steps.post_exposure_bake(run, wafer, p["peb_temperature"], p["peb_time"])
        _develop(run, wafer)
        _measure(run, wafer, [*_field_sites(records), unexposed], "after")

    run.wafer_part(wafer, part)


#: Replacement wafers: every protocol declares how many it may use.
SPARES = Parameter(
    SPARE_WAFERS,
    2,
    None,
    0,
    8,
    "unattended: wafers that may replace a quarantined one, per run (0: none)",
)


@dataclass(frozen=True)
class Protocol:
    """A named protocol: its function, its parameters, a step-count estimate (for progress)."""

    name: str
    function: Callable[[Run], None]
    parameters: tuple[Parameter, ...]
    doc: str
    #: The steps it plans for given parameter values (progress: step n of N);
    #: None: this module's own experiments' counts, or no total for another.
    plan: Callable[[dict[str, Any]], int] | None = None

    def expected_steps(self, values: dict[str, Any]) -> int | None:
        """The steps the protocol plans at its start (progress: step n of this; None: unsaid).

        Exact for claim 14 and the spin curve; the contrast curve plans its
        coarse wafer and, if it may have one, the fine wafer, and says so when
        its plan changes (:meth:`labctl.engine.Run.expect_remaining`); a
        replacement wafer adds the steps its part had taken before the quarantine.
        A protocol of a lab's own says it with ``plan``.
        """
        if self.plan is not None:
            return self.plan(values)
        if self.name == "contrast-curve":
            steps = contrast_wafer_steps(int(values["fields"]))
            fine = int(values["fine_fields"])
            if fine > 0 and int(values["max_wafers"]) > 1:
                steps += contrast_wafer_steps(fine_wafer_fields(fine))
            return steps
        if self.name == "spin-curve":
            return SPIN_WAFER_STEPS * len(values["speeds"])
        if self.name == "claim14":
            return contrast_wafer_steps(9)  # one wafer, 9 fields, measured twice
        return None


PROTOCOLS: dict[str, Protocol] = {
    "contrast-curve": Protocol(
        "contrast-curve",
        contrast_curve,
        (
            *COMMON,
            Parameter("dose_min", q(5, "mJ/cm**2"), "mJ/cm**2", 0.1, 5000, "lowest dose"),
            Parameter("dose_max", q(200, "mJ/cm**2"), "mJ/cm**2", 0.1, 5000, "highest dose"),
            Parameter("fields", 16, None, 3, 36, "fields of the coarse wafer, log-spaced doses"),
            Parameter(
                "fine_fields",
                16,
                None,
                0,
                36,
                "fields of the fine wafer across the transition (0: no fine wafer)",
            ),
            Parameter(
                "max_wafers",
                4,
                None,
                1,
                8,
                "wafers at most: the coarse one, range moves, the fine one",
            ),
            Parameter("field_pitch", q(8, "mm"), "mm", 5.5, 12, "field centre spacing"),
            SPARES,
        ),
        "coarse dose matrix, then a fine one across the transition; thickness before and after",
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
            SPARES,
        ),
        "film thickness against spin speed",
    ),
    "claim14": Protocol(
        "claim14",
        claim14,
        (
            *COMMON,
            Parameter("dose", q(60, "mJ/cm**2"), "mJ/cm**2", 0.1, 5000, "exposure dose"),
            SPARES,
        ),
        "form a film, irradiate it, develop it (claim 14), 9 fields at one dose",
    ),
}

#: The experiments, each registered by its name in the ``labctl.protocols``
#: entry-point group (``pyproject.toml``), where the runner finds it.
CONTRAST_CURVE = PROTOCOLS["contrast-curve"]
SPIN_CURVE = PROTOCOLS["spin-curve"]
CLAIM14 = PROTOCOLS["claim14"]
