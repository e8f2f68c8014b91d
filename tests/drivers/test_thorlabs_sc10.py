"""Byte-exact protocol tests of the Thorlabs SC10 shutter controller driver."""

from __future__ import annotations

import math

import pytest

from drivers.thorlabs_sc10 import SEQUENCE_MARGIN, SEQUENCE_POLL, ThorlabsSC10
from labctl.clock import VirtualClock
from labctl.errors import GarbledReply, HardwareStateError, InstrumentError, SetpointError
from labctl.testing import expected_protocol
from labctl.units import Q_


def test_query_reads_echo_value_and_prompt() -> None:
    with expected_protocol(ThorlabsSC10, [(b"ens?\r", b"ens?\r0\r> ")]) as shutter:
        assert shutter.enabled is False


def test_multi_character_value() -> None:
    with expected_protocol(ThorlabsSC10, [(b"open?\r", b"open?\r12345\r> ")]) as shutter:
        assert shutter.open_time == Q_(12345, "ms")


def test_setter_reads_echo_and_prompt_only() -> None:
    with expected_protocol(ThorlabsSC10, [(b"rep=10\r", b"rep=10\r> ")]) as shutter:
        shutter.repeat_count = 10


def test_identify() -> None:
    with expected_protocol(ThorlabsSC10, [(b"id?\r", b"id?\rTHORLABS SC10 VERSION 1.07\r> ")]) as s:
        identity = s.identify()
    assert (identity.model, identity.firmware) == ("SC10", "1.07")


def test_wrong_echo_is_garbled_and_the_link_resynchronizes() -> None:
    with expected_protocol(ThorlabsSC10, [(b"ens?\r", b"rep?\r0\r> ")]) as shutter:
        with pytest.raises(GarbledReply, match="echo"):
            _ = shutter.enabled
        assert shutter.transport._suspect
        assert shutter.transport.resynchronize() == b"0\r> "


def test_missing_prompt_is_garbled() -> None:
    with expected_protocol(ThorlabsSC10, [(b"ens?\r", b"ens?\r0\r>>")]) as shutter:
        with pytest.raises(GarbledReply, match="prompt"):
            _ = shutter.enabled


@pytest.mark.parametrize("error", [b"CMD_NOT_DEFINED", b"CMD_ARG_INVALID"])
def test_error_strings_after_the_echo(error: bytes) -> None:
    with expected_protocol(ThorlabsSC10, [(b"mode=5\r", b"mode=5\r" + error + b"\r> ")]) as s:
        with pytest.raises(InstrumentError) as info:
            s.mode = "external_gate"
    assert info.value.code == error.decode()


def test_modes_and_enumerations() -> None:
    pairs = [
        (b"mode?\r", b"mode?\r3\r> "),
        (b"trig=1\r", b"trig=1\r> "),
        (b"trig?\r", b"trig?\r1\r> "),
        (b"xto?\r", b"xto?\r0\r> "),
        (b"closed?\r", b"closed?\r1\r> "),
        (b"interlock?\r", b"interlock?\r0\r> "),
        (b"shut=500\r", b"shut=500\r> "),
        (b"baud?\r", b"baud?\r0\r> "),
        (b"save\r", b"save\r1\r> "),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        assert shutter.mode == "single"
        shutter.trigger = "external"
        assert shutter.trigger == "external"
        assert shutter.trigger_output == "trigger"
        assert shutter.closed is True
        assert shutter.interlock_tripped is False
        shutter.shut_time = Q_(0.5, "s")
        assert shutter.fast_baud is False
        shutter.save_settings()


@pytest.mark.parametrize("value", [Q_(0, "ms"), Q_(1_000_000, "ms")])
def test_open_time_limits_are_checked_before_sending(value: object) -> None:
    with expected_protocol(ThorlabsSC10, []) as shutter:
        with pytest.raises(SetpointError, match="1 ms to 999999 ms"):
            shutter.open_time = value


def test_fire_checks_interlock_and_enable_state_first() -> None:
    pairs = [
        (b"interlock?\r", b"interlock?\r0\r> "),
        (b"mode=3\r", b"mode=3\r> "),
        (b"open=250\r", b"open=250\r> "),
        (b"ens?\r", b"ens?\r0\r> "),
        (b"ens\r", b"ens\r> "),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        shutter.fire(Q_(250, "ms"))


def test_fire_refuses_when_already_enabled_rather_than_toggling_off() -> None:
    pairs = [
        (b"interlock?\r", b"interlock?\r0\r> "),
        (b"mode=3\r", b"mode=3\r> "),
        (b"open=250\r", b"open=250\r> "),
        (b"ens?\r", b"ens?\r1\r> "),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        with pytest.raises(HardwareStateError, match="toggle"):
            shutter.fire(Q_(250, "ms"))


def test_fire_refuses_with_the_interlock_open() -> None:
    with expected_protocol(ThorlabsSC10, [(b"interlock?\r", b"interlock?\r1\r> ")]) as shutter:
        with pytest.raises(HardwareStateError, match="interlock"):
            shutter.fire(Q_(250, "ms"))


def sc10(command: str, value: str | None = None) -> tuple[bytes, bytes]:
    """One exchange: ``command`` echoed, then ``value`` if it is a query, then the prompt."""
    reply = f"{command}\r" + (f"{value}\r" if value is not None else "") + "> "
    return f"{command}\r".encode(), reply.encode()


TOGGLE = sc10("ens")


def polls(*enable_states: str) -> list[tuple[bytes, bytes]]:
    return [sc10("ens?", state) for state in enable_states]


def test_close_shutter_when_disabled_and_closed_sends_nothing_that_could_open() -> None:
    with expected_protocol(ThorlabsSC10, [sc10("ens?", "0"), sc10("closed?", "1")]) as shutter:
        shutter.safe_state()
    assert TOGGLE[0] not in shutter.transport.written


def test_disabled_but_open_is_reported_and_not_toggled() -> None:
    # An "ens" here would enable the shutter: nothing is sent, the state is reported.
    with expected_protocol(ThorlabsSC10, [sc10("ens?", "0"), sc10("closed?", "0")]) as shutter:
        with pytest.raises(HardwareStateError, match="open after disable"):
            shutter.safe_state()


def test_single_shot_in_progress_is_waited_out_never_toggled() -> None:
    clock = VirtualClock()
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "3"),
        sc10("open?", "250"),
        *polls("1", "1", "0"),  # the shot runs out on the third poll
        sc10("closed?", "1"),
    ]
    with expected_protocol(ThorlabsSC10, pairs, clock=clock) as shutter:
        shutter.safe_state()
    assert TOGGLE[0] not in shutter.transport.written
    assert clock.monotonic() == pytest.approx(3 * SEQUENCE_POLL.m_as("s"))


def test_repeat_sequence_is_waited_out_never_toggled() -> None:
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "4"),
        sc10("open?", "100"),
        sc10("shut?", "200"),
        sc10("rep?", "5"),
        *polls("1", "0"),
        sc10("closed?", "1"),
    ]
    with expected_protocol(ThorlabsSC10, pairs, clock=VirtualClock()) as shutter:
        shutter.close_shutter()
    assert TOGGLE[0] not in shutter.transport.written


