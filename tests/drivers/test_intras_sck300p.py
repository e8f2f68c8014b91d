"""Byte-exact protocol tests of the Intras SCK-300P driver."""

from __future__ import annotations

import pytest

from drivers.intras_sck300p import IntrasSCK300P, crc8
from labctl.clock import VirtualClock
from labctl.errors import GarbledReply, HardwareStateError, InstrumentError, SetpointError
from labctl.testing import expected_protocol
from labctl.units import Q_


@pytest.mark.parametrize(
    ("text", "crc"),
    [
        ("OK,1000", 0x3B),
        ("GetRPM", 0x98),
        ("OK,0", 0xE1),
        ("OK,3000", 0x17),
        ("ERR,1", 0xC2),
        ("OK,2987", 0x86),
        ("MIM-nano 1.0.3", 0x8B),
    ],
)
def test_crc8_matches_the_documented_checks(text: str, crc: int) -> None:
    assert crc8(text.encode()) == crc


def test_speed_reads_the_measured_rpm() -> None:
    with expected_protocol(IntrasSCK300P, [(b"GetRPM:98\r\n", b"OK,2987:86\r\n")]) as spinner:
        assert spinner.speed == Q_(2987, "rpm")


def test_set_speed_sends_crc_and_checks_the_echoed_value() -> None:
    with expected_protocol(IntrasSCK300P, [(b"SetRPM,3000:DE\r\n", b"OK,3000:17\r\n")]) as spinner:
        spinner.target_speed = Q_(3000, "rpm")


def test_speed_in_other_units_is_converted() -> None:
    with expected_protocol(IntrasSCK300P, [(b"SetRPM,3000:DE\r\n", b"OK,3000:17\r\n")]) as spinner:
        spinner.target_speed = Q_(50, "revolution/second")


def test_setter_whose_reply_disagrees_is_a_hardware_state_error() -> None:
    with expected_protocol(IntrasSCK300P, [(b"SetRPM,3000:DE\r\n", b"OK,1000:3B\r\n")]) as spinner:
        with pytest.raises(HardwareStateError, match="did not take 3000"):
            spinner.target_speed = Q_(3000, "rpm")


@pytest.mark.parametrize("value", [Q_(10001, "rpm"), Q_(-1, "rpm")])
def test_speed_out_of_range_is_refused_before_sending(value: object) -> None:
    with expected_protocol(IntrasSCK300P, []) as spinner:
        with pytest.raises(SetpointError) as info:
            spinner.target_speed = value
    message = str(info.value)
    assert "SetRPM" in message and "0 rpm to 10000 rpm" in message


def test_speed_without_unit_or_wrong_dimension_is_refused() -> None:
    with expected_protocol(IntrasSCK300P, []) as spinner:
        with pytest.raises(SetpointError, match="no unit"):
            spinner.target_speed = 3000
        with pytest.raises(SetpointError, match="not a rpm quantity"):
            spinner.target_speed = Q_(3, "mm")


def test_error_reply_carries_code_and_text() -> None:
    with expected_protocol(IntrasSCK300P, [(b"SetRPM,3000:DE\r\n", b"ERR,4:D9\r\n")]) as spinner:
        with pytest.raises(InstrumentError) as info:
            spinner.target_speed = Q_(3000, "rpm")
    assert info.value.code == 4
    assert "invalid state" in info.value.text


def test_unknown_command_error_reply() -> None:
    with expected_protocol(IntrasSCK300P, [(b"Foo:C7\r\n", b"ERR,1:C2\r\n")]) as spinner:
        with pytest.raises(InstrumentError) as info:
            spinner.ask("Foo")
    assert info.value.code == 1


def test_bad_reply_crc_is_garbled_and_marks_the_link_suspect() -> None:
    with expected_protocol(IntrasSCK300P, [(b"GetRPM:98\r\n", b"OK,2987:00\r\n")]) as spinner:
        with pytest.raises(GarbledReply, match="bad CRC"):
            _ = spinner.speed
        assert spinner.transport._suspect


def test_reply_without_crc_is_garbled() -> None:
    with expected_protocol(IntrasSCK300P, [(b"GetRPM:98\r\n", b"OK,2987\r\n")]) as spinner:
        with pytest.raises(GarbledReply, match="no CRC"):
            _ = spinner.speed


