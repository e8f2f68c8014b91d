"""Byte-exact protocol tests of the Thorlabs SC10 shutter controller driver."""

from __future__ import annotations

import pytest

from drivers.thorlabs_sc10 import ThorlabsSC10
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


def test_close_shutter_disables_only_if_enabled_and_confirms() -> None:
    pairs = [
        (b"ens?\r", b"ens?\r1\r> "),
        (b"ens\r", b"ens\r> "),
        (b"closed?\r", b"closed?\r1\r> "),
        (b"ens?\r", b"ens?\r0\r> "),
        (b"closed?\r", b"closed?\r0\r> "),
    ]
    with expected_protocol(ThorlabsSC10, pairs) as shutter:
        shutter.close_shutter()
        with pytest.raises(HardwareStateError, match="open after disable"):
            shutter.safe_state()


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
