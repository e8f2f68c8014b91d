"""What stands above the core, found by name: drivers, protocols, benches, commands.

The core imports nothing from ``drivers``, ``protocols`` or
``sim_instruments`` - not at module level, not inside a function
(``tests/test_architecture.py`` walks every import to hold it to that). It
finds what those packages provide by name, through entry-point groups, the
way pyvisa finds a backend; so a lab adds an instrument, an experiment, a
bench or a command with a module and one line in a ``pyproject.toml`` - its
own package's, or labctl's::

    [project.entry-points."labctl.protocols"]
    edge-bead = "mylab.protocols:EDGE_BEAD"

==================  ===================  ============================================
group               a name               names
==================  ===================  ============================================
labctl.drivers      ``torrey_pines_sc``  a driver class (:func:`labctl.station.resolve_driver`)
labctl.composites   ``exposure``         a composite over roles, owner of its table
labctl.protocols    ``contrast-curve``   a protocol (:class:`ProtocolSpec`)
labctl.benches      ``virtual``          a bench factory (:class:`BenchFactory`)
labctl.commands     ``run``              a click command of ``labctl``
==================  ===================  ============================================

A protocol's name is part of every run id it makes
(``20260124-173102-contrast-curve-3fa9c1``, :data:`labctl.names.RUN_ID`), so
a name that could not appear in one - a space, a slash, a letter outside
ASCII, more than :data:`PROTOCOL_NAME` allows - is refused when the group is
read (:func:`protocol_names` leaves it out, :func:`protocol` says why).

Entry points are read from the installed distributions' metadata - every
``*.dist-info`` and ``*.egg-info`` directory on :data:`sys.path`, the first
of each distribution name winning, as :mod:`importlib.metadata` reads them -
without importing :mod:`importlib.metadata`, which costs 25 ms: a quarter of
``labctl --help``. A test holds this reader to :mod:`importlib.metadata`'s
answer for every labctl group. Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InputError
from .names import RUN_ID, Grammar, name_problem, shown

if TYPE_CHECKING:
    from .clock import Clock
    from .formulation import Formulation
    from .station import Station

__all__ = [
    "BENCH_GROUP",
    "COMMAND_GROUP",
    "COMPOSITE_GROUP",
    "DRIVER_GROUP",
    "GROUPS",
    "PROTOCOL_GROUP",
    "PROTOCOL_NAME",
    "Bench",
    "BenchFactory",
    "EntryPoint",
    "ProtocolSpec",
    "bench_names",
    "command_names",
    "entry_points",
    "load_command",
    "open_bench",
    "protocol",
    "protocol_names",
    "refresh",
]

DRIVER_GROUP = "labctl.drivers"
COMPOSITE_GROUP = "labctl.composites"
PROTOCOL_GROUP = "labctl.protocols"
BENCH_GROUP = "labctl.benches"
COMMAND_GROUP = "labctl.commands"
#: Every group labctl reads.
GROUPS = (DRIVER_GROUP, COMPOSITE_GROUP, PROTOCOL_GROUP, BENCH_GROUP, COMMAND_GROUP)

#: The longest run id there is (``labctl.names.RUN_ID``) less what a run id
#: adds to the protocol's name: ``20260124-173102-`` and ``-3fa9c1``.
_RUN_ID_FRAME = len("20260124-173102-") + len("-3fa9c1")
PROTOCOL_NAME = Grammar(
    "protocol name",
    RUN_ID.pattern,
    RUN_ID.max_length - _RUN_ID_FRAME,
    "ASCII letters, digits, '-', '_', '.', the first a letter or digit (it is part of every"
    " run id)",
    "contrast-curve",
)


@dataclass(frozen=True)
class EntryPoint:
    """One ``name = module:attribute`` line of a distribution's ``entry_points.txt``."""

    group: str
    name: str
    value: str
    #: The distribution that registered it (its normalized name).
    distribution: str

    def load(self) -> Any:
        """Import the module and return the attribute (``ImportError``/``AttributeError``)."""
        module_name, _, attribute = self.value.partition(":")
        found: Any = importlib.import_module(module_name.strip())
        for part in attribute.split("[", 1)[0].strip().split("."):
            if part:
                found = getattr(found, part)
        return found

    def where(self) -> str:
        """``entry point labctl.protocols of mylab``: where the name was registered."""
        return f"entry point {self.group} of {self.distribution}"


