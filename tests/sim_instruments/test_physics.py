"""The bench's physics against the domain notes, through the real drivers."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from labctl.units import Q_
from sim_instruments import physics
from sim_instruments.bench import VirtualBench
from sim_instruments.physics import BenchParameters, ResistParameters
from tests.sim_instruments.conftest import bake, coat, develop


def spin_thickness(resist: ResistParameters, speed: float) -> float:
    """Coat at ``speed`` on a fresh bench; measure the centre with the ellipsometer (nm)."""
    bench = VirtualBench(seed=3, resist=resist)
    station = bench.station()
    station.connect()
    coat(bench, station, "W", speed=speed, seconds=30)
    bench.load("W", "ellipsometer")
    ellipsometer = station["ellipsometer"]
    ellipsometer.move_to(Q_(0, "mm"), Q_(0, "mm"))
    thicknesses = []
    for index, (x, y) in enumerate([(0, 0), (10, 0), (0, 10), (-10, 0), (0, -10)]):
        ellipsometer.move_to(Q_(x, "mm"), Q_(y, "mm"))
        thicknesses.append(
            ellipsometer.run_recipe("Resist on Si", f"p{index}").thickness.m_as("nm")
        )
    return sum(thicknesses) / len(thicknesses)


def fitted_exponent(resist: ResistParameters, speeds: list[float]) -> tuple[float, float]:
    xs = [math.log(s) for s in speeds]
    ys = [math.log(spin_thickness(resist, s)) for s in speeds]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return -slope, math.exp(mean_y - slope * mean_x)


@pytest.mark.parametrize("exponent", [0.4, 0.5, 0.6])
def test_spin_curve_exponent_comes_back_as_configured(exponent: float) -> None:
    resist = ResistParameters(spin_exponent=exponent, spin_k=27.0 * 3000 ** (exponent - 0.5))
    b, _ = fitted_exponent(resist, [1000, 2000, 3000, 4500, 6000])
    assert b == pytest.approx(exponent, abs=0.02)


def test_published_az5214e_curve_is_reproduced_within_5_percent() -> None:
    az5214e = ResistParameters(name="AZ5214E", spin_k=90.8, spin_exponent=0.5, nonuniformity=0.0)
    assert spin_thickness(az5214e, 2000) / 1980.0 == pytest.approx(1.0, abs=0.05)
    assert spin_thickness(az5214e, 6000) / 1140.0 == pytest.approx(1.0, abs=0.05)


def test_more_solids_and_viscosity_give_a_thicker_film() -> None:
    base = ResistParameters()
    assert physics.final_spin_thickness(base.with_changes(solids=0.15), 3000) > (
        physics.final_spin_thickness(base, 3000)
    )
    assert physics.final_spin_thickness(base.with_changes(viscosity=20.0), 3000) > (
        physics.final_spin_thickness(base, 3000)
    )


def test_a_very_short_spin_leaves_a_thicker_film() -> None:
    resist = ResistParameters(nonuniformity=0.0)
    assert spin_thickness(resist, 1000) < 0.99 * _short_spin(resist)


def _short_spin(resist: ResistParameters) -> float:
    bench = VirtualBench(seed=3, resist=resist)
    station = bench.station()
    station.connect()
    coat(bench, station, "W", speed=1000, seconds=1)
    return bench.true_thickness("W", Q_(0, "mm"), Q_(0, "mm")).m_as("nm")


def test_film_has_the_documented_nonuniformity_and_edge_bead(
    bench: VirtualBench, station: Any
) -> None:
    coat(bench, station, "W")
    radii = [i * 2.0 for i in range(0, 22)]  # inside the bead zone
    values = [bench.true_thickness("W", Q_(r, "mm"), Q_(0, "mm")).m_as("nm") for r in radii]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean
    assert 0.001 < spread < 0.02
    edge = bench.true_thickness("W", Q_(49.9, "mm"), Q_(0, "mm")).m_as("nm")
    assert 1.5 < edge / mean < 3.0


def test_wafer_on_100_um_pins_settles_within_half_a_degree_in_the_documented_time(
    bench: VirtualBench, station: Any
) -> None:
    plate = station["hotplate"]
    bench.new_wafer("W")
    plate.heat_to(Q_(110, "degC"))
    plate.wait(Q_(300, "s"))
    bench.load("W", "hotplate")
    wafer = bench.wafers["W"]
    tau = physics.proximity_time_constant(bench.parameters)
    assert tau == pytest.approx(3.7)
    temperatures = []
    for _ in range(60):
        plate.wait(Q_(1, "s"))
        bench.advance(0)
        temperatures.append(wafer.temperature)
    # first order: 63 % of the way after one time constant (plus the plate's dip)
    assert 110 - temperatures[3] == pytest.approx(87 * math.exp(-4 / tau), abs=2.5)
    settled = next(i + 1 for i, t in enumerate(temperatures) if abs(t - 110) < 0.5)
    documented = tau * math.log(87 / 0.5)  # 19 s
    assert documented - 2 <= settled <= documented + 8  # the dip recovers meanwhile
    assert plate.plate_temperature.m_as("degC") == pytest.approx(110, abs=0.5)


def test_loading_a_cold_wafer_dips_the_plate_by_one_to_three_degrees(
    bench: VirtualBench, station: Any
) -> None:
    plate = station["hotplate"]
    bench.new_wafer("W")
    plate.heat_to(Q_(110, "degC"))
    plate.wait(Q_(300, "s"))
    bench.load("W", "hotplate")
    plate.wait(Q_(1, "s"))
    dip = 110 - plate.plate_temperature.m_as("degC")
    assert 1.0 <= dip <= 3.0
    plate.wait(Q_(60, "s"))
    assert plate.plate_temperature.m_as("degC") == pytest.approx(110, abs=0.3)


def test_plate_ramps_at_finite_rates(bench: VirtualBench, station: Any) -> None:
    plate = station["hotplate"]
    plate.heat_to(Q_(110, "degC"))
    plate.wait(Q_(10, "s"))
    assert plate.plate_temperature.m_as("degC") == pytest.approx(23 + 2.0 * 10, abs=1)
    plate.wait(Q_(60, "s"))
    plate.heat_to(Q_(90, "degC"))
    plate.wait(Q_(10, "s"))
    assert plate.plate_temperature.m_as("degC") == pytest.approx(110 - 0.5 * 10, abs=1)


def test_soft_bake_removes_solvent_and_shrinks_the_film_5_to_15_percent(
    bench: VirtualBench, station: Any
) -> None:
    coat(bench, station, "W")
    before = bench.true_thickness("W", Q_(0, "mm"), Q_(0, "mm"))
    bake(bench, station, "W", 100, 60)
    after = bench.true_thickness("W", Q_(0, "mm"), Q_(0, "mm"))
    assert 0.05 <= 1 - after / before <= 0.15
    assert 0.02 <= bench.wafers["W"].solvent <= 0.05


PROCESS = {
    "thickness": Q_(480, "nm"),
    "peb_temperature": Q_(110, "degC"),
    "peb_time": Q_(60, "s"),
    "develop_time": Q_(60, "s"),
}
DOSE = "mJ/cm**2"


def test_true_contrast_curve_is_monotonic_and_in_the_typical_range() -> None:
    truth = VirtualBench().true_contrast(**PROCESS)
    doses = [5 * 1.12**i for i in range(36)]  # 5-200 mJ/cm2, the default range
    values = [truth["nrt"](d) for d in doses]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))
    plateau = truth["plateau"]
    assert isinstance(plateau, float) and isinstance(truth["gamma"], float)
    assert 0.85 <= plateau <= 0.97
    assert values[0] == 0.0 and values[-1] >= 0.98 * plateau  # reached inside the range
    dg = truth["dg"].m_as(DOSE)
    assert 15 <= dg <= 50
    assert truth["gel_dose"] == truth["dg"]
    assert 2 <= truth["gamma"] <= 6
    assert truth["gamma"] == pytest.approx(truth["max_slope"] / plateau)
    onset, d50, d100 = (truth[k].m_as(DOSE) for k in ("onset", "d50", "d100"))
    assert dg < onset < d50 < d100
    assert truth["nrt"](onset) == pytest.approx(0.05 * plateau, rel=1e-6)
    assert truth["nrt"](d50) == pytest.approx(0.5 * plateau, rel=1e-6)
    assert 1 / math.log10(d100 / dg) == pytest.approx(truth["gamma"])


def test_more_base_raises_the_gel_dose_and_steepens_the_curve() -> None:
    bench = VirtualBench()
    low = bench.true_contrast(resist=ResistParameters(quencher=0.05), **PROCESS)
    high = bench.true_contrast(resist=ResistParameters(quencher=0.15), **PROCESS)
    assert high["dg"] > 1.2 * low["dg"]
    assert high["gamma"] > low["gamma"]


def test_peb_temperature_shifts_the_gel_dose_a_few_percent_per_degree() -> None:
    bench = VirtualBench()
    process = {"thickness": Q_(480, "nm"), "peb_time": Q_(60, "s"), "develop_time": Q_(60, "s")}
    cold = bench.true_contrast(peb_temperature=Q_(109, "degC"), **process)["dg"]
    warm = bench.true_contrast(peb_temperature=Q_(111, "degC"), **process)["dg"]
    shift_per_degree = (cold / warm - 1) / 2
    assert 0.01 <= shift_per_degree <= 0.08


def test_a_thicker_film_needs_more_dose_as_its_absorbance_says() -> None:
    """The gel must reach the substrate, where the dose is D exp(-absorbance h)."""
    bench = VirtualBench()
    absorbance = bench.resist.absorbance  # 1/um
    dg = {}
    for nm in (300, 600, 1200):
        process = dict(PROCESS, thickness=Q_(nm, "nm"))
        dg[nm] = bench.true_contrast(**process)["dg"].m_as(DOSE)
    assert dg[300] < dg[600] < dg[1200]
    expected = math.exp(absorbance * (1.2 - 0.3))  # 1.197
    # the onset follows it exactly; Dg within 5 % (the curve steepens a little
    # with thickness, as more of the film is gelled when the bottom gels)
    assert dg[1200] / dg[300] == pytest.approx(expected, rel=0.05)


def test_a_hotter_soft_bake_leaves_less_solvent_and_raises_the_gel_dose() -> None:
    bench = VirtualBench()
    dg = {
        t: bench.true_contrast(soft_bake_temperature=Q_(t, "degC"), **PROCESS)["dg"].m_as(DOSE)
        for t in (90, 110, 130)
    }
    assert dg[90] < dg[110] < dg[130]
    assert 1.10 <= dg[130] / dg[90] <= 1.30  # moderate: 19 % with the defaults


def test_the_soft_bake_reaches_the_gel_dose_through_the_wafers_own_record(
    bench: VirtualBench, station: Any
) -> None:
    from drivers.exposure import ExposureTool

    tool = ExposureTool.from_station(station)
    tool.calibrate()
    for wafer, soft_bake in (("COOL", 90), ("HOT", 130)):
        coat(bench, station, wafer)
        bake(bench, station, wafer, soft_bake, 60)
        bench.load(wafer, "exposure_stage")
        tool.expose(Q_(30, DOSE), Q_(0, "mm"), Q_(0, "mm"))
        bench.unload("exposure_stage")
        bake(bench, station, wafer, 110, 60)
        develop(bench, station, wafer, 60)
    tool.safe_state()
    cool, hot = bench.wafers["COOL"], bench.wafers["HOT"]
    assert cool.solvent_before_peb is not None and hot.solvent_before_peb is not None
    assert cool.solvent_before_peb > hot.solvent_before_peb + 0.02
    assert hot.thermal_dose < cool.thermal_dose
    ratio = bench.true_contrast(wafer_id="HOT")["dg"] / bench.true_contrast(wafer_id="COOL")["dg"]
    assert 1.10 <= ratio <= 1.30


def test_the_develop_spin_dry_does_not_thin_a_baked_film(bench: VirtualBench, station: Any) -> None:
    """Coated at 1000 rpm, soft baked, developed with a 3000 rpm dry: no re-thinning."""
    from drivers.exposure import ExposureTool

    coat(bench, station, "W", speed=1000)
    wafer = bench.wafers["W"]
    assert wafer.wetness > 0  # 30 s at 1000 rpm leaves it wet: the bake sets it
    bake(bench, station, "W", 100, 60)
    assert wafer.wetness == 0 and not wafer.flows
    spun = wafer.spun_thickness
    centre, clear = (Q_(0, "mm"), Q_(0, "mm")), (Q_(0, "mm"), Q_(20, "mm"))
    before = bench.true_thickness("W", *centre).m_as("nm")
    # About 850 nm spun at 1000 rpm; the bake drives out solvent (about 12 %),
    # and this wafer's own profile moves its centre by a few per cent.
    assert 0.8 * spun * 1000 < before < spun * 1000
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    bench.load("W", "exposure_stage")
    tool.expose(Q_(200, DOSE), *centre)
    tool.safe_state()
    bench.unload("exposure_stage")
    bake(bench, station, "W", 110, 60)
    develop(bench, station, "W", 60)  # rinse, then 15 s at 3000 rpm
    assert wafer.spun_thickness == spun
    after = bench.true_thickness("W", *centre).m_as("nm")
    assert bench.true_thickness("W", *clear).m_as("nm") == 0.0
    truth = bench.true_contrast(wafer_id="W")
    dose = bench.true_exposures("W")[0]["dose"].m_as(DOSE)
    # what the film keeps is the gel physics and the PEB shrink, nothing else
    assert after / before == pytest.approx(truth["nrt"](dose), rel=1e-6)
    assert after / before >= 0.95 * truth["plateau"]
    assert 0.85 <= truth["plateau"] <= 0.97  # re-thinned to the 3000 rpm film it was 0.55


def test_a_year_of_nightly_runs_leaves_the_led_above_80_percent(
    bench: VirtualBench, station: Any
) -> None:
    from drivers.exposure import ExposureTool

    tool = ExposureTool.from_station(station)
    first = tool.calibrate().irradiance.m_as("mW/cm**2")
    source = station["exposure_source"]
    bench.advance(3600)  # an hour on within a run: no drift to speak of
    assert tool.calibrate().irradiance.m_as("mW/cm**2") == pytest.approx(first, rel=0.01)
    for _night in range(365):
        source.turn_on(Q_(0.5, "A"))
        bench.advance(3 * 3600)  # three hours of light a night
        source.turn_off()
        bench.advance(21 * 3600)
    hours = bench.devices["exposure_source"].state()["on_hours"]
    assert hours == pytest.approx(365 * 3 + 1, abs=1)
    last = tool.calibrate().irradiance.m_as("mW/cm**2")
    assert last > 0.8 * first
    expected = physics.L70_FRACTION ** (hours / bench.parameters.led_l70_hours)
    assert last / first == pytest.approx(expected, abs=0.01)  # 0.98


def test_a_contrast_experiment_on_the_bench_follows_the_truth(
    bench: VirtualBench, station: Any
) -> None:
    from drivers.exposure import ExposureTool

    coat(bench, station, "W")
    bake(bench, station, "W", 100, 60)
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    bench.load("W", "exposure_stage")
    doses = [10 * 1.32**i for i in range(12)]  # 10-210 mJ/cm2
    positions = [(-33 + 6 * i, 0.0) for i in range(12)]
    for dose, (x, y) in zip(doses, positions, strict=True):
        tool.expose(Q_(dose, "mJ/cm**2"), Q_(x, "mm"), Q_(y, "mm"))
    tool.safe_state()
    bench.unload("exposure_stage")
    bench.load("W", "ellipsometer")
    ellipsometer = station["ellipsometer"]
    before = []
    for index, (x, y) in enumerate(positions):
        ellipsometer.move_to(Q_(x, "mm"), Q_(y, "mm"))
        before.append(ellipsometer.run_recipe("Resist on Si", f"b{index}").thickness.m_as("nm"))
    bench.unload("ellipsometer")
    bake(bench, station, "W", 110, 60)
    develop(bench, station, "W", 60)
    bench.load("W", "ellipsometer")
    after = []
    for index, (x, y) in enumerate(positions):
        ellipsometer.move_to(Q_(x, "mm"), Q_(y, "mm"))
        after.append(ellipsometer.run_recipe("Resist on Si", f"a{index}").thickness.m_as("nm"))
    nrt = [a / b for a, b in zip(after, before, strict=True)]
    assert all(later >= earlier - 0.01 for earlier, later in itertools.pairwise(nrt))
    assert nrt[0] < 0.01 and nrt[-1] > 0.85
    for measured, (x, y) in zip(after, positions, strict=True):
        true = bench.true_thickness("W", Q_(x, "mm"), Q_(y, "mm")).m_as("nm")
        assert measured == pytest.approx(true, abs=1.0)
    # The measured curve sits on the resist's true curve: the truth includes the
    # PEB shrink and solvent loss that "before" did not see; what is left is
    # the ellipsometer's noise and the film's non-uniformity between fields.
    truth = bench.true_contrast(wafer_id="W")
    delivered = [e["dose"].m_as("mJ/cm**2") for e in bench.true_exposures("W")]
    for measured, dose in zip(nrt, delivered, strict=True):
        assert measured == pytest.approx(truth["nrt"](dose), abs=0.01)


def test_delivered_dose_includes_the_shutter_timing_error(
    bench: VirtualBench, station: Any
) -> None:
    from drivers.exposure import ExposureTool

    coat(bench, station, "W")
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    bench.load("W", "exposure_stage")
    record = tool.expose(Q_(1, "mJ/cm**2"), Q_(0, "mm"), Q_(0, "mm"))  # 100 ms at 10 mW/cm2
    truth = bench.true_exposures("W")[0]
    # the shutter opens 1.5 ms long on this bench: 1.5 % at 100 ms
    assert truth["duration"].m_as("ms") == pytest.approx(101.5, abs=1.5)
    assert record.dose_delivered.m_as("mJ/cm**2") == pytest.approx(
        truth["dose"].m_as("mJ/cm**2"), rel=0.01
    )


def test_single_wavelength_reading_folds_thick_films_to_the_guess_branch(
    bench: VirtualBench, station: Any
) -> None:
    coat(bench, station, "W", speed=1000)  # about 850 nm: beyond one period
    bench.load("W", "ellipsometer")
    ellipsometer = station["ellipsometer"]
    spectroscopic = ellipsometer.run_recipe("Resist on Si", "s").thickness.m_as("nm")
    single = ellipsometer.run_recipe("Resist on Si 632.8nm", "s").thickness.m_as("nm")
    index = bench.resist.refractive_index(0.6328)
    period = physics.single_wavelength_period(index, 632.8, 70.0)
    assert 230 < period < 270
    assert abs(single - BenchParameters().single_wavelength_guess) <= period / 2 + 1
    branches = (spectroscopic - single) / period
    assert branches == pytest.approx(round(branches), abs=0.01) and round(branches) >= 1


# -- the construction of docs/analysis.md on curves whose answer is known ----------------


@pytest.mark.parametrize(
    ("dg", "gamma", "plateau"), [(25.0, 4.0, 0.9), (3.0, 1.5, 1.0), (120.0, 8.0, 0.7)]
)
def test_the_construction_gives_the_textbook_curve_its_own_figures(
    dg: float, gamma: float, plateau: float
) -> None:
    """NRT linear in log dose from Dg to D100, flat on both sides: the tangent is the curve."""
    width = 1.0 / gamma  # decades from Dg to D100

    def nrt(dose: float) -> float:
        return plateau * min(1.0, max(0.0, (math.log10(dose / dg)) / width))

    figures = physics.contrast_construction(nrt)
    assert figures["dg"] == pytest.approx(dg, rel=1e-6)
    assert figures["d100"] == pytest.approx(dg * 10**width, rel=1e-6)
    assert figures["gamma"] == pytest.approx(gamma, rel=1e-6)
    assert figures["plateau"] == pytest.approx(plateau, rel=1e-12)
    assert figures["max_slope"] == pytest.approx(gamma * plateau, rel=1e-6)
    assert figures["onset"] == pytest.approx(dg * 10 ** (0.05 * width), rel=1e-6)
    assert figures["d50"] == pytest.approx(dg * 10 ** (0.5 * width), rel=1e-6)


@pytest.mark.parametrize(("d50", "k"), [(30.0, 3.0), (8.0, 8.0)])
def test_the_construction_on_a_logistic_curve(d50: float, k: float) -> None:
    """NRT = P / (1 + (D50/D)^k): steepest at D50, slope P k ln10 / 4 per decade."""
    plateau = 0.93

    def nrt(dose: float) -> float:
        return plateau / (1.0 + (d50 / dose) ** k)

    figures = physics.contrast_construction(nrt)
    gamma = k * math.log(10) / 4
    assert figures["gamma"] == pytest.approx(gamma, rel=1e-4)
    assert figures["plateau"] == pytest.approx(plateau, rel=1e-4)
    assert figures["dg"] == pytest.approx(d50 * 10 ** (-0.5 / gamma), rel=1e-4)
    assert figures["d100"] == pytest.approx(d50 * 10 ** (0.5 / gamma), rel=1e-4)
    assert figures["d50"] == pytest.approx(d50, rel=1e-6)
    assert figures["onset"] == pytest.approx(d50 * 19 ** (-1 / k), rel=1e-6)


def test_the_construction_finds_the_slope_of_a_kink_at_the_onset() -> None:
    """Charlesby's gel fraction, s + sqrt(s) = 2 Dg / D: steepest at Dg, 4/3 per e-fold."""
    dg = 20.0

    def nrt(dose: float) -> float:
        if dose <= dg:
            return 0.0
        root = 0.5 * (math.sqrt(1.0 + 8.0 * dg / dose) - 1.0)
        return 1.0 - root * root

    figures = physics.contrast_construction(nrt)
    assert figures["max_slope"] == pytest.approx(4 / 3 * math.log(10), rel=1e-3)
    assert figures["dg"] == pytest.approx(dg, rel=1e-3)
    assert figures["plateau"] == pytest.approx(1.0, abs=1e-4)


def test_a_curve_that_never_leaves_its_floor_has_no_figures() -> None:
    figures = physics.contrast_construction(lambda dose: 0.0)
    assert math.isinf(figures["dg"]) and figures["gamma"] == 0.0


def test_true_contrast_is_the_construction_on_the_simulators_own_curve() -> None:
    truth = VirtualBench().true_contrast(**PROCESS)
    again = physics.contrast_construction(truth["nrt"])
    for key in ("dg", "d100", "onset", "d50"):
        assert truth[key].m_as(DOSE) == pytest.approx(again[key], rel=1e-12)
    assert truth["gamma"] == again["gamma"] and truth["plateau"] == again["plateau"]
