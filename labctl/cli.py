"""The ``labctl`` command.

Start-up stays light: only :mod:`click` is imported here at module level;
pint, pyvisa and the drivers load inside the commands that need them.

Exit codes: 0 success; 1 an instrument or link failed; 2 bad input (a file,
a field, an option) - reported on one line, without a traceback; 130
interrupted.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from .errors import LabctlError

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"labctl: error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labctl", prog_name="labctl")
@click.option(
    "--group-readable",
    is_flag=True,
    help="Let your group read what this command writes: directories 0750, files 0640"
    " (default owner-only, 0700/0600; also LABCTL_GROUP_READABLE=1).",
)
def cli(group_readable: bool) -> None:
    """Control and record a negative-resist process bench (coat, bake, expose, develop, measure)."""
    from .private import group_readable as group_setting
    from .private import set_group_readable

    if group_readable:
        set_group_readable(True)  # in the environment: the run's child processes inherit it
    else:
        group_setting()  # a mistyped LABCTL_GROUP_READABLE is one line, exit 2, before any write


class _WholeNumber(click.ParamType):  # type: ignore[type-arg]
    """A whole number in ASCII digits in [low, high] (int() takes "٣" and 100,000 digits)."""

    name = "integer"

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, parameter: Any, context: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value)
            if not re.fullmatch(r"[+-]?[0-9]{1,20}", text, re.ASCII):
                shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
                self.fail(
                    f"{shown!r} is not a whole number in ASCII digits"
                    f" (allowed {self.low} to {self.high})",
                    parameter,
                    context,
                )
            number = int(text)
        if not self.low <= number <= self.high:
            self.fail(f"{number} is outside {self.low} to {self.high}", parameter, context)
        return number


#: A seed: any whole number SQLite stores as an integer.
SEED = _WholeNumber(0, 2**63 - 1)


def _run_id_argument(_context: Any, _parameter: Any, value: Any) -> Any:
    """A run-id argument checked at the door (labctl.names.RUN_ID), before any import or store."""
    from .names import RUN_ID, check_name

    for given in value if isinstance(value, tuple) else (value,):
        check_name(given, RUN_ID, field="run")
    return value


def _allow_import_option(function: Any) -> Any:
    return click.option(
        "--allow-import",
        is_flag=True,
        help='Trust the station file to import code: allow driver = "module:Class".',
    )(function)


@cli.command()
@click.option(
    "--sim", is_flag=True, help="The virtual bench that `run --sim` uses (physics, in process)."
)
@click.option(
    "--pyvisa-sim",
    "pyvisa_sim",
    is_flag=True,
    help="The pyvisa-sim definitions of every instrument (sim_instruments/*.yaml).",
)
@click.option(
    "--station",
    "station_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Station file (TOML) mapping roles to instruments.",
)
@_allow_import_option
def check(sim: bool, pyvisa_sim: bool, station_file: Path | None, allow_import: bool) -> None:
    """Connect every role of a station and show who answered.

    Prints a table (role, instrument, identity, link). Exits 1 naming each
    instrument that failed and why; 2 for a bad station file.
    """
    from .station import Station, builtin_sim_station_path

    if [sim, pyvisa_sim, station_file is not None].count(True) != 1:
        _fail("give exactly one of --sim, --pyvisa-sim or --station FILE", EXIT_BAD_INPUT)
    bench = None
    if sim:
        # The bench `run --sim` drives, fresh and in memory: its drivers, its wire protocols.
        from sim_instruments.bench import VirtualBench

        bench = VirtualBench()
        station = bench.station()
    else:
        path = builtin_sim_station_path() if pyvisa_sim else station_file
        assert path is not None
        station = Station.from_file(path, allow_import=allow_import)
    try:
        results = station.connect()
    finally:
        station.close()
        if bench is not None:
            bench.close()
    _print_check_table(station.config.name, results)
    failed = [r for r in results if not r.ok]
    for result in failed:
        click.echo(f"labctl: error: {result.role} ({result.driver}): {result.error}", err=True)
    handler_failed = False
    if station.config.handler is not None:
        # An unattended run needs the wafer handler as much as any instrument.
        from protocols.handlers import SocketHandler

        handler = SocketHandler.from_station(station.config, timeout=5.0)
        try:
            handler.check()
            served = handler.clock()
        except LabctlError as exc:
            handler_failed = True
            click.echo(f"labctl: error: handler ({station.config.handler}): {exc}", err=True)
        else:
            clock = "real time" if served is None else f"bench clock {served[0]:g}x real time"
            click.echo(f"handler {station.config.handler}: answered, token accepted; {clock}")
        finally:
            handler.close()
    if failed or handler_failed:
        sys.exit(EXIT_FAILURE)


def _print_check_table(title: str, results: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"station: {title}")
    for column in ("role", "instrument", "identity", "link"):
        table.add_column(column)
    for r in results:
        if r.ok:
            i = r.identity
            identity = f"{i.maker} {i.model}, s/n {i.serial}, fw {i.firmware}"
            table.add_row(r.role, r.driver, identity, r.link)
        else:
            table.add_row(r.role, r.driver, f"[red]FAILED: {type(r.error).__name__}[/red]", r.link)
    Console(width=160).print(table)


@cli.command()
@click.option(
    "--backend",
    default="@py",
    show_default=True,
    help='pyvisa backend: "@py", "@ivi", or "definitions.yaml@sim".',
)
def resources(backend: str) -> None:
    """List the VISA resources pyvisa can see."""
    import warnings

    from .errors import LabctlError
    from .transport import map_exception, resource_manager

    try:
        with warnings.catch_warnings():
            # pyvisa-py warns about optional discovery packages (psutil, zeroconf).
            warnings.simplefilter("ignore", UserWarning)
            found = resource_manager(backend).list_resources("?*")
    except LabctlError:
        raise
    except Exception as exc:  # pyvisa and its backends raise their own: map them here
        raise map_exception(exc, f"VISA backend {backend}") from exc
    if not found:
        click.echo(f"no VISA resources found with backend {backend}")
        return
    for name in found:
        click.echo(name)


def _data_option(function: Any) -> Any:
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default: $LABCTL_DATA or ./labctl-data).",
    )(function)


def _run_options(function: Any) -> Any:
    """The options that say what to run, shared by ``run`` and ``queue add``."""
    options = [
        click.option(
            "--sim", is_flag=True, help="Run on the virtual bench (in process, virtual time)."
        ),
        click.option(
            "--station",
            "station_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Station file of a real bench.",
        ),
        click.option(
            "--formulation",
            "formulation_file",
            required=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Formulation file (TOML).",
        ),
        click.option(
            "--recipe",
            "recipe_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Recipe file (TOML) with the protocol's parameters.",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help='Override a parameter, e.g. --set coat_speed="2500 rpm" (repeatable).',
        ),
        click.option(
            "--seed", type=SEED, default=0, show_default=True, help="Seed of the virtual bench."
        ),
        _allow_import_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _data_dir(value: Path | None) -> Path:
    from .store import default_data_dir

    return value if value is not None else default_data_dir()


def _read_data_option(function: Any) -> Any:
    """``--data`` of a read command: a data directory, or the lab store's URL; and ``--bench``."""
    function = click.option(
        "--bench",
        default=None,
        metavar="NAME",
        help="Only this bench's runs (with --data postgresql://...; docs/lab-store.md).",
    )(function)
    return click.option(
        "--data",
        "data_dir",
        default=None,
        metavar="DIR|URL",
        help="Data directory, or the lab store: postgresql://USER@HOST/DB, no password"
        " (default: $LABCTL_DATA or ./labctl-data).",
    )(function)


