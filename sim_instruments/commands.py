"""``labctl sim``: the commands this package adds to ``labctl`` - ``sim serve``, ``sim campaign``.

labctl's command line finds the ``sim`` group by name (the
``labctl.commands`` entry-point group, :mod:`labctl.plugins`); it imports
this module only when ``sim`` is asked for or ``--help`` lists it. Only
:mod:`click` and :mod:`labctl.commandline` are imported at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labctl.commandline import EXIT_FAILURE, SEED

__all__ = ["sim"]


@click.group()
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
    import signal
    import threading

    from labctl.clock import ScaledClock
    from labctl.errors import InputError

    from .benches import served
    from .serve import parse_fault

    parsed = []
    for spec in faults:
        try:
            parsed.append(parse_fault(spec))
        except ValueError as exc:
            raise InputError(str(exc), field="--fault") from None
    try:
        bench = served(
            data_dir=data_dir,
            seed=seed,
            clock=ScaledClock(speed),
            directory=directory,
            serial=serial_link,
            faults=parsed,
        )
    except ValueError as exc:
        raise InputError(str(exc), field="--serial") from None
    server = bench.server
    for role, resource in server.resources().items():
        click.echo(f"{role:18s} {resource}")
    click.echo(f"station file       {bench.station_file}")
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
        removed = bench.close()
    click.echo(
        f"stopped ({why}): links closed; "
        + (f"bench state saved in {data_dir}" if data_dir is not None else "bench state not kept")
        + f"; removed {len(removed)} file(s) from {server.directory}"
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
    from labctl.errors import InputError

    from .campaign import FAULT_CLASSES, format_table, run_campaign

    unknown = [c for c in classes if c not in FAULT_CLASSES]
    if unknown:
        raise InputError(
            f"unknown fault class; classes: {', '.join(FAULT_CLASSES)}",
            field=f"--class {unknown[0]!r}",
        )
    if formulation_file is None:
        from . import definition_path

        formulation_file = definition_path("in_claims.toml")
    results = run_campaign(formulation_file, runs=runs, seed=seed, classes=list(classes) or None)
    click.echo(format_table(results))
    if not all(r.ok() for r in results):
        sys.exit(EXIT_FAILURE)
