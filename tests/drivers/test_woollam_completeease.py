"""Byte-exact protocol tests of the CompleteEASE remote-control driver."""

from __future__ import annotations

import pytest

from drivers.woollam_completeease import WoollamCompleteEASE, parse_fit_line
from labctl.errors import GarbledReply, InstrumentError, SetpointError
from labctl.testing import expected_protocol
from labctl.units import Q_

FIT = "MSE=2.35; Thickness # 1 (nm)=850.10±0.05; A=1.5712±0.0004; B=0.00812±0.0001; C=0.00005"


def test_identify_checks_the_status_line_and_takes_the_station_identity() -> None:
    pairs = [(b"Status()\r\n", b"Waiting to Acquire Data\r\n")]
    settings = {"model": "M-2000", "serial": "M2K-1234"}
    with expected_protocol(WoollamCompleteEASE, pairs, settings=settings) as ellipsometer:
        identity = ellipsometer.identify()
    assert (identity.model, identity.serial) == ("M-2000", "M2K-1234")


def test_a_peer_that_is_not_completeease_is_garbled() -> None:
    with expected_protocol(WoollamCompleteEASE, [(b"Status()\r\n", b"HTTP/1.1 400\r\n")]) as e:
        with pytest.raises(GarbledReply):
            e.identify()


def test_run_recipe_parses_the_latin1_reply_with_error_bars() -> None:
    pairs = [(b"RunRecipe(Resist on Si/site_001)\r\n", FIT.encode("latin-1") + b"\r\n")]
    with expected_protocol(WoollamCompleteEASE, pairs) as ellipsometer:
        result = ellipsometer.run_recipe("Resist on Si", "site_001")
    assert result.thickness == Q_(850.10, "nm")
    assert result.thickness_error == Q_(0.05, "nm")
    assert result.mse == 2.35
    assert result.cauchy == (1.5712, 0.00812, 0.00005)
    assert result.refractive_index(Q_(632.8, "nm")) == pytest.approx(
        1.5712 + 0.00812 / 0.6328**2 + 0.00005 / 0.6328**4
    )


def test_run_recipe_uses_a_long_timeout_and_restores_it() -> None:
    pairs = [(b"RunRecipe(R/f)\r\n", b"MSE=1; Thickness # 1 (nm)=100\r\n")]
    with expected_protocol(WoollamCompleteEASE, pairs, settings={"recipe_timeout": "900 s"}) as e:
        before = e.transport.timeout
        e.run_recipe("R", "f")
        assert e.transport.timeout == before


def test_error_reply() -> None:
    pairs = [(b"RunRecipe(Nope/f)\r\n", b"Error: recipe not found\r\n")]
    with expected_protocol(WoollamCompleteEASE, pairs) as ellipsometer:
        with pytest.raises(InstrumentError, match="recipe not found"):
            ellipsometer.run_recipe("Nope", "f")


def test_reply_without_thickness_is_garbled() -> None:
    with expected_protocol(WoollamCompleteEASE, [(b"RunRecipe(R/f)\r\n", b"MSE=1\r\n")]) as e:
        with pytest.raises(GarbledReply, match="no thickness"):
            e.run_recipe("R", "f")


def test_names_that_would_break_the_command_are_refused() -> None:
    with expected_protocol(WoollamCompleteEASE, []) as e:
        with pytest.raises(SetpointError):
            e.run_recipe("a/b", "f")
        with pytest.raises(SetpointError):
            e.run_recipe("a", "f)")


def test_list_recipes_status_and_acquisition_commands() -> None:
    pairs = [
        (b"ListRecipes()\r\n", b"Resist on Si/Resist on Si map 49\r\n"),
        (b"Status()\r\n", b"Acquiring Data\r\n"),
        (b"StartAcq()\r\n", b"OK\r\n"),
        (b"StopAcq()\r\n", b"OK\r\n"),
        (b"Trigger()\r\n", b"OK\r\n"),
    ]
    with expected_protocol(WoollamCompleteEASE, pairs) as e:
        assert e.recipes() == ["Resist on Si", "Resist on Si map 49"]
        assert e.busy
        e.start_acquisition()
        e.stop_acquisition()
        e.trigger()


def test_move_to_in_mm_with_range_check() -> None:
    with expected_protocol(WoollamCompleteEASE, [(b"MoveTo(10.000,-2.500)\r\n", b"OK\r\n")]) as e:
        e.move_to(Q_(1, "cm"), Q_(-2.5, "mm"))
        with pytest.raises(SetpointError, match="MoveTo x"):
            e.move_to(Q_(150, "mm"), Q_(0, "mm"))
        with pytest.raises(SetpointError, match="not a length"):
            e.move_to(10, Q_(0, "mm"))


def test_parse_fit_line_rejects_junk() -> None:
    with pytest.raises(ValueError):
        parse_fit_line("MSE 2.35")
