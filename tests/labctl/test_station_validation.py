"""A station file is checked whole when it loads, before any port opens (issue 12, item 1).

The corpus of bad files is generated from what the drivers declare
(``station_settings``): every setting of every installed driver and every
key of every composite's table (``[exposure]``) gets values of the wrong
dimension, out of range, of the wrong type and malformed. Each file must be
refused by ``load_station`` and by ``labctl check`` with exit 2 and one line
naming the file and the field - and no port may open: every role of the
base station points at a loopback listener that counts connections.

Also: ``driver = "module:Class"`` loads only with ``--allow-import``
(issue 12, item 10), and the settings table in ``docs/station-file.md`` is
the one the declarations generate.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labctl.cli import main
from labctl.errors import InputError, StationFileError
from labctl.settings import (
    FractionType,
    IntegerType,
    ListType,
    QuantityType,
    Setting,
    Settings,
    SettingType,
    TableType,
    TextType,
    declared_settings,
    fraction,
    integer,
    quantity,
)
from labctl.station import (
    ENTRY_POINT_GROUP,
    ROLES,
    Station,
    composites,
    load_station,
    settings_reference,
)
from labctl.units import Quantity
from tests.protocols.conftest import BASELINE, FAST

ROOT = Path(__file__).resolve().parents[2]
SIM_STATION = ROOT / "sim_instruments" / "sim_station.toml"
DOCS = ROOT / "docs" / "station-file.md"
SERIAL_ROLES = ("spin_coater", "hotplate", "exposure_shutter", "exposure_stage")
CATEGORIES = ("wrong dimension", "out of range", "wrong type", "malformed")


# -- a loopback listener that counts every connection ---------------------


class PortRecorder:
    """A TCP listener on 127.0.0.1: every role of the test station points here.

    Connections are counted and closed at once (a driver then fails fast);
    a refused station file must leave the count at zero.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[PortRecorder]:
    listener = PortRecorder()
    yield listener
    listener.close()


def base_station(port: int) -> dict[str, Any]:
    """The built-in station's roles and settings, every link aimed at the recorder."""
    data = tomllib.loads(SIM_STATION.read_text(encoding="utf-8"))
    fast = {"timeout": "0.2 s", "resync_quiet": "0.01 s", "resync_limit": "0.05 s"}
    for role, table in data["roles"].items():
        table.pop("backend", None)
        if role in SERIAL_ROLES:
            table["transport"] = "serial"
            table["resource"] = f"socket://127.0.0.1:{port}"
        else:
            table["resource"] = f"TCPIP0::127.0.0.1::{port}::SOCKET"
            table["backend"] = "@py"
        table["link"] = dict(fast)
    return data


