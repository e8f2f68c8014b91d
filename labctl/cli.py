"""The ``labctl`` command: the core's commands, and those the layers above add by name.

The core's commands are here (``check``, ``runs``, ``show``, ``export``,
``report``, ``compare``, ``sync``, ``web``, ``formulation``, ``store``,
``analyze``, ``resources``). The layers above add theirs through the
``labctl.commands`` entry-point group (:mod:`labctl.plugins`) - ``protocols``
adds ``run``, ``resume``, ``replay`` and ``queue``, ``sim_instruments`` adds
``sim`` - and a command is imported only when it is asked for or listed by
``--help``. This module imports none of those packages.

Start-up stays light: only :mod:`click` is imported here at module level;
pint, pyvisa and the rest load inside the commands that need them.

Exit codes: 0 success; 1 an instrument or link failed; 2 bad input (a file,
a field, an option) - reported on one line, without a traceback; 130
interrupted (:mod:`labctl.commandline`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .commandline import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, SEED
from .commandline import WholeNumber as _WholeNumber
from .commandline import allow_import_option as _allow_import_option
from .commandline import check_out_file as _check_out_file
from .commandline import data_option as _data_option
from .commandline import fail as _fail
from .commandline import listing as _listing
from .commandline import resolve_data_dir as _data_dir
from .commandline import run_id_argument as _run_id_argument
from .errors import LabctlError

__all__ = ["SEED", "cli", "main"]


class _Commands(click.Group):
    """The core's commands, then those registered in ``labctl.commands`` (loaded when used).

    A registered command cannot take a core command's name: the core's wins.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .plugins import command_names

        return sorted({*super().list_commands(ctx), *command_names()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        from .plugins import load_command

        command: click.Command | None = load_command(cmd_name)
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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


@cli.command()
@click.option(
    "--sim",
    "sim_bench",
    is_flag=False,
    flag_value="virtual",
    default=None,
    metavar="[BENCH]",
    help="A simulated bench found by name (labctl.benches): virtual (the default: the one"
    " `run --sim` drives, in process), served (the same on loopback TCP and ptys, reached"
    " through real links), pyvisa-sim.",
)
@click.option(
    "--pyvisa-sim",
    "pyvisa_sim",
    is_flag=True,
    help="The pyvisa-sim definitions of every instrument (the same as --sim pyvisa-sim).",
)
@click.option(
    "--station",
    "station_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Station file (TOML) mapping roles to instruments.",
)
@_allow_import_option
def check(
    sim_bench: str | None, pyvisa_sim: bool, station_file: Path | None, allow_import: bool
) -> None:
    """Connect every role of a station and show who answered.

    Prints a table (role, instrument, identity, link). Exits 1 naming each
    instrument that failed and why; 2 for a bad station file.
    """
    from .station import Station

    if [sim_bench is not None, pyvisa_sim, station_file is not None].count(True) != 1:
        _fail("give exactly one of --sim, --pyvisa-sim or --station FILE", EXIT_BAD_INPUT)
    bench = None
    if sim_bench is not None or pyvisa_sim:
        # Fresh, in memory: the bench's drivers and wire protocols, found by name.
        from .plugins import open_bench

        bench = open_bench("pyvisa-sim" if pyvisa_sim else str(sim_bench))
        try:
            station = bench.station()
        except BaseException:
            bench.close()
            raise
    else:
        assert station_file is not None
        station = Station.from_file(station_file, allow_import=allow_import)
    try:
        try:
            results = station.connect()
        finally:
            station.close()
        handler_failed = _report_check(station, results)
    finally:
        if bench is not None:
            bench.close()
    if handler_failed or not all(r.ok for r in results):
        sys.exit(EXIT_FAILURE)


def _report_check(station: Any, results: list[Any]) -> bool:
    """Print the roles' table and each failure; check the wafer handler. True if it failed."""
    _print_check_table(station.config.name, results)
    for result in results:
        if not result.ok:
            click.echo(f"labctl: error: {result.role} ({result.driver}): {result.error}", err=True)
    if station.config.handler is None:
        return False
    # An unattended run needs the wafer handler as much as any instrument.
    from .handler import SocketHandler

    handler = SocketHandler.from_station(station.config, timeout=5.0)
    try:
        handler.check()
        served = handler.clock()
    except LabctlError as exc:
        click.echo(f"labctl: error: handler ({station.config.handler}): {exc}", err=True)
        return True
    finally:
        handler.close()
    clock = "real time" if served is None else f"bench clock {served[0]:g}x real time"
    click.echo(f"handler {station.config.handler}: answered, token accepted; {clock}")
    return False


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
    """Entry point of the console script: one-line errors, meaningful exit codes.

    Without ``argv`` it is the program (it reads :data:`sys.argv`).
    """
    from . import commandline
    from .errors import InputError

    commandline.PROGRAM = argv is None

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


if __name__ == "__main__":
    main()
