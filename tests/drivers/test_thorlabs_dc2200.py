"""Byte-exact protocol tests of the Thorlabs DC2200 LED driver."""

from __future__ import annotations

import pytest

from drivers.thorlabs_dc2200 import ThorlabsDC2200
from labctl.errors import GarbledReply, InstrumentError, SetpointError
from labctl.testing import expected_protocol
from labctl.units import Q_

NO_ERROR = (b"SYST:ERR?\n", b'0,"No error"\n')
CONNECT = [
    (b"*IDN?\n", b"Thorlabs,DC2200,M00412345,1.3.0\n"),
    (b"*CLS\n", None),
    (b"SOUR1:CURR:LIM?\n", b"1.0000\n"),
    (b"SOUR1:MODE CC\n", None),
    NO_ERROR,
]


def test_connect_identifies_reads_the_head_limit_and_selects_constant_current() -> None:
    with expected_protocol(ThorlabsDC2200, CONNECT) as source:
        identity = source.connect()
        assert identity.serial == "M00412345" and identity.firmware == "1.3.0"
        assert source.current_range[1] == Q_(1.0, "A")


def test_current_above_the_head_limit_is_refused_before_sending() -> None:
    with expected_protocol(ThorlabsDC2200, CONNECT) as source:
        source.connect()
        with pytest.raises(SetpointError) as info:
            source.current_setpoint = Q_(1.5, "A")
    assert "SOUR1:CCUR:CURR" in str(info.value) and "0 A to 1 A" in str(info.value)


def test_turn_on_sets_current_in_amps_then_output_and_checks_errors() -> None:
    pairs = [
        (b"SOUR1:CCUR:CURR 0.7500\n", None),
        NO_ERROR,
        (b"OUTP1:STAT ON\n", None),
        NO_ERROR,
    ]
    with expected_protocol(ThorlabsDC2200, pairs) as source:
        source.turn_on(Q_(750, "mA"))


def test_refused_command_surfaces_the_scpi_error_and_empties_the_queue() -> None:
    pairs = [
        (b"SOUR1:MODE PWM\n", None),
        (b"SYST:ERR?\n", b'-221,"Settings conflict"\n'),
        (b"SYST:ERR?\n", b'-222,"Data out of range"\n'),
        NO_ERROR,
    ]
    with expected_protocol(ThorlabsDC2200, pairs) as source:
        with pytest.raises(InstrumentError) as info:
            source.mode = "pwm"
    assert info.value.code == -221 and info.value.text == "Settings conflict"


def test_queries_of_state_and_measurements() -> None:
    pairs = [
        (b"SOUR1:MODE?\n", b"CC\n"),
        (b"SOUR1:CCUR:CURR?\n", b"0.7500\n"),
        (b"OUTP1:STAT?\n", b"1\n"),
        (b"OUTP1:STAT?\n", b"OFF\n"),
        (b"SENS3:CURR:DATA?\n", b"0.7493\n"),
        (b"SOUR1:CURR:LIM:TRIP?\n", b"0\n"),
        (b"OUTP1:PROT:INTL:TRIP?\n", b"1\n"),
    ]
    with expected_protocol(ThorlabsDC2200, pairs) as source:
        assert source.mode == "constant_current"
        assert source.current_setpoint == Q_(0.75, "A")
        assert source.output_enabled is True
        assert source.output_enabled is False
        assert source.led_current == Q_(0.7493, "A")
        assert source.limit_tripped is False
        assert source.interlock_tripped is True


def test_brightness_and_pwm_settings() -> None:
    pairs = [
        (b"SOUR1:CBR:BRIG 42.50\n", None),
        NO_ERROR,
        (b"SOUR1:PWM:FREQ 1000.0\n", None),
        NO_ERROR,
        (b"SOUR1:PWM:DCYC 50.0\n", None),
        NO_ERROR,
        (b"SOUR1:PWM:COUN 10\n", None),
        NO_ERROR,
        (b"SOUR1:PWM:CURR 0.2000\n", None),
        NO_ERROR,
    ]
    with expected_protocol(ThorlabsDC2200, pairs) as source:
        source.brightness = Q_(42.5, "percent")
        source.pwm_frequency = Q_(1, "kHz")
        source.pwm_duty_cycle = Q_(50, "percent")
        source.pwm_count = 10
        source.pwm_current = Q_(0.2, "A")
        with pytest.raises(SetpointError):
            source.brightness = Q_(101, "percent")


def test_unexpected_mode_reply_is_garbled() -> None:
    with expected_protocol(ThorlabsDC2200, [(b"SOUR1:MODE?\n", b"XX\n")]) as source:
        with pytest.raises(GarbledReply, match="expected one of"):
            _ = source.mode


def test_safe_state_turns_the_output_off() -> None:
    with expected_protocol(ThorlabsDC2200, [(b"OUTP1:STAT OFF\n", None), NO_ERROR]) as source:
        source.safe_state()


def test_reset_checks_errors() -> None:
    with expected_protocol(ThorlabsDC2200, [(b"*RST\n", None), NO_ERROR]) as source:
        source.reset()