def _read_store(given: str | None, bench: str | None) -> Any:
    """The store a read command reads: a data directory's RunStore, or the lab store.

    A ``postgresql://`` URL (``--data`` or ``$LABCTL_DATA``) opens the lab
    store read-only (:class:`labctl.labstore.LabStore`); ``--bench`` filters
    its runs. A data directory is one bench: ``--bench`` is refused there.
    """
    from .errors import InputError
    from .labdb import is_lab_url

    value = given if given is not None else os.environ.get("LABCTL_DATA")
    if is_lab_url(value):
        from .labdb import resolve_url
        from .labstore import LabStore

        field = "--data" if given is not None else "LABCTL_DATA"
        return LabStore(resolve_url(value, field=field), bench=bench)
    if bench is not None:
        raise InputError(
            "filters the runs of a lab store (--data postgresql://...); a data directory"
            " holds one bench's runs",
            field="--bench",
        )
    from .store import RunStore

    return RunStore(_data_dir(Path(given) if given is not None else None), create=False)


def _progress_runner() -> Any:
    """The run's progress display: a bar on a terminal, one log line per step elsewhere.

    Called with each step (:class:`labctl.progress.StepProgress`); the total
    comes from the engine (the protocol's plan). See :mod:`labctl.progress`.
    """
    from .progress import display_for

    return display_for()


#: Run statuses after which the protocol ran to its end (the bar ends full).
_RAN_TO_END = ("completed", "incomplete")


def _report(outcome: Any) -> None:
    color = {"completed": "green", "incomplete": "yellow"}.get(outcome.status, "red")
    click.secho(f"run {outcome.run_id}: {outcome.status}", fg=color, bold=True)
    # A completed run's reason is its step count, which the next line gives.
    counted = f"{outcome.steps_executed} steps executed, {outcome.steps_replayed} replayed"
    reason = outcome.reason
    if reason.startswith(counted):
        reason = reason[len(counted) :].removeprefix(" from the journal").lstrip("; ")
    if reason:
        click.echo(f"  {reason}")
    click.echo(
        f"  steps executed {outcome.steps_executed}, replayed {outcome.steps_replayed}; "
        f"measurements {outcome.measurements}"
    )
    for wafer, why in outcome.quarantined.items():
        click.echo(f"  quarantined {wafer}: {why}")
    for killed in outcome.recovered:
        click.secho(
            f"  note: run {killed} had been killed; the bench was made safe and its wafers "
            f"parked before this run. Continue it with: labctl resume {killed}",
            fg="yellow",
        )
    click.echo(f"  data: {outcome.data_dir.resolve() / 'labctl.sqlite'}")
    click.echo(f"  see: labctl show {outcome.run_id} --data {outcome.data_dir}")


def _supervise() -> bool:
    """True in the process the user started: it supervises a child that does the run."""
    from protocols.supervisor import is_supervised_child

    return not is_supervised_child()


def _supervised(
    arguments: list[str],
    data_dir: Path,
    sim: bool,
    station_file: Path | None,
    seed: int,
    unattended: bool,
    allow_import: bool = False,
) -> NoReturn:
    """Run ``labctl <arguments>`` in a supervised child and exit as it did.

    If the child dies mid-run, the bench is made safe at once and the death
    recorded (see :mod:`protocols.supervisor`); the exit code is then 1.
    """
    from protocols.supervisor import run_child

    ended = run_child(
        arguments,
        data_dir=data_dir,
        sim=sim,
        station_file=station_file,
        seed=seed,
        unattended=unattended,
        report=lambda line: click.echo(line, err=True),
        allow_import=allow_import,
    )
    if ended.died:
        sys.exit(EXIT_FAILURE)
    sys.exit(ended.returncode)


