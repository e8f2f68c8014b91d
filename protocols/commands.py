"""The commands the protocol layer adds to ``labctl``: ``run``, ``resume``, ``replay``, ``queue``.

labctl's command line finds them by name - the ``labctl.commands``
entry-point group (``pyproject.toml``; :mod:`labctl.plugins`) - and imports
this module only when one of them is asked for (or ``--help`` lists them).
Only :mod:`click` and :mod:`labctl.commandline` are imported here at module
level: the runner, the engine, pint and the bench load inside the command
that runs.

``run``, ``resume`` and ``queue run`` supervise: the process the user
started holds the bench lock and runs the work in a child
(:mod:`protocols.supervisor`), which makes the bench safe the moment that
child dies.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from labctl.commandline import (
    EXIT_FAILURE,
    SEED,
    WholeNumber,
    allow_import_option,
    check_out_file,
    data_option,
    fail,
    leave,
    listing,
    resolve_data_dir,
    run_id_argument,
    write_report_for,
)

__all__ = ["queue", "replay", "resume", "run"]


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
        allow_import_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _progress_runner() -> Any:
    """The run's progress display: a bar on a terminal, one log line per step elsewhere.

    Called with each step (:class:`labctl.progress.StepProgress`); the total
    comes from the engine (the protocol's plan). See :mod:`labctl.progress`.
    """
    from labctl.progress import display_for

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
    from .supervisor import is_supervised_child

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
    from .supervisor import run_child

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
    leave(EXIT_FAILURE if ended.died else ended.returncode)


def _exit_for(status: str) -> None:
    if status not in ("completed",):
        sys.exit(EXIT_FAILURE)


@click.command()
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
@data_option
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
    from .runner import RunRequest, start, validate

    request = RunRequest(
        protocol=protocol,
        data_dir=resolve_data_dir(data_dir),
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
    check_out_file(record_file, "--record")
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
        write_report_for(outcome.data_dir, outcome.run_id)
    _exit_for(outcome.status)


def _check_operator(name: str, *, given: bool) -> None:
    """The operator's name against its grammar (labctl.names.OPERATOR): one line, exit 2."""
    from labctl.errors import InputError
    from labctl.names import OPERATOR, name_problem, shown

    problem = name_problem(OPERATOR, name)
    if problem is None:
        return
    if given:
        raise InputError(f"{shown(name)} {problem}", field="--operator")
    raise InputError(
        f"the login name {shown(name)} {problem}; give --operator NAME", field="--operator"
    )


@click.command()
@click.argument("run_id", callback=run_id_argument)
@click.option(
    "--station",
    "station_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Station file (runs on real hardware).",
)
@allow_import_option
@data_option
def resume(
    run_id: str, station_file: Path | None, allow_import: bool, data_dir: Path | None
) -> None:
    """Resume RUN_ID: finished steps replay from the journal; nothing physical is repeated."""
    from labctl.errors import InputError
    from labctl.store import RunStore

    from .runner import resume as resume_run

    if station_file is not None:
        from labctl.station import load_station

        load_station(station_file, allow_import=allow_import)  # the whole file, before anything
    store = RunStore(resolve_data_dir(data_dir), create=False)
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
        arguments = ["resume", record["run_id"], "--data", str(resolve_data_dir(data_dir))]
        arguments += ["--station", str(station_file)] if station_file else []
        arguments += ["--allow-import"] if allow_import else []
        _supervised(
            arguments,
            resolve_data_dir(data_dir),
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
            resolve_data_dir(data_dir),
            station=station_file,
            progress=display,
            allow_import=allow_import,
        )
        display.finish(outcome.status in _RAN_TO_END)
    _report(outcome)
    if outcome.measurements:
        write_report_for(outcome.data_dir, outcome.run_id)
    _exit_for(outcome.status)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@allow_import_option
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
    from .replay import replay as replay_recording

    outcome = replay_recording(file, data_dir, allow_import=allow_import)
    if outcome.mismatch is not None:
        fail(f"replay of {file}: {outcome.mismatch}", EXIT_FAILURE)
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


@click.group()
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
@data_option
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
    from .queue import add
    from .runner import RunRequest

    if lab_url is None and (bench is not None or roles):
        from labctl.errors import InputError

        raise InputError("--bench and --role go with --lab URL", field="--bench/--role")
    request = RunRequest(
        protocol=protocol,
        data_dir=resolve_data_dir(data_dir),
        formulation=formulation_file,
        sim=sim,
        station=station_file,
        recipe=recipe_file,
        overrides=overrides,
        unattended=True,
        seed=seed,
        allow_import=allow_import,
    )
    if lab_url is not None:
        from labctl.labdb import resolve_url
        from labctl.station import ROLES

        from .lab_queue import add as lab_add

        target = resolve_url(lab_url, field="--lab")
        entry = lab_add(request, target, bench=bench, roles=roles or ROLES)
        click.echo(f"queued lab #{entry}: {protocol}" + (f" on bench {bench}" if bench else ""))
        return
    entry = add(request)
    click.echo(f"queued #{entry}: {protocol}")


@queue.command("list")
@click.option("--json", "as_json", is_flag=True)
@_lab_option
@data_option
def queue_list(as_json: bool, lab_url: str | None, data_dir: Path | None) -> None:
    """Show the queue: each entry's state, run, whether its files changed since added."""
    from labctl.queue_entries import public_entry
    from labctl.store import RunStore

    if lab_url is not None:
        from labctl.labdb import resolve_url

        from .lab_queue import entries as lab_entries

        listing(
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

    store = RunStore(resolve_data_dir(data_dir), create=False)
    entries = [public_entry(e) for e in store.queue()]
    store.close()
    listing(
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
    from labctl.errors import InputError

    text = value.strip().removeprefix("#")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InputError("not a queue entry number (see `labctl queue list`)", field=repr(value))
    return int(text)


@queue.command("cancel")
@click.argument("entry_id")
@_lab_option
@data_option
def queue_cancel(entry_id: str, lab_url: str | None, data_dir: Path | None) -> None:
    """Cancel ENTRY_ID: a pending entry will not run; a running one stops at its next safe point."""
    from labctl.queue_entries import cancel

    if lab_url is not None:
        from labctl.labdb import resolve_url

        from .lab_queue import cancel as lab_cancel

        click.echo(lab_cancel(resolve_url(lab_url, field="--lab"), _queue_entry_id(entry_id)))
        return

    click.echo(cancel(resolve_data_dir(data_dir), _queue_entry_id(entry_id)))


@queue.command("remove")
@click.argument("entry_id")
@data_option
def queue_remove(entry_id: str, data_dir: Path | None) -> None:
    """Remove ENTRY_ID (not a running one) from the queue; its runs stay recorded."""
    from labctl.queue_entries import remove

    click.echo(remove(resolve_data_dir(data_dir), _queue_entry_id(entry_id)))


@queue.command("retry")
@click.argument("entry_id")
@data_option
def queue_retry(entry_id: str, data_dir: Path | None) -> None:
    """Put a failed or cancelled ENTRY_ID back in the queue (resumed if a wafer is in doubt)."""
    from labctl.queue_entries import retry

    click.echo(retry(resolve_data_dir(data_dir), _queue_entry_id(entry_id)))


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
@data_option
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

    from labctl.errors import InputError
    from labctl.store import RunStore

    from .queue import run_queue

    # A queue lives in a store: a mistyped --data has no queue to run (and gets no store);
    # a bench taking from the lab queue may be new.
    RunStore(resolve_data_dir(data_dir), create=lab_url is not None).close()
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
        from labctl.labdb import resolve_url
        from labctl.station import ROLES

        from .lab_queue import run_lab_queue

        with display if display is not None else nullcontext():
            lab = run_lab_queue(
                resolve_data_dir(data_dir),
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
            resolve_data_dir(data_dir),
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
@click.argument("entry_id", type=WholeNumber(1, 2**63 - 1))
@data_option
def queue_run_entry(entry_id: int, data_dir: Path | None) -> None:
    """(Internal) Run one claimed entry: the child of a supervised ``queue run``."""
    from .queue import execute_entry

    display = _progress_runner()
    outcomes: list[Any] = []
    with display:
        status, _reason, run_id = execute_entry(
            resolve_data_dir(data_dir),
            entry_id,
            report=lambda line: click.echo(line),
            progress=display,
            on_outcome=outcomes.append,
        )
        display.finish(status in _RAN_TO_END)
    for outcome in outcomes:
        _show_outcome(outcome)  # after the display: the bar is gone
    if run_id and not outcomes:
        write_report_for(resolve_data_dir(data_dir), run_id)
    _exit_for(status)


def _show_outcome(outcome: Any) -> None:
    """What ``labctl run`` prints at the end: the headline, then the report and its figures."""
    _report(outcome)
    if outcome.measurements:
        write_report_for(outcome.data_dir, outcome.run_id)
