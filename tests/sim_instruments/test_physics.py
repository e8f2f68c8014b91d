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


def test_true_contrast_curve_is_monotonic_and_in_the_typical_range() -> None:
    bench = VirtualBench()
    truth = bench.true_contrast(
        thickness=Q_(480, "nm"),
        peb_temperature=Q_(110, "degC"),
        peb_time=Q_(60, "s"),
        develop_time=Q_(60, "s"),
    )
    doses = [5 * 1.12**i for i in range(40)]
    values = [truth["nrt"](d) for d in doses]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))
    assert values[0] == 0.0 and values[-1] > 0.99
    assert 10 <= truth["gel_dose"].m_as("mJ/cm**2") <= 50
    assert 2 <= truth["gamma"] <= 6


def test_more_base_raises_the_gel_dose_and_steepens_the_curve() -> None:
    process = {
        "thickness": Q_(480, "nm"),
        "peb_temperature": Q_(110, "degC"),
        "peb_time": Q_(60, "s"),
        "develop_time": Q_(60, "s"),
    }
    bench = VirtualBench()
    low = bench.true_contrast(resist=ResistParameters(quencher=0.05), **process)
    high = bench.true_contrast(resist=ResistParameters(quencher=0.15), **process)
    assert high["gel_dose"] > 1.2 * low["gel_dose"]
    assert high["gamma"] > low["gamma"]


def test_peb_temperature_shifts_the_gel_dose_a_few_percent_per_degree() -> None:
    bench = VirtualBench()
    process = {"thickness": Q_(480, "nm"), "peb_time": Q_(60, "s"), "develop_time": Q_(60, "s")}
    cold = bench.true_contrast(peb_temperature=Q_(109, "degC"), **process)["gel_dose"]
    warm = bench.true_contrast(peb_temperature=Q_(111, "degC"), **process)["gel_dose"]
    shift_per_degree = (cold / warm - 1) / 2
    assert 0.01 <= shift_per_degree <= 0.08


def test_a_contrast_experiment_on_the_bench_follows_the_truth(
    bench: VirtualBench, station: Any
) -> None:
    from drivers.exposure import ExposureTool

    coat(bench, station, "W")
    bake(bench, station, "W", 100, 60)
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    bench.load("W", "exposure_stage")
    doses = [10 * 1.26**i for i in range(12)]
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
    assert nrt[0] < 0.01 and nrt[-1] > 0.9
    for measured, (x, y) in zip(after, positions, strict=True):
        true = bench.true_thickness("W", Q_(x, "mm"), Q_(y, "mm")).m_as("nm")
        assert measured == pytest.approx(true, abs=1.0)
    # The measured curve sits on the resist's true curve, shifted only by the
    # PEB shrink of the cross-linked film (2-8 %, which "before" did not see).
    truth = bench.true_contrast(wafer_id="W")
    delivered = [e["dose"].m_as("mJ/cm**2") for e in bench.true_exposures("W")]
    for measured, dose in zip(nrt, delivered, strict=True):
        assert measured == pytest.approx(truth["nrt"](dose), abs=0.06)


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