# -- TOML out (no writer in the standard library) -----------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(data: dict[str, Any]) -> str:
    """Top-level tables and each ``[roles.<role>]`` as headers; anything deeper inline."""
    lines: list[str] = []
    for name, table in data.items():
        sections = table.items() if name == "roles" else [(None, table)]
        for role, body in sections:
            lines.append(f"[{name}]" if role is None else f"[roles.{role}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(toml_text(data), encoding="utf-8")
    return path


# -- the corpus, generated from the declarations -----------------------------


def _fmt(number: float) -> str:
    return f"{number:g}"


def valid_value(kind: SettingType, count: int = 1) -> list[Any]:
    """``count`` distinct valid values of ``kind``, increasing (for lists)."""
    if isinstance(kind, QuantityType):
        low = kind.low if kind.low is not None else (kind.high or 1) - 10
        high = kind.high if kind.high is not None else low + 10
        return [
            f"{_fmt(low + (high - low) * (i + 1) / (count + 1))} {kind.unit_name}"
            for i in range(count)
        ]
    if isinstance(kind, IntegerType):
        low = kind.low if kind.low is not None else 0
        top = kind.high if kind.high is not None else low + count
        return [min(low + i, top) for i in range(count)]
    if isinstance(kind, FractionType):
        return [0.01 * (i + 1) for i in range(count)]
    if isinstance(kind, TextType):
        return [f"text {i}" for i in range(count)]
    if isinstance(kind, ListType):
        return [valid_value(kind.item, kind.length[0]) for _ in range(count)]
    if isinstance(kind, TableType):
        return [{} for _ in range(count)]
    raise TypeError(kind)


def _other_unit(kind: QuantityType) -> str:
    for unit in ("V", "kg", "mm", "s"):
        if Quantity(1, unit).dimensionality != kind.unit.dimensionality:
            return unit
    raise AssertionError(kind)


def bad_values(kind: SettingType) -> list[tuple[str, Any, str]]:
    """(category, value, where inside the value the error points) for one declared type."""
    cases: list[tuple[str, Any, str]] = []
    if isinstance(kind, QuantityType):
        unit = kind.unit_name
        cases.append(("wrong dimension", f"1 {_other_unit(kind)}", ""))
        if kind.high is not None:
            cases.append(("out of range", f"{_fmt(kind.high + max(1, abs(kind.high)))} {unit}", ""))
            if kind.high_open:
                cases.append(("out of range", f"{_fmt(kind.high)} {unit}", ""))
        if kind.low is not None:
            cases.append(("out of range", f"{_fmt(kind.low - max(1, abs(kind.low)))} {unit}", ""))
            if kind.low_open:
                cases.append(("out of range", f"{_fmt(kind.low)} {unit}", ""))
        cases += [("wrong type", v, "") for v in (1.5, 3, True, ["1 A"], {"value": 1})]
        malformed = ("here", "xy", "", " ", "(1", f"1..0 {unit}", f"\u0663 {unit}")
        malformed += (f"nan {unit}", f"inf {unit}", f"1e999 {unit}", f"2**99999 {unit}")
        cases += [("malformed", v, "") for v in (*malformed, "1" * 70 + f" {unit}")]
    elif isinstance(kind, IntegerType):
        cases.append(("wrong dimension", "5 A", ""))
        if kind.high is not None:
            cases.append(("out of range", kind.high + 1, ""))
        if kind.low is not None:
            cases.append(("out of range", kind.low - 1, ""))
        cases += [("wrong type", v, "") for v in (5.5, 2.0, True, [1])]
        cases += [("malformed", v, "") for v in ("5", "five", "")]
    elif isinstance(kind, FractionType):
        cases.append(("wrong dimension", "2 A", ""))
        if kind.high is not None:
            cases += [("out of range", kind.high + 0.1, ""), ("out of range", "60 %", "")]
        if kind.low is not None:
            cases.append(("out of range", kind.low - 0.1, ""))
            if kind.low_open:
                cases.append(("out of range", kind.low, ""))
        cases += [("wrong type", v, "") for v in (True, [0.1], {"x": 1})]
        cases += [("malformed", v, "") for v in ("2 %%", "x %", "", "0.02 A %")]
    elif isinstance(kind, TextType):
        # Text has no dimension: any printable text of the right length is one.
        cases += [("out of range", v, "") for v in ("", "x" * (kind.max_length + 1))]
        cases += [("wrong type", v, "") for v in (5, True, ["a"], {"a": 1})]
        cases += [("malformed", v, "") for v in ("a\nb", "tab\there", "nul\x00")]
    elif isinstance(kind, ListType):
        shortest, longest = kind.length
        good = valid_value(kind.item, shortest)
        for category, item, inner in bad_values(kind.item):
            cases.append((category, [item, *good[1:]], f"[0]{inner}"))
            if category == "out of range" and shortest > 1:
                cases.append((category, [*good[:-1], item], f"[{shortest - 1}]{inner}"))
        cases += [("wrong type", v, "") for v in (good[0], True, {"x": 1}, "xy")]
        cases.append(("malformed", valid_value(kind.item, longest + 1), ""))
        if shortest > 0:
            cases.append(("malformed", [], ""))
        if kind.increasing:
            cases.append(("malformed", list(reversed(valid_value(kind.item, shortest))), ""))
        if kind.unique and longest > 1:
            cases.append(("malformed", [good[0], good[0]], ""))
    elif isinstance(kind, TableType):
        for name, spec in kind.fields.items():
            for category, value, inner in bad_values(spec.type):
                cases.append((category, {name: value}, f".{name}{inner}"))
        cases += [("wrong type", v, "") for v in ("xy", 5, ["a"])]
        cases.append(("malformed", {"bogus": 1}, ".bogus"))
    else:
        raise TypeError(kind)
    return cases


@dataclass(frozen=True)
class Bad:
    """One bad station file: ``value`` at ``table``.``key``, refused at ``field``."""

    table: tuple[str, ...]
    key: str
    value: Any
    field: str
    category: str

    @property
    def setting(self) -> str:
        return ".".join([*self.table, self.key])


def settings_tables() -> dict[tuple[str, ...], Settings]:
    """Every declared table of the base station: each role's settings, each composite's table."""
    data = tomllib.loads(SIM_STATION.read_text(encoding="utf-8"))
    tables: dict[tuple[str, ...], Settings] = {}
    by_driver = {table["driver"]: role for role, table in data["roles"].items()}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        assert entry.name in by_driver, f"driver {entry.name} is not on the base station"
        role = by_driver[entry.name]
        tables[("roles", role, "settings")] = declared_settings(entry.load())
    for name, owner in composites().items():
        tables[(name,)] = declared_settings(owner)
    return tables


def corpus() -> list[Bad]:
    cases = []
    for table, declared in settings_tables().items():
        prefix = ".".join(table)
        for spec in declared:
            for category, value, inner in bad_values(spec.type):
                cases.append(Bad(table, spec.name, value, f"{prefix}.{spec.name}{inner}", category))
        cases.append(Bad(table, "bogus_key", 1, f"{prefix}.bogus_key", "unknown key"))
    return cases


CORPUS = corpus()


def bad_station(directory: Path, port: int, bad: Bad, index: int) -> Path:
    data = base_station(port)
    place = data
    for part in bad.table:
        place = place.setdefault(part, {})
    place[bad.key] = copy.deepcopy(bad.value)
    return write(directory / f"bad-{index:03d}.toml", data)


def test_the_corpus_covers_every_setting_of_every_driver_and_composite() -> None:
    tables = settings_tables()
    assert len(tables) == len(ROLES) + len(composites())
    assert ("exposure",) in tables
    covered: dict[str, set[str]] = {}
    for bad in CORPUS:
        covered.setdefault(bad.setting, set()).add(bad.category)
    declared = [(t, s) for t, settings in tables.items() for s in settings]
    assert len(declared) >= 20  # 9 role settings and 11 [exposure] keys today
    for table, spec in declared:
        name = ".".join([*table, spec.name])
        wanted = set(CATEGORIES)
        if _is_text(spec):
            wanted.discard("wrong dimension")  # text has none
        assert wanted <= covered.get(name, set()), (name, covered.get(name))
    assert len(CORPUS) > 300


def _is_text(spec: Setting) -> bool:
    kind = spec.type
    return isinstance(kind, TextType) or (
        isinstance(kind, ListType) and isinstance(kind.item, TextType)
    )


def test_the_base_station_is_valid_and_does_connect(tmp_path: Path) -> None:
    """The control: the same station, good, is loaded and does reach the listener."""
    listener = PortRecorder()
    try:
        path = write(tmp_path / "good.toml", base_station(listener.port))
        load_station(path)
        with pytest.raises(SystemExit) as exit_info:
            main(["check", "--station", str(path)])
        assert exit_info.value.code == 1  # nobody answers on the listener
        assert listener.connections >= 1
    finally:
        listener.close()


def test_every_bad_station_is_refused_at_load_naming_file_and_field(
    tmp_path: Path, recorder: PortRecorder
) -> None:
    wrong = []
    for index, bad in enumerate(CORPUS):
        path = bad_station(tmp_path, recorder.port, bad, index)
        try:
            load_station(path)
        except StationFileError as exc:
            text = str(exc)
            expected = f"{path}: {bad.field}: "
            if not text.startswith(expected) or "\n" in text or "allowed" not in text:
                wrong.append(f"{bad.field} = {bad.value!r}: {text}")
        else:
            wrong.append(f"{bad.field} = {bad.value!r}: accepted")
    assert not wrong, f"{len(wrong)} of {len(CORPUS)} not refused as required:\n" + "\n".join(wrong)
    assert recorder.connections == 0


def test_every_bad_station_makes_labctl_check_exit_2_with_one_line_and_no_port(
    tmp_path: Path, recorder: PortRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole corpus through the command (in process: the same ``main`` the console runs)."""
    wrong = []
    for index, bad in enumerate(CORPUS):
        path = bad_station(tmp_path, recorder.port, bad, index)
        with pytest.raises(SystemExit) as exit_info:
            main(["check", "--station", str(path)])
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        ok = (
            exit_info.value.code == 2
            and len(lines) == 1
            and lines[0].startswith(f"labctl: error: {path}: {bad.field}: ")
            and not captured.out
        )
        if not ok:
            wrong.append(f"{bad.field} = {bad.value!r}: exit {exit_info.value.code} {captured}")
    assert not wrong, "\n".join(wrong)
    assert recorder.connections == 0  # not one port opened for a refused file


# -- the issue's own examples, through the real command line --------------------

ISSUE_EXAMPLES = [
    (("exposure",), "led_current", "0.5 V", "exposure.led_current: '0.5 V' is not a current"),
    (("exposure",), "led_current", "50 A", "exposure.led_current: '50 A' is out of range"),
    (("exposure",), "meter_position", "here", "exposure.meter_position: 'here' is not a list"),
    (("exposure",), "shutter_offset", "-100 ms", "exposure.shutter_offset: '-100 ms' is out of"),
    (
        ("roles", "exposure_meter", "settings"),
        "aperture_area",
        "0.709 cm",
        "roles.exposure_meter.settings.aperture_area: '0.709 cm' is not an area",
    ),
    (
        ("roles", "exposure_stage", "settings"),
        "axes",
        "xy",
        "roles.exposure_stage.settings.axes: 'xy' is not a list",
    ),
]


def labctl(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("example", ISSUE_EXAMPLES, ids=lambda e: f"{e[1]}={e[2]}")
def test_the_issues_examples_are_refused_by_labctl_check(
    example: tuple[tuple[str, ...], str, str, str], tmp_path: Path, recorder: PortRecorder
) -> None:
    table, key, value, expected = example
    path = bad_station(tmp_path, recorder.port, Bad(table, key, value, "", ""), 0)
    line = one_error_line(labctl("check", "--station", str(path)))
    assert line.startswith(f"labctl: error: {path}: ") and expected in line
    assert "allowed" in line
    assert recorder.connections == 0


def test_run_queue_add_and_resume_refuse_a_bad_station_before_anything_is_recorded(
    tmp_path: Path, recorder: PortRecorder
) -> None:
    bad = Bad(("roles", "exposure_stage", "settings"), "axes", "xy", "", "")
    path = bad_station(tmp_path, recorder.port, bad, 0)
    expected = f"{path}: roles.exposure_stage.settings.axes: 'xy' is not a list"
    data = tmp_path / "data"
    overrides = [item for value in FAST for item in ("--set", value)]
    run = ["run", "contrast-curve", "--station", str(path), "--formulation", str(BASELINE)]
    assert expected in one_error_line(labctl(*run, *overrides, "--data", str(data)))
    queue = ["queue", "add", "contrast-curve", "--station", str(path)]
    queue += ["--formulation", str(BASELINE), "--data", str(data)]
    assert expected in one_error_line(labctl(*queue))
    resume = ["resume", "contrast-curve-anything", "--station", str(path), "--data", str(data)]
    assert expected in one_error_line(labctl(*resume))
    assert recorder.connections == 0
    if data.exists():  # a run store may exist; it holds no run and no queue entry
        from labctl.store import RunStore

        store = RunStore(data)
        try:
            assert store.runs() == [] and store.queue() == []
        finally:
            store.close()


# -- cross-field rules, required settings, converted values -----------------------

RULES = [
    (
        {"min_open_time": "2 s", "max_open_time": "1 s"},
        "exposure.min_open_time: need min_open_time < max_open_time",
    ),
    (
        {"min_open_time": "5 ms", "shutter_offset": "-5 ms"},
        "exposure.shutter_offset: need min_open_time + shutter_offset > 0 ms",
    ),
]


@pytest.mark.parametrize("table, expected", RULES)
def test_rules_across_exposure_settings(
    table: dict[str, str], expected: str, tmp_path: Path, recorder: PortRecorder
) -> None:
    data = base_station(recorder.port)
    data["exposure"].update(table)
    path = write(tmp_path / "station.toml", data)
    with pytest.raises(StationFileError) as info:
        load_station(path)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_standby_must_lie_inside_the_hotplates_range(
    tmp_path: Path, recorder: PortRecorder
) -> None:
    data = base_station(recorder.port)
    data["roles"]["hotplate"]["settings"] = {
        "temperature_range": ["20 degC", "150 degC"],
        "standby_temperature": "200 degC",
    }
    path = write(tmp_path / "station.toml", data)
    with pytest.raises(StationFileError, match=r"settings\.standby_temperature: need standby"):
        load_station(path)
    data["roles"]["hotplate"]["settings"]["standby_temperature"] = "25 degC"
    load_station(write(path, data))


def test_a_required_setting_left_out_is_refused(tmp_path: Path, recorder: PortRecorder) -> None:
    data = base_station(recorder.port)
    del data["roles"]["exposure_meter"]["settings"]["aperture_area"]
    path = write(tmp_path / "station.toml", data)
    with pytest.raises(StationFileError) as info:
        load_station(path)
    assert str(info.value).startswith(
        f"{path}: roles.exposure_meter.settings.aperture_area: missing"
    )


def test_drivers_receive_converted_values_with_defaults(sim_definitions: Path) -> None:
    station = Station.from_file(sim_definitions / "sim_station.toml")
    meter = station["exposure_meter"].settings
    assert isinstance(meter["aperture_area"], Quantity)
    assert meter["aperture_area"].m_as("cm**2") == pytest.approx(0.709)
    assert meter["wavelength"].m_as("nm") == 365
    assert station["exposure_stage"].settings["axes"] == (1, 2)
    assert station["spin_coater"].settings["calibration"] == {
        "start_pwm": 110,
        "slope": 950,
        "intercept": 550,
    }
    assert station["ellipsometer"].settings["recipe_timeout"].m_as("s") == 600
    exposure = station.config.exposure
    assert exposure["led_current"].m_as("A") == 1.0
    assert exposure["shutter_offset"].m_as("ms") == 0  # a default, converted
    assert exposure["meter_position"][0].m_as("mm") == -40
    # The run's record keeps the settings as a station file would write them.
    assert station["exposure_meter"].snapshot()["settings"]["aperture_area"] == "0.709 cm**2"


@pytest.mark.parametrize(
    "station", ["sim_station.toml", "bench_station.toml"], ids=["pyvisa-sim", "virtual bench"]
)
def test_the_shipped_stations_are_valid(station: str) -> None:
    load_station(ROOT / "sim_instruments" / station)


def test_the_example_and_served_stations_are_valid(tmp_path: Path) -> None:
    load_station(ROOT / "examples" / "stations" / "bench.toml")
    from sim_instruments.bench import VirtualBench
    from sim_instruments.serve import BenchServer

    server = BenchServer(VirtualBench(seed=1), tmp_path / "served")
    server.start()
    try:
        load_station(server.write_station())
    finally:
        server.stop()


# -- the declarations themselves -------------------------------------------------


def test_validation_is_idempotent_and_fractions_take_percent() -> None:
    declared = Settings(
        Setting("current", quantity("A", above=0, high=2), "A current.", default="1 A"),
        Setting("share", fraction(above=0, high=0.5), "A share.", default=0.02),
        Setting("count", integer(1, 3), "A count."),
    )
    once = declared.validate({"current": "500 mA", "share": "5 %"}, source="s", prefix="t")
    assert once["current"].m_as("A") == 0.5 and once["share"] == pytest.approx(0.05)
    assert once["count"] is None
    assert declared.validate(once, source="s", prefix="t") == once
    with pytest.raises(InputError, match=r"t\.share: 2 is out of range \(a percentage is"):
        declared.validate({"share": 2}, source="s", prefix="t")


def test_a_bad_declared_default_fails_at_declaration() -> None:
    with pytest.raises(ValueError, match="out of range"):
        Settings(Setting("current", quantity("A", 0, 2), "A current.", default="5 A"))


def test_a_driver_built_by_hand_still_checks_its_settings() -> None:
    from drivers.thorlabs_pm100d import ThorlabsPM100D
    from labctl.testing import ScriptedTransport

    with pytest.raises(InputError, match=r"settings\.aperture_area: '0.709 cm' is not an area"):
        ThorlabsPM100D(ScriptedTransport([]), settings={"aperture_area": "0.709 cm"})


def test_refusing_is_fast_for_hostile_values(tmp_path: Path, recorder: PortRecorder) -> None:
    """A value built to make a parser work (huge exponent, long text) costs no time."""
    import time

    data = base_station(recorder.port)
    for value in ("9" * 10_000 + " A", "2**9999999 A", "1e99999999 A", "1" + "0" * 60 + " A"):
        data["exposure"]["led_current"] = value
        path = write(tmp_path / "station.toml", data)
        start = time.perf_counter()
        with pytest.raises(StationFileError, match=r"exposure\.led_current"):
            load_station(path)
        assert time.perf_counter() - start < 1.0


# -- module:Class drivers need --allow-import -------------------------------------

EVIL_MODULE = """
from pathlib import Path

Path(__file__).with_name("imported.marker").write_text("imported")

from drivers.thorlabs_sc10 import ThorlabsSC10


class Shutter(ThorlabsSC10):
    pass
"""


@pytest.fixture
def module_station(sim_definitions: Path) -> Iterator[tuple[Path, Path]]:
    """The pyvisa-sim station with its shutter as ``labctl_test_shutter:Shutter``."""
    (sim_definitions / "labctl_test_shutter.py").write_text(EVIL_MODULE, encoding="utf-8")
    text = (sim_definitions / "sim_station.toml").read_text(encoding="utf-8")
    text = text.replace('driver = "thorlabs_sc10"', 'driver = "labctl_test_shutter:Shutter"', 1)
    path = sim_definitions / "module.toml"
    path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(sim_definitions))
    yield path, sim_definitions / "imported.marker"
    sys.path.remove(str(sim_definitions))
    sys.modules.pop("labctl_test_shutter", None)


def test_module_class_driver_is_refused_without_allow_import(
    module_station: tuple[Path, Path],
) -> None:
    path, marker = module_station
    with pytest.raises(StationFileError) as info:
        load_station(path)
    text = str(info.value)
    assert text.startswith(f"{path}: roles.exposure_shutter.driver: ")
    assert "--allow-import" in text and "\n" not in text
    assert not marker.exists()  # refused before anything was imported
    config = load_station(path, allow_import=True)
    assert marker.exists()
    assert config.roles["exposure_shutter"].driver_class.__name__ == "Shutter"  # type: ignore[union-attr]
    # Once trusted and cached, an untrusted load is still refused.
    with pytest.raises(StationFileError, match="--allow-import"):
        Station.from_file(path)


def test_labctl_check_and_run_with_a_module_driver(module_station: tuple[Path, Path]) -> None:
    path, marker = module_station
    env = {"PYTHONPATH": os.pathsep.join([str(path.parent), os.environ.get("PYTHONPATH", "")])}
    line = one_error_line(labctl("check", "--station", str(path), env=env))
    assert "roles.exposure_shutter.driver" in line and "--allow-import" in line
    data = path.parent / "data"
    run = ["run", "spin-curve", "--station", str(path), "--formulation", str(BASELINE)]
    line = one_error_line(labctl(*run, "--data", str(data), env=env))
    assert "--allow-import" in line
    queue = ["queue", "add", "spin-curve", "--station", str(path), "--formulation", str(BASELINE)]
    assert "--allow-import" in one_error_line(labctl(*queue, "--data", str(data), env=env))
    assert not marker.exists()
    trusted = labctl("check", "--station", str(path), "--allow-import", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert "exposure_shutter" in trusted.stdout and marker.exists()


def test_a_queue_entry_keeps_the_trust_it_was_added_with(
    module_station: tuple[Path, Path], tmp_path: Path
) -> None:
    from labctl.store import RunStore
    from protocols.queue import add
    from protocols.runner import RunRequest

    path, _ = module_station
    text = path.read_text(encoding="utf-8") + '\n[handler]\naddress = "127.0.0.1:9"\n'
    path.write_text(text, encoding="utf-8")
    request = RunRequest(
        protocol="spin-curve",
        data_dir=tmp_path / "data",
        formulation=BASELINE,
        station=path,
        unattended=True,
    )
    with pytest.raises(StationFileError, match="--allow-import"):
        add(request)
    request.allow_import = True
    add(request)
    store = RunStore(tmp_path / "data")
    try:
        (entry,) = store.queue()
    finally:
        store.close()
    assert entry["options"]["allow_import"] is True


# -- the docs' table is the declarations' ------------------------------------------

BEGIN = "<!-- settings reference: generated by labctl.station.settings_reference() -->"
END = "<!-- end of settings reference -->"


def test_the_docs_settings_table_matches_the_declarations() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "docs/station-file.md lost its settings markers"
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    generated = settings_reference()
    assert documented == generated, (
        "docs/station-file.md is out of date; paste the output of\n"
        "  python -c 'from labctl.station import settings_reference as s; print(s(), end=\"\")'\n"
        "between its settings-reference markers"
    )
    assert "--allow-import" in text