_INDEX: dict[str, list[EntryPoint]] | None = None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _pairs(text: str) -> list[tuple[str | None, str, str]]:
    """(section, name, value) of an ``entry_points.txt`` (importlib.metadata's ``Sectioned``)."""
    section: str | None = None
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]").strip()
            continue
        name, equals, value = line.partition("=")
        if equals:
            found.append((section, name.strip(), value.strip()))
    return found


def _read_index() -> dict[str, list[EntryPoint]]:
    groups: dict[str, list[EntryPoint]] = {}
    seen: set[str] = set()
    for base in sys.path:
        directory = base or "."
        try:
            children = os.listdir(directory)
        except OSError:  # a zip file, or a path that is gone
            continue
        # As importlib.metadata: a directory's .dist-info first, then its .egg-info.
        for suffix in (".dist-info", ".egg-info"):
            for child in children:
                if not child.lower().endswith(suffix):
                    continue
                distribution = _normalized(child[: -len(suffix)].split("-", 1)[0])
                if distribution in seen:
                    continue
                seen.add(distribution)
                try:
                    with open(
                        os.path.join(directory, child, "entry_points.txt"), encoding="utf-8"
                    ) as stream:
                        text = stream.read()
                except (OSError, UnicodeDecodeError):
                    continue  # none, or a single-file .egg-info
                for group, name, value in _pairs(text):
                    if group is not None:
                        groups.setdefault(group, []).append(
                            EntryPoint(group, name, value, distribution)
                        )
    return groups


def refresh() -> None:
    """Read the installed distributions again (after one was installed in this process)."""
    global _INDEX
    _INDEX = None
    _PROTOCOLS.clear()


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, in :data:`sys.path` order; read once per process."""
    global _INDEX
    if _INDEX is None:
        _INDEX = _read_index()
    return list(_INDEX.get(group, ()))


def _first(group: str, name: str) -> EntryPoint | None:
    return next((e for e in entry_points(group) if e.name == name), None)


# -- protocols ------------------------------------------------------------------------


class ProtocolSpec(Protocol):
    """What a ``labctl.protocols`` entry point names (``protocols.experiments.Protocol``).

    ``function(run)`` is the protocol, a plain function of a
    :class:`labctl.engine.Run`; ``parameters`` its declared parameters
    (``protocols.recipes.Parameter``: name, default, unit, range);
    ``expected_steps(values)`` the steps it plans, for progress (None: no
    total shown).
    """

    @property
    def name(self) -> str: ...

    @property
    def function(self) -> Callable[[Any], None]: ...

    @property
    def parameters(self) -> tuple[Any, ...]: ...

    @property
    def doc(self) -> str: ...

    def expected_steps(self, values: dict[str, Any]) -> int | None: ...


_PROTOCOLS: dict[str, ProtocolSpec] = {}


def _refusal(entry: EntryPoint) -> str | None:
    problem = name_problem(PROTOCOL_NAME, entry.name)
    if problem is not None:
        return f"{shown(entry.name)} {problem}"
    return None


def protocol_names() -> list[str]:
    """The registered protocols' names, without importing them (refused names left out)."""
    names: list[str] = []
    for entry in entry_points(PROTOCOL_GROUP):
        if _refusal(entry) is None and entry.name not in names:
            names.append(entry.name)
    return names


