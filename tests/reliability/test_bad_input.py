"""Bad input, hand-made and generated: always one typed, one-line error - never a crash.

Formulation, station and recipe files (mutated, truncated, not UTF-8),
``--set`` values; and on the command line: exit 2, no traceback, nothing
switched on.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.errors import FormulationError, InputError, RecipeError, StationFileError
from labctl.formulation import load_formulation
from labctl.station import load_station
from protocols.experiments import PROTOCOLS
from protocols.recipes import load_recipe, resolve_parameters
from sim_instruments import definition_path
from tests.protocols.conftest import BASELINE

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "recipes" / "contrast_curve.toml"
FILES = {
    "formulation": (BASELINE, lambda p: load_formulation(p), FormulationError),
    "station": (definition_path("sim_station.toml"), lambda p: load_station(p), StationFileError),
    "recipe": (
        RECIPE,
        lambda p: resolve_parameters(
            PROTOCOLS["contrast-curve"].parameters, load_recipe(p)[1], recipe_source=str(p)
        ),
        RecipeError,
    ),
}


def outcome(kind: str, content: bytes) -> None:
    """Load ``content`` as a ``kind`` file: it must load or raise that kind's one-line error."""
    _, loader, error = FILES[kind]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"input.{kind}.toml"
        if kind == "station":
            for name in ("bench.yaml",):
                (Path(directory) / name).write_bytes(definition_path(name).read_bytes())
        path.write_bytes(content)
        try:
            loader(path)
        except error as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(str(path))


@pytest.mark.parametrize("kind", list(FILES))
def test_every_truncation_of_a_valid_file(kind: str) -> None:
    content = FILES[kind][0].read_bytes()
    lines = content.splitlines(keepends=True)
    for cut in range(len(lines)):
        outcome(kind, b"".join(lines[:cut]))
    for cut in range(0, len(content), max(1, len(content) // 60)):
        outcome(kind, content[:cut])


@pytest.mark.parametrize("kind", list(FILES))
def test_non_utf8_and_binary_files(kind: str) -> None:
    outcome(kind, b"\xff\xfe\x00garbage")
    outcome(kind, FILES[kind][0].read_bytes().replace(b"a", b"\xe9", 3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(list(FILES)), data=st.data())
def test_mutated_files(kind: str, data: st.DataObject) -> None:
    content = bytearray(FILES[kind][0].read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(content) - 1))
        action = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        byte = data.draw(st.sampled_from(list(b'="[]{},.-0123456789 \nagmsx#\\')))
        if action == "delete":
            del content[position]
        elif action == "insert":
            content.insert(position, byte)
        else:
            content[position] = byte
    outcome(kind, bytes(content))


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from([p.name for p in PROTOCOLS["contrast-curve"].parameters]),
    value=st.text(max_size=20),
)
def test_set_values(name: str, value: str) -> None:
    try:
        resolve_parameters(PROTOCOLS["contrast-curve"].parameters, None, [f"{name}={value}"])
    except RecipeError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("--set: ")


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("formulation", ["--set", "coat_time=10 s"]),
        ("formulation truncated", []),
    ],
)
def test_cli_refuses_bad_files_before_switching_anything_on(
    tmp_path: Path, kind: str, args: list[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_bytes(
        BASELINE.read_bytes()[:700]
        if "truncated" in kind
        else BASELINE.read_bytes().replace(b'amount = "10.0 g"', b'amount = "10.0 L"')
    )
    data = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labctl.cli",
            "run",
            "contrast-curve",
            "--sim",
            "--formulation",
            str(broken),
            "--data",
            str(data),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(broken) in result.stderr
    assert not (data / "bench").exists()


def test_input_errors_are_all_one_family() -> None:
    for error in (FormulationError, RecipeError, StationFileError):
        assert issubclass(error, InputError)


def test_served_listeners_bind_loopback_only(tmp_path: Path) -> None:
    from sim_instruments.bench import VirtualBench
    from sim_instruments.serve import BenchServer

    server = BenchServer(VirtualBench(), tmp_path)
    try:
        hosts = {
            link.listener.getsockname()[0]
            for link in server.links.values()
            if hasattr(link, "listener")
        }
        hosts.add(server.handler.listener.getsockname()[0])
        assert hosts == {"127.0.0.1"}
    finally:
        for link in server.links.values():
            if hasattr(link, "listener"):
                link.listener.close()
            else:
                link._close_pty()  # type: ignore[attr-defined]
        server.handler.listener.close()


def test_files_the_store_writes_are_not_world_writable(tmp_path: Path) -> None:
    from protocols.runner import RunRequest, start

    start(
        RunRequest(
            protocol="claim14",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=("coat_time=10 s",),
        )
    )
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert not os.stat(path).st_mode & stat.S_IWOTH, path
