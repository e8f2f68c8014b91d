"""Hostile input: each item of the corpus is refused by the CLI with exit 2 and one line.

The corpus (:func:`build_corpus`, also measured by ``benchmarks/hostile_input.py``):
deep nesting in a formulation, recipe and station file; a 100,000-part dotted
key; a 100 MB (sparse) formulation and a device that never ends; other
scripts' digits and 120,000-digit numbers in files, ``--set`` and CSV cells;
powers of powers pint would evaluate without bound; names with spaces,
brackets, non-ASCII and 300 characters; ``%``, ``_`` and empty run ids.

Each is run as a user runs it - a new ``labctl`` process - under limits that
turn a regression into a failure instead of a hung or swapping machine
(``RLIMIT_AS`` 2 GiB, ``RLIMIT_CPU`` 60 s). Its peak memory is taken from
the kernel (``wait4``'s ``ru_maxrss`` of that process) and must stay under
200 MB. Time is not asserted here (the machine is shared); that the work is
bounded is shown in-process below - the refusal comes before ``tomllib``,
``int()``, ``float()`` or pint ever see the text - and the times are measured
by the benchmark (docs/performance.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.protocols.conftest import BASELINE

ROOT = Path(__file__).resolve().parents[2]
STATION = ROOT / "examples" / "stations" / "bench.toml"
#: Peak memory allowed to a refusing process (bytes).
PEAK_LIMIT = 200 * 1024 * 1024
#: Guards for a regression: address space and CPU seconds of the child.
ADDRESS_SPACE_LIMIT = 2 << 30
CPU_LIMIT = 60
#: The two runs of the run-id cases' store (the second id's prefix is not the first's).
RUN_A = "20260101-120000-contrast-curve-aaaaaa"
RUN_B = "20260101-130000-contrast-curve-bbbbbb"


@dataclass(frozen=True)
class Case:
    """One hostile input: the ``labctl`` arguments and what its one line must say."""

    name: str
    arguments: tuple[str, ...]
    says: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    #: Paths that must not exist after the refusal (nothing made for a refused command).
    not_made: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    #: Peak resident memory of the process (bytes) and its CPU seconds (user + system).
    peak: int
    cpu: float
    wall: float


def _deep(kind: str, depth: int = 5000) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return "{a = " * depth + "1" + "}" * depth


def _valid_recipe(extra: str = "") -> str:
    return f'protocol = "contrast-curve"\n[parameters]\nfields = 6\n{extra}'


def _make_store(data: Path) -> None:
    from labctl.store import RunStore

    store = RunStore(data)
    try:
        for run_id in (RUN_A, RUN_B):
            store.create_run(
                {
                    "run_id": run_id,
                    "protocol": "contrast-curve",
                    "parameters": {},
                    "software": {},
                    "operator": "test",
                    "attended": False,
                    "simulated": True,
                }
            )
            store.finish_run(run_id, "completed", "")
    finally:
        store.close()


def _files() -> dict[str, str]:
    return {
        "formulation_deep.toml": BASELINE.read_text() + f"\nextra = {_deep('array')}\n",
        "formulation_dotted.toml": "a" + ".a" * 99_999 + " = 1\n",
        "formulation_digits.toml": BASELINE.read_text().replace('"10.0 g"', '"\u0663 g"'),
        "formulation_long_number.toml": BASELINE.read_text().replace(
            '"10.0 g"', f'"{"9" * 120_000} g"'
        ),
        "formulation_tower.toml": BASELINE.read_text().replace('"10.0 g"', '"1 g**9**9**9"'),
        "recipe_deep.toml": _valid_recipe(f"fine_fields = {_deep('inline')}\n"),
        "recipe_dotted.toml": _valid_recipe() + "[" + "a." * 99_999 + "a]\n",
        "recipe_long_number.toml": _valid_recipe().replace(
            "fields = 6", f"fields = {'9' * 120_000}"
        ),
        "recipe_wafer.toml": _valid_recipe('wafer = "W(1)"\n'),
        "station_deep.toml": STATION.read_text() + f"\n[deep]\nx = {_deep('inline')}\n",
        "station_dotted.toml": STATION.read_text() + "\n" + "k." * 99_999 + "k = 1\n",
        "contrast_digits.csv": "dose_mJ_cm2,nrt\n10,0.1\n20,\u0663\n40,0.9\n",
        "contrast_long.csv": f"dose_mJ_cm2,nrt\n10,0.1\n20,{'9' * 120_000}\n40,0.9\n",
        "contrast_tower.csv": "dose [mJ/cm**9**9**9],nrt\n10,0.1\n20,0.5\n40,0.9\n",
    }


def write_corpus(directory: Path) -> None:
    """Write the corpus's files and run store under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in _files().items():
        (directory / name).write_text(text, encoding="utf-8")
    # 100 MB that costs no disk: sparse files (their size is what is refused).
    for name in ("formulation_100MB.toml", "contrast_100MB.csv"):
        with open(directory / name, "wb") as big:
            big.truncate(100 * 1024 * 1024)
    _make_store(directory / "store")


