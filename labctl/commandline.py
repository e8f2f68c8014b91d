"""What every ``labctl`` command shares - the core's and those the layers above add.

``labctl`` (:mod:`labctl.cli`) holds the core's commands; ``protocols`` adds
``run``, ``resume``, ``replay`` and ``queue``, ``sim_instruments`` adds
``sim`` - found by name in the ``labctl.commands`` entry-point group
(:mod:`labctl.plugins`). They all build on this module, so an option reads,
checks and fails the same way whichever package defines the command.

Exit codes: 0 success; 1 an instrument or link failed
(:data:`EXIT_FAILURE`); 2 bad input - a file, a field, an option - on one
line, without a traceback (:data:`EXIT_BAD_INPUT`); 130 interrupted.

Only :mod:`click` is imported here; everything else loads in the function
that needs it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from .errors import LabctlError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "SEED",
    "WholeNumber",
    "allow_import_option",
    "check_out_file",
    "data_option",
    "fail",
    "leave",
    "listing",
    "resolve_data_dir",
    "run_id_argument",
    "write_report_for",
]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


#: True while :func:`labctl.cli.main` runs as the program (the console script,
#: ``python -m labctl.cli``) rather than as a call from Python (a test, a tool).
PROGRAM = False


def leave(code: int) -> NoReturn:
    """Exit with ``code`` once this process's work is done (a supervisor whose child ended).

    The program, with no other thread, skips the interpreter's teardown -
    50 ms of freeing pint's and numpy's objects one by one, a twentieth of
    ``labctl run`` - after flushing its streams and log handlers; called from
    Python, it raises :class:`SystemExit` as :func:`sys.exit` does.
    """
    import threading

    if PROGRAM and threading.active_count() == 1:
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    sys.exit(code)


def fail(message: str, code: int) -> NoReturn:
    """``labctl: error: <message>`` on stderr, then exit with ``code``."""
    click.echo(f"labctl: error: {message}", err=True)
    sys.exit(code)


class WholeNumber(click.ParamType):  # type: ignore[type-arg]
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
SEED = WholeNumber(0, 2**63 - 1)


def run_id_argument(_context: Any, _parameter: Any, value: Any) -> Any:
    """A run-id argument checked at the door (labctl.names.RUN_ID), before any import or store."""
    from .names import RUN_ID, check_name

    for given in value if isinstance(value, tuple) else (value,):
        check_name(given, RUN_ID, field="run")
    return value


def allow_import_option(function: Any) -> Any:
    """``--allow-import``: the station file may name ``driver = "module:Class"``."""
    return click.option(
        "--allow-import",
        is_flag=True,
        help='Trust the station file to import code: allow driver = "module:Class".',
    )(function)


def data_option(function: Any) -> Any:
    """``--data DIR``: the data directory (default ``$LABCTL_DATA`` or ``./labctl-data``)."""
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default: $LABCTL_DATA or ./labctl-data).",
    )(function)


def resolve_data_dir(value: Path | None) -> Path:
    """``--data`` as given, or the default data directory."""
    from .store import default_data_dir

    return value if value is not None else default_data_dir()


def listing(rows: list[dict[str, Any]], as_json: bool, empty: str, line: Any) -> None:
    """Rows as one JSON array, or one line each (200 characters at most)."""
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(empty)
    for row in rows:
        click.echo(line(row)[:200])


def check_out_file(path: Path | None, option: str = "--out") -> None:
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


def write_report_for(data_dir: Path, run_id: str) -> None:
    """The HTML report of a run and its headline figures, printed (after ``run``, ``resume``)."""
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
