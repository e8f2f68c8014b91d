"""A lab adds an experiment - and a command - the way it adds a driver: a module and one line.

The lab's package here is a module and a ``*.dist-info`` directory on
``PYTHONPATH`` (what ``pip install`` of a lab's package leaves behind), whose
``entry_points.txt`` has the one line; labctl is not reinstalled. The same
line in labctl's own ``pyproject.toml`` registers the built-in experiments.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli import labctl
from tests.protocols.conftest import BASELINE

LAB_MODULE = '''\
"""A lab's own experiment: one wafer coated, soft baked, its film measured at the centre."""

from labctl.units import Q_, U
from protocols import steps
from protocols.experiments import SPARES, Protocol
from protocols.recipes import COMMON


def film_check(run):
    p = run.parameters

    def part(wafer):
        steps.new_wafer(run, wafer)
        steps.transfer(run, wafer, "spin_coater")
        steps.coat(
            run,
            wafer,
            spread_speed=p["spread_speed"],
            spread_time=p["spread_time"],
            speed=p["coat_speed"],
            duration=p["coat_time"],
        )
        steps.transfer(run, wafer, "cassette")
        steps.soft_bake(run, wafer, p["soft_bake_temperature"], p["soft_bake_time"])
        steps.transfer(run, wafer, "ellipsometer")
        centre = [{"site": "C", "x": Q_(0, U.mm), "y": Q_(0, U.mm)}]
        steps.measure(run, wafer, centre, label="film", recipe=p["recipe"])
        steps.transfer(run, wafer, "cassette")

    run.wafer_part(p["wafer"], part)


FILM_CHECK = Protocol(
    "film-check", film_check, (*COMMON, SPARES), "coat, bake, measure the centre", plan=lambda _: 10
)
SPACED = Protocol("film check", film_check, (*COMMON, SPARES), "a name no run id can hold")
'''

LAB_COMMANDS = '''\
import click


@click.command()
def hello():
    """Say hello from the lab's own package."""
    click.echo("hello from the lab")


@click.command()
def runs():
    """A lab command that would take the core's name."""
    click.echo("not the core's")
'''

ENTRY_POINTS = """\
[labctl.protocols]
film-check = lab_protocols:FILM_CHECK
film check = lab_protocols:SPACED

[labctl.commands]
hello = lab_commands:hello
runs = lab_commands:runs
"""


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, str]:
    """The lab's package on PYTHONPATH: its modules and its metadata, no install."""
    site = tmp_path / "site"
    info = site / "lab_protocols-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-protocols\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "lab_protocols.py").write_text(LAB_MODULE)
    (site / "lab_commands.py").write_text(LAB_COMMANDS)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def test_a_lab_protocol_runs_by_name(tmp_path: Path, lab: dict[str, str]) -> None:
    data = tmp_path / "data"
    arguments = ["run", "film-check", "--sim", "--formulation", str(BASELINE), "--data", str(data)]
    result = labctl(*arguments, environment=lab)
    assert result.returncode == 0, result.stderr
    assert "-film-check-" in result.stdout and ": completed" in result.stdout
    assert "measurements 1" in result.stdout
    assert "step 10/10" in result.stdout  # its own plan, for progress
    run_id = next(w for w in result.stdout.split() if "-film-check-" in w).rstrip(":")
    shown = labctl("show", run_id, "--data", str(data), environment=lab)
    assert shown.returncode == 0 and "protocol   film-check" in shown.stdout
    # Without the lab's package, the name is unknown - said in one line, nothing run.
    again = labctl(*arguments)
    assert again.returncode == 2 and "unknown protocol" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_a_lab_protocol_whose_name_no_run_id_could_hold_is_refused(
    tmp_path: Path, lab: dict[str, str]
) -> None:
    data = tmp_path / "data"
    result = labctl(
        "run", "film check", "--sim", "--formulation", str(BASELINE), "--data", str(data),
        environment=lab,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refused" in result.stderr and "run id" in result.stderr
    assert not data.exists()
    listed = labctl("run", "unknown-one", "--sim", "--formulation", str(BASELINE), environment=lab)
    assert "film-check" in listed.stderr and "film check" not in listed.stderr


def test_a_lab_command_is_listed_and_runs_but_cannot_take_a_core_name(
    tmp_path: Path, lab: dict[str, str]
) -> None:
    helped = labctl("--help", environment=lab)
    assert helped.returncode == 0
    assert "hello" in helped.stdout and "Say hello from the lab's own package." in helped.stdout
    assert labctl("hello", environment=lab).stdout == "hello from the lab\n"
    runs = labctl("runs", "--data", str(tmp_path), environment=lab)
    assert "not the core's" not in runs.stdout + runs.stderr