def corpus_cases(directory: Path) -> list[Case]:
    """Every case of the corpus, its files under ``directory`` (see :func:`write_corpus`)."""
    store = directory / "store"
    new_data = directory / "never-made"
    d = str(directory)

    def run(*extra: str, sim: bool = True, formulation: str = str(BASELINE)) -> tuple[str, ...]:
        where = ("--sim",) if sim else ()
        return (
            "run",
            "contrast-curve",
            *where,
            "--formulation",
            formulation,
            "--data",
            str(new_data),
            *extra,
        )

    def f(name: str) -> str:
        return f"{d}/{name}"

    nine = "9" * 120_000
    cases = [
        # -- files: nesting, dotted keys, size ----------------------------------------------
        Case(
            "formulation nested 5000 deep",
            run(formulation=f("formulation_deep.toml")),
            ("formulation_deep.toml", "nested more than 16 deep"),
        ),
        Case(
            "formulation check: nested",
            ("formulation", "check", f("formulation_deep.toml")),
            ("formulation_deep.toml", "nested more than 16 deep"),
        ),
        Case(
            "formulation 100,000-part dotted key",
            run(formulation=f("formulation_dotted.toml")),
            ("formulation_dotted.toml", "dotted key of more than 16 parts"),
        ),
        Case(
            "formulation of 100 MB",
            run(formulation=f("formulation_100MB.toml")),
            ("formulation_100MB.toml", "too large (104857600 bytes"),
        ),
        Case(
            "recipe nested 5000 deep",
            run("--recipe", f("recipe_deep.toml")),
            ("recipe_deep.toml", "nested more than 16 deep"),
        ),
        Case(
            "recipe 100,000-part dotted header",
            run("--recipe", f("recipe_dotted.toml")),
            ("recipe_dotted.toml", "dotted key of more than 16 parts"),
        ),
        Case(
            "station nested 5000 deep",
            run("--station", f("station_deep.toml"), sim=False),
            ("station_deep.toml", "nested more than 16 deep"),
        ),
        Case(
            "check --station: 100,000-part dotted key",
            ("check", "--station", f("station_dotted.toml")),
            ("station_dotted.toml", "dotted key of more than 16 parts"),
        ),
        # -- numbers ----------------------------------------------------------------------
        Case(
            "--set fields=<Arabic-Indic 3>",
            run("--set", "fields=\u0663"),
            ("--set: fields", "non-ASCII digit"),
        ),
        Case(
            "--set fields=<full-width 16>",
            run("--set", "fields=\uff11\uff16"),
            ("--set: fields", "non-ASCII digit"),
        ),
        Case(
            "--set fields=<120,000 digits>",
            run("--set", f"fields={nine}"),
            ("--set: fields", "longer than 64 characters", "(120000 characters)"),
        ),
        Case(
            "--set coat_speed=<120,000 digits> rpm",
            run("--set", f"coat_speed={nine} rpm"),
            ("--set: coat_speed", "longer than 64 characters"),
        ),
        Case(
            "--set dose_min=<Arabic-Indic 3> mJ/cm**2",
            run("--set", "dose_min=\u0663 mJ/cm**2"),
            ("--set: dose_min", "non-ASCII digit"),
        ),
        Case(
            "--set coat_speed=1 rpm**9**9**9",
            run("--set", "coat_speed=1 rpm**9**9**9"),
            ("--set: coat_speed", "power to a power"),
        ),
        Case(
            "--set coat_speed=9**9**9 rpm",
            run("--set", "coat_speed=9**9**9 rpm"),
            ("--set: coat_speed", "raises a number"),
        ),
        Case(
            "recipe: a 120,000-digit integer",
            run("--recipe", f("recipe_long_number.toml")),
            ("recipe_long_number.toml", "number longer than 64 characters"),
        ),
        Case(
            "formulation: <Arabic-Indic 3> g",
            run(formulation=f("formulation_digits.toml")),
            ("formulation_digits.toml", "components[0].amount", "non-ASCII digit"),
        ),
        Case(
            "formulation: a 120,000-digit amount",
            run(formulation=f("formulation_long_number.toml")),
            ("formulation_long_number.toml", "longer than 64 characters"),
        ),
        Case(
            "formulation: 1 g**9**9**9",
            run(formulation=f("formulation_tower.toml")),
            ("formulation_tower.toml", "power to a power"),
        ),
        Case(
            "analyze: a cell of Arabic-Indic digits",
            ("analyze", "contrast", f("contrast_digits.csv")),
            ("contrast_digits.csv", "line 3", "non-ASCII digit"),
        ),
        Case(
            "analyze: a 120,000-digit cell",
            ("analyze", "contrast", f("contrast_long.csv")),
            ("contrast_long.csv", "line 3", "longer than 64 characters"),
        ),
        Case(
            "analyze: a unit cm**9**9**9",
            ("analyze", "contrast", f("contrast_tower.csv")),
            ("contrast_tower.csv", "power to a power"),
        ),
        Case(
            "analyze: a CSV of 100 MB",
            ("analyze", "contrast", f("contrast_100MB.csv")),
            ("contrast_100MB.csv", "too large (104857600 bytes"),
        ),
        # -- names ------------------------------------------------------------------------
        Case(
            "--set recipe=Resist (v2)",
            run("--set", "recipe=Resist (v2)"),
            ("--set: recipe", "'Resist (v2)' is not a recipe name"),
        ),
        Case(
            "--set recipe=R\u00e9sist",
            run("--set", "recipe=R\u00e9sist"),
            ("--set: recipe", "'R\\xe9sist' is not a recipe name"),
        ),
        Case(
            "--set wafer=W(1)",
            run("--set", "wafer=W(1)"),
            ("--set: wafer", "'W(1)' is not a wafer id"),
        ),
        Case(
            "--set wafer=W\u00e4",
            run("--set", "wafer=W\u00e4"),
            ("--set: wafer", "'W\\xe4' is not a wafer id"),
        ),
        Case(
            "--set wafer=W 01",
            run("--set", "wafer=W 01"),
            ("--set: wafer", "'W 01' is not a wafer id"),
        ),
        Case(
            "--set wafer=<300 characters>",
            run("--set", "wafer=" + "W" * 300),
            ("--set: wafer", "(300 characters) is not a wafer id"),
        ),
        Case(
            "--set wafer=<line break>",
            run("--set", "wafer=W01\nW02"),
            ("--set: wafer", "'W01\\nW02' is not a wafer id"),
        ),
        Case(
            "recipe file: wafer = W(1)",
            run("--recipe", f("recipe_wafer.toml")),
            ("recipe_wafer.toml: parameters.wafer", "not a wafer id"),
        ),
        Case(
            "--operator W\u00e4",
            run("--operator", "W\u00e4"),
            ("--operator", "'W\\xe4' is not an operator"),
        ),
        Case(
            "--operator <300 characters>",
            run("--operator", "x" * 300),
            ("--operator", "(300 characters) is not an operator"),
        ),
        Case("--operator x(1)", run("--operator", "x(1)"), ("--operator", "is not an operator")),
        Case(
            "a login name outside the grammar",
            run(),
            ("--operator", "the login name 'j doe\\xe4'", "give --operator NAME"),
            environment={"LOGNAME": "j doe\u00e4", "USER": "j doe\u00e4"},
        ),
        # -- run ids ----------------------------------------------------------------------
        Case("show %", ("show", "%", "--data", str(store)), ("run: '%' is not a run id",)),
        Case("show _", ("show", "_", "--data", str(store)), ("run: '_' is not a run id",)),
        Case("show ''", ("show", "", "--data", str(store)), ("run: '' is empty",)),
        Case("show 2026%", ("show", "2026%", "--data", str(store)), ("is not a run id",)),
        Case(
            "show <300 characters>",
            ("show", "2" * 300, "--data", str(store)),
            ("(300 characters) is not a run id",),
        ),
        Case(
            "show 20260101 (two runs)",
            ("show", "20260101", "--data", str(store)),
            ("begins several runs", RUN_A, RUN_B),
        ),
        Case(
            "show 20260101_ (no such run)",
            ("show", "20260101_", "--data", str(store)),
            ("no such run",),
        ),
        Case(
            "report %",
            ("report", "%", "--data", str(store)),
            ("'%' is not a run id",),
            not_made=(store / "reports",),
        ),
        Case(
            "export % --out",
            ("export", "%", "--out", f("export"), "--data", str(store)),
            ("'%' is not a run id",),
            not_made=(directory / "export",),
        ),
        Case("resume _", ("resume", "_", "--data", str(store)), ("'_' is not a run id",)),
        Case("compare %", ("compare", "%", "--data", str(store)), ("'%' is not a run id",)),
    ]
    if Path("/dev/zero").exists():
        cases.append(
            Case(
                "formulation /dev/zero (never ends)",
                run(formulation="/dev/zero"),
                ("/dev/zero: file: too large (over 1048576 bytes",),
            )
        )
    # A refused run makes no data directory.
    return [
        replace(case, not_made=(*case.not_made, new_data)) if case.arguments[0] == "run" else case
        for case in cases
    ]


