"""Byte-exact protocol tests of the Thorlabs PM100D power meter driver."""

from __future__ import annotations

import pytest

from drivers.thorlabs_pm100d import ThorlabsPM100D
from labctl.errors import GarbledReply, HardwareStateError, InputError, SetpointError
from labctl.testing import expected_protocol
from labctl.units import Q_

NO_ERROR = (b"SYST:ERR?\n", b'0,"No error"\n')
SETTINGS = {"aperture_area": "0.709 cm**2", "wavelength": "365 nm"}
CONNECT = [
    (b"*IDN?\n", b"Thorlabs,PM100D,P0009084,2.4.0\n"),
    (b"*CLS\n", None),
    (b"SYST:SENS:IDN?\n", b"S120VC,11062201,10-Jun-2025,1,18,289\n"),
    (b"SENS:CORR:WAV? MIN\n", b"2.000000E+02\n"),
    (b"SENS:CORR:WAV? MAX\n", b"1.100000E+03\n"),
    (b"SENS:POW:UNIT W\n", None),
    NO_ERROR,
    (b"SENS:RANGE:AUTO ON\n", None),
    NO_ERROR,
    (b"SENS:CORR:WAV 365.0\n", None),
    NO_ERROR,
]


def test_connect_reads_sensor_and_wavelength_range_and_configures() -> None:
    with expected_protocol(ThorlabsPM100D, CONNECT, settings=SETTINGS) as meter:
        identity = meter.connect()
        assert identity.model == "PM100D" and identity.serial == "P0009084"
        assert meter.sensor is not None and meter.sensor.name == "S120VC"
        assert meter.sensor.describe_flags() == [
            "power sensor",
            "wavelength settable",
            "temperature sensor",
        ]
        assert meter.wavelength_range == (Q_(200.0, "nm"), Q_(1100.0, "nm"))
        with pytest.raises(SetpointError, match="200 nm to 1100 nm"):
            meter.wavelength = Q_(1550, "nm")


def test_no_sensor_attached_is_refused() -> None:
    pairs = [(b"SYST:SENS:IDN?\n", b"no sensor,0,,0,0,0\n")]
    with expected_protocol(ThorlabsPM100D, pairs) as meter:
        with pytest.raises(HardwareStateError, match="no sensor"):
            meter.read_sensor()


def test_power_in_watts_and_irradiance_over_the_aperture() -> None:
    pairs = [(b"MEAS:POW?\n", b"4.20021615E-06\n"), (b"MEAS:POW?\n", b"7.09E-03\n")]
    with expected_protocol(ThorlabsPM100D, pairs, settings=SETTINGS) as meter:
        assert meter.power == Q_(4.20021615e-06, "W")
        assert meter.irradiance().m_as("mW/cm**2") == pytest.approx(10.0)


def test_irradiance_without_aperture_area_names_the_setting() -> None:
    with expected_protocol(ThorlabsPM100D, [(b"MEAS:POW?\n", b"1E-3\n")]) as meter:
        with pytest.raises(InputError, match=r"settings\.aperture_area"):
            meter.irradiance()


def test_other_queries() -> None:
    pairs = [
        (b"SENS:CORR:WAV?\n", b"8.520000E+02\n"),
        (b"SENS:AVER?\n", b"10\n"),
        (b"SENS:RANGE:AUTO?\n", b"1\n"),
        (b"CONF?\n", b"POW\n"),
        (b"CAL:STR?\n", b'"10-Jun-2025"\n'),
        (b"MEAS:ENER?\n", b"1.5E-06\n"),
    ]
    with expected_protocol(ThorlabsPM100D, pairs) as meter:
        assert meter.wavelength == Q_(852.0, "nm")
        assert meter.averaging == 10
        assert meter.auto_range is True
        assert meter.configuration == "POW"
        assert meter.calibration_message == '"10-Jun-2025"'
        assert meter.energy == Q_(1.5e-6, "J")


def test_averaging_range_and_setting() -> None:
    with expected_protocol(ThorlabsPM100D, [(b"SENS:AVER 100\n", None), NO_ERROR]) as meter:
        meter.averaging = 100
        with pytest.raises(SetpointError, match="1 to 10000"):
            meter.averaging = 0


def test_garbled_power_reply() -> None:
    with expected_protocol(ThorlabsPM100D, [(b"MEAS:POW?\n", b"4.2E-06W\n")]) as meter:
        with pytest.raises(GarbledReply):
            _ = meter.power
