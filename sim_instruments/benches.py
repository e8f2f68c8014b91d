"""The benches this package registers in ``labctl.benches``: the virtual bench, two ways.

* ``virtual`` - :class:`~sim_instruments.bench.VirtualBench` in process, on a
  virtual clock (``labctl run --sim``, ``labctl check --sim``); its station's
  links are in-process transports.
* ``served`` - the same bench served on loopback TCP and pseudo-terminals
  (:class:`ServedBench`, what ``labctl sim serve`` runs); its station
  reaches it through real pyvisa and pyserial links, on the bench's clock
  (``labctl check --sim served``).
* ``pyvisa-sim`` - no physics: every role on the pyvisa-sim definitions
  (``sim_station.toml`` over ``*.yaml``), answering from tables
  (``labctl check --pyvisa-sim``).

labctl finds them by name (:func:`labctl.plugins.open_bench`); it never
imports this package. Each factory takes ``data_dir``, ``seed``,
``formulation`` (the resist the physics follows, as
:func:`~sim_instruments.resist_model.resist_from_formulation` reads it) and
``clock``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import bench as bench_module

if TYPE_CHECKING:
    from labctl.clock import Clock
    from labctl.formulation import Formulation
    from labctl.station import Station

    from .bench import VirtualBench
    from .serve import BenchServer

__all__ = ["PyvisaSimBench", "ServedBench", "pyvisa_sim", "served", "virtual"]


def virtual(
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    formulation: Formulation | None = None,
    clock: Clock | None = None,
) -> VirtualBench:
    """The virtual bench in process (``labctl.benches``: ``virtual``)."""
    resist = None
    if formulation is not None:
        from .resist_model import resist_from_formulation

        resist = resist_from_formulation(formulation)
    # Looked up when called: a test that swaps the class sees every bench it makes.
    return bench_module.VirtualBench(data_dir=data_dir, seed=seed, clock=clock, resist=resist)


class ServedBench:
    """A virtual bench served on real links, and the station file that reaches it.

    ``bench`` is the :class:`VirtualBench`, ``server`` its
    :class:`~sim_instruments.serve.BenchServer` (started), ``station_file``
    the station file it wrote. :meth:`close` stops the links and saves the
    bench.
    """

    def __init__(
        self, bench: VirtualBench, server: BenchServer, station_file: Path, made: Path | None
    ) -> None:
        self.bench = bench
        self.server = server
        self.station_file = station_file
        self._made = made

    def station(self) -> Station:
        """The station of the file it wrote: real links, the bench's published clock."""
        from labctl.station import Station

        return Station.from_file(self.station_file)

    def close(self) -> list[Path]:
        """Stop serving (links closed, the bench saved); return the files it removed."""
        removed = self.server.stop()
        if self._made is not None:
            import contextlib

            with contextlib.suppress(OSError):  # ours, and empty now
                self._made.rmdir()
        return removed


def served(
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    formulation: Formulation | None = None,
    clock: Clock | None = None,
    directory: str | Path | None = None,
    serial: str | None = None,
    faults: Sequence[tuple[str, str, dict[str, Any]]] = (),
) -> ServedBench:
    """The virtual bench served on loopback TCP and ptys (``labctl.benches``: ``served``).

    ``directory`` holds the pty symlinks and the station file (None: a new
    temporary directory, removed at :meth:`ServedBench.close`); ``serial``
    is ``"pty"`` or ``"tcp"`` (None: pty where the system has them);
    ``faults`` are ``(role, kind, options)`` to inject
    (:func:`sim_instruments.serve.parse_fault`). ``clock`` defaults to real
    time; pass a :class:`labctl.clock.ScaledClock` to speed it up. A bad
    ``serial`` is a :class:`ValueError`.
    """
    from labctl.clock import ScaledClock

    from .serve import BenchServer

    bench = virtual(
        data_dir=data_dir, seed=seed, formulation=formulation, clock=clock or ScaledClock(1.0)
    )
    made = None
    try:
        for role, kind, options in faults:
            bench.inject(role, kind, **options)
        if directory is None:
            from labctl.private import dir_mode

            made = Path(tempfile.mkdtemp(prefix="labctl-sim-"))
            made.chmod(dir_mode())  # mkdtemp makes 0700; --group-readable asks for 0750
            directory = made
        server = BenchServer(bench, Path(directory), serial=serial)
        server.start()
        station_file = server.write_station()
    except BaseException:
        bench.close()
        if made is not None:
            made.rmdir()
        raise
    return ServedBench(bench, server, station_file, made)


class PyvisaSimBench:
    """Every role on the pyvisa-sim definitions: answers from tables, no wafers, no time."""

    def station(self) -> Station:
        """The station of ``sim_station.toml`` (packaged beside the definitions)."""
        from labctl.station import Station

        from . import definition_path

        return Station.from_file(definition_path("sim_station.toml"))

    def close(self) -> None:
        """Nothing to close: each role's pyvisa-sim session closes with its station."""


def pyvisa_sim(
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    formulation: Formulation | None = None,
    clock: Clock | None = None,
) -> PyvisaSimBench:
    """The pyvisa-sim bench (``labctl.benches``: ``pyvisa-sim``); its tables take no options."""
    return PyvisaSimBench()
