"""Byte-exact protocol tests of the Torrey Pines SC-series hotplate driver."""

from __future__ import annotations

import math

import pytest

from drivers.torrey_pines_sc import TorreyPinesHotplate
from labctl.errors import (
    GarbledReply,
    InputError,
    InstrumentError,
    InstrumentTimeout,
    SetpointError,
)
from labctl.testing import expected_protocol
from labctl.units import Q_

IDENTIFY_HP = [(b"v\r", b"HP61 v1.0\r\n"), (b"V\r", b"TP061234\r\n")]


def test_connect_reads_model_serial_and_takes_the_model_range() -> None:
    with expected_protocol(TorreyPinesHotplate, IDENTIFY_HP) as plate:
        identity = plate.connect()
        assert (identity.model, identity.serial, identity.firmware) == ("HP61", "TP061234", "1.0")
        assert plate.temperature_range == (Q_(10.0, "degC"), Q_(350.0, "degC"))


def test_sc25_range_is_minus_10_to_110() -> None:
    pairs = [(b"v\r", b"SC25 v1.0\r\n"), (b"V\r", b"SC250001\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        plate.connect()
        with pytest.raises(SetpointError, match="-10 °C to 110 °C"):
            plate.setpoint = Q_(120, "degC")


def test_station_may_narrow_the_range() -> None:
    settings = {"temperature_range": ["20 degC", "150 degC"]}
    with expected_protocol(TorreyPinesHotplate, IDENTIFY_HP, settings=settings) as plate:
        plate.connect()
        with pytest.raises(
            SetpointError, match="200 °C is outside the allowed range 20 °C to 150 °C"
        ):
            plate.setpoint = Q_(200, "degC")


def test_unknown_model_without_a_range_is_an_input_error() -> None:
    pairs = [(b"v\r", b"XY9 v2.0\r\n"), (b"V\r", b"XY900001\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        with pytest.raises(InputError, match="temperature_range"):
            plate.connect()


def test_heat_to_sets_the_setpoint_with_one_decimal_and_leaves_idle() -> None:
    pairs = [*IDENTIFY_HP, (b"n110.0\r", b"ok\r\n"), (b"I\r", b"ok\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        plate.connect()
        plate.heat_to(Q_(110, "degC"))


def test_setpoint_in_kelvin_is_converted() -> None:
    pairs = [*IDENTIFY_HP, (b"n100.0\r", b"ok\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        plate.connect()
        plate.setpoint = Q_(373.15, "K")


def test_setpoint_out_of_range_sends_nothing() -> None:
    with expected_protocol(TorreyPinesHotplate, IDENTIFY_HP) as plate:
        plate.connect()
        with pytest.raises(SetpointError) as info:
            plate.setpoint = Q_(400, "degC")
    assert "setpoint (n)" in str(
        info.value
    ) and "400 °C is outside the allowed range 10 °C to 350 °C" in str(info.value)


def test_setpoint_and_idle_readback() -> None:
    pairs = [(b"s\r", b"110.0\r\n"), (b"s\r", b"off\r\n"), (b"s\r", b"off\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        assert plate.setpoint == Q_(110.0, "degC")
        assert math.isnan(plate.setpoint.magnitude)
        assert plate.idle


def test_plate_temperature_and_its_error_code() -> None:
    pairs = [(b"p\r", b"-10.0\r\n"), (b"p\r", b"E2\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        assert plate.plate_temperature == Q_(-10.0, "degC")
        with pytest.raises(InstrumentError) as info:
            _ = plate.plate_temperature
    assert info.value.code == "E2"


def test_bad_syntax_reply_e_is_an_instrument_error() -> None:
    with expected_protocol(TorreyPinesHotplate, [(b"n999.0\r", b"e\r\n")]) as plate:
        plate.temperature_range = (Q_(0, "degC"), Q_(1000, "degC"))
        with pytest.raises(InstrumentError, match="bad syntax"):
            plate.setpoint = Q_(999, "degC")


def test_set_command_must_answer_ok() -> None:
    with expected_protocol(TorreyPinesHotplate, [(b"i\r", b"110.0\r\n")]) as plate:
        with pytest.raises(GarbledReply, match="expected 'ok'"):
            plate.enter_idle()


def test_reply_without_crlf_is_garbled() -> None:
    with expected_protocol(TorreyPinesHotplate, [(b"p\r", b"25.0\n")]) as plate:
        with pytest.raises(InstrumentTimeout):  # CR LF never arrives
            _ = plate.plate_temperature


def test_standby_is_idle_by_default_or_the_station_temperature() -> None:
    with expected_protocol(TorreyPinesHotplate, [(b"i\r", b"ok\r\n")]) as plate:
        plate.safe_state()
    pairs = [*IDENTIFY_HP, (b"n25.0\r", b"ok\r\n"), (b"I\r", b"ok\r\n")]
    settings = {"standby_temperature": "25 degC"}
    with expected_protocol(TorreyPinesHotplate, pairs, settings=settings) as plate:
        plate.connect()
        plate.standby()


def test_stirring_speed() -> None:
    pairs = [(b"m5\r", b"ok\r\n"), (b"m\r", b"5\r\n")]
    with expected_protocol(TorreyPinesHotplate, pairs) as plate:
        plate.stir_speed = 5
        assert plate.stir_speed == 5
        with pytest.raises(SetpointError):
            plate.stir_speed = 10
