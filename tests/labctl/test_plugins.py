"""Finding what stands above the core by name: labctl/plugins.py."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import plugins
from labctl.errors import InputError
from labctl.names import RUN_ID, name_problem


def test_the_reader_finds_what_importlib_metadata_finds_for_every_labctl_group() -> None:
    for group in plugins.GROUPS:
        expected = [(e.name, e.value) for e in importlib.metadata.entry_points(group=group)]
        found = [(e.name, e.value) for e in plugins.entry_points(group)]
        assert sorted(found) == sorted(expected), group
    # The installed distribution registers each kind of thing.
    assert {"contrast-curve", "spin-curve", "claim14"} <= set(plugins.protocol_names())
    assert {"virtual", "served", "pyvisa-sim"} <= set(plugins.bench_names())
    assert {"run", "resume", "replay", "queue", "sim"} <= set(plugins.command_names())


@pytest.fixture
def lab_distribution(tmp_path: Path) -> Iterator[Path]:
    """A distribution of a lab's own, on sys.path: its metadata says what it registers."""
    info = tmp_path / "lab_things-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-things\nVersion: 1.0\n")
    sys.path.insert(0, str(tmp_path))
    plugins.refresh()
    try:
        yield info
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lab_things", None)
        plugins.refresh()


def _register(info: Path, text: str, module: str = "") -> None:
    (info / "entry_points.txt").write_text(text, encoding="utf-8")
    if module:
        (info.parent / "lab_things.py").write_text(module, encoding="utf-8")
    plugins.refresh()


LONGEST = "p" * plugins.PROTOCOL_NAME.max_length


def test_a_protocol_name_is_one_a_run_id_can_hold() -> None:
    stamp, tail = "20260124-173102-", "-3fa9c1"
    assert name_problem(RUN_ID, f"{stamp}{LONGEST}{tail}") is None
    assert name_problem(RUN_ID, f"{stamp}{LONGEST}p{tail}") is not None
    for good in ("contrast-curve", "claim14", "edge_bead.v2", LONGEST):
        assert name_problem(plugins.PROTOCOL_NAME, good) is None, good
    for bad in ("film check", "a/b", "-lead", "sp\u00e9cial", LONGEST + "p", ""):
        assert name_problem(plugins.PROTOCOL_NAME, bad) is not None, bad


def test_a_protocol_registered_under_a_name_no_run_id_holds_is_refused(
    lab_distribution: Path,
) -> None:
    _register(
        lab_distribution,
        f"[labctl.protocols]\nfilm check = lab_things:X\n{LONGEST}p = lab_things:X\n",
    )
    assert "film check" not in plugins.protocol_names()
    assert f"{LONGEST}p" not in plugins.protocol_names()
    with pytest.raises(InputError) as refused:
        plugins.protocol("film check")
    message = str(refused.value)
    assert "refused" in message and "run id" in message and "lab_things" in message
    assert "\n" not in message


def test_a_protocol_is_what_its_name_says(lab_distribution: Path) -> None:
    module = (
        "from protocols.experiments import CLAIM14\n"
        "from dataclasses import replace\n"
        "MINE = replace(CLAIM14, name='mine')\n"
        "NOT_A_PROTOCOL = 42\n"
    )
    text = (
        "[labctl.protocols]\nmine = lab_things:MINE\nborrowed = lab_things:MINE\n"
        "number = lab_things:NOT_A_PROTOCOL\nmissing = lab_things:NOWHERE\n"
    )
    _register(lab_distribution, text, module)
    assert plugins.protocol("mine").name == "mine"
    for name, says in (
        ("borrowed", "calls itself 'mine'"),
        ("number", "is not a protocol"),
        ("missing", "cannot load"),
        ("nothing-of-the-sort", "unknown protocol"),
    ):
        with pytest.raises(InputError, match=says):
            plugins.protocol(name)


def test_an_unknown_bench_names_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown bench; benches: .*virtual"):
        plugins.open_bench("nowhere")


def test_a_bench_is_found_by_name_and_gives_a_station() -> None:
    bench = plugins.open_bench("virtual", seed=3)
    try:
        station = bench.station()
        assert sorted(station.instruments) == sorted(station.config.roles)
    finally:
        bench.close()