def test_power_up_banner_mid_session_reports_a_restart() -> None:
    with expected_protocol(IntrasSCK300P, [(b"GetRPM:98\r\n", b"MIM-nano 1.0.3\r\n")]) as spinner:
        with pytest.raises(HardwareStateError, match="restarted"):
            _ = spinner.speed


def test_pwm_range_is_checked_then_sent() -> None:
    pairs = [(b"SetPWM,250:8C\r\n", b"OK,250:A8\r\n"), (b"GetPWM:25\r\n", b"OK,250:A8\r\n")]
    with expected_protocol(IntrasSCK300P, pairs) as spinner:
        spinner.pwm = 250
        assert spinner.pwm == 250
        with pytest.raises(SetpointError, match="0 to 1000"):
            spinner.pwm = 1001


def test_direction_accepts_only_zero_or_one() -> None:
    pairs = [(b"SetDIR,1:AA\r\n", b"OK,1:E6\r\n"), (b"GetDIR:F0\r\n", b"OK,1:E6\r\n")]
    with expected_protocol(IntrasSCK300P, pairs) as spinner:
        spinner.direction = 1
        assert spinner.direction == 1
        with pytest.raises(SetpointError, match="not one of"):
            spinner.direction = 2


def test_connect_drains_the_banner_identifies_and_calibrates() -> None:
    pairs = [
        (None, b"MIM-nano 1.0.3\r\n"),  # printed at power-up, unasked
        (b"GetVersion:11\r\n", b"MIM-nano 1.0.3:8B\r\n"),
        (b"SetStartPWM,110:2A\r\n", b"OK,110:41\r\n"),
        (b"SetSlope,950:2E\r\n", b"OK,950:44\r\n"),
        (b"SetIntercept,550:65\r\n", b"OK,550:BE\r\n"),
    ]
    with expected_protocol(IntrasSCK300P, pairs) as spinner:
        identity = spinner.connect()
    assert identity.firmware == "MIM-nano 1.0.3"
    assert identity.model == "SCK-300P"


def test_calibration_getters() -> None:
    pairs = [
        (b"GetStartPWM:3C\r\n", b"OK,110:41\r\n"),
        (b"GetSlope:61\r\n", b"OK,950:44\r\n"),
        (b"GetIntercept:07\r\n", b"OK,550:BE\r\n"),
    ]
    with expected_protocol(IntrasSCK300P, pairs) as spinner:
        assert (spinner.start_pwm, spinner.slope, spinner.intercept) == (110, 950, 550)


def test_spin_turns_the_motor_on_when_the_controller_says_it_is_off() -> None:
    pairs = [
        (b"SetRPM,3000:DE\r\n", b"ERR,4:D9\r\n"),
        (b"BLDCon:B9\r\n", b"OK,0:E1\r\n"),
        (b"SetRPM,3000:DE\r\n", b"OK,3000:17\r\n"),
    ]
    with expected_protocol(IntrasSCK300P, pairs) as spinner:
        spinner.spin(Q_(3000, "rpm"))


def test_stop_follows_the_known_client_sequence_on_the_clock() -> None:
    clock = VirtualClock()
    pairs = [(b"SetRPM,0:F0\r\n", b"OK,0:E1\r\n"), (b"BLDCoff:BB\r\n", b"OK,0:E1\r\n")]
    with expected_protocol(IntrasSCK300P, pairs, clock=clock) as spinner:
        spinner.stop()
    assert clock.monotonic() == pytest.approx(5.0)


def test_stop_with_motor_already_off_still_switches_it_off() -> None:
    clock = VirtualClock()
    pairs = [(b"SetRPM,0:F0\r\n", b"ERR,4:D9\r\n"), (b"BLDCoff:BB\r\n", b"OK,0:E1\r\n")]
    with expected_protocol(IntrasSCK300P, pairs, clock=clock) as spinner:
        spinner.safe_state()
    assert clock.monotonic() == 0.0


def test_a_line_longer_than_the_firmware_keeps_is_refused() -> None:
    with expected_protocol(IntrasSCK300P, []) as spinner:
        with pytest.raises(SetpointError, match="keeps 20"):
            spinner.ask("GetSomethingVeryLongIndeed")
