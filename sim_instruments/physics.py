"""Process physics of the virtual bench, after ``shared/domain/process-physics.md``.

Every constant is a named, documented field of :class:`ResistParameters` or
:class:`BenchParameters`; nothing numeric is buried in the code below. The
functions are pure: state in, state out, so the bench can be replayed and
tests can check each law on its own.

Units inside this module are plain floats in the unit named by each field
(um, nm, s, degC, mJ/cm^2, mW/cm^2, rpm); the instruments convert at their
wire protocols and the bench's public API speaks pint quantities.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy

__all__ = [
    "BOLTZMANN_EV",
    "DEFAULT_SOFT_BAKE_TEMPERATURE",
    "DEFAULT_SOFT_BAKE_TIME",
    "L70_FRACTION",
    "BenchParameters",
    "ResistParameters",
    "acid_concentration",
    "anchored_fraction",
    "bake_step",
    "baked_thickness",
    "contrast_construction",
    "crosslink_fraction",
    "developed_thickness",
    "development_rate",
    "final_spin_thickness",
    "gel_dose",
    "gel_fraction",
    "led_output_fraction",
    "peb_rate",
    "plate_ramp",
    "process_history",
    "proximity_time_constant",
    "single_wavelength_period",
    "solvent_after_bake",
    "solvent_crosslink_factor",
    "spin_film_step",
]

#: Boltzmann constant (eV/K).
BOLTZMANN_EV = 8.617333262e-5
#: 0 degC in kelvin.
ZERO_CELSIUS = 273.15
#: The output fraction that defines an LED's L70 lifetime.
L70_FRACTION = 0.7
#: Soft bake the ground truth assumes when a process names none (degC, s):
#: the recipes' defaults (protocols/recipes.py, COMMON).
DEFAULT_SOFT_BAKE_TEMPERATURE = 100.0
DEFAULT_SOFT_BAKE_TIME = 60.0
#: Integration step of a bake in :func:`process_history` (s), the hotplate's own.
BAKE_STEP = 0.25
#: Gauss-Legendre order of the integrals over the film depth: the integrands
#: are smooth between the gel boundary and the film's faces, so 24 nodes give
#: a relative error far below 1e-6 and a curve smooth enough to differentiate.
DEPTH_NODES = 24
#: Bisection steps that locate a dissolution front inside the film.
FRONT_BISECTIONS = 50


@dataclass(frozen=True)
class ResistParameters:
    """What the simulated resist does. Defaults: a PHS-type CA negative resist.

    A formulation (issue 4) will supply these; until then the defaults stand
    for a 12 wt% solids PHS / melamine / onium-PAG resist in PGMEA.
    """

    name: str = "default PHS negative resist"

    # -- spin coating: h = K (s/s_ref)^a (eta/eta_ref)^c rpm^-b ------------------
    #: K (um * rpm^b): 27 gives 0.49 um at 3000 rpm, as the domain notes say.
    spin_k: float = 27.0
    #: b, the spin-speed exponent (0.4-0.6; Meyerhofer 0.5).
    spin_exponent: float = 0.5
    #: Solids content of the solution (weight fraction).
    solids: float = 0.12
    #: Solids content the K above refers to.
    solids_reference: float = 0.12
    #: a, the solids exponent (1-2).
    solids_exponent: float = 1.5
    #: Zero-shear viscosity of the solution (cP).
    viscosity: float = 10.0
    #: Viscosity the K above refers to (cP).
    viscosity_reference: float = 10.0
    #: c, the viscosity exponent (0.3-0.4).
    viscosity_exponent: float = 0.35
    #: Film thickness right after dispense, before spreading (um).
    dispense_thickness: float = 20.0
    #: Thinning time constant at 3000 rpm (s); scales as (3000/rpm)^2 (EBP).
    #: Short against the drying time, so a spin of more than a few seconds
    #: lands on the empirical curve; a spin of a second or two stays thicker.
    thinning_time: float = 0.05
    #: Drying time constant at 3000 rpm (s): the film sets as it dries;
    #: evaporation scales as sqrt(rpm) (Meyerhofer).
    drying_time: float = 8.0
    #: Wetness (1 right after dispense) below which the film has set and no
    #: longer flows: a spin of 30 s at 3000 rpm gets there (wetness 0.02), a
    #: 30 s spin at 1000 rpm does not (0.12) until it is baked.
    film_set_wetness: float = 0.05
    #: A film on a plate above this wafer temperature (degC) sets at once:
    #: the soft bake ends the flow for good.
    film_set_temperature: float = 50.0
    #: Radial non-uniformity, 1 sigma (fraction).
    nonuniformity: float = 0.007
    #: Edge bead width (mm) and peak thickness (times nominal).
    edge_bead_width: float = 2.0
    edge_bead_factor: float = 2.0

    # -- solvent and soft bake ----------------------------------------------------
    #: Residual solvent right after spin (volume fraction of the film).
    solvent_after_spin: float = 0.15
    #: Solvent left at equilibrium: s_eq = floor + span * exp(-(T - T0)/scale),
    #: T0 = solvent_span_temperature (degC).
    solvent_floor: float = 0.02
    solvent_span: float = 0.03
    solvent_scale: float = 20.0
    solvent_span_temperature: float = 90.0
    #: Solvent loss rate at solvent_rate_temperature (1/s, degC) and its
    #: activation energy (eV); below solvent_loss_onset (degC) none is lost.
    solvent_rate: float = 0.05
    solvent_rate_temperature: float = 100.0
    solvent_activation: float = 0.4
    solvent_loss_onset: float = 40.0
    #: Residual solvent is free volume: acid diffuses and cross-links faster
    #: in a film that holds more of it. The PEB cross-linking rate is
    #: multiplied by exp(coefficient * (s - reference)), s the solvent
    #: (volume fraction) at each moment of the PEB: one volume % more solvent,
    #: 13 % faster. Engineering estimate of moderate size: a 130 C soft bake
    #: (60 s, solvent 0.024 at exposure) gives a Dg about 19 % above a 90 C
    #: one (0.062) before a PEB at 110 C (see docs/virtual-bench.md).
    solvent_crosslink_coefficient: float = 12.0
    #: Solvent at which the factor above is 1: about the PEB-averaged solvent
    #: of the default process (soft bake 100 C 60 s, PEB 110 C 60 s), so
    #: crosslink_rate keeps its meaning for that process.
    solvent_crosslink_reference: float = 0.035

    # -- optics -----------------------------------------------------------------
    #: Cauchy n = A + B/l^2 + C/l^4 (l in um).
    cauchy_a: float = 1.57
    cauchy_b: float = 0.008
    cauchy_c: float = 1e-4
    #: Absorbance at the exposure wavelength (1/um): dose falls with depth.
    absorbance: float = 0.2

    # -- chemistry (chemically amplified, normalized concentrations) --------------
    #: P0: acid at full conversion of the acid generator (normalized).
    acid_yield: float = 1.0
    #: C: acid generation efficiency (cm^2/mJ), 0.01-0.05 for onium PAGs.
    acid_efficiency: float = 0.02
    #: Q0: base quencher loading (same normalized units as acid).
    quencher: float = 0.1
    #: XL0: cross-link fraction at full conversion.
    crosslink_max: float = 1.0
    #: k_x at the reference temperature (1/s per unit acid), at the
    #: reference solvent (solvent_crosslink_reference).
    crosslink_rate: float = 0.01
    #: Reference temperature of crosslink_rate (degC).
    crosslink_reference_temperature: float = 110.0
    #: Ea of cross-linking (eV), 0.7-1.2.
    crosslink_activation: float = 0.9
    #: k_loss: acid loss rate during PEB (1/s).
    acid_loss_rate: float = 0.01
    #: X_gel: cross-link fraction at which the film gels (an insoluble network
    #: first spans the film). Small against XL0, as for any polymer of a few
    #: tens of repeat units: about one cross-link per chain suffices.
    gel_point: float = 0.1
    #: Gel fraction g = 1 - s (s: the sol, which the developer extracts) above
    #: the gel point, with d = X / X_gel (d = 1 at the gel point):
    #: "uniform" - primary chains of one length (Flory-Stockmayer; the giant
    #: component of a random graph), g = 1 - exp(-d g): 0.80 at d = 2, 0.94
    #: at 3, 0.99 at 5. Lithographic PHS is made narrow (Mw/Mn 1.1-1.5), so
    #: this is the default.
    #: "most_probable" - Mw/Mn = 2, Charlesby-Pinner s + sqrt(s) = 2 / d: 0.62
    #: at d = 2, 0.87 at 4, a long approach to the plateau.
    #: Both rise from the gel point with a finite slope (dg/dln d = 2 and 4/3).
    gel_law: str = "uniform"
    #: Anchoring: a gelled film stays only where its network holds at the
    #: substrate. The anchored area fraction rises with the gel fraction g_b
    #: of the bottom layer, 1 - (1 - g_b/g_anchor)^2, reaching 1 at g_anchor
    #: (the local anchoring threshold spread over 0..g_anchor across a field);
    #: the rest lifts off with the swelling. Without it a film whose top has
    #: gelled well before its bottom would jump from nothing to a finite NRT
    #: at the dose that gels the bottom. Engineering estimate.
    anchor_gel_fraction: float = 0.85
    #: Shrink of a fully cross-linked film in PEB (fraction), 2-8 %.
    crosslink_shrink: float = 0.05

    # -- development (2.38 % TMAH) ------------------------------------------------
    #: Dissolution rate of un-cross-linked film (nm/s), 20-300.
    rate_max: float = 100.0
    #: Rate at which the developer erodes the gel's surface (nm/s), below 0.05.
    rate_min: float = 0.02
    #: Mack-type rate law of film that has not gelled:
    #: R = Rmax (a+1)(1-m)^n / (a+(1-m)^n) + Rmin, m = X/XL0. It sets how fast
    #: partly cross-linked film below the gel point clears (with the defaults
    #: at least 57 nm/s, so a 60 s develop clears any ungelled film under
    #: 3 um); it does not set Dg or gamma any more - the gel point, the gel
    #: fraction law and the anchoring do. A large n (or a small Rmax) can
    #: leave ungelled film after a short develop.
    mack_a: float = 5.0
    mack_n: float = 6.0

    def spin_constant(self) -> float:
        """K scaled to this resist's solids and viscosity (um * rpm^b)."""
        solids = (self.solids / self.solids_reference) ** self.solids_exponent
        viscosity = (self.viscosity / self.viscosity_reference) ** self.viscosity_exponent
        return float(self.spin_k * solids * viscosity)

    def refractive_index(self, wavelength_um: float) -> float:
        """Cauchy index at ``wavelength_um``."""
        lam2 = wavelength_um * wavelength_um
        return self.cauchy_a + self.cauchy_b / lam2 + self.cauchy_c / (lam2 * lam2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResistParameters:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_changes(self, **changes: Any) -> ResistParameters:
        return replace(self, **changes)


@dataclass(frozen=True)
class BenchParameters:
    """The simulated hardware: instruments' physics and noise."""

    #: Wafer diameter (mm) and thickness (um).
    wafer_diameter: float = 100.0
    wafer_thickness: float = 725.0
    #: Starting temperature of a wafer and the room (degC).
    room_temperature: float = 23.0
    #: Wafer-on-plate time constants for a 725 um wafer: (gap um, tau s),
    #: contact, 100 um and 150 um proximity pins (domain notes).
    proximity_table: tuple[tuple[float, float], ...] = ((0.0, 0.8), (100.0, 3.7), (150.0, 5.5))
    #: Proximity gap of the bench's hotplate (um).
    proximity_gap: float = 100.0
    #: Plate heating and cooling rates (degC/s).
    plate_heating_rate: float = 2.0
    plate_cooling_rate: float = 0.5
    #: Plate dip on loading a cold wafer, per degC of plate-wafer difference,
    #: and its recovery time constant (s): 87 C difference -> 1.7 C dip.
    plate_dip_per_degree: float = 0.02
    plate_recovery_time: float = 15.0
    #: Plate regulation noise (degC, 1 sigma) and reading resolution.
    plate_noise: float = 0.05
    #: A runaway heater climbs at this rate (degC/s) up to the limit.
    runaway_rate: float = 1.0
    runaway_limit: float = 400.0

    #: Spinner motor time constant (s) and speed ripple (rpm, 1 sigma).
    motor_time_constant: float = 0.4
    motor_ripple: float = 2.0
    #: Spin-dynamics integration step (s).
    spin_step: float = 0.05

    #: LED irradiance at the wafer plane per ampere (mW/cm^2 per A).
    irradiance_per_amp: float = 20.0
    #: LED aging: on-time (h) after which the output has fallen to 70 % (L70),
    #: exponential in on-time. High-quality UV-A LED modules are specified at
    #: L70 = 20,000-30,000 h (e.g. luvex.tech, "UV-LED lifetime and
    #: degradation"); 20,000 h is the low end. A year of nightly runs with
    #: 3 h of on-time each (1,095 h) leaves 98 % of the output.
    led_l70_hours: float = 20000.0
    #: LED output noise (relative, 1 sigma).
    led_noise: float = 0.002
    #: Output left after a lamp failure (fraction).
    lamp_failure_output: float = 0.0
    #: LED current limit of the head (A).
    led_current_limit: float = 1.0
    #: Exposure field: a square of this side (mm) centred under the beam.
    field_size: float = 5.0
    #: Shutter: open-time bias (ms) and jitter (ms, 1 sigma).
    shutter_bias: float = 1.5
    shutter_jitter: float = 0.3
    #: Meter: where the head sits in stage coordinates (mm), aperture (cm^2),
    #: relative noise (1 sigma), dark reading noise (W).
    meter_position: tuple[float, float] = (-45.0, 45.0)
    meter_aperture: float = 0.709
    meter_noise: float = 0.002
    meter_dark: float = 2e-9
    #: Stage travel (mm, each axis) and speed (mm/s).
    stage_travel: float = 100.0
    stage_speed: float = 20.0

    #: Ellipsometer: thickness noise (nm, 1 sigma) plus a relative part,
    #: time per point (s), Cauchy noise, mapping-stage speed (mm/s).
    ellipsometer_noise: float = 0.1
    ellipsometer_relative_noise: float = 0.0002
    ellipsometer_point_time: float = 3.0
    ellipsometer_stage_speed: float = 20.0
    ellipsometer_angle: float = 70.0
    #: Wavelength of single-wavelength recipes (nm) and their first guess (nm).
    single_wavelength: float = 632.8
    single_wavelength_guess: float = 500.0

    #: Development puddle: TMAH temperature (degC), for the record.
    developer_temperature: float = 23.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- spin coating ----------------------------------------------------------------


def final_spin_thickness(resist: ResistParameters, rpm: float) -> float:
    """Film thickness (um) a long spin at ``rpm`` converges to."""
    if rpm <= 0:
        return math.inf
    return float(resist.spin_constant() * rpm ** (-resist.spin_exponent))


def spin_film_step(
    resist: ResistParameters, thickness: float, wetness: float, rpm: float, dt: float
) -> tuple[float, float]:
    """Advance a spinning film by ``dt`` seconds at ``rpm``.

    ``thickness`` (um) thins toward :func:`final_spin_thickness` while the
    film is wet, with an EBP time constant ``thinning_time (3000/rpm)^2``;
    ``wetness`` (1 right after dispense, 0 when set) falls with evaporation,
    ``drying_time (3000/rpm)^0.5``. A long spin lands exactly on the empirical
    spin curve; a short one, or a slow ramp, leaves a thicker film. Once the
    wetness falls below ``film_set_wetness`` the film has set: wetness 0, and
    no later spin thins it.
    """
    if rpm < 1.0 or dt <= 0 or wetness <= 0.0:
        return thickness, wetness
    ratio = 3000.0 / rpm
    tau_thin = resist.thinning_time * ratio * ratio
    tau_dry = resist.drying_time * math.sqrt(ratio)
    target = final_spin_thickness(resist, rpm)
    if thickness > target:
        # Thinning slows as the film dries; integrate with the mid-step wetness.
        mid_wetness = wetness * math.exp(-dt / (2 * tau_dry))
        thickness = target + (thickness - target) * math.exp(-dt * mid_wetness / tau_thin)
    wetness *= math.exp(-dt / tau_dry)
    return thickness, (wetness if wetness >= resist.film_set_wetness else 0.0)


def radial_profile(
    resist: ResistParameters, radius_mm: float, wafer_radius: float, shape: tuple[float, float]
) -> float:
    """Relative thickness at ``radius_mm``: non-uniformity and edge bead.

    ``shape`` is the wafer's own pair of standard-normal draws, so every
    wafer has its own smooth profile with the documented 1-sigma spread.
    """
    rho = min(radius_mm / wafer_radius, 1.0)
    g1, g2 = shape
    # Two smooth radial modes with unit variance over the wafer area.
    mode1 = math.sqrt(3.0) * (2.0 * rho * rho - 1.0)
    mode2 = math.sqrt(2.0) * math.cos(3.0 * math.pi * rho)
    factor = 1.0 + resist.nonuniformity * (g1 * mode1 + g2 * mode2) / math.sqrt(2.0)
    distance_to_edge = wafer_radius - radius_mm
    if distance_to_edge < 3 * resist.edge_bead_width:
        factor *= 1.0 + (resist.edge_bead_factor - 1.0) * math.exp(
            -max(distance_to_edge, 0.0) / (resist.edge_bead_width / 3.0)
        )
    return factor


# -- bakes -----------------------------------------------------------------------


def proximity_time_constant(bench: BenchParameters) -> float:
    """Wafer-on-plate time constant (s) for the bench's gap and wafer thickness."""
    table = bench.proximity_table
    gap = bench.proximity_gap
    for (g0, t0), (g1, t1) in itertools.pairwise(table):
        if gap <= g1 or (g1, t1) == table[-1]:
            tau = t0 + (t1 - t0) * (gap - g0) / (g1 - g0)
            break
    # Heat capacity scales with thickness; the table is for 725 um wafers.
    return tau * bench.wafer_thickness / 725.0


def plate_ramp(current: float, target: float, dt: float, bench: BenchParameters) -> float:
    """Plate setpoint-following with finite heating and cooling rates (degC)."""
    if target > current:
        return min(target, current + bench.plate_heating_rate * dt)
    return max(target, current - bench.plate_cooling_rate * dt)


def solvent_equilibrium(resist: ResistParameters, temperature: float) -> float:
    """Residual solvent the film tends to at ``temperature`` (degC)."""
    return resist.solvent_floor + resist.solvent_span * math.exp(
        -(temperature - resist.solvent_span_temperature) / resist.solvent_scale
    )


def solvent_after_bake(
    resist: ResistParameters, solvent: float, temperature: float, dt: float
) -> float:
    """Solvent fraction after ``dt`` s at wafer ``temperature`` (degC)."""
    if temperature < resist.solvent_loss_onset:
        return solvent
    equilibrium = solvent_equilibrium(resist, temperature)
    if solvent <= equilibrium:
        return solvent
    rate = resist.solvent_rate * math.exp(
        -resist.solvent_activation
        / BOLTZMANN_EV
        * (
            1.0 / (temperature + ZERO_CELSIUS)
            - 1.0 / (resist.solvent_rate_temperature + ZERO_CELSIUS)
        )
    )
    return equilibrium + (solvent - equilibrium) * math.exp(-rate * dt)


def peb_rate(resist: ResistParameters, temperature: float) -> float:
    """Arrhenius cross-linking rate k_x (1/s per unit acid) at ``temperature`` degC."""
    t_ref = resist.crosslink_reference_temperature + ZERO_CELSIUS
    t = temperature + ZERO_CELSIUS
    return resist.crosslink_rate * math.exp(
        -resist.crosslink_activation / BOLTZMANN_EV * (1.0 / t - 1.0 / t_ref)
    )


def solvent_crosslink_factor(resist: ResistParameters, solvent: float) -> float:
    """Factor on the PEB cross-linking rate for residual ``solvent`` (volume fraction).

    ``exp(coefficient * (solvent - reference))``: solvent left in the film by
    a cooler or shorter soft bake is free volume in which the acid diffuses
    and cross-links faster, so the same dose gels more (lower Dg); a hotter
    soft bake leaves less solvent and a higher Dg.
    """
    return math.exp(
        resist.solvent_crosslink_coefficient * (solvent - resist.solvent_crosslink_reference)
    )


def bake_step(
    resist: ResistParameters,
    solvent: float,
    temperature: float,
    dt: float,
    peb_time: float | None = None,
) -> tuple[float, float]:
    """``dt`` seconds of bake at wafer ``temperature``: (solvent after, PEB increment).

    ``peb_time`` is the time the exposed film has already spent in PEB (None:
    not a PEB - unexposed, or too cool). The increment of the PEB integral
    ``Phi = int k_x(T) f(s) exp(-k_loss t) dt`` uses the step's mean solvent
    (:func:`solvent_crosslink_factor`). The hotplate and the ground truth
    (:func:`process_history`) both bake through this function.
    """
    after = solvent_after_bake(resist, solvent, temperature, dt)
    if peb_time is None:
        return after, 0.0
    rate = peb_rate(resist, temperature) * solvent_crosslink_factor(resist, 0.5 * (solvent + after))
    decay = math.exp(-resist.acid_loss_rate * (peb_time + dt / 2.0))
    return after, rate * decay * dt


def process_history(
    resist: ResistParameters,
    soft_bake_temperature: float,
    soft_bake_time: float,
    peb_temperature: float,
    peb_time: float,
) -> tuple[float, float, float]:
    """An ideal process's bakes: (solvent at exposure, solvent after PEB, Phi).

    The film starts at ``solvent_after_spin``; the wafer is taken to be at
    the plate temperature for the whole of each bake (no proximity lag - a
    real wafer's own record has it). Steps of :data:`BAKE_STEP` through
    :func:`bake_step`, as the hotplate does.
    """
    solvent = resist.solvent_after_spin
    steps = max(1, round(soft_bake_time / BAKE_STEP))
    for _ in range(steps):
        solvent, _ = bake_step(resist, solvent, soft_bake_temperature, soft_bake_time / steps)
    exposed_solvent = solvent
    thermal = 0.0
    steps = max(1, round(peb_time / BAKE_STEP))
    dt = peb_time / steps
    for index in range(steps):
        solvent, increment = bake_step(resist, solvent, peb_temperature, dt, index * dt)
        thermal += increment
    return exposed_solvent, solvent, thermal


# -- exposure and chemistry ----------------------------------------------------------


def acid_concentration(resist: ResistParameters, dose: float) -> float:
    """Effective acid after quenching for ``dose`` (mJ/cm^2): max(0, A - Q0)."""
    acid = resist.acid_yield * (1.0 - math.exp(-resist.acid_efficiency * max(dose, 0.0)))
    return max(0.0, acid - resist.quencher)


def crosslink_fraction(resist: ResistParameters, dose: float, thermal_dose: float) -> float:
    """Cross-link fraction X for ``dose`` and the PEB integral ``thermal_dose``.

    ``thermal_dose`` is Phi = integral of k_x(T(t)) f(s(t)) exp(-k_loss t) dt
    over the PEB (f: :func:`solvent_crosslink_factor`), so that at constant
    temperature and solvent
    ``X = XL0 [1 - exp(-k_x A_eff (1 - exp(-k_loss t)) / k_loss)]``.
    """
    return resist.crosslink_max * (1.0 - math.exp(-acid_concentration(resist, dose) * thermal_dose))


def gel_dose(resist: ResistParameters, thermal_dose: float) -> float:
    """Local dose (mJ/cm^2) at which X reaches the gel point; inf if it never does."""
    if resist.gel_point <= 0.0:
        return 0.0
    if thermal_dose <= 0.0 or resist.gel_point >= resist.crosslink_max:
        return math.inf
    acid = resist.quencher - math.log(1.0 - resist.gel_point / resist.crosslink_max) / thermal_dose
    if acid >= resist.acid_yield or resist.acid_efficiency <= 0.0:
        return math.inf
    return -math.log(1.0 - acid / resist.acid_yield) / resist.acid_efficiency


#: Newton steps for the uniform-chain gel fraction (it converges in < 10).
GEL_NEWTON_STEPS = 60


def gel_fraction(resist: ResistParameters, crosslink: float) -> float:
    """Gel fraction g = 1 - s of film with cross-link fraction ``crosslink``.

    Random cross-linking without scission, by ``resist.gel_law``, with
    d = X / X_gel: "uniform", ``g = 1 - exp(-d g)``; "most_probable"
    (Charlesby-Pinner), ``s + sqrt(s) = 2 / d``. g = 0 up to the gel point.
    """
    if crosslink <= resist.gel_point:
        return 0.0
    degree = crosslink / resist.gel_point
    if resist.gel_law == "most_probable":
        root = 0.5 * (math.sqrt(1.0 + 8.0 / degree) - 1.0)  # sqrt(s)
        return 1.0 - root * root
    if resist.gel_law != "uniform":
        raise ValueError(f"unknown gel_law {resist.gel_law!r}: uniform or most_probable")
    # Newton on F(g) = g - 1 + exp(-d g), convex: from the right of the root
    # (2 (d - 1) and 1 both are) it converges monotonically.
    gel = min(1.0, 2.0 * (degree - 1.0))
    for _ in range(GEL_NEWTON_STEPS):
        decay = math.exp(-degree * gel)
        step = (gel - 1.0 + decay) / (1.0 - degree * decay)
        gel -= step
        if abs(step) <= 1e-15:
            break
    return max(0.0, gel)


def anchored_fraction(resist: ResistParameters, bottom_gel: float) -> float:
    """Area fraction of a gelled film that stays anchored (``anchor_gel_fraction``)."""
    if bottom_gel <= 0.0:
        return 0.0
    if resist.anchor_gel_fraction <= 0.0:
        return 1.0
    u = min(1.0, bottom_gel / resist.anchor_gel_fraction)
    return 1.0 - (1.0 - u) * (1.0 - u)


def development_rate(resist: ResistParameters, crosslink: float) -> float:
    """Dissolution rate (nm/s) of film with cross-link fraction ``crosslink``.

    Mack-type, ``R = Rmax (a+1) u / (a + u) + Rmin`` with ``u = (1 - m)^n``
    and ``m = X / XL0``, so the rate *falls* as cross-links form; film past
    the gel point ``X_gel`` is an insoluble network whose surface erodes at
    Rmin. (The domain notes write m = 1 - X/XL0, which would make the rate
    rise with X; for a negative resist it must fall.)
    """
    if crosslink >= resist.gel_point:
        return resist.rate_min
    m = crosslink / resist.crosslink_max
    u = (1.0 - m) ** resist.mack_n
    rate = resist.rate_max * (resist.mack_a + 1.0) * u / (resist.mack_a + u)
    return float(rate + resist.rate_min)


_NODES, _WEIGHTS = (
    tuple(float(v) for v in values) for values in numpy.polynomial.legendre.leggauss(DEPTH_NODES)
)


def _integral(function: Callable[[float], float], low: float, high: float) -> float:
    """Gauss-Legendre integral of ``function`` over [low, high]."""
    if high <= low:
        return 0.0
    half, middle = 0.5 * (high - low), 0.5 * (high + low)
    nodes = zip(_NODES, _WEIGHTS, strict=True)
    return half * sum(w * function(middle + half * x) for x, w in nodes)


def baked_thickness(
    resist: ResistParameters, thickness_nm: float, dose: float, thermal_dose: float
) -> float:
    """Film (nm) after PEB: ``thickness_nm`` shrunk by its cross-linking, layer by layer.

    The dose falls with depth, ``D exp(-absorbance z)``; a layer of
    cross-link fraction X shrinks by ``crosslink_shrink X / XL0``.
    """
    if thickness_nm <= 0.0 or thermal_dose <= 0.0:
        return max(thickness_nm, 0.0)
    optical = resist.absorbance * thickness_nm / 1000.0

    def kept(zeta: float) -> float:
        crosslink = crosslink_fraction(resist, dose * math.exp(-optical * zeta), thermal_dose)
        return 1.0 - resist.crosslink_shrink * crosslink / resist.crosslink_max

    return thickness_nm * _integral(kept, 0.0, 1.0)


def developed_thickness(
    resist: ResistParameters,
    thickness_nm: float,
    dose: float,
    thermal_dose: float,
    develop_time: float,
) -> float:
    """Film (nm) left after ``develop_time`` s of development.

    ``thickness_nm`` is the film before PEB shrink; depth z runs from the top,
    where the dose is highest (``D exp(-absorbance z)``), so the film is a
    gelled top (X >= X_gel, down to the depth where the local dose is
    :func:`gel_dose`) over an ungelled base.

    * The developer permeates the swollen gel at once and extracts its sol:
      each gelled layer keeps its gel fraction (:func:`gel_fraction`) of its
      PEB-shrunk thickness; the gel's surface erodes at ``rate_min``.
    * Ungelled film dissolves at the Mack rate (:func:`development_rate`), the
      front moving down from the top of the base - a gelled top does not
      protect it. If the base clears within the develop time, the film has
      nothing left to hold it: the gel lifts off and nothing remains. If it
      does not clear, what is left of it stays, with the gel on top.
    * A film gelled to the substrate stays on the anchored fraction of its
      area (:func:`anchored_fraction` of the bottom layer's gel fraction).

    So film first stays when the dose at the substrate gels it - at
    ``gel_dose * exp(absorbance * thickness)`` at the surface - and what it
    keeps rises from there with the gel fraction and the anchoring (no
    step: the anchored fraction starts at 0).
    """
    if thickness_nm <= 0.0:
        return 0.0
    if develop_time <= 0.0:
        return baked_thickness(resist, thickness_nm, dose, thermal_dose)
    optical = resist.absorbance * thickness_nm / 1000.0

    def crosslink(zeta: float) -> float:
        return crosslink_fraction(resist, dose * math.exp(-optical * zeta), thermal_dose)

    def gel_kept(zeta: float) -> float:
        x = crosslink(zeta)
        return gel_fraction(resist, x) * (1.0 - resist.crosslink_shrink * x / resist.crosslink_max)

    threshold = gel_dose(resist, thermal_dose)
    if dose <= threshold:
        boundary = 0.0
    elif optical <= 0.0:
        boundary = 1.0
    else:
        boundary = min(1.0, math.log(dose / threshold) / optical)
    erosion = resist.rate_min * develop_time
    if boundary >= 1.0:
        gel = thickness_nm * _integral(gel_kept, 0.0, 1.0)
        bottom = gel_fraction(resist, crosslink(1.0))
        return anchored_fraction(resist, bottom) * max(0.0, gel - erosion)

    def clearing_time(front: float) -> float:
        """Seconds to dissolve the base from the gel boundary down to ``front``."""
        return thickness_nm * _integral(
            lambda zeta: 1.0 / development_rate(resist, crosslink(zeta)), boundary, front
        )

    if clearing_time(1.0) <= develop_time:
        return 0.0
    low, high = boundary, 1.0
    for _ in range(FRONT_BISECTIONS):
        middle = 0.5 * (low + high)
        if clearing_time(middle) <= develop_time:
            low = middle
        else:
            high = middle
    base = thickness_nm * _integral(
        lambda zeta: 1.0 - resist.crosslink_shrink * crosslink(zeta) / resist.crosslink_max,
        low,
        1.0,
    )
    gel = thickness_nm * _integral(gel_kept, 0.0, boundary)
    return base + max(0.0, gel - erosion)


# -- ellipsometry ------------------------------------------------------------------


def single_wavelength_period(index: float, wavelength_nm: float, angle_deg: float) -> float:
    """Thickness period (nm) of a single-wavelength reading: l / (2 sqrt(n^2 - sin^2 t))."""
    s = math.sin(math.radians(angle_deg))
    return wavelength_nm / (2.0 * math.sqrt(index * index - s * s))


# -- LED aging ---------------------------------------------------------------------


def led_output_fraction(bench: BenchParameters, on_hours: float) -> float:
    """Output left after ``on_hours`` of on-time: ``0.7 ** (on_hours / L70)``."""
    if bench.led_l70_hours <= 0.0:
        return 1.0
    return float(L70_FRACTION ** (max(on_hours, 0.0) / bench.led_l70_hours))


# -- the contrast curve's figures (the definition of docs/analysis.md) ------------------

#: Coarse scan of the curve (points per decade of dose).
COARSE_POINTS_PER_DECADE = 100
#: Fine grid across the steepest part (points per decade) and its half-width
#: beyond the coarse segment that holds the steepest slope (decades).
FINE_POINTS_PER_DECADE = 4000
FINE_WINDOW = 0.05
#: The plateau: the curve is followed until it rises by less than
#: PLATEAU_FLAT (0.1 %) over the next decade, but no further than this many
#: decades above its onset (1000x).
PLATEAU_SPAN = 3.0
PLATEAU_FLAT = 0.001
#: Onset: the first dose where the curve reaches this fraction of the plateau.
ONSET_LEVEL = 0.05
#: A value above the floor by more than this has left the floor.
RISE_TOLERANCE = 1e-9
#: Bisection steps of the onset and D50 (in log dose: far below 1e-9 decade).
CROSSING_BISECTIONS = 60


def contrast_construction(
    nrt: Callable[[float], float], *, dose_min: float = 1e-3, dose_max: float = 1e7
) -> dict[str, Any]:
    """The classic figures of a contrast curve ``nrt(dose)`` (dose in mJ/cm^2).

    With x = log10(dose), y = NRT:

    * plateau P: the supremum of y from the last dose on the floor (the
      lowest dose's value) up to where the curve stops rising - the first
      dose after which it rises by less than 0.1 % over a decade - or up to
      1000x the onset, whichever comes first (a curve still creeping up far
      above its onset is cut there);
    * S = max dy/dx (per decade) at (x*, y*): forward differences on a
      100-per-decade scan locate it, then on a 4000-per-decade grid around
      it; (x*, y*) is the midpoint of the steepest segment, so the slope
      of a kink (steepest right at the onset) is found one-sided;
    * Dg: log10 Dg = x* - y*/S (the tangent reaches 0);
    * D100: log10 D100 = x* + (P - y*)/S (the tangent reaches P);
    * gamma = 1 / log10(D100/Dg) = S/P;
    * onset: the lowest dose where y reaches 5 % of P; D50: where it reaches P/2.

    Returns floats (doses in mJ/cm^2): ``dg``, ``d100``, ``onset``, ``d50``,
    ``gamma``, ``plateau``, ``max_slope``. A curve that never leaves its
    floor in [dose_min, dose_max] gives infinite doses and gamma 0.
    """
    x_low, x_high = math.log10(dose_min), math.log10(dose_max)
    step = 1.0 / COARSE_POINTS_PER_DECADE
    count = round((x_high - x_low) / step) + 1
    xs: list[float] = []
    ys: list[float] = []

    def value(index: int) -> float:
        while len(ys) <= index:
            x = x_low + len(xs) * step
            xs.append(x)
            ys.append(float(nrt(10.0**x)))
        return ys[index]

    floor = value(0)
    start = next((i for i in range(1, count) if value(i) > floor + RISE_TOLERANCE), None)
    if start is None:
        return {
            "dg": math.inf,
            "d100": math.inf,
            "onset": math.inf,
            "d50": math.inf,
            "gamma": 0.0,
            "plateau": floor,
            "max_slope": 0.0,
        }
    first = start - 1  # the last point on the floor
    decade = COARSE_POINTS_PER_DECADE
    last = count - 1
    for index in range(first, count - 1):
        ahead = min(count - 1, index + decade)
        if value(index) > floor + RISE_TOLERANCE and (
            value(ahead) - value(index) <= PLATEAU_FLAT * abs(value(index))
        ):
            last = ahead
            break
    plateau = max(value(i) for i in range(first, last + 1))
    onset_index = next(i for i in range(first, last + 1) if value(i) >= ONSET_LEVEL * plateau)
    cap = onset_index + round(PLATEAU_SPAN * COARSE_POINTS_PER_DECADE)
    if last > cap:  # still rising 1000x above the onset: the plateau is taken there
        last = cap
        plateau = max(value(i) for i in range(first, last + 1))

    slopes = [(value(i + 1) - value(i)) / step for i in range(first, last)]
    coarse = first + max(range(len(slopes)), key=slopes.__getitem__)
    fine_low = max(xs[first], xs[coarse] - FINE_WINDOW)
    fine_high = xs[coarse + 1] + FINE_WINDOW
    points = max(2, round((fine_high - fine_low) * FINE_POINTS_PER_DECADE))
    fine_x = [fine_low + (fine_high - fine_low) * i / points for i in range(points + 1)]
    fine_y = [float(nrt(10.0**x)) for x in fine_x]
    best, slope = 0, -math.inf
    for i in range(points):
        candidate = (fine_y[i + 1] - fine_y[i]) / (fine_x[i + 1] - fine_x[i])
        if candidate > slope:
            best, slope = i, candidate
    x_star = 0.5 * (fine_x[best] + fine_x[best + 1])
    y_star = 0.5 * (fine_y[best] + fine_y[best + 1])

    def crossing(level: float) -> float:
        above = next((i for i in range(first, last + 1) if value(i) >= level), None)
        if above is None:
            return math.inf
        if above == 0:
            return float(10.0 ** xs[0])
        low, high = xs[above - 1], xs[above]
        for _ in range(CROSSING_BISECTIONS):
            middle = 0.5 * (low + high)
            if nrt(10.0**middle) >= level:
                high = middle
            else:
                low = middle
        return float(10.0**high)

    if slope <= 0.0 or plateau <= 0.0:
        return {
            "dg": math.inf,
            "d100": math.inf,
            "onset": crossing(ONSET_LEVEL * plateau),
            "d50": crossing(0.5 * plateau),
            "gamma": 0.0,
            "plateau": plateau,
            "max_slope": max(slope, 0.0),
        }
    return {
        "dg": float(10.0 ** (x_star - y_star / slope)),
        "d100": float(10.0 ** (x_star + (plateau - y_star) / slope)),
        "onset": crossing(ONSET_LEVEL * plateau),
        "d50": crossing(0.5 * plateau),
        "gamma": slope / plateau,
        "plateau": plateau,
        "max_slope": slope,
    }


@dataclass
class ThermalHistory:
    """Accumulated PEB integral of a wafer (after its first exposure)."""

    thermal_dose: float = 0.0
    bake_time: float = 0.0
    peak_temperature: float = field(default=-273.15)