def test_waiting_is_bounded_by_the_programmed_sequence_then_toggles_once() -> None:
    # repeat: 2 x (100 + 150) ms + 1 s margin = 1.5 s of polls, then the fallback.
    clock = VirtualClock()
    bound = 2 * 0.250 + SEQUENCE_MARGIN.m_as("s")
    count = math.ceil(bound / SEQUENCE_POLL.m_as("s"))
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "4"),
        sc10("open?", "100"),
        sc10("shut?", "150"),
        sc10("rep?", "2"),
        *polls(*["1"] * count),
        TOGGLE,
        sc10("ens?", "0"),
        sc10("closed?", "1"),
    ]
    with expected_protocol(ThorlabsSC10, pairs, clock=clock) as shutter:
        shutter.close_shutter()
    assert clock.monotonic() == pytest.approx(count * SEQUENCE_POLL.m_as("s"))


def test_a_sequence_that_ends_just_as_the_fallback_toggles_is_cut_by_one_more_toggle() -> None:
    # The single shot outlived its bound, then ended just before our "ens":
    # that "ens" fired a new shot (read back enabled); one more "ens" cuts it.
    count = math.ceil((0.05 + SEQUENCE_MARGIN.m_as("s")) / SEQUENCE_POLL.m_as("s"))
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "3"),
        sc10("open?", "50"),
        *polls(*["1"] * count),
        TOGGLE,
        sc10("ens?", "1"),
        sc10("closed?", "0"),
        TOGGLE,
        sc10("ens?", "0"),
        sc10("closed?", "1"),
    ]
    with expected_protocol(ThorlabsSC10, pairs, clock=VirtualClock()) as shutter:
        shutter.close_shutter()


@pytest.mark.parametrize("mode", ["1", "2", "5"])  # manual, auto, external gate
def test_modes_that_never_end_by_themselves_toggle_once_and_read_back(mode: str) -> None:
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", mode),
        TOGGLE,
        sc10("ens?", "0"),
        sc10("closed?", "1"),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        shutter.safe_state()


def test_a_toggle_that_opened_is_undone_once() -> None:
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "1"),
        TOGGLE,
        sc10("ens?", "1"),  # disabled by someone else after our read: we enabled it
        sc10("closed?", "0"),
        TOGGLE,
        sc10("ens?", "0"),
        sc10("closed?", "1"),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        shutter.safe_state()


def test_a_shutter_still_open_after_the_second_toggle_is_an_error_not_a_loop() -> None:
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "1"),
        TOGGLE,
        sc10("ens?", "1"),
        sc10("closed?", "0"),
        TOGGLE,
        sc10("ens?", "1"),
        sc10("closed?", "0"),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        with pytest.raises(HardwareStateError, match="after a second 'ens' enabled=1, closed=0"):
            shutter.safe_state()
    assert shutter.transport.written.count(TOGGLE[0]) == 2


def test_disabled_by_the_toggle_but_reporting_open_is_an_error() -> None:
    pairs = [
        sc10("ens?", "1"),
        sc10("mode?", "1"),
        TOGGLE,
        sc10("ens?", "0"),
        sc10("closed?", "0"),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        with pytest.raises(HardwareStateError, match="open after disable"):
            shutter.close_shutter()


def test_open_manual() -> None:
    pairs = [
        (b"interlock?\r", b"interlock?\r0\r> "),
        (b"mode=1\r", b"mode=1\r> "),
        (b"ens?\r", b"ens?\r0\r> "),
        (b"ens\r", b"ens\r> "),
        (b"closed?\r", b"closed?\r0\r> "),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        shutter.open_manual()
