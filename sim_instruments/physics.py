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
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = [
    "BOLTZMANN_EV",
    "BenchParameters",
    "ResistParameters",
    "acid_concentration",
    "crosslink_fraction",
    "development_rate",
    "dissolved_depth",
    "final_spin_thickness",
    "peb_rate",
    "plate_ramp",
    "proximity_time_constant",
    "single_wavelength_period",
    "solvent_after_bake",
    "spin_film_step",
]

#: Boltzmann constant (eV/K).
BOLTZMANN_EV = 8.617333262e-5
#: 0 degC in kelvin.
ZERO_CELSIUS = 273.15


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
    #: Radial non-uniformity, 1 sigma (fraction).
    nonuniformity: float = 0.007
    #: Edge bead width (mm) and peak thickness (times nominal).
    edge_bead_width: float = 2.0
    edge_bead_factor: float = 2.0

    # -- solvent and soft bake ----------------------------------------------------
    #: Residual solvent right after spin (volume fraction of the film).
    solvent_after_spin: float = 0.15
    #: Solvent left at equilibrium: s_eq = floor + span * exp(-(T - 90 C)/scale).
    solvent_floor: float = 0.02
    solvent_span: float = 0.03
    solvent_scale: float = 20.0
    #: Solvent loss rate at 100 C (1/s) and its activation energy (eV).
    solvent_rate: float = 0.05
    solvent_activation: float = 0.4

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
    acid_efficiency: float = 0.01
    #: Q0: base quencher loading (same normalized units as acid).
    quencher: float = 0.1
    #: XL0: cross-link fraction at full conversion.
    crosslink_max: float = 1.0
    #: k_x at the reference temperature (1/s per unit acid).
    crosslink_rate: float = 0.08
    #: Reference temperature of crosslink_rate (degC).
    crosslink_reference_temperature: float = 110.0
    #: Ea of cross-linking (eV), 0.7-1.2.
    crosslink_activation: float = 0.9
    #: k_loss: acid loss rate during PEB (1/s).
    acid_loss_rate: float = 0.01
    #: X_gel: cross-link fraction at which the film gels (insoluble network).
    gel_point: float = 0.75
    #: Shrink of a fully cross-linked film in PEB (fraction), 2-8 %.
    crosslink_shrink: float = 0.05

    # -- development (2.38 % TMAH) ------------------------------------------------
    #: Dissolution rate of un-cross-linked film (nm/s), 20-300.
    rate_max: float = 100.0
    #: Rate of gelled film (nm/s), below 0.05.
    rate_min: float = 0.02
    #: Mack-type rate law: R = Rmax (a+1)(1-m)^n / (a+(1-m)^n) + Rmin, m = X/XL0.
    #: n sets the contrast: 6 gives gamma about 3 with the defaults above.
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
    #: LED output drift (fraction per hour, negative: dimming) and noise (1 sigma).
    led_drift_per_hour: float = -0.01
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
    spin curve; a short one, or a slow ramp, leaves a thicker film.
    """
    if rpm < 1.0 or dt <= 0:
        return thickness, wetness
    ratio = 3000.0 / rpm
    tau_thin = resist.thinning_time * ratio * ratio
    tau_dry = resist.drying_time * math.sqrt(ratio)
    target = final_spin_thickness(resist, rpm)
    if thickness > target:
        # Thinning slows as the film dries; integrate with the mid-step wetness.
        mid_wetness = wetness * math.exp(-dt / (2 * tau_dry))
        thickness = target + (thickness - target) * math.exp(-dt * mid_wetness / tau_thin)
    return thickness, wetness * math.exp(-dt / tau_dry)


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
        -(temperature - 90.0) / resist.solvent_scale
    )


def solvent_after_bake(
    resist: ResistParameters, solvent: float, temperature: float, dt: float
) -> float:
    """Solvent fraction after ``dt`` s at wafer ``temperature`` (degC)."""
    if temperature < 40.0:
        return solvent
    equilibrium = solvent_equilibrium(resist, temperature)
    if solvent <= equilibrium:
        return solvent
    rate = resist.solvent_rate * math.exp(
        -resist.solvent_activation
        / BOLTZMANN_EV
        * (1.0 / (temperature + ZERO_CELSIUS) - 1.0 / (100.0 + ZERO_CELSIUS))
    )
    return equilibrium + (solvent - equilibrium) * math.exp(-rate * dt)


def peb_rate(resist: ResistParameters, temperature: float) -> float:
    """Arrhenius cross-linking rate k_x (1/s per unit acid) at ``temperature`` degC."""
    t_ref = resist.crosslink_reference_temperature + ZERO_CELSIUS
    t = temperature + ZERO_CELSIUS
    return resist.crosslink_rate * math.exp(
        -resist.crosslink_activation / BOLTZMANN_EV * (1.0 / t - 1.0 / t_ref)
    )


# -- exposure and chemistry ----------------------------------------------------------


def acid_concentration(resist: ResistParameters, dose: float) -> float:
    """Effective acid after quenching for ``dose`` (mJ/cm^2): max(0, A - Q0)."""
    acid = resist.acid_yield * (1.0 - math.exp(-resist.acid_efficiency * max(dose, 0.0)))
    return max(0.0, acid - resist.quencher)


def crosslink_fraction(resist: ResistParameters, dose: float, thermal_dose: float) -> float:
    """Cross-link fraction X for ``dose`` and the PEB integral ``thermal_dose``.

    ``thermal_dose`` is Phi = integral of k_x(T(t)) exp(-k_loss t) dt over the
    PEB, so that at constant temperature
    ``X = XL0 [1 - exp(-k_x A_eff (1 - exp(-k_loss t)) / k_loss)]``.
    """
    return resist.crosslink_max * (1.0 - math.exp(-acid_concentration(resist, dose) * thermal_dose))


def development_rate(resist: ResistParameters, crosslink: float) -> float:
    """Dissolution rate (nm/s) of film with cross-link fraction ``crosslink``.

    Mack-type, ``R = Rmax (a+1) u / (a + u) + Rmin`` with ``u = (1 - m)^n``
    and ``m = X / XL0``, so the rate *falls* as cross-links form; film past
    the gel point ``X_gel`` is an insoluble network and dissolves at Rmin.
    (The domain notes write m = 1 - X/XL0, which would make the rate rise
    with X; for a negative resist it must fall.)
    """
    if crosslink >= resist.gel_point:
        return resist.rate_min
    m = crosslink / resist.crosslink_max
    u = (1.0 - m) ** resist.mack_n
    rate = resist.rate_max * (resist.mack_a + 1.0) * u / (resist.mack_a + u)
    return float(rate + resist.rate_min)


def dissolved_depth(
    resist: ResistParameters,
    thickness_nm: float,
    dose: float,
    thermal_dose: float,
    develop_time: float,
    layers: int = 60,
) -> float:
    """Depth (nm) a develop of ``develop_time`` s removes from the top.

    The dose falls with depth (absorbance), so the top is the most
    cross-linked; the dissolution front moves down layer by layer at the
    local rate.
    """
    if thickness_nm <= 0 or develop_time <= 0:
        return 0.0
    dz = thickness_nm / layers
    remaining_time = develop_time
    depth = 0.0
    for i in range(layers):
        z_um = (i + 0.5) * dz / 1000.0
        local_dose = dose * math.exp(-resist.absorbance * z_um)
        rate = development_rate(resist, crosslink_fraction(resist, local_dose, thermal_dose))
        layer_time = dz / rate
        if layer_time >= remaining_time:
            return depth + rate * remaining_time
        depth += dz
        remaining_time -= layer_time
    return thickness_nm


def mean_crosslink(
    resist: ResistParameters, thickness_nm: float, dose: float, thermal_dose: float
) -> float:
    """Cross-link fraction averaged over the film depth."""
    layers = 20
    total = 0.0
    for i in range(layers):
        z_um = (i + 0.5) / layers * thickness_nm / 1000.0
        local_dose = dose * math.exp(-resist.absorbance * z_um)
        total += crosslink_fraction(resist, local_dose, thermal_dose)
    return total / layers


# -- ellipsometry ------------------------------------------------------------------


def single_wavelength_period(index: float, wavelength_nm: float, angle_deg: float) -> float:
    """Thickness period (nm) of a single-wavelength reading: l / (2 sqrt(n^2 - sin^2 t))."""
    s = math.sin(math.radians(angle_deg))
    return wavelength_nm / (2.0 * math.sqrt(index * index - s * s))


@dataclass
class ThermalHistory:
    """Accumulated PEB integral of a wafer (after its first exposure)."""

    thermal_dose: float = 0.0
    bake_time: float = 0.0
    peak_temperature: float = field(default=-273.15)
