"""Station files: which instrument fills each role, and how to reach it.

A station file is TOML and data only (never executed)::

    [station]
    name = "bench-1"

    [roles.hotplate]
    driver = "torrey_pines_sc"            # a name from the labctl.drivers entry points
    resource = "ASRL/dev/ttyUSB1::INSTR"  # VISA resource string ...
    transport = "visa"                    # ... or "serial" for a pyserial port/URL
    backend = "@py"                       # pyvisa backend; "bench.yaml@sim" for pyvisa-sim
    [roles.hotplate.link]                 # overrides the driver's defaults
    baud_rate = 9600
    timeout = "1 s"
    [roles.hotplate.settings]             # checked against the driver's declaration
    standby_temperature = "25 degC"

    [exposure]                            # the exposure tool's own settings
    led_current = "1.0 A"

This module knows no instrument model: drivers are found by name through the
``labctl.drivers`` entry-point group (:mod:`labctl.plugins`), the way pyvisa
finds a backend. A
``"module:Class"`` driver imports code named by the file, so it is loaded only
when the caller trusts the file (``allow_import=True``, the CLI's
``--allow-import``); entry-point drivers need no such trust.

The whole file is checked when it loads, before any port opens. Each
driver class declares the ``[roles.<role>.settings]`` keys it accepts in one
class attribute, ``station_settings`` (a :class:`labctl.settings.Settings`;
none declared: no settings accepted); every other top-level table belongs to
a composite registered under the table's name in the ``labctl.composites``
entry-point group (``exposure`` -> the exposure tool), whose class declares
the table's keys the same way. A key not declared, a value of the wrong
type, dimension or range, or text that is not a quantity is refused with
one line naming the file, the field and what is allowed. The values are
handed on converted (quantities, defaults filled in): drivers do not parse
them again.

Loading and validating a file does no I/O; :meth:`Station.connect` opens the
links. The one factory that turns a resource string into a transport is
:func:`make_transport`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .clock import Clock, RealClock, ScaledClock
from .errors import CommunicationError, LabctlError, StationFileError
from .files import read_toml
from .plugins import COMPOSITE_GROUP, DRIVER_GROUP, entry_points
from .settings import Settings, declared_settings
from .transport import LinkSettings, SerialTransport, Transport, VisaTransport

__all__ = [
    "COMPOSITE_GROUP",
    "ENTRY_POINT_GROUP",
    "ROLES",
    "RoleConfig",
    "RoleStatus",
    "Station",
    "StationConfig",
    "composites",
    "load_station",
    "make_transport",
    "resolve_driver",
    "settings_reference",
]

#: Roles of the bench, in the order they are connected and listed.
ROLES = (
    "spin_coater",
    "hotplate",
    "exposure_source",
    "exposure_shutter",
    "exposure_meter",
    "exposure_stage",
    "ellipsometer",
)
ENTRY_POINT_GROUP = DRIVER_GROUP
#: Top-level tables the core reads itself.
_CORE_TABLES = ("station", "roles", "handler", "clock")
#: "bench" links exist only inside a virtual bench, which supplies them.
TRANSPORTS = ("visa", "serial", "bench")
_ROLE_KEYS = {"driver", "resource", "transport", "backend", "link", "settings"}
_PARITIES = ("N", "E", "O")
_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)


@dataclass(frozen=True)
class RoleConfig:
    """One role of a station file, validated."""

    role: str
    driver: str
    resource: str
    transport: str = "visa"
    backend: str = "@py"
    link: Mapping[str, Any] = field(default_factory=dict)
    #: Checked against the driver's ``station_settings`` and converted:
    #: every declared key present (``None``: not given, no default).
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: The driver class the file was checked against (resolved once, at load).
    driver_class: type | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class StationConfig:
    """A whole station file, validated; ``source`` is where it came from."""

    name: str
    source: str
    roles: dict[str, RoleConfig]
    #: The ``[exposure]`` table, checked and converted, defaults filled in.
    exposure: dict[str, Any]
    base_dir: Path
    #: ``host:port`` of a wafer handler speaking labctl's handler protocol, if any.
    handler: str | None = None
    #: ``[clock]`` of a served (simulated) bench: its speed and epoch (Unix s).
    clock_speed: float | None = None
    clock_epoch: float | None = None
    #: Every composite's table (``exposure`` included), checked and converted.
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``[handler] token``: the secret the handler asks of every connection (``AUTH``).
    handler_token: str | None = None


def _fail(source: str, where: str, problem: str) -> StationFileError:
    return StationFileError(problem, source=source, field=where)


def load_station(path: str | Path, *, allow_import: bool = False) -> StationConfig:
    """Read and validate a whole station file; raise :class:`StationFileError` naming the field.

    ``allow_import``: the caller trusts the file to name ``"module:Class"``
    drivers (code to import); without it only entry-point drivers load.
    """
    path = Path(path)
    data = read_toml(path, StationFileError)
    return parse_station(
        data, source=str(path), base_dir=path.resolve().parent, allow_import=allow_import
    )


def parse_station(
    data: Mapping[str, Any], *, source: str, base_dir: Path, allow_import: bool = False
) -> StationConfig:
    """Validate a parsed station table (see the module docstring for the shape)."""
    owners = composites(source=source)
    allowed_tables = [*_CORE_TABLES, *owners]
    unknown = [key for key in data if key not in allowed_tables]
    if unknown:
        raise _fail(source, str(unknown[0]), f"unknown table; allowed: {', '.join(allowed_tables)}")
    station = data.get("station", {})
    if not isinstance(station, Mapping):
        raise _fail(source, "station", "must be a table")
    name = station.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise _fail(source, "station.name", f"must be a string, got {name!r}")
    roles_table = data.get("roles")
    if not isinstance(roles_table, Mapping):
        raise _fail(source, "roles", "missing: a station needs a [roles.<role>] table per role")
    roles: dict[str, RoleConfig] = {}
    for role, table in roles_table.items():
        where = f"roles.{role}"
        if role not in ROLES:
            raise _fail(source, where, f"unknown role; roles are {', '.join(ROLES)}")
        if not isinstance(table, Mapping):
            raise _fail(source, where, "must be a table")
        extra = set(table) - _ROLE_KEYS
        if extra:
            raise _fail(
                source,
                f"{where}.{sorted(extra)[0]}",
                f"unknown key; allowed: {', '.join(sorted(_ROLE_KEYS))}",
            )
        for key in ("driver", "resource"):
            if key not in table:
                raise _fail(source, f"{where}.{key}", "missing")
            if not isinstance(table[key], str) or not table[key].strip():
                raise _fail(
                    source, f"{where}.{key}", f"must be a non-empty string, got {table[key]!r}"
                )
        transport = table.get("transport", "visa")
        if transport not in TRANSPORTS:
            raise _fail(
                source,
                f"{where}.transport",
                f"{transport!r} is not one of {', '.join(map(repr, TRANSPORTS))}",
            )
        backend = table.get("backend", "@py")
        if not isinstance(backend, str):
            raise _fail(source, f"{where}.backend", f"must be a string, got {backend!r}")
        for key in ("link", "settings"):
            if not isinstance(table.get(key, {}), Mapping):
                raise _fail(source, f"{where}.{key}", "must be a table")
        driver_class = resolve_driver(
            table["driver"], source=source, where=f"{where}.driver", allow_import=allow_import
        )
        settings = _declared(driver_class, source, f"{where}.driver").validate(
            table.get("settings", {}),
            source=source,
            prefix=f"{where}.settings",
            require=True,
            error=StationFileError,
        )
        config = RoleConfig(
            role=role,
            driver=table["driver"],
            resource=table["resource"],
            transport=transport,
            backend=backend,
            link=dict(table.get("link", {})),
            settings=settings,
            driver_class=driver_class,
        )
        link_settings(config, driver_class, source=source)  # validate now, use later
        roles[role] = config
    missing = [r for r in ROLES if r not in roles]
    if missing:
        raise _fail(
            source, f"roles.{missing[0]}", "missing: every role of the bench needs an instrument"
        )
    tables = {
        name: _declared(owner, source, name).validate(
            data.get(name, {}), source=source, prefix=name, require=True, error=StationFileError
        )
        for name, owner in owners.items()
    }
    exposure = tables.get("exposure", {})
    handler = data.get("handler")
    address = token = None
    if handler is not None:
        keys = set(handler) if isinstance(handler, Mapping) else set()
        if "address" not in keys or keys - {"address", "token"}:
            raise _fail(source, "handler", 'must be a table with address = "host:port" (and token)')
        token = handler.get("token")
        # One word of printable ASCII: it travels on the handler's line (AUTH <token>).
        printable = isinstance(token, str) and all("!" <= c <= "~" for c in token)
        if token is not None and not (printable and 0 < len(token) <= 256):
            raise _fail(source, "handler.token", "must be 1-256 printable ASCII characters")
        address = handler["address"]
        host, colon, port = str(address).rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _fail(source, "handler.address", f"{address!r} is not host:port")
    speed, epoch = _clock_table(data.get("clock"), source)
    return StationConfig(
        name,
        source,
        roles,
        dict(exposure),
        base_dir,
        address,
        speed,
        epoch,
        handler_token=token,
        tables=tables,
    )


def _declared(cls: type, source: str, where: str) -> Settings:
    """The settings ``cls`` declares, or a one-line refusal naming where it came from."""
    try:
        return declared_settings(cls)
    except TypeError as exc:
        raise _fail(source, where, str(exc)) from None


_COMPOSITES: dict[str, type] | None = None


def composites(*, source: str = "station") -> dict[str, type]:
    """The composites of the ``labctl.composites`` entry-point group: table name -> class.

    Each class declares the keys of the station-file table named like its
    entry point (``exposure``) in ``station_settings``. Loaded once.
    """
    global _COMPOSITES
    if _COMPOSITES is None:
        found: dict[str, type] = {}
        for entry in entry_points(COMPOSITE_GROUP):
            if entry.name in _CORE_TABLES:
                continue  # a composite cannot take over a table of the core
            try:
                found[entry.name] = entry.load()
            except (ImportError, AttributeError) as exc:
                raise _fail(source, entry.name, f"cannot load its composite: {exc}") from None
        _COMPOSITES = dict(sorted(found.items()))
    return dict(_COMPOSITES)


def _clock_table(table: Any, source: str) -> tuple[float | None, float | None]:
    """``[clock] speed = 200.0, epoch = 1795000000.0``: a served bench's time line."""
    if table is None:
        return None, None
    if not isinstance(table, Mapping) or set(table) - {"speed", "epoch"} or "speed" not in table:
        raise _fail(source, "clock", "must be a table with speed (and epoch)")
    speed, epoch = table["speed"], table.get("epoch")
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= 1e6:
        raise _fail(source, "clock.speed", f"{speed!r} is not a number in (0, 1e6]")
    if epoch is not None and (
        isinstance(epoch, bool) or not isinstance(epoch, int | float) or epoch < 0
    ):
        raise _fail(source, "clock.epoch", f"{epoch!r} is not Unix seconds")
    return float(speed), None if epoch is None else float(epoch)