def _exit_for(status: str) -> None:
    if status not in ("completed",):
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.argument("protocol")
@_run_options
@click.option("--unattended", is_flag=True, help="No operator: refuse steps nobody can do.")
@click.option(
    "--operator",
    default=None,
    help="Who runs it (default: the login name): ASCII letters, digits, -_.@, single spaces.",
)
@click.option(
    "--record",
    "record_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write every byte the instruments and the wafer handler exchange to FILE, as the"
    " run goes (docs/recording.md); `labctl replay FILE` runs it again with no hardware.",
)
@_data_option
def run(
    protocol: str,
    sim: bool,
    station_file: Path | None,
    formulation_file: Path,
    recipe_file: Path | None,
    overrides: tuple[str, ...],
    unattended: bool,
    operator: str | None,
    seed: int,
    allow_import: bool,
    record_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Run PROTOCOL (contrast-curve, spin-curve, claim14) and record everything."""
    from protocols.runner import RunRequest, start, validate

    request = RunRequest(
        protocol=protocol,
        data_dir=_data_dir(data_dir),
        formulation=formulation_file,
        sim=sim,
        station=station_file,
        recipe=recipe_file,
        overrides=overrides,
        unattended=unattended,
        seed=seed,
        allow_import=allow_import,
        record=record_file,
    )
    if operator is not None:
        request.operator = operator
    _check_operator(request.operator, given=operator is not None)
    _check_out_file(record_file, "--record")
    validate(request)  # refused here, before a supervised child is started
    if _supervise():
        arguments = ["run", protocol, "--formulation", str(formulation_file)]
        arguments += ["--sim"] if sim else []
        arguments += ["--station", str(station_file)] if station_file else []
        arguments += ["--recipe", str(recipe_file)] if recipe_file else []
        for override in overrides:
            arguments += ["--set", override]
        arguments += ["--seed", str(seed), "--operator", request.operator]
        arguments += ["--unattended"] if unattended else []
        arguments += ["--allow-import"] if allow_import else []
        arguments += ["--record", str(record_file)] if record_file else []
        arguments += ["--data", str(request.data_dir)]
        _supervised(
            arguments, request.data_dir, sim, station_file, seed, unattended or sim, allow_import
        )
    display = _progress_runner()
    with display:
        outcome = start(request, progress=display)
        display.finish(outcome.status in _RAN_TO_END)
    _report(outcome)
    if outcome.measurements:
        _write_report_for(outcome.data_dir, outcome.run_id)
    _exit_for(outcome.status)


def _check_operator(name: str, *, given: bool) -> None:
    """The operator's name against its grammar (labctl.names.OPERATOR): one line, exit 2."""
    from .errors import InputError
    from .names import OPERATOR, name_problem, shown

    problem = name_problem(OPERATOR, name)
    if problem is None:
        return
    if given:
        raise InputError(f"{shown(name)} {problem}", field="--operator")
    raise InputError(
        f"the login name {shown(name)} {problem}; give --operator NAME", field="--operator"
    )


def _write_report_for(data_dir: Path, run_id: str) -> None:
    """The HTML report of a run and its headline figures, printed."""
    from .report import write_report
    from .store import RunStore

    store = RunStore(data_dir)
    try:
        if not store.measurement_rows(run_id):
            return
        path, headlines = write_report(store, run_id)
    except LabctlError as exc:
        click.echo(f"  report: not written: {exc}")
    else:
        for line in headlines:
            click.echo(f"  {line}")
        click.echo(f"  report: {path.resolve()}")
    finally:
        store.close()


@cli.command()
@click.argument("run_id", callback=_run_id_argument)
@click.option(
    "--station",
    "station_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Station file (runs on real hardware).",
)
@_allow_import_option
@_data_option
def resume(
    run_id: str, station_file: Path | None, allow_import: bool, data_dir: Path | None
) -> None:
    """Resume RUN_ID: finished steps replay from the journal; nothing physical is repeated."""
    from protocols.runner import resume as resume_run

    from .errors import InputError
    from .store import RunStore

    if station_file is not None:
        from .station import load_station

        load_station(station_file, allow_import=allow_import)  # the whole file, before anything
    store = RunStore(_data_dir(data_dir), create=False)
    try:
        record = store.run(run_id)
    finally:
        store.close()
    # Refused here, before a supervisor starts a child it would then have to recover after.
    if record["simulated"] and station_file is not None:
        raise InputError(
            "the run was on the virtual bench (--sim); resume it without --station",
            field="--station",
        )
    if not record["simulated"] and station_file is None:
        raise InputError(
            "resuming a run on real hardware needs --station FILE (the bench it ran on)",
            field="--station",
        )
    if _supervise():
        arguments = ["resume", record["run_id"], "--data", str(_data_dir(data_dir))]
        arguments += ["--station", str(station_file)] if station_file else []
        arguments += ["--allow-import"] if allow_import else []
        _supervised(
            arguments,
            _data_dir(data_dir),
            bool(record["simulated"]),
            station_file,
            int(record["seed"] or 0),
            not record["attended"],
            allow_import,
        )
    display = _progress_runner()
    with display:
        outcome = resume_run(
            run_id,
            _data_dir(data_dir),
            station=station_file,
            progress=display,
            allow_import=allow_import,
        )
        display.finish(outcome.status in _RAN_TO_END)
    _report(outcome)
    if outcome.measurements:
        _write_report_for(outcome.data_dir, outcome.run_id)
    _exit_for(outcome.status)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_allow_import_option
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the replayed run in this data directory (default: a temporary one, removed).",
)
def replay(file: Path, allow_import: bool, data_dir: Path | None) -> None:
    """Run a recording (`labctl run --record FILE`) again, with no hardware: exit 1 at the
    first byte that differs from what was recorded."""
    from protocols.replay import replay as replay_recording

    outcome = replay_recording(file, data_dir, allow_import=allow_import)
    if outcome.mismatch is not None:
        _fail(f"replay of {file}: {outcome.mismatch}", EXIT_FAILURE)
    skipped = f", {outcome.skipped} of a recovery not replayed" if outcome.skipped else ""
    if outcome.complete:
        click.echo(
            f"replayed {file}: {outcome.matched} exchanges matched byte for byte{skipped};"
            f" run {outcome.run_id} ({outcome.protocol}) ended {outcome.status}, as recorded"
            f" ({outcome.seconds:.1f} s)"
        )
    elif outcome.status is None:
        why = outcome.reason if len(outcome.reason) <= 200 else f"{outcome.reason[:200]}..."
        click.echo(
            f"replayed {file}: all {outcome.matched} recorded exchanges matched{skipped};"
            f" the recorded run never started ({why})"
        )
    else:
        click.echo(
            f"replayed {file}: all {outcome.matched} recorded exchanges matched{skipped};"
            f" the recording stops there - its run ({outcome.run_id}) was cut short"
            f" ({outcome.seconds:.1f} s)"
        )
    if data_dir is not None:
        click.echo(f"  see: labctl show {outcome.run_id} --data {data_dir}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@_read_data_option
def runs(as_json: bool, data_dir: str | None, bench: str | None) -> None:
    """List the runs of the data directory (or of the lab store: each with its bench)."""
    from .store import RunStore, as_seen

    store = _read_store(data_dir, bench)
    local = isinstance(store, RunStore)
    # A process on another bench cannot be looked for here: the lab shows what was shipped.
    rows = [as_seen(row) if local else row for row in store.runs()]
    store.close()
    _listing(
        rows,
        as_json,
        "no runs",
        lambda r: (
            ("" if local else f"{r['bench_id']:20s} ")
            + f"{r['run_id']:44s} {r['status']:12s} {r['created_at'][:19]}  {r['reason'] or ''}"
        ),
    )


def _parameters_text(encoded: Any) -> str:
    """A run's parameters as ``name=value`` pairs, units written out (what --set would take)."""
    from .engine import decode
    from .units import format_quantity

    if not encoded:
        return "(none recorded)"
    values = decode(encoded)
    return ", ".join(
        f"{name}={format_quantity(value)}" if hasattr(value, "units") else f"{name}={value}"
        for name, value in values.items()
    )


def _listing(rows: list[dict[str, Any]], as_json: bool, empty: str, line: Any) -> None:
    """Rows as one JSON array, or one line each (200 characters at most)."""
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(empty)
    for row in rows:
        click.echo(line(row)[:200])


@cli.command()
@click.argument("run_id", callback=_run_id_argument)
@_read_data_option
def show(run_id: str, data_dir: str | None, bench: str | None) -> None:
    """Show a run: identity, wafers, steps, events, measurements."""
    from .store import RunStore, as_seen

    store = _read_store(data_dir, bench)
    try:
        record = store.run(run_id)
        record = as_seen(record) if isinstance(store, RunStore) else record
        run_id = record["run_id"]
        click.echo(f"run        {run_id}")
        if "bench_id" in record:
            click.echo(f"bench      {record['bench_id']}")
        for key in (
            "protocol",
            "status",
            "reason",
            "operator",
            "created_at",
            "started_at",
            "ended_at",
            "formulation_hash",
            "simulated",
        ):
            click.echo(f"{key:10s} {record[key]}")
        click.echo(f"software   {record['software']}")
        if record.get("simulated"):
            click.echo(f"seed       {record.get('seed') or 0}")
        click.echo(f"parameters {_parameters_text(record.get('parameters'))}")
        wafers = store.wafers(run_id)
        by = {i["replaces"]: w for w, i in wafers.items() if i["replaces"]}
        for wafer, info in wafers.items():
            link = (f" (replaces {info['replaces']})" if info["replaces"] else "") + (
                f" (replaced by {by[wafer]})" if wafer in by else ""
            )
            click.echo(f"wafer      {wafer}: {info['state']}{link} {info['reason'] or ''}")
        steps = store.steps(run_id)
        counts: dict[str, int] = {}
        for step in steps:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        click.echo(
            f"steps      {len(steps)} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"
        )
        for step in steps:
            if step["status"] != "finished":
                click.echo(
                    f"  step {step['seq']} {step['name']} {step['wafer_id'] or ''}: "
                    f"{step['status']} {step['error'] or ''}"
                )
        for event in store.events(run_id)[-20:]:
            click.echo(f"event      {event['at'][11:23]} {event['kind']}: {event['message']}")
        rows = store.measurement_rows(run_id)
        click.echo(f"measurements {len(rows)}")
        for row in rows:
            dose = row["dose_delivered_mJ_cm2"]
            click.echo(
                f"  {row['wafer_id']} {row['label']:>8s} {row['site']:>9s} "
                f"({row['x_mm']:6.1f}, {row['y_mm']:6.1f}) mm  "
                f"{'' if dose is None else f'{dose:8.2f} mJ/cm2'}  {row['thickness_nm']:8.1f} nm"
            )
    finally:
        store.close()


@cli.command()
@click.argument("run_id", callback=_run_id_argument)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),  # checked by check_export_target: one line, nothing made
    required=True,
    help="Directory to write the files into (made if new; its parent must exist).",
)
@_read_data_option
def export(run_id: str, fmt: str, out_dir: Path, data_dir: str | None, bench: str | None) -> None:
    """Export a run's measurements, time series and steps as CSV or Parquet files.

    Writes OUT/<run>_measurements, _samples and _steps; the columns, their
    units and both clocks are listed in docs/runs.md. OUT may be new, in an
    existing directory; nothing is created when the export is refused.
    """
    from .store import check_export_target, write_export

    check_export_target(out_dir, fmt)  # before the store is opened or a folder made
    store = _read_store(data_dir, bench)
    try:
        record = store.run(run_id)
        run_id = record["run_id"]
        frames = store.export_frames(run_id)
    finally:
        store.close()
    for path, rows in write_export(frames, out_dir, run_id, fmt):
        click.echo(f"{path}  ({rows} rows)")