def protocol(name: str) -> ProtocolSpec:
    """The protocol registered as ``name``; :class:`InputError` for one unknown or refused.

    Loaded once. Refused: a name that could not appear in a run id
    (:data:`PROTOCOL_NAME`), an object that is not a protocol, or one whose
    ``name`` is not the name it is registered under.
    """
    if name in _PROTOCOLS:
        return _PROTOCOLS[name]
    entry = _first(PROTOCOL_GROUP, name)
    if entry is None:
        known = ", ".join(protocol_names()) or "none installed"
        raise InputError(f"unknown protocol; protocols: {known}", field=f"protocol {name!r}")
    refusal = _refusal(entry)
    if refusal is not None:
        raise InputError(
            f"refused: {refusal}", source=entry.where(), field=f"protocol {shown(name)}"
        )
    try:
        found = entry.load()
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"cannot load {entry.value!r}: {exc}", source=entry.where(), field=f"protocol {name}"
        ) from None
    if not (
        callable(getattr(found, "function", None))
        and callable(getattr(found, "expected_steps", None))
        and isinstance(getattr(found, "parameters", None), tuple)
    ):
        raise InputError(
            f"{entry.value} is not a protocol (function, parameters, expected_steps)",
            source=entry.where(),
            field=f"protocol {name}",
        )
    if getattr(found, "name", None) != name:
        raise InputError(
            f"{entry.value} calls itself {getattr(found, 'name', None)!r}: a protocol is"
            " registered under its own name",
            source=entry.where(),
            field=f"protocol {name}",
        )
    _PROTOCOLS[name] = found
    return found  # type: ignore[no-any-return]


# -- benches --------------------------------------------------------------------------


class Bench(Protocol):
    """A bench labctl can run on without a station file of the user's: the virtual one.

    :meth:`station` gives every role's driver, talking to the bench; the
    bench moves its own wafers (a run's handler wraps it) and keeps its
    state in ``<data>/bench`` when it has a data directory.
    """

    def station(self) -> Station: ...

    def close(self) -> None: ...


class BenchFactory(Protocol):
    """What a ``labctl.benches`` entry point names: ``factory(**options) -> Bench``.

    Every factory takes ``data_dir`` (None: in memory), ``seed``,
    ``formulation`` (the resist the bench's physics follows; None: its
    default) and ``clock`` (None: its own); one may take more.
    """

    def __call__(
        self,
        *,
        data_dir: Path | None = None,
        seed: int = 0,
        formulation: Formulation | None = None,
        clock: Clock | None = None,
        **options: Any,
    ) -> Bench: ...


def bench_names() -> list[str]:
    """The registered benches' names (``virtual``, ``served``)."""
    return list(dict.fromkeys(e.name for e in entry_points(BENCH_GROUP)))


def open_bench(name: str, **options: Any) -> Bench:
    """A new bench of the factory registered as ``name``, made with ``options``."""
    entry = _first(BENCH_GROUP, name)
    if entry is None:
        known = ", ".join(bench_names()) or "none installed"
        raise InputError(f"unknown bench; benches: {known}", field=f"bench {name!r}")
    try:
        factory = entry.load()
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"cannot load {entry.value!r}: {exc}", source=entry.where(), field=f"bench {name}"
        ) from None
    bench: Bench = factory(**options)
    return bench


# -- commands -------------------------------------------------------------------------


def command_names() -> list[str]:
    """Names of the commands the layers above add to ``labctl`` (not imported yet)."""
    return list(dict.fromkeys(e.name for e in entry_points(COMMAND_GROUP)))


def load_command(name: str) -> Any:
    """The click command registered as ``name`` (None: no such command).

    A registration that cannot be loaded is an :class:`InputError` naming it.
    """
    entry = _first(COMMAND_GROUP, name)
    if entry is None:
        return None
    try:
        return entry.load()
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"cannot load {entry.value!r}: {exc}", source=entry.where(), field=f"command {name}"
        ) from None