_DRIVERS: dict[str, type] = {}


def resolve_driver(
    name: str, *, source: str = "station", where: str = "driver", allow_import: bool = False
) -> type:
    """Find a driver class by entry-point name, or as ``"module:Class"`` when ``allow_import``.

    Cached: an entry-point scan costs about 6 ms. A ``"module:Class"`` name
    imports and runs that module, so it is refused unless the caller trusts
    the station file explicitly (``--allow-import``), cached or not.
    """
    if ":" in name and not allow_import:
        raise _fail(
            source,
            where,
            f"{name!r} names a module to import (code from the station file); "
            "pass --allow-import if you trust this file, or use a driver installed as "
            f"an entry point ({ENTRY_POINT_GROUP})",
        )
    if name in _DRIVERS:
        return _DRIVERS[name]
    driver = _resolve_driver(name, source=source, where=where)
    _DRIVERS[name] = driver
    return driver


def _resolve_driver(name: str, *, source: str, where: str) -> type:
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            module = importlib.import_module(module_name)
            driver = getattr(module, class_name)
        except (ImportError, AttributeError) as exc:
            raise _fail(source, where, f"cannot load {name!r}: {exc}") from None
    else:
        matches = [e for e in entry_points(ENTRY_POINT_GROUP) if e.name == name]
        if not matches:
            known = sorted({e.name for e in entry_points(ENTRY_POINT_GROUP)})
            raise _fail(source, where, f"unknown driver {name!r}; known: {', '.join(known)}")
        try:
            driver = matches[0].load()
        except (ImportError, AttributeError) as exc:
            raise _fail(source, where, f"cannot load {name!r}: {exc}") from None
    if (
        not isinstance(driver, type)
        or not hasattr(driver, "connect")
        or not hasattr(driver, "link_defaults")
    ):
        raise _fail(source, where, f"{name!r} is not an instrument driver")
    return driver