@cli.command()
@click.argument("run_id", callback=_run_id_argument)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write (default: <data>/reports/<run>.html).",
)
@_read_data_option
def report(run_id: str, out_file: Path | None, data_dir: str | None, bench: str | None) -> None:
    """Write a run's self-contained HTML report and print its headline figures."""
    from .report import write_report

    _check_out_file(out_file)
    store = _read_store(data_dir, bench)
    try:
        path, headlines = write_report(store, run_id, out_file)
    finally:
        store.close()
    for line in headlines:
        click.echo(line)
    click.echo(f"report: {path.resolve()}")


@cli.command()
@click.argument("run_ids", nargs=-1, required=True, callback=_run_id_argument)
@click.option(
    "--by",
    "variable",
    type=click.Choice(["b1_b2_ratio", "base", "acid_generator", "solids"]),
    default="b1_b2_ratio",
    show_default=True,
    help="Formulation variable on the x axis.",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG plot to write (default: <data>/reports/compare.png).",
)
@_read_data_option
def compare(
    run_ids: tuple[str, ...],
    variable: str,
    out_file: Path | None,
    data_dir: str | None,
    bench: str | None,
) -> None:
    """Compare contrast runs: Dg, gamma and thickness against a formulation variable.

    With --data postgresql://..., the runs may come from any bench.
    """
    from .compare import compare_runs

    _check_out_file(out_file)
    store = _read_store(data_dir, bench)
    try:
        rows, path = compare_runs(store.data_dir, list(run_ids), variable, out_file, store=store)
    finally:
        store.close()
    click.echo(f"{'run':44s} {variable:>14s} {'Dg mJ/cm2':>26s} {'gamma':>18s} {'t0 nm':>7s}")
    for row in rows:
        click.echo(
            f"{row['run_id']:44s} {row['x']:14.4g} {row['dg_text']:>26s} "
            f"{row['gamma_text']:>18s} {row['thickness']:7.1f}"
        )
    click.echo(f"plot: {path.resolve()}")


