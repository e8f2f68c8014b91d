"""The exposure tool over four scripted instruments: calibration, dose planning, firing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from drivers.exposure import ExposureSettings, ExposureTool
from drivers.newport_esp300 import NewportESP300
from drivers.thorlabs_dc2200 import ThorlabsDC2200
from drivers.thorlabs_pm100d import ThorlabsPM100D
from drivers.thorlabs_sc10 import ThorlabsSC10
from labctl.clock import VirtualClock
from labctl.errors import HardwareStateError, InputError, SetpointError
from labctl.testing import ScriptedTransport
from labctl.units import Q_

Pairs = Sequence[tuple[bytes | None, bytes | None]]
NO_SCPI_ERROR = (b"SYST:ERR?\n", b'0,"No error"\n')
NO_ESP_ERROR = b"0, 451322, NO ERROR DETECTED\r\n"


def esp_move(axis: int, target: str) -> list[tuple[bytes, bytes]]:
    return [
        (f"{axis}PA{target};TB?\r".encode(), NO_ESP_ERROR),
        (f"{axis}MD?\r".encode(), b"1\r\n"),
        (f"{axis}TP?\r".encode(), f"{target}\r\n".encode()),
    ]


def sc10(command: str, value: str | None = None) -> tuple[bytes, bytes]:
    reply = f"{command}\r" + (f"{value}\r" if value is not None else "") + "> "
    return f"{command}\r".encode(), reply.encode()


CALIBRATE = {
    "stage": [*esp_move(1, "-40.00000"), *esp_move(2, "0.00000")],
    "source": [
        (b"SOUR1:CCUR:CURR 1.0000\n", None),
        NO_SCPI_ERROR,
        (b"OUTP1:STAT ON\n", None),
        NO_SCPI_ERROR,
        (b"SENS3:CURR:DATA?\n", b"0.9990\n"),
    ],
    "shutter": [
        sc10("interlock?", "0"),
        sc10("mode=1"),
        sc10("ens?", "0"),
        sc10("ens"),
        sc10("closed?", "0"),
        sc10("ens?", "1"),
        sc10("mode?", "1"),
        sc10("ens"),
        sc10("ens?", "0"),
        sc10("closed?", "1"),
    ],
    # 7.09 mW on 0.709 cm^2 -> 10 mW/cm^2 (the readings average to it)
    "meter": [(b"MEAS:POW?\n", f"{p}E-03\n".encode()) for p in (7.08, 7.10, 7.09, 7.07, 7.11)]
    + [(b"SENS:CORR:WAV?\n", b"3.650000E+02\n")],
}


class Bench:
    def __init__(self, **pairs: Pairs) -> None:
        self.clock = VirtualClock()
        self.transports = {role: ScriptedTransport(p, name=role) for role, p in pairs.items()}
        stage = NewportESP300(self.transports["stage"], clock=self.clock)
        self.tool = ExposureTool(
            ThorlabsDC2200(self.transports["source"], clock=self.clock),
            ThorlabsSC10(self.transports["shutter"], clock=self.clock),
            ThorlabsPM100D(
                self.transports["meter"],
                clock=self.clock,
                settings={"aperture_area": "0.709 cm**2"},
            ),
            stage.axis(1),
            stage.axis(2),
            settings=ExposureSettings.from_table(
                {
                    "min_open_time": "20 ms",
                    "max_open_time": "600 s",
                    "shutter_offset": "2 ms",
                    "close_timeout": "50 ms",
                },
                "station.toml",
            ),
            clock=self.clock,
        )

    def assert_done(self) -> None:
        for transport in self.transports.values():
            transport.assert_done()


def combine(*parts: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"stage": [], "source": [], "shutter": [], "meter": []}
    for part in parts:
        for role, pairs in part.items():
            out[role] += pairs
    return out


def test_calibration_measures_irradiance_at_the_wafer_plane() -> None:
    bench = Bench(**CALIBRATE)
    calibration = bench.tool.calibrate()
    bench.assert_done()
    assert calibration.irradiance.m_as("mW/cm**2") == pytest.approx(10.0)
    assert calibration.led_current == Q_(0.999, "A")
    assert calibration.wavelength == Q_(365.0, "nm")
    assert bench.clock.monotonic() == pytest.approx(0.5)  # the settle time


def test_expose_fires_the_planned_time_and_reports_the_delivered_dose() -> None:
    expose = {
        "stage": [*esp_move(1, "10.00000"), *esp_move(2, "5.00000")],
        "source": [(b"SENS3:CURR:DATA?\n", b"1.0010\n")],
        "shutter": [
            sc10("interlock?", "0"),
            sc10("mode=3"),
            sc10("open=10000"),
            sc10("ens?", "0"),
            sc10("ens"),
            sc10("closed?", "1"),
        ],
    }
    bench = Bench(**combine(CALIBRATE, expose))
    bench.tool.calibrate()
    record = bench.tool.expose(Q_(100, "mJ/cm**2"), Q_(10, "mm"), Q_(5, "mm"), label="F01")
    bench.assert_done()
    assert record.open_time_programmed == Q_(10000, "ms")
    # delivered = 10 mW/cm^2 x (10000 ms + 2 ms shutter offset)
    assert record.dose_delivered.m_as("mJ/cm**2") == pytest.approx(100.02)
    assert record.dose_requested == Q_(100, "mJ/cm**2")
    assert record.position == (Q_(10, "mm"), Q_(5, "mm"))
    assert record.field_label == "F01"
    assert bench.clock.monotonic() == pytest.approx(10.5)


def test_open_time_is_rounded_to_whole_milliseconds() -> None:
    bench = Bench(stage=[], source=[], shutter=[], meter=[])
    assert bench.tool.open_time_for(Q_(1.23456, "mJ/cm**2"), Q_(10, "mW/cm**2")) == Q_(123, "ms")


@pytest.mark.parametrize("dose", [Q_(0.1, "mJ/cm**2"), Q_(7000, "mJ/cm**2")])
def test_a_dose_outside_the_shutter_window_is_refused_naming_both_ends(dose: object) -> None:
    bench = Bench(stage=[], source=[], shutter=[], meter=[])
    with pytest.raises(SetpointError) as info:
        bench.tool.open_time_for(dose, Q_(10, "mW/cm**2"))
    assert "20 ms to 600000 ms" in str(info.value)


def test_an_impossible_dose_moves_nothing_even_with_a_stale_calibration() -> None:
    bench = Bench(**CALIBRATE)
    bench.tool.calibrate()
    bench.clock.advance(3600)
    with pytest.raises(SetpointError):
        bench.tool.expose(Q_(0.01, "mJ/cm**2"), Q_(0, "mm"))
    bench.assert_done()


def test_electron_doses_are_refused_by_an_optical_tool() -> None:
    bench = Bench(stage=[], source=[], shutter=[], meter=[])
    with pytest.raises(SetpointError, match="electron dose"):
        bench.tool.expose(Q_(15, "uC/cm**2"), Q_(0, "mm"))
    with pytest.raises(SetpointError, match="not a dose"):
        bench.tool.expose(Q_(15, "mJ"), Q_(0, "mm"))


def test_a_shutter_that_never_reports_closed_leaves_the_bench_safe() -> None:
    stuck = {
        "stage": [*esp_move(1, "10.00000"), *esp_move(2, "0.00000")],
        "source": [
            (b"SENS3:CURR:DATA?\n", b"1.0000\n"),
            (b"OUTP1:STAT OFF\n", None),
            NO_SCPI_ERROR,
        ],
        "shutter": [
            sc10("interlock?", "0"),
            sc10("mode=3"),
            sc10("open=1000"),
            sc10("ens?", "0"),
            sc10("ens"),
            *[sc10("closed?", "0")] * 5,
            sc10("ens?", "0"),
            sc10("closed?", "0"),
        ],
    }
    bench = Bench(**combine(CALIBRATE, stuck))
    bench.tool.calibrate()
    with pytest.raises(HardwareStateError, match="shutter"):
        bench.tool.expose(Q_(10, "mJ/cm**2"), Q_(10, "mm"), Q_(0, "mm"))
    bench.assert_done()


def test_led_current_off_calibration_is_refused_before_firing() -> None:
    drift = {
        "stage": [*esp_move(1, "10.00000"), *esp_move(2, "0.00000")],
        "source": [(b"SENS3:CURR:DATA?\n", b"0.5000\n")],
    }
    bench = Bench(**combine(CALIBRATE, drift))
    bench.tool.calibrate()
    with pytest.raises(HardwareStateError, match="LED current"):
        bench.tool.expose(Q_(100, "mJ/cm**2"), Q_(10, "mm"), Q_(0, "mm"))
    bench.assert_done()


def test_settings_from_a_station_table_are_checked() -> None:
    with pytest.raises(InputError, match=r"exposure\.led_current"):
        ExposureSettings.from_table({"led_current": "1 V"}, "s.toml")
    with pytest.raises(InputError, match=r"exposure\.bogus"):
        ExposureSettings.from_table({"bogus": 1}, "s.toml")
    with pytest.raises(InputError, match="min_open_time < max_open_time"):
        ExposureSettings.from_table({"min_open_time": "2 s", "max_open_time": "1 s"}, "s.toml")