def link_settings(config: RoleConfig, driver_class: type, *, source: str) -> LinkSettings:
    """The driver's link defaults with the station's ``[link]`` overrides, checked."""
    from .units import U, as_quantity

    defaults: LinkSettings = driver_class.link_defaults  # type: ignore[attr-defined]
    known = {f.name for f in fields(LinkSettings)}
    changes: dict[str, Any] = {}
    for key, value in config.link.items():
        where = f"roles.{config.role}.link.{key}"
        if key not in known:
            raise _fail(source, where, f"unknown link setting; known: {', '.join(sorted(known))}")
        if key in ("timeout", "resync_quiet", "resync_limit"):
            try:
                seconds = float(as_quantity(value, U.s).magnitude)
            except Exception:
                raise _fail(source, where, f'{value!r} is not a time such as "2 s"') from None
            if not 0 < seconds <= 3600:
                raise _fail(source, where, f"{value!r}: allowed more than 0 s up to 3600 s")
            changes[key] = seconds
        elif key == "baud_rate":
            if value not in _BAUD_RATES:
                raise _fail(
                    source, where, f"{value!r} is not one of {', '.join(map(str, _BAUD_RATES))}"
                )
            changes[key] = value
        elif key == "data_bits":
            if value not in (5, 6, 7, 8):
                raise _fail(source, where, f"{value!r} is not 5, 6, 7 or 8")
            changes[key] = value
        elif key == "parity":
            if value not in _PARITIES:
                raise _fail(source, where, f"{value!r} is not one of N, E, O")
            changes[key] = value
        elif key == "stop_bits":
            if value not in (1, 2):
                raise _fail(source, where, f"{value!r} is not 1 or 2")
            changes[key] = value
        elif key == "rtscts":
            if not isinstance(value, bool):
                raise _fail(source, where, f"{value!r} is not true or false")
            changes[key] = value
    return replace(defaults, **changes)