@cli.command()
@click.option(
    "--to",
    "url",
    default=None,
    metavar="URL",
    help="The lab store: postgresql://USER@HOST/DB, no password in it"
    " (default: $LABCTL_DATABASE_URL).",
)
@click.option(
    "--bench",
    default=None,
    metavar="NAME",
    help="This bench's id, the first time it ships (default: <host>-<8 hex>; kept in its store).",
)
@_data_option
def sync(url: str | None, bench: str | None, data_dir: Path | None) -> None:
    """Ship this bench's runs to the lab store (PostgreSQL): every row it lacks, once.

    Safe to repeat and to interrupt: a row shipped twice is stored once.
    While a run or a queue goes, $LABCTL_DATABASE_URL ships continuously.
    """
    from .labdb import mask, resolve_url
    from .shipper import Shipper

    target = resolve_url(url, field="--to")
    shipper = Shipper(_data_dir(data_dir), target, bench=bench)
    try:
        report = shipper.ship()
    finally:
        shipper.close()
    click.echo(f"bench {report.bench} -> {mask(target)}: {report.line()} ({report.seconds:.1f} s)")


@cli.group()
def queue() -> None:
    """The overnight queue: runs one after another, unattended; survives a crash."""


def _lab_option(function: Any) -> Any:
    """``--lab URL``: the lab-wide queue in the lab store instead of this bench's queue."""
    return click.option(
        "--lab",
        "lab_url",
        default=None,
        metavar="URL",
        help="The lab-wide queue of the lab store postgresql://USER@HOST/DB (no password;"
        " docs/lab-store.md).",
    )(function)


def _lab_bench_option(function: Any) -> Any:
    return click.option(
        "--bench",
        default=None,
        metavar="NAME",
        help="With --lab: the bench (add: that must run it; run: this one's id, the first time).",
    )(function)


def _roles_option(function: Any) -> Any:
    return click.option(
        "--role",
        "roles",
        multiple=True,
        metavar="ROLE",
        help="With --lab: roles the entry needs / this bench has (repeatable; default: all).",
    )(function)


@queue.command("add")
@click.argument("protocol")
@_run_options
@_lab_option
@_lab_bench_option
@_roles_option
@_data_option
def queue_add(
    protocol: str,
    sim: bool,
    station_file: Path | None,
    formulation_file: Path,
    recipe_file: Path | None,
    overrides: tuple[str, ...],
    seed: int,
    allow_import: bool,
    lab_url: str | None,
    bench: str | None,
    roles: tuple[str, ...],
    data_dir: Path | None,
) -> None:
    """Check a run completely and add it to the queue (--lab: to the lab-wide queue)."""
    from protocols.queue import add
    from protocols.runner import RunRequest

    if lab_url is None and (bench is not None or roles):
        from .errors import InputError

        raise InputError("--bench and --role go with --lab URL", field="--bench/--role")
    request = (
        RunRequest(
            protocol=protocol,
            data_dir=_data_dir(data_dir),
            formulation=formulation_file,
            sim=sim,
            station=station_file,
            recipe=recipe_file,
            overrides=overrides,
            unattended=True,
            seed=seed,
            allow_import=allow_import,
        )
    )
    if lab_url is not None:
        from labctl.station import ROLES
        from protocols.lab_queue import add as lab_add

        from .labdb import resolve_url

        target = resolve_url(lab_url, field="--lab")
        entry = lab_add(request, target, bench=bench, roles=roles or ROLES)
        click.echo(f"queued lab #{entry}: {protocol}" + (f" on bench {bench}" if bench else ""))
        return
    entry = add(request)
    click.echo(f"queued #{entry}: {protocol}")


@queue.command("list")
@click.option("--json", "as_json", is_flag=True)
@_lab_option
@_data_option
def queue_list(as_json: bool, lab_url: str | None, data_dir: Path | None) -> None:
    """Show the queue: each entry's state, run, whether its files changed since added."""
    from protocols.queue import public_entry

    from .store import RunStore

    if lab_url is not None:
        from protocols.lab_queue import entries as lab_entries

        from .labdb import resolve_url

        _listing(
            lab_entries(resolve_url(lab_url, field="--lab")),
            as_json,
            "the lab queue is empty",
            lambda e: (
                f"#{e['id']:<4d} {e['status']:10s} {e['protocol']:15s} "
                f"{e['bench_id'] or 'any bench':12s} {e['claimed_by'] or '-':12s} "
                f"{e['run_id'] or '-':44s} {e['reason'] or ''}"
            ),
        )
        return

    store = RunStore(_data_dir(data_dir), create=False)
    entries = [public_entry(e) for e in store.queue()]
    store.close()
    _listing(
        entries,
        as_json,
        "the queue is empty",
        lambda e: (
            f"#{e['id']:<4d} {e['status']:10s} {e['protocol']:15s} "
            f"{e['run_id'] or '-':44s} [{e['files']}] {e['reason'] or ''}"
        ),
    )