#: A small launcher between pytest and labctl. A child made by fork or vfork
#: carries its parent's memory high-water mark through exec (Linux keeps the
#: larger of the old and new ``ru_maxrss``), so a peak read from a child of
#: this (large) pytest process would be pytest's. The launcher, small itself,
#: sets the limits - a regression fails (MemoryError, SIGXCPU) instead of
#: taking the machine - spawns labctl, waits for it with ``wait4`` and writes
#: labctl's own status, peak (kB) and CPU time to the file it is given.
_LAUNCHER = (
    "import os, resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))\n"
    f"resource.setrlimit(resource.RLIMIT_CPU, ({CPU_LIMIT}, {CPU_LIMIT}))\n"
    "report, arguments = sys.argv[1], sys.argv[2:]\n"
    "pid = os.posix_spawn(sys.executable,"
    " [sys.executable, '-m', 'labctl.cli', *arguments], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(report, 'w') as out:\n"
    "    out.write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}"
    " {usage.ru_utime + usage.ru_stime}')\n"
)


def run_case(case: Case, *, timeout: float = 300) -> Outcome:
    """Run ``labctl`` for ``case`` in a new process; its output, exit, peak memory, CPU time."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        # The limits are set by a small launcher that then execs labctl - not by
        # preexec_fn, which forks this (large) pytest process: the fork's pages
        # would count in the child's ru_maxrss, and the peak would be pytest's.
        report = Path(tempfile.mkdtemp()) / "usage"
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *case.arguments],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(ROOT), **case.environment},
            cwd=ROOT,
            start_new_session=True,  # the launcher and labctl, killed together
        )
        killer = threading.Timer(timeout, lambda: os.killpg(process.pid, signal.SIGKILL))
        killer.start()
        try:
            process.wait()
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        returncode, peak_kb, cpu = report.read_text().split()
        report.unlink()
        report.parent.rmdir()
        out.seek(0)
        err.seek(0)
        return Outcome(
            returncode=int(returncode),
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            peak=int(peak_kb) * 1024,  # kilobytes on Linux
            cpu=float(cpu),
            wall=wall,
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    directory = tmp_path_factory.mktemp("hostile")
    write_corpus(directory)
    return corpus_cases(directory)


#: The cases' names, for parametrize (nothing is written to find them).
CASE_NAMES = [case.name for case in corpus_cases(Path("corpus"))]


@pytest.mark.skipif(sys.platform != "linux", reason="wait4's ru_maxrss in kilobytes: Linux")
@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_hostile_input_is_one_line_exit_2_in_bounded_memory(
    corpus: list[Case], name: str
) -> None:
    case = next(c for c in corpus if c.name == name)
    outcome = run_case(case)
    lines = outcome.stderr.splitlines()
    assert outcome.returncode == 2, (outcome.returncode, outcome.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("labctl: error: "), outcome.stderr[-2000:]
    assert "Traceback" not in outcome.stderr
    assert outcome.stdout == ""
    line = lines[0]
    assert len(line) < 600, line  # the value is cut, not echoed whole
    assert line.isascii(), line  # escaped: no terminal control, no other scripts
    for words in case.says:
        assert words in line, (words, line)
    assert outcome.peak < PEAK_LIMIT, f"{outcome.peak / 2**20:.0f} MB: {line}"
    for path in case.not_made:
        assert not path.exists(), f"{path} made by a refused command"


def test_a_unique_prefix_and_an_exact_id_still_select_their_run(corpus: list[Case]) -> None:
    """The controls: what the grammar allows still works, exactly or by a unique prefix."""
    store = next(c for c in corpus if c.name == "show %").arguments[-1]
    for given in (RUN_A, RUN_A[:-3], "20260101-12"):
        outcome = run_case(Case("show", ("show", given, "--data", store), ()))
        assert outcome.returncode == 0, outcome.stderr
        assert f"run        {RUN_A}" in outcome.stdout


# -- the work is bounded: refused before the expensive parser sees the text ----------------


def _forbid(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> None:
    def reached(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError(f"{name} was reached with hostile input")

    monkeypatch.setattr(target, name, reached)


@pytest.mark.parametrize(
    "name",
    [
        "formulation_deep.toml",
        "formulation_dotted.toml",
        "formulation_100MB.toml",
        "recipe_deep.toml",
        "recipe_dotted.toml",
        "recipe_long_number.toml",
        "station_deep.toml",
        "station_dotted.toml",
    ],
)
def test_hostile_files_never_reach_the_toml_parser(
    corpus: list[Case], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl import files
    from labctl.errors import InputError

    directory = Path(next(c for c in corpus if c.name == "show %").arguments[-1]).parent
    _forbid(monkeypatch, files.tomllib, "loads")
    with pytest.raises(InputError) as refused:
        files.read_toml(directory / name, InputError)
    assert str(refused.value).startswith(str(directory / name))


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("fields=\u0663", "fields"),
        (f"fields={'9' * 120_000}", "fields"),
        (f"coat_speed={'9' * 120_000} rpm", "coat_speed"),
        ("coat_speed=1 rpm**9**9**9", "coat_speed"),
        ("dose_min=\u0663 mJ/cm**2", "dose_min"),
        ("speeds=" + ",".join(["3000 rpm"] * 26), "speeds"),
        ("speeds=" + "," * 200_000, "speeds"),
    ],
)
def test_hostile_numbers_never_reach_pint(
    override: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl import units
    from labctl.errors import RecipeError
    from protocols.experiments import PROTOCOLS
    from protocols.recipes import resolve_parameters

    protocol = "spin-curve" if field == "speeds" else "contrast-curve"
    declared = PROTOCOLS[protocol].parameters
    _forbid(monkeypatch, units.ureg, "parse_units")
    _forbid(monkeypatch, units.ureg, "parse_expression")
    with pytest.raises(RecipeError) as refused:
        resolve_parameters(declared, None, [override])
    message = str(refused.value)
    assert message.startswith(f"--set: {field}: ") and "\n" not in message
    # our reasons, not int()'s ("Exceeds the limit (4300 digits)") nor pint's
    assert any(
        reason in message
        for reason in ("non-ASCII digit", "longer than 64", "power to a power", "at most 25")
    ), message


def test_good_values_still_pass() -> None:
    """The controls of the corpus: what labctl's own examples write is accepted."""
    from protocols.experiments import PROTOCOLS
    from protocols.recipes import resolve_parameters

    values = resolve_parameters(
        PROTOCOLS["contrast-curve"].parameters,
        None,
        [
            "fields=+16",
            "recipe=Resist on Si 632.8nm",
            "wafer=W01.a_b-2",
            "coat_speed= 2500 rpm ",
            "dose_min=5 mJ/cm^2",
            "dose_max=0.2 J/cm²",
        ],
    )
    assert values["fields"] == 16
    assert values["recipe"] == "Resist on Si 632.8nm"
    assert values["wafer"] == "W01.a_b-2"
    assert values["dose_max"].m_as("mJ/cm**2") == pytest.approx(200)


def test_the_served_handler_refuses_a_wafer_name_it_could_not_keep(tmp_path: Path) -> None:
    """``NEW`` from any client: a name that is no word of ASCII or no file name is ``ERR``."""
    from sim_instruments.bench import VirtualBench
    from sim_instruments.serve import BenchServer

    server = BenchServer(VirtualBench(data_dir=tmp_path / "data"), tmp_path / "served")
    server.start()
    try:
        handler = server.handler
        for name in ("W" * 300, "W(1)", "%", "_x", "a/b/c", "run id/W01"):
            reply = handler.execute(f"NEW {name}")
            assert reply.startswith("ERR ") and "\n" not in reply and len(reply) < 300, reply
        assert not server.bench.wafers
        for name in ("W01", f"{RUN_A}/W01-r1"):
            assert handler.execute(f"NEW {name}") == "OK"
        assert set(server.bench.wafers) == {"W01", f"{RUN_A}/W01-r1"}
    finally:
        server.stop()