def make_transport(config: RoleConfig, settings: LinkSettings, *, base_dir: Path) -> Transport:
    """The one factory from a resource string to an (unopened) transport."""
    name = f"{config.role} ({config.resource})"
    if config.transport == "bench":
        raise StationFileError(
            "a 'bench' link needs a virtual bench: use `labctl ... --sim`",
            field=f"roles.{config.role}.transport",
        )
    if config.transport == "serial":
        return SerialTransport(config.resource, settings, name=name)
    backend = config.backend
    if backend.endswith("@sim") and len(backend) > 4:
        definitions = Path(backend[:-4])
        if not definitions.is_absolute():
            definitions = base_dir / definitions
        backend = f"{definitions}@sim"
    return VisaTransport(config.resource, settings, backend=backend, name=name)


@dataclass
class RoleStatus:
    """The outcome of connecting one role."""

    role: str
    driver: str
    link: str
    identity: Any = None
    error: LabctlError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Station:
    """A station file made real: one driver per role. No I/O until :meth:`connect`."""

    def __init__(
        self,
        config: StationConfig,
        *,
        clock: Clock | None = None,
        transport_factory: Callable[[RoleConfig, LinkSettings], Transport] | None = None,
    ) -> None:
        self.config = config
        #: How each role's transport is made (None: :func:`make_transport`); a
        #: recording (:mod:`labctl.recording`) builds the station again through it.
        self.transport_factory = transport_factory
        if clock is None and config.clock_speed is not None:
            # A served bench: wait on its time line, not the wall's.
            clock = ScaledClock(config.clock_speed, epoch=config.clock_epoch)
        self.clock = clock or RealClock()
        self.instruments: dict[str, Any] = {}
        for role in ROLES:
            if role not in config.roles:
                continue
            role_config = config.roles[role]
            # Resolved when the file was checked (and trusted, for "module:Class").
            driver_class = role_config.driver_class or resolve_driver(
                role_config.driver, source=config.source, where=f"roles.{role}.driver"
            )
            settings = link_settings(role_config, driver_class, source=config.source)
            if transport_factory is not None:
                transport = transport_factory(role_config, settings)
            else:
                transport = make_transport(role_config, settings, base_dir=config.base_dir)
            self.instruments[role] = driver_class(
                transport, name=role, clock=self.clock, settings=role_config.settings
            )

    @classmethod
    def from_file(
        cls, path: str | Path, *, clock: Clock | None = None, allow_import: bool = False
    ) -> Station:
        """Load and check the file (see :func:`load_station`), then build the drivers; no I/O."""
        return cls(load_station(path, allow_import=allow_import), clock=clock)

    def __getitem__(self, role: str) -> Any:
        return self.instruments[role]

    def connect(self, *, stop_on_error: bool = False) -> list[RoleStatus]:
        """Connect every role in order; return each outcome (errors included)."""
        results = []
        for role, driver in self.instruments.items():
            role_config = self.config.roles[role]
            link = (
                role_config.resource
                if role_config.transport == "visa"
                else f"{role_config.transport} {role_config.resource}"
            )
            status = RoleStatus(role, role_config.driver, link)
            try:
                try:
                    status.identity = driver.connect()
                except CommunicationError:
                    # One silent or garbled reply to the identity query is the
                    # transient fault every other query is retried for; connecting
                    # moves nothing, so once more on a fresh link.
                    driver.close()
                    status.identity = driver.connect()
            except LabctlError as exc:
                status.error = exc
                driver.close()
                if stop_on_error:
                    results.append(status)
                    break
            results.append(status)
        return results

    def close(self) -> None:
        for driver in self.instruments.values():
            driver.close()


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def settings_reference() -> str:
    """The settings every installed driver and composite declares, as Markdown tables.

    ``docs/station-file.md`` holds this text between its ``settings
    reference`` markers; a test checks that the two agree.
    """
    lines = [
        "| driver | setting | type | unit | range | default | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    entries = sorted(
        {e.name: e for e in reversed(entry_points(ENTRY_POINT_GROUP))}.values(),
        key=lambda e: e.name,
    )
    for entry in entries:
        driver = resolve_driver(entry.name)
        rows = declared_settings(driver).reference_rows()
        if not rows:
            lines.append(f"| `{entry.name}` | (none) | | | | | accepts no settings |")
        for index, row in enumerate(rows):
            name = f"`{entry.name}`" if index == 0 else ""
            setting = f"`{row[0]}`" if row[0] else ""
            cells = [_cell(c) for c in row[1:]]
            lines.append("| " + " | ".join([name, setting, *cells]) + " |")
    for table_name, owner in composites().items():
        lines += [
            "",
            f"`[{table_name}]` ({owner.__module__}.{owner.__qualname__}):",
            "",
            "| setting | type | unit | range | default | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for row in declared_settings(owner).reference_rows():
            setting = f"`{row[0]}`" if row[0] else ""
            lines.append("| " + " | ".join([setting, *(_cell(c) for c in row[1:])]) + " |")
    return "\n".join(lines) + "\n"
