"""Byte-exact protocol tests of the Newport ESP300/301 driver."""

from __future__ import annotations

import pytest

from drivers.newport_esp300 import NewportESP300
from labctl.clock import VirtualClock
from labctl.errors import HardwareStateError, InstrumentError, InstrumentTimeout, SetpointError
from labctl.testing import expected_protocol
from labctl.units import Q_

NO_ERROR = b"0, 451322, NO ERROR DETECTED\r\n"
CONNECT = [
    (b"VE?\r", b"ESP301 Version 3.0.2 06/12/17\r\n"),
    (b"TB?\r", b"7, 451300, PARAMETER OUT OF RANGE\r\n"),  # stale: emptied, not blamed
    (b"TB?\r", NO_ERROR),
    (b"1SN?\r", b"2\r\n"),
    (b"1SL?\r", b"-50.00000\r\n"),
    (b"1SR?\r", b"50.00000\r\n"),
    (b"1MO;TB?\r", NO_ERROR),
]


def test_connect_identifies_empties_the_error_fifo_and_reads_limits() -> None:
    with expected_protocol(NewportESP300, CONNECT) as stage:
        identity = stage.connect()
        assert (identity.model, identity.firmware) == ("ESP301", "3.0.2 06/12/17")
        assert stage.axis(1).travel_limits == (Q_(-50.0, "mm"), Q_(50.0, "mm"))


def test_axis_not_in_mm_is_refused() -> None:
    pairs = [(b"VE?\r", b"ESP301 Version 3.0.2\r\n"), (b"TB?\r", NO_ERROR), (b"1SN?\r", b"3\r\n")]
    with expected_protocol(NewportESP300, pairs) as stage:
        with pytest.raises(HardwareStateError, match="units code 3"):
            stage.connect()


def test_move_appends_tb_and_polls_motion_done_on_the_clock() -> None:
    clock = VirtualClock()
    pairs = [
        *CONNECT,
        (b"1PA12.50000;TB?\r", NO_ERROR),
        (b"1MD?\r", b"0\r\n"),
        (b"1MD?\r", b"0\r\n"),
        (b"1MD?\r", b"1\r\n"),
        (b"1TP?\r", b"12.49990\r\n"),
    ]
    with expected_protocol(NewportESP300, pairs, clock=clock) as stage:
        stage.connect()
        assert stage.axis(1).move_to(Q_(1.25, "cm")) == Q_(12.4999, "mm")
    assert clock.monotonic() == pytest.approx(0.1)


def test_target_outside_soft_limits_sends_nothing() -> None:
    with expected_protocol(NewportESP300, CONNECT) as stage:
        stage.connect()
        with pytest.raises(SetpointError, match="-50 mm to 50 mm"):
            stage.axis(1).start_move_to(Q_(60, "mm"))


def test_relative_move_checks_the_resulting_target() -> None:
    pairs = [
        *CONNECT,
        (b"1DP?\r", b"45.00000\r\n"),
        (b"1DP?\r", b"0.00000\r\n"),
        (b"1PR5.00000;TB?\r", NO_ERROR),
    ]
    with expected_protocol(NewportESP300, pairs) as stage:
        stage.connect()
        with pytest.raises(SetpointError):
            stage.axis(1).start_move_by(Q_(10, "mm"))
        stage.axis(1).start_move_by(Q_(5, "mm"))


def test_error_from_the_fifo_is_raised_with_its_code() -> None:
    pairs = [(b"8PA12.30000;TB?\r", b"9, 451339, AXIS NUMBER NOT AVAILABLE\r\n")]
    with expected_protocol(NewportESP300, pairs) as stage:
        with pytest.raises(InstrumentError) as info:
            stage.send("8PA12.30000")
    assert info.value.code == 9 and "AXIS NUMBER" in info.value.text


def test_unknown_command_code_6() -> None:
    with expected_protocol(
        NewportESP300, [(b"1XX;TB?\r", b"6, 451400, COMMAND DOES NOT EXIST\r\n")]
    ) as s:
        with pytest.raises(InstrumentError) as info:
            s.send("1XX")
    assert info.value.code == 6


def test_motor_power_stop_and_queries() -> None:
    pairs = [
        (b"2MO;TB?\r", NO_ERROR),
        (b"2MO?\r", b"1\r\n"),
        (b"2ST;TB?\r", NO_ERROR),
        (b"2MF;TB?\r", NO_ERROR),
        (b"2TP?\r", b"-3.20000\r\n"),
    ]
    with expected_protocol(NewportESP300, pairs) as stage:
        axis = stage.axis(2)
        axis.motor_on()
        assert axis.motor_enabled is True
        stage.safe_state()
        axis.motor_off()
        assert axis.position == Q_(-3.2, "mm")


def test_home_waits_for_motion_done() -> None:
    clock = VirtualClock()
    pairs = [(b"1OR0;TB?\r", NO_ERROR), (b"1MD?\r", b"1\r\n")]
    with expected_protocol(NewportESP300, pairs, clock=clock) as stage:
        stage.axis(1).home(0)
        with pytest.raises(SetpointError):
            stage.axis(1).home(7)


def test_motion_that_never_finishes_times_out_on_the_clock() -> None:
    clock = VirtualClock()
    pairs = [(b"1MD?\r", b"0\r\n")] * 4
    with expected_protocol(NewportESP300, pairs, clock=clock) as stage:
        with pytest.raises(InstrumentTimeout, match="motion not done"):
            stage.axis(1).wait_until_done(Q_(0.15, "s"))


def test_axis_numbers_are_1_to_3() -> None:
    with expected_protocol(NewportESP300, []) as stage:
        with pytest.raises(SetpointError, match="1 to 3"):
            stage.axis(4)