def _queue_entry_id(value: str) -> int:
    """``7`` or ``#7``: a queue entry's number, or one line and exit 2."""
    from .errors import InputError

    text = value.strip().removeprefix("#")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InputError("not a queue entry number (see `labctl queue list`)", field=repr(value))
    return int(text)


@queue.command("cancel")
@click.argument("entry_id")
@_lab_option
@_data_option
def queue_cancel(entry_id: str, lab_url: str | None, data_dir: Path | None) -> None:
    """Cancel ENTRY_ID: a pending entry will not run; a running one stops at its next safe point."""
    from protocols.queue import cancel

    if lab_url is not None:
        from protocols.lab_queue import cancel as lab_cancel

        from .labdb import resolve_url

        click.echo(lab_cancel(resolve_url(lab_url, field="--lab"), _queue_entry_id(entry_id)))
        return

    click.echo(cancel(_data_dir(data_dir), _queue_entry_id(entry_id)))


@queue.command("remove")
@click.argument("entry_id")
@_data_option
def queue_remove(entry_id: str, data_dir: Path | None) -> None:
    """Remove ENTRY_ID (not a running one) from the queue; its runs stay recorded."""
    from protocols.queue import remove

    click.echo(remove(_data_dir(data_dir), _queue_entry_id(entry_id)))


@queue.command("retry")
@click.argument("entry_id")
@_data_option
def queue_retry(entry_id: str, data_dir: Path | None) -> None:
    """Put a failed or cancelled ENTRY_ID back in the queue (resumed if a wafer is in doubt)."""
    from protocols.queue import retry

    click.echo(retry(_data_dir(data_dir), _queue_entry_id(entry_id)))


@queue.command("run")
@click.option(
    "--policy",
    type=click.Choice(["continue", "stop"]),
    default="continue",
    show_default=True,
    help="After a failed run: go on, or stop the queue.",
)
@click.option(
    "--notify",
    default=None,
    metavar="COMMAND",
    help="Run after each entry, outcome in LABCTL_STATUS/LABCTL_RUN_ID/... (no shell).",
)
@_lab_option
@_lab_bench_option
@_roles_option
@click.option(
    "--lease",
    type=click.FloatRange(3, 3600),
    default=60.0,
    show_default=True,
    help="With --lab: seconds a claim holds unrenewed before others see its runner dead.",
)
@_data_option
def queue_run(
    policy: str,
    notify: str | None,
    lab_url: str | None,
    bench: str | None,
    roles: tuple[str, ...],
    lease: float,
    data_dir: Path | None,
) -> None:
    """Work through the queue; resumes an entry a crash left behind.

    With --lab URL: the lab-wide queue - entries for this bench or any bench
    with its roles, claimed one at a time, run through this bench's queue.
    """
    import shlex
    import shutil
    from contextlib import nullcontext

    from protocols.queue import run_queue

    from .errors import InputError
    from .store import RunStore

    # A queue lives in a store: a mistyped --data has no queue to run (and gets no store);
    # a bench taking from the lab queue may be new.
    RunStore(_data_dir(data_dir), create=lab_url is not None).close()
    if notify is not None:
        try:
            program = shlex.split(notify)[0] if notify.strip() else ""
        except ValueError as exc:
            raise InputError(f"cannot be split into words: {exc}", field="--notify") from None
        if not program or shutil.which(program) is None:
            raise InputError(
                f"{program or notify!r} is not a program on PATH or an executable file"
                " (checked now, not after the night's first entry)",
                field="--notify",
            )
    supervised = _supervise()
    # A supervised entry runs in a child (`queue run-entry`), which shows its own progress.
    display = None if supervised else _progress_runner()
    if lab_url is not None:
        from labctl.station import ROLES
        from protocols.lab_queue import run_lab_queue

        from .labdb import resolve_url

        with display if display is not None else nullcontext():
            lab = run_lab_queue(
                _data_dir(data_dir),
                resolve_url(lab_url, field="--lab"),
                bench=bench,
                roles=roles or ROLES,
                lease=lease,
                report=lambda line: click.echo(line),
                notify=notify,
                supervised=supervised,
                progress=display,
                on_outcome=_show_outcome,
            )
        click.echo(
            f"lab queue: {lab.claimed} taken, {lab.done} done, {lab.failed} failed,"
            f" {lab.resumed} resumed" + (f", {lab.cancelled} cancelled" if lab.cancelled else "")
        )
        if lab.failed:
            sys.exit(EXIT_FAILURE)
        return
    with display if display is not None else nullcontext():
        summary = run_queue(
            _data_dir(data_dir),
            policy=policy,
            notify=notify,
            report=lambda line: click.echo(line),
            supervised=supervised,
            progress=display,
            on_outcome=_show_outcome,
        )
    click.echo(
        f"queue: {summary.done} done, {summary.failed} failed, {summary.resumed} resumed"
        + (f", {summary.cancelled} cancelled" if summary.cancelled else "")
        + (", stopped by policy" if summary.stopped else "")
    )
    if summary.failed:
        sys.exit(EXIT_FAILURE)


@queue.command("run-entry", hidden=True)
@click.argument("entry_id", type=_WholeNumber(1, 2**63 - 1))
@_data_option
def queue_run_entry(entry_id: int, data_dir: Path | None) -> None:
    """(Internal) Run one claimed entry: the child of a supervised ``queue run``."""
    from protocols.queue import execute_entry

    display = _progress_runner()
    outcomes: list[Any] = []
    with display:
        status, _reason, run_id = execute_entry(
            _data_dir(data_dir),
            entry_id,
            report=lambda line: click.echo(line),
            progress=display,
            on_outcome=outcomes.append,
        )
        display.finish(status in _RAN_TO_END)
    for outcome in outcomes:
        _show_outcome(outcome)  # after the display: the bar is gone
    if run_id and not outcomes:
        _write_report_for(_data_dir(data_dir), run_id)
    _exit_for(status)


def _show_outcome(outcome: Any) -> None:
    """What ``labctl run`` prints at the end: the headline, then the report and its figures."""
    _report(outcome)
    if outcome.measurements:
        _write_report_for(outcome.data_dir, outcome.run_id)


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback makes the page reachable from the"
    " network (it says so).",
)
@click.option(
    "--port",
    type=_WholeNumber(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free one; the address is printed).",
)
@_data_option
def web(host: str, port: int, data_dir: Path | None) -> None:
    """A live page of the bench and the night: queue, run, traces, results, events.

    Read-only; stopping a run at its next safe point and cancelling or
    retrying a queue entry need the token made at the first start
    (<data>/web-token, printed once). The page and its API: docs/web.md.
    """
    from .web.server import serve

    serve(_data_dir(data_dir), host, port, echo=lambda line: click.echo(line, err=True))


@cli.group()
def formulation() -> None:
    """Resist formulations: composition and the patent-claim check."""


@formulation.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: hash, composition, claims."
)
def formulation_check(file: Path, as_json: bool) -> None:
    """Validate FILE, print its composition and a verdict for each of claims 1-13.

    Exit 0 for a valid file whatever the verdicts; 2 for an invalid one.
    """
    from .formulation import format_composition, load_formulation, summary_lines

    recipe = load_formulation(file)
    verdicts = recipe.check_claims()
    if as_json:
        import json

        click.echo(
            json.dumps(
                {
                    "name": recipe.name,
                    "hash": recipe.content_hash(),
                    "composition": recipe.composition_json(),
                    "claims": {str(k): v.to_dict() for k, v in verdicts.items()},
                    "not_qualifying": recipe.not_qualifying(),
                },
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    table = Table(title=f"{recipe.name}  ({file})")
    for column in ("role", "component", "amount", "wt % of solids", "moles"):
        table.add_column(column)
    for row in format_composition(recipe):
        table.add_row(*row)
    console.print(table)
    composition = recipe.composition()
    ratio = composition["b1_b2_mole_ratio"]
    console.print(
        f"total solids {composition['total_solids'].magnitude:.4g} "
        f"{composition['total_solids'].units:~P}; solids content "
        f"{composition['solids_content'].magnitude:.3g} % of the solution; "
        f"B-1/B-2 mole ratio {'n/a' if ratio is None else f'{ratio.magnitude:.4g}'}"
    )
    for line in summary_lines(recipe):
        console.print(line, markup=False)
    console.print(f"hash {recipe.content_hash()}")
    marks = {
        "met": "[green]met[/green]",
        "not_met": "[red]not met[/red]",
        "undetermined": "[yellow]undetermined[/yellow]",
    }
    claims = Table(title="patent claims 1-13")
    claims.add_column("claim")
    claims.add_column("verdict")
    claims.add_column("reason")
    for number, verdict in verdicts.items():
        claims.add_row(str(number), marks[verdict.verdict], verdict.reason.split(": ", 1)[1])
    console.print(claims)


@cli.group()
def sim() -> None:
    """The simulated bench."""


@sim.command("serve")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the pty symlinks and the station file go (default: a new temporary directory).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the bench's wafers and instrument state here (survives restarts).",
)
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of all noise and faults."
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001, max=10000.0),
    default=1.0,
    show_default=True,
    help="Bench seconds per wall second.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="ROLE:KIND[:key=value,...]",
    help="Inject a fault, e.g. hotplate:heater_runaway:start=600 or "
    "spin_coater:no_reply:count=-1,probability=0.01 (repeatable).",
)
@click.option(
    "--serial",
    "serial_link",
    type=click.Choice(["pty", "tcp"]),
    default=None,
    help="Serial instruments on pseudo-terminals or on TCP sockets (pyserial socket:// URLs);"
    " default: pty where the system has them, else tcp.",
)
def sim_serve(
    directory: Path | None,
    data_dir: Path | None,
    seed: int,
    speed: float,
    faults: tuple[str, ...],
    serial_link: str | None,
) -> None:
    """Serve every instrument of the virtual bench on loopback TCP and pseudo-terminals.

    Prints each resource and writes a station file pointing at them; runs
    until interrupted. Binds to 127.0.0.1 only.
    """
    import contextlib
    import signal
    import tempfile
    import threading

    from sim_instruments.bench import VirtualBench
    from sim_instruments.serve import BenchServer, parse_fault

    from .clock import ScaledClock
    from .errors import InputError

    parsed = []
    for spec in faults:
        try:
            parsed.append(parse_fault(spec))
        except ValueError as exc:
            raise InputError(str(exc), field="--fault") from None
    bench = VirtualBench(data_dir=data_dir, seed=seed, clock=ScaledClock(speed))
    for role, kind, options in parsed:
        bench.inject(role, kind, **options)
    made_directory = directory is None
    if directory is None:
        from .private import dir_mode

        directory = Path(tempfile.mkdtemp(prefix="labctl-sim-"))
        directory.chmod(dir_mode())  # mkdtemp makes 0700; --group-readable asks for 0750
    try:
        server = BenchServer(bench, directory, serial=serial_link)
    except ValueError as exc:
        raise InputError(str(exc), field="--serial") from None
    server.start()
    station = server.write_station()
    for role, resource in server.resources().items():
        click.echo(f"{role:18s} {resource}")
    click.echo(f"station file       {station}")
    if server.identity is not None:
        kept = "its token and ports" if not server.moved else "its token"
        click.echo(f"identity           kept in {server.identity} ({kept})", err=True)
        if server.moved:
            click.echo(
                f"moved              {', '.join(server.moved)}: the saved port was taken;"
                " station files from before no longer reach them",
                err=True,
            )
    click.echo(f"bench speed        {speed:g}x real time; Ctrl-C stops", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    why = "SIGTERM"
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        why = "Ctrl-C"
    finally:
        removed = server.stop()
        if made_directory:
            with contextlib.suppress(OSError):  # ours, and empty now
                directory.rmdir()
    click.echo(
        f"stopped ({why}): links closed; "
        + (f"bench state saved in {data_dir}" if data_dir is not None else "bench state not kept")
        + f"; removed {len(removed)} file(s) from {directory}"
        + (f" ({', '.join(p.name for p in removed)})" if removed else ""),
        err=True,
    )


@sim.command("campaign")
@click.option(
    "--runs",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Runs queued per fault class (a longer night).",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--formulation",
    "formulation_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Formulation (default: the packaged in-claim example).",
)
@click.option("--class", "classes", multiple=True, help="Only these fault classes (repeatable).")
def sim_campaign(
    runs: int, seed: int, formulation_file: Path | None, classes: tuple[str, ...]
) -> None:
    """The fault campaign: a queue per fault class, counted from the simulators' records."""
    from protocols.campaign import FAULT_CLASSES, format_table, run_campaign

    from .errors import InputError

    unknown = [c for c in classes if c not in FAULT_CLASSES]
    if unknown:
        raise InputError(
            f"unknown fault class; classes: {', '.join(FAULT_CLASSES)}",
            field=f"--class {unknown[0]!r}",
        )
    if formulation_file is None:
        from sim_instruments import definition_path

        formulation_file = definition_path("in_claims.toml")
    results = run_campaign(formulation_file, runs=runs, seed=seed, classes=list(classes) or None)
    click.echo(format_table(results))
    if not all(r.ok() for r in results):
        sys.exit(EXIT_FAILURE)


@cli.group("store")
def store_group() -> None:
    """The run store file (labctl.sqlite): check it, copy out what a damaged one holds."""


@store_group.command("check")
@click.option(
    "--copy-out",
    "copy_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="NEW_DIR",
    help="Write NEW_DIR/labctl.sqlite: a new store holding every row that can still be read.",
)
@_data_option
def store_check(copy_dir: Path | None, data_dir: Path | None) -> None:
    """Check every page of the store (SQLite integrity_check) and its schema version.

    One line per problem. Exit 0 when sound, 1 when damaged, 2 for bad input
    (no store there, a --copy-out directory that already holds one). The
    store itself is only read, never changed.
    """
    from shlex import quote

    from .storecheck import check_store, copy_out

    data = _data_dir(data_dir)
    verdict = check_store(data)
    if verdict.sound:
        click.echo(f"{verdict.path}: sound")
    shown = 20
    for problem in verdict.problems[:shown]:
        click.echo(f"{verdict.path}: damaged: {problem}")
    if len(verdict.problems) > shown:
        click.echo(f"{verdict.path}: damaged: and {len(verdict.problems) - shown} more problems")
    if copy_dir is not None and not verdict.unreadable:
        target, tables = copy_out(data, copy_dir)
        click.echo(f"copied to {target}:")
        for table in tables:
            click.echo(f"  {table.summary()}")
    if verdict.sound:
        return
    if verdict.unreadable:
        click.echo("nothing can be read from it; move it aside to start a new store")
    elif copy_dir is None:
        click.echo(
            f"copy out what can be read: labctl store check --data {quote(str(data))}"
            " --copy-out NEW_DIR"
        )
    else:
        click.echo(f"with labctl stopped, move {verdict.path} aside and put the copy in its place")
    sys.exit(EXIT_FAILURE)


@cli.group()
def analyze() -> None:
    """Analyze a CSV from any bench: the contrast and spin-curve analyses of labctl's runs.

    FILE is the measurements CSV of `labctl export`, or a plain table whose
    header names each quantity with its unit (dose_mJ_cm2,nrt;
    speed_rpm,thickness_nm). Exit 2 with one line for a file that cannot be used.
    """


def _print_analysis(analysis: Any, as_json: bool) -> None:
    if as_json:
        click.echo(analysis.to_json())
        return
    for line in analysis.lines:
        click.echo(line)


@analyze.command("contrast")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def analyze_contrast_command(file: Path, as_json: bool) -> None:
    """Dg, D100, onset, D50 and gamma of the contrast curve in FILE.

    FILE: a `labctl export` measurements CSV (before/after pairs by wafer and
    site, at the delivered dose), or dose_<unit> with nrt, or with
    thickness_before_<unit> and thickness_after_<unit>.
    """
    from .analysis_io import analyze_contrast_file

    _print_analysis(analyze_contrast_file(file), as_json)


@analyze.command("spin-curve")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--steps",
    "steps_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Steps CSV of the export (coat speeds); default: <run>_steps.csv beside FILE.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def analyze_spin_curve_command(file: Path, steps_file: Path | None, as_json: bool) -> None:
    """Fit thickness = K speed^-b to the spin curve in FILE (at least 3 speeds).

    FILE: a `labctl export` measurements CSV (mean thickness per wafer against
    its coat speed), or speed_<unit> with thickness_<unit> (1 Hz = 60 rpm).
    """
    from .analysis_io import analyze_spin_curve_file

    _print_analysis(analyze_spin_curve_file(file, steps=steps_file), as_json)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: one-line errors, meaningful exit codes."""
    from .errors import InputError

    try:
        cli.main(args=argv, prog_name="labctl", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        # One line, like every other refusal: what is wrong and where help is.
        command = exc.ctx.command_path if exc.ctx is not None else "labctl"
        message = exc.format_message()
        if len(message) > 300:  # a pasted 100 KB value is not echoed back whole
            message = f"{message[:300]}... ({len(message)} characters)"
        _fail(f"{message} (see: {command} --help)", EXIT_BAD_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except InputError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except LabctlError as exc:
        _fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        # The machine refused (disk full, a path gone since it was checked):
        # one line naming the file, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_FAILURE)


def _check_out_file(path: Path | None, option: str = "--out") -> None:
    """Refuse a file to write whose place does not exist or cannot be written - before any work."""
    from .errors import InputError

    if path is None:
        return
    where = str(path)
    if path.is_dir():
        raise InputError("is a directory (allowed: a file name)", source=where, field=option)
    parent = path.parent
    if not parent.is_dir():
        raise InputError(
            f"no such directory: {parent} (allowed: a file in an existing directory)",
            source=where,
            field=option,
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError("the file is not writable", source=where, field=option)
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in {parent}", source=where, field=option)


if __name__ == "__main__":
    main()
