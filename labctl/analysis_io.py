"""Files in, analyses out: ``labctl analyze`` on data from any bench.

``labctl analyze contrast FILE`` and ``labctl analyze spin-curve FILE`` run
the analyses labctl runs on its own runs (:func:`labctl.analysis.analyze_contrast`,
:func:`labctl.analysis.analyze_spin_curve`) on a CSV file. The format is
recognised from the header:

* the measurements CSV ``labctl export RUN --format csv`` writes
  (``wafer_id``, ``label``, ``site``, ``thickness_nm``,
  ``dose_delivered_mJ_cm2``, ...). Contrast: ``before`` and ``after`` rows
  paired by run, wafer and site; NRT = after / before, at the delivered
  dose. Spin curve: the mean thickness of each wafer (``after`` rows left
  out) against its coat speed, read from the label a spin-curve run writes
  (``spin 3000 rpm``) or else from the wafer's finished ``coat`` step in
  the steps CSV the export writes beside it (``<run>_steps.csv``, or
  ``--steps FILE``): the measurements CSV itself carries no coat speed.
* a plain table: ``dose_<unit>`` with ``nrt``, or with
  ``thickness_before_<unit>`` and ``thickness_after_<unit>``; for a spin
  curve ``speed_<unit>`` and ``thickness_<unit>``. The unit is part of the
  column's name - ``dose_mJ_cm2``, ``dose [mJ/cm2]``, ``dose (mJ/cm**2)`` -
  and is converted with the labctl registry. A speed in Hz is turns per
  second (1 Hz = 60 rpm), not pint's radians per second.

Everything a user can get wrong in a file - no file, no header, an unknown
column, a cell that is not a number, a value out of range, a unit of the
wrong kind - raises :class:`~labctl.errors.InputError` naming the file and,
where there is one, the line and the column: one line, exit 2 on the
command line.

Only the standard library is imported with this module; pint loads when a
unit is read, numpy and scipy when an analysis runs.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .files import file_bytes
from .names import NumberTextError, parse_float, shown, unit_problem

__all__ = [
    "ContrastInput",
    "FileAnalysis",
    "SpinCurveInput",
    "analyze_contrast_file",
    "analyze_spin_curve_file",
    "read_contrast_csv",
    "read_spin_curve_csv",
    "speed_in_rpm",
]

#: The largest CSV read (bytes): 16 MiB, some 50,000 rows of a labctl export -
#: a contrast or spin curve has tens to thousands of points. Checked before the
#: file is read, so a wrong path to a huge file is one line, not a memory error.
MAX_CSV_BYTES = 16 << 20

#: Columns that make a CSV a ``labctl export`` measurements table.
EXPORT_COLUMNS = ("wafer_id", "label", "site", "thickness_nm")
EXPORT_DOSE = "dose_delivered_mJ_cm2"

#: Column names (lower case, ``_`` for spaces) and the quantity each one holds.
NAMES = {
    "dose": "dose",
    "dose_delivered": "dose",
    "nrt": "nrt",
    "normalized_remaining_thickness": "nrt",
    "thickness_before": "thickness_before",
    "thickness_after": "thickness_after",
    "speed": "speed",
    "spin_speed": "speed",
    "thickness": "thickness",
}
CONTRAST_QUANTITIES = ("dose", "nrt", "thickness_before", "thickness_after")
SPIN_QUANTITIES = ("speed", "thickness")
CONTRAST_ALLOWED = (
    "dose_<unit> with nrt, or with thickness_before_<unit> and thickness_after_<unit>, "
    "e.g. dose_mJ_cm2,nrt; or a labctl export measurements CSV"
)
SPIN_ALLOWED = "speed_<unit> and thickness_<unit>, e.g. speed_rpm,thickness_nm; or a labctl export"
#: NRT is after / before: a film does not double its thickness in development.
NRT_MAXIMUM = 2.0
#: Spin coaters turn within about this range; speeds outside it suggest a wrong unit.
USUAL_SPEEDS_RPM = (200.0, 12000.0)
#: Spin-coated films thin as speed^-b with b about 0.3-0.7.
USUAL_EXPONENT = (0.25, 1.0)


# -- what was read ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContrastInput:
    """The fields of a contrast curve read from a file, as the analysis takes them."""

    source: str
    format: str  # "labctl-export", "dose-nrt" or "dose-thickness"
    doses: list[float]  # delivered, mJ/cm²
    nrt: list[float]  # thickness after / thickness before
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpinCurveInput:
    """The points of a spin curve read from a file, as the analysis takes them."""

    source: str
    format: str  # "labctl-export" or "speed-thickness"
    speeds: list[float]  # rpm
    thicknesses: list[float]  # nm
    #: Wafer of each point (export) or None (plain table).
    wafers: list[str | None]
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileAnalysis:
    """An analysis of one file: the result, what was read, the JSON object, the lines to print."""

    result: Any  # ContrastResult or SpinCurveResult
    data: ContrastInput | SpinCurveInput
    summary: dict[str, Any]
    lines: list[str]

    def to_json(self) -> str:
        """The summary as one JSON object (non-finite numbers as null)."""
        return json.dumps(self.summary, indent=2, allow_nan=False)


# -- the two analyses ------------------------------------------------------------------


def analyze_contrast_file(path: Path | str) -> FileAnalysis:
    """Read a contrast-curve CSV and run the contrast analysis on it."""
    data = read_contrast_csv(path)
    from .analysis import analyze_contrast  # pint and numpy: only for a file that can be used

    try:
        result = analyze_contrast(data.doses, data.nrt)
    except InputError as exc:
        raise InputError(exc.problem, source=data.source, field=exc.field) from None
    summary = dict(result.to_json())
    summary["warnings"] = [*data.warnings, *summary.get("warnings", [])]
    summary["input"] = {
        "file": data.source,
        "format": data.format,
        "fields": len(data.doses),
        **data.details,
    }
    lines = [result.headline(), f"input: {_describe(data, 'fields')}"]
    lines += [f"warning: {w}" for w in summary["warnings"]]
    return FileAnalysis(result, data, _finite(summary), lines)


def analyze_spin_curve_file(path: Path | str, steps: Path | str | None = None) -> FileAnalysis:
    """Read a spin-curve CSV (and, for an export, its steps CSV) and fit ``h = K w^-b``."""
    data = read_spin_curve_csv(path, steps=steps)
    distinct = sorted(set(data.speeds))
    if len(distinct) < 3:
        shown = ", ".join(f"{s:g}" for s in distinct)
        raise InputError(
            f"{len(distinct)} distinct speed(s) ({shown} rpm): a spin curve needs at least 3 "
            "(allowed: 3 or more coat speeds)",
            source=data.source,
        )
    from .analysis import analyze_spin_curve  # pint, numpy, scipy: only for a usable file

    try:
        result = analyze_spin_curve(data.speeds, data.thicknesses)
    except InputError as exc:
        raise InputError(exc.problem, source=data.source, field=exc.field) from None
    warnings = [*data.warnings, *_spin_warnings(result, distinct)]
    b = result.exponent
    points = []
    for speed, thickness, wafer in zip(data.speeds, data.thicknesses, data.wafers, strict=True):
        point: dict[str, Any] = {"speed_rpm": speed, "thickness_nm": thickness}
        if wafer is not None:
            point["wafer"] = wafer
        points.append(point)
    summary: dict[str, Any] = {
        "exponent": b.to_json(),
        "constant": result.constant.to_json(),
        "model": "thickness = constant * (speed / rpm) ** -exponent",
        "residual_sd_log": result.residual_sd,
        "points": points,
        "warnings": warnings,
        "input": {
            "file": data.source,
            "format": data.format,
            "points": len(points),
            **data.details,
        },
    }
    headline = (
        f"spin curve: h = {result.constant.value.magnitude:.4g} nm x rpm^-"
        f"{b.value.magnitude:.3f} (b 95 % CI {b.low.magnitude:.3f}-{b.high.magnitude:.3f}) "
        f"[{len(points)} points, {len(distinct)} speeds]"
    )
    lines = [headline, f"input: {_describe(data, 'points')}"]
    lines += [f"warning: {w}" for w in warnings]
    return FileAnalysis(result, data, _finite(summary), lines)


def _spin_warnings(result: Any, distinct: list[float]) -> list[str]:
    warnings = []
    low, high = USUAL_SPEEDS_RPM
    if distinct[0] < low or distinct[-1] > high:
        warnings.append(
            f"speeds {distinct[0]:.3g}-{distinct[-1]:.3g} rpm lie outside the {low:g}-{high:g} rpm "
            "a spin coater turns: check the unit in the header (1 Hz = 60 rpm)"
        )
    b = result.exponent.value.magnitude
    if not USUAL_EXPONENT[0] <= b <= USUAL_EXPONENT[1]:
        warnings.append(
            f"exponent b = {b:.3f}: spin-coated films thin as speed^-0.3 to speed^-0.7; "
            "check that the thicknesses belong to the speeds"
        )
    return warnings


def _describe(data: ContrastInput | SpinCurveInput, what: str) -> str:
    count = len(data.doses) if isinstance(data, ContrastInput) else len(data.speeds)
    text = f"{count} {what} from {data.source} ({data.format}"
    runs = data.details.get("runs")
    if runs:
        text += f"; run {', '.join(runs)}"
    wafers = data.details.get("wafers")
    if wafers:
        text += f"; wafers {', '.join(wafers)}"
    speeds_from = data.details.get("speeds_from")
    if speeds_from:
        text += f"; speeds from {speeds_from}"
    return text + ")"


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# -- reading a CSV ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    source: str
    header: list[str]
    #: (line number in the file, cells) for every row that is not blank.
    rows: list[tuple[int, list[str]]]
    #: Cells separated by ";" write decimals with a comma (a European spreadsheet).
    decimal_comma: bool = False

    def column(self, name: str) -> int | None:
        return self.header.index(name) if name in self.header else None


def _read_table(path: Path | str, allowed: str) -> _Table:
    """The header and rows of a CSV file; every way the file can be unusable is an InputError."""
    source = str(path)
    path = Path(path)
    if path.is_dir():
        raise InputError("a directory, not a file (allowed: a CSV file)", source=source)
    try:
        raw = file_bytes(path, limit=MAX_CSV_BYTES)  # at most this, never the whole of a larger one
    except FileNotFoundError:
        raise InputError("no such file (allowed: a CSV file)", source=source) from None
    except OSError as exc:
        raise InputError(
            f"cannot be read: {exc.strerror or exc} (allowed: a readable CSV file)", source=source
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            "not UTF-8 text (allowed: a CSV text file)", source=source, field=f"line {line}"
        ) from None
    if "\x00" in text:
        raise InputError("binary data, not text (allowed: a CSV text file)", source=source)
    lines = text.splitlines()
    # A preamble of blank lines and "#" comments may precede the header.
    start = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        None,
    )
    if start is None:
        raise InputError(f"empty (allowed: a header line naming {allowed})", source=source)
    delimiter = _delimiter(lines[start])
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), delimiter=delimiter)
    try:
        header = [cell.strip() for cell in next(reader)]
        body: list[tuple[int, list[str]]] = []
        for cells in reader:
            if any(cell.strip() for cell in cells):
                body.append((start + reader.line_num, [cell.strip() for cell in cells]))
    except csv.Error as exc:
        raise InputError(
            f"not CSV: {exc} (allowed: a CSV file)",
            source=source,
            field=f"line {start + reader.line_num}",
        ) from None
    header_line = start + 1
    # A spreadsheet may end every line with empty cells: they are no columns.
    while header and not header[-1]:
        header.pop()
    body = [(line, _trim(cells, len(header))) for line, cells in body]
    if not header:
        raise InputError(
            f"no header: line {header_line} names no column (allowed: a first line naming "
            f"{allowed})",
            source=source,
        )
    if any(header) and all(_is_number(cell) for cell in header if cell):
        raise InputError(
            f"no header: line {header_line} holds numbers, not column names "
            f"(allowed: a first line naming {allowed})",
            source=source,
        )
    for index, name in enumerate(header):
        if not name:
            raise InputError(
                f"column {index + 1} of the header has no name (allowed: {allowed})",
                source=source,
                field=f"line {header_line}",
            )
        if header.count(name) > 1:
            raise InputError(
                f"column {name!r} appears twice (allowed: each column once)", source=source
            )
    for line, cells in body:
        if len(cells) != len(header):
            raise InputError(
                f"{len(cells)} cells, but the header names {len(header)} columns "
                "(allowed: one cell per column)",
                source=source,
                field=f"line {line}",
            )
    return _Table(source, header, body, decimal_comma=delimiter == ";")


def _trim(cells: list[str], width: int) -> list[str]:
    """``cells`` without empty cells past ``width`` (the header's columns)."""
    while len(cells) > width and not cells[-1]:
        cells = cells[:-1]
    return cells


def _delimiter(header: str) -> str:
    for candidate in (",", "\t", ";"):
        if candidate in header:
            return candidate
    return ","


def _is_number(text: str) -> bool:
    try:
        parse_float(text)
    except ValueError:
        return False
    return True


def _is_export(table: _Table) -> bool:
    return all(name in table.header for name in EXPORT_COLUMNS)


def _looks_like_other_export(table: _Table) -> str | None:
    """A hint when FILE is one of the other tables ``labctl export`` writes."""
    if "run_id" in table.header and "parameters" in table.header:
        return "a labctl export steps CSV"
    if "run_id" in table.header and "channel" in table.header:
        return "a labctl export samples CSV"
    return None


def _number(
    table: _Table,
    line: int,
    cells: list[str],
    index: int,
    allowed: str,
    *,
    minimum: float | None = None,
    strictly: bool = True,
) -> float:
    """The number in one cell, finite and above ``minimum``; otherwise an InputError there."""
    name = table.header[index]
    text = cells[index]
    where = f"line {line}, column {name!r}"
    if not text:
        raise InputError(f"empty cell (allowed: {allowed})", source=table.source, field=where)
    try:
        # ASCII digits, at most 64 characters: float() reads any script's digits
        value = parse_float(text.replace(",", ".") if table.decimal_comma else text)
    except NumberTextError as exc:
        raise InputError(
            f"{shown(text)} {exc.problem} (allowed: {allowed})", source=table.source, field=where
        ) from None
    if not math.isfinite(value):
        raise InputError(
            f"{text} is not a finite number (allowed: {allowed})", source=table.source, field=where
        )
    if minimum is not None and (value <= minimum if strictly else value < minimum):
        problem = "not positive" if strictly and minimum == 0 else "negative"
        raise InputError(
            f"{text} is {problem} (allowed: {allowed})", source=table.source, field=where
        )
    return value


# -- plain tables: a quantity and its unit per column ----------------------------------


@dataclass(frozen=True)
class _Column:
    index: int
    header: str
    quantity: str
    unit: str | None  # as written, None when the header gives none


def _split_header(cell: str) -> tuple[str | None, str | None]:
    """``(quantity, unit text)`` of a header cell; quantity None when the name is unknown.

    ``dose [mJ/cm2]``, ``dose (mJ/cm**2)``, ``dose / mJ cm-2`` and
    ``dose_mJ_cm2`` all give ``("dose", "mJ/cm2")``-like pairs; in the last
    form the first unit word is the numerator and the others divide it.
    """
    bracket = re.fullmatch(r"(.+?)\s*[\[(](.*)[\])]", cell) or re.fullmatch(
        r"(.+?)\s+/\s+(.+)", cell
    )
    if bracket:
        name = _normal(bracket.group(1))
        return NAMES.get(name), bracket.group(2).strip() or None
    key = _normal(cell)
    for name in sorted(NAMES, key=len, reverse=True):
        if key == name:
            return NAMES[name], None
        if key.startswith(name + "_"):
            words = [w for w in cell.strip()[len(name) + 1 :].split("_") if w]
            return NAMES[name], _unit_from_words(words)
    return None, None


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _unit_from_words(words: list[str]) -> str | None:
    """``["mJ", "cm2"]`` -> ``"mJ/cm2"``; ``["mJ", "per", "cm2"]`` too."""
    words = [w for w in words if w.lower() != "per"]
    if not words:
        return None
    return "/".join(words)


def _columns(table: _Table, accepted: Sequence[str], allowed: str, other: str) -> list[_Column]:
    columns = []
    for index, cell in enumerate(table.header):
        quantity, unit = _split_header(cell)
        if quantity is None:
            hint = _looks_like_other_export(table)
            if hint:
                raise InputError(
                    f"this is {hint}; give the measurements CSV (<run>_measurements.csv) "
                    f"(allowed: {allowed})",
                    source=table.source,
                )
            raise InputError(f"unknown column {cell!r} (allowed: {allowed})", source=table.source)
        if quantity not in accepted:
            raise InputError(
                f"column {cell!r} belongs to a {other} (allowed here: {allowed})",
                source=table.source,
            )
        columns.append(_Column(index, cell, quantity, unit))
    seen: dict[str, str] = {}
    for column in columns:
        if column.quantity in seen:
            raise InputError(
                f"columns {seen[column.quantity]!r} and {column.header!r} both give the "
                f"{column.quantity.replace('_', ' ')} (allowed: one column each)",
                source=table.source,
            )
        seen[column.quantity] = column.header
    return columns


def _unit_scale(column: _Column, source: str, kind: str) -> float:
    """Factor that turns the column's numbers into labctl's unit for ``kind``.

    ``kind``: "dose" (to mJ/cm², optical doses only), "length" (to nm),
    "speed" (to rpm, see :func:`speed_in_rpm`) or "fraction" (NRT, to 1).
    """
    where = f"column {column.header!r}"
    examples = {
        "dose": "an optical dose, energy per area, e.g. dose_mJ_cm2 or 'dose [J/m2]'",
        "length": f"a length, e.g. {column.quantity}_nm or '{column.quantity} [um]'",
        "speed": "a spin speed, e.g. speed_rpm or speed_hz",
        "fraction": "no unit, '1' or '%'",
    }
    if column.unit is None:
        if kind == "fraction":
            return 1.0
        raise InputError(
            f"no unit in the column's name (allowed: {examples[kind]})", source=source, field=where
        )
    unit = _parse_unit(column.unit, source, where, examples[kind])
    from .units import DOSE_ELECTRON, DOSE_OPTICAL, Q_, U

    one = Q_(1.0, unit)
    shown = f"{unit:~P}" or "1"
    if kind == "dose":
        if unit.dimensionality == DOSE_OPTICAL:
            return float(one.m_as(U.mJ_per_cm2))
        what = (
            "an electron dose (charge per area)"
            if unit.dimensionality == DOSE_ELECTRON
            else "not a dose"
        )
        raise InputError(
            f"{shown} is {what}; the contrast analysis takes {examples['dose']} "
            "(allowed: mJ/cm2, J/m2, ...)",
            source=source,
            field=where,
        )
    if kind == "length":
        if unit.dimensionality == U.nm.dimensionality:
            return float(one.m_as(U.nm))
        raise InputError(
            f"{shown} is not a length (allowed: {examples[kind]})", source=source, field=where
        )
    if kind == "speed":
        try:
            return float(speed_in_rpm(1.0, unit))
        except ValueError:
            raise InputError(
                f"{shown} is not a speed (allowed: {examples[kind]}; rpm, Hz, 1/s)",
                source=source,
                field=where,
            ) from None
    if unit.dimensionality == U.dimensionless.dimensionality:
        return float(one.m_as(U.dimensionless))
    raise InputError(
        f"{shown} is not a fraction: NRT has no unit (allowed: {examples[kind]})",
        source=source,
        field=where,
    )


def _parse_unit(text: str, source: str, where: str, allowed: str) -> Any:
    """A pint unit from header text: ``cm2`` is cm², ``hz`` is Hz, ``rev`` a revolution."""
    import pint

    from .units import ureg

    if text.strip() in ("1", "-", ""):
        return ureg.dimensionless
    written = text.replace("μ", "µ").replace("·", "*")
    written = re.sub(r"\brev\b", "revolution", written)
    written = re.sub(r"(?<=[A-Za-zµ])(-?\d+)\b", r"**\1", written)  # cm2 -> cm**2
    problem = unit_problem(written)  # before pint, which evaluates cm**9**9**9 without bound
    if problem is not None:
        raise InputError(
            f"{shown(text)} {problem} (allowed: {allowed})", source=source, field=where
        )
    for _ in range(8):  # each pass fixes the case of one word
        try:
            parsed = ureg.parse_units(written)
        except pint.UndefinedUnitError as exc:
            word = str(exc.unit_names if isinstance(exc.unit_names, str) else exc.unit_names[0])
            candidates = ureg.parse_unit_name(word, case_sensitive=False)
            if len(candidates) != 1:
                raise InputError(
                    f"unknown unit {word!r} (allowed: {allowed})", source=source, field=where
                ) from None
            prefix, name, suffix = candidates[0]
            written = re.sub(rf"\b{re.escape(word)}\b", prefix + name + suffix, written)
            continue
        except Exception:  # pint's parser raises many kinds on garbage; all mean "not a unit"
            break
        return parsed
    raise InputError(f"{text!r} is not a unit (allowed: {allowed})", source=source, field=where)


def speed_in_rpm(value: float, unit: Any) -> float:
    """``value`` of a rotation speed in ``unit`` (a pint unit or its text), in rpm.

    A frequency without an angle (Hz, 1/s, 1/min) counts turns: 1 Hz = 60 rpm.
    pint alone would read Hz as radians per second and give 9.55 rpm. Units
    with an angle (rpm, rps, rad/s, deg/s) convert as pint says. Raises
    :class:`ValueError` for a unit that is not a speed.
    """
    import pint

    from .units import Q_, to_rpm, ureg

    if isinstance(unit, str):
        problem = unit_problem(unit)  # before pint, which evaluates s**9**9**9 without bound
        if problem is not None:
            raise ValueError(f"{shown(unit)} {problem}")
        unit = ureg.parse_units(unit)
    try:
        return float(to_rpm(Q_(value, unit)).magnitude)
    except pint.DimensionalityError:
        raise ValueError(f"{unit:~P} is not a rotation speed") from None


def _plain_values(
    table: _Table,
    column: _Column,
    allowed: str,
    *,
    minimum: float,
    strictly: bool,
) -> list[float]:
    return [
        _number(table, line, cells, column.index, allowed, minimum=minimum, strictly=strictly)
        for line, cells in table.rows
    ]


# -- contrast ----------------------------------------------------------------------------


def read_contrast_csv(path: Path | str) -> ContrastInput:
    """Delivered doses (mJ/cm²) and NRT from a contrast-curve CSV (see the module docstring)."""
    table = _read_table(path, CONTRAST_ALLOWED)
    if _is_export(table):
        return _contrast_from_export(table)
    columns = {
        c.quantity: c
        for c in _columns(
            table,
            CONTRAST_QUANTITIES,
            CONTRAST_ALLOWED,
            "spin curve: use labctl analyze spin-curve",
        )
    }
    has_thickness = "thickness_before" in columns or "thickness_after" in columns
    if "dose" not in columns:
        raise InputError(f"no dose column (allowed: {CONTRAST_ALLOWED})", source=table.source)
    if "nrt" in columns and has_thickness:
        raise InputError(
            f"both nrt and thickness columns: give one or the other (allowed: {CONTRAST_ALLOWED})",
            source=table.source,
        )
    if "nrt" not in columns and not (
        "thickness_before" in columns and "thickness_after" in columns
    ):
        missing = "thickness_before" if "thickness_after" in columns else "thickness_after"
        what = f"no {missing} column" if has_thickness else "no nrt column"
        raise InputError(f"{what} (allowed: {CONTRAST_ALLOWED})", source=table.source)
    if not table.rows:
        raise InputError("a header but no rows (allowed: one row per field)", source=table.source)
    doses = _plain_values(table, columns["dose"], "a dose > 0", minimum=0.0, strictly=True)
    if "nrt" in columns:
        nrt = _plain_values(table, columns["nrt"], "an NRT >= 0", minimum=0.0, strictly=False)
        nrt_scale = _unit_scale(columns["nrt"], table.source, "fraction")
        nrt = [v * nrt_scale for v in nrt]
        for (line, _), value in zip(table.rows, nrt, strict=True):
            if value > NRT_MAXIMUM:
                raise InputError(
                    f"NRT {value:g} is more than {NRT_MAXIMUM:g}: NRT is thickness after / "
                    "before (allowed: 0 to 2; a percentage as 'nrt [%]'; thicknesses as "
                    "thickness_before_nm,thickness_after_nm)",
                    source=table.source,
                    field=f"line {line}, column {columns['nrt'].header!r}",
                )
        form = "dose-nrt"
    else:
        before = _plain_values(
            table,
            columns["thickness_before"],
            "a thickness > 0",
            minimum=0.0,
            strictly=True,
        )
        after = _plain_values(
            table,
            columns["thickness_after"],
            "a thickness >= 0",
            minimum=0.0,
            strictly=False,
        )
        before_scale = _unit_scale(columns["thickness_before"], table.source, "length")
        after_scale = _unit_scale(columns["thickness_after"], table.source, "length")
        nrt = [a * after_scale / (b * before_scale) for a, b in zip(after, before, strict=True)]
        form = "dose-thickness"
    dose_scale = _unit_scale(columns["dose"], table.source, "dose")
    return ContrastInput(
        source=table.source,
        format=form,
        doses=[d * dose_scale for d in doses],
        nrt=nrt,
        details={"dose_column": columns["dose"].header},
    )


def _contrast_from_export(table: _Table) -> ContrastInput:
    """Pair ``before`` and ``after`` rows by run, wafer and site: NRT at the delivered dose."""
    if EXPORT_DOSE not in table.header:
        raise InputError(
            f"a labctl export without the {EXPORT_DOSE} column (allowed: the measurements CSV "
            "of labctl export)",
            source=table.source,
        )
    rows = _export_rows(table)
    before: dict[tuple[str, str, str], tuple[int, float]] = {}
    for row in rows:
        if row.label == "before":
            before[(row.run, row.wafer, row.site)] = (row.line, row.thickness)
    doses: list[float] = []
    nrt: list[float] = []
    no_dose: list[str] = []
    no_before: list[str] = []
    wafers: list[str] = []
    for row in rows:
        if row.label != "after":
            continue
        if row.dose is None:
            no_dose.append(f"{row.wafer} {row.site}")
            continue
        found = before.get((row.run, row.wafer, row.site))
        if found is None:
            no_before.append(f"{row.wafer} {row.site}")
            continue
        line, thickness = found
        if thickness <= 0:
            raise InputError(
                f"'before' thickness {thickness:g} nm cannot normalize the field "
                f"{row.wafer} {row.site} (allowed: a thickness > 0)",
                source=table.source,
                field=f"line {line}, column 'thickness_nm'",
            )
        doses.append(row.dose)
        nrt.append(row.thickness / thickness)
        if row.wafer not in wafers:
            wafers.append(row.wafer)
    if not doses:
        labels = sorted({row.label for row in rows})
        hint = (
            "; a spin curve? use labctl analyze spin-curve"
            if any(label.startswith("spin ") for label in labels)
            else ""
        )
        raise InputError(
            "no 'before'/'after' pairs with a delivered dose (labels here: "
            f"{', '.join(labels) or 'none'}{hint}) (allowed: the export of a contrast-curve "
            "or claim14 run)",
            source=table.source,
        )
    warnings = []
    if no_before:
        warnings.append(
            f"{len(no_before)} 'after' site(s) without a 'before' measurement left out: "
            f"{_some(no_before)}"
        )
    if no_dose:
        warnings.append(
            f"{len(no_dose)} 'after' site(s) without a delivered dose (unexposed) left out: "
            f"{_some(no_dose)}"
        )
    return ContrastInput(
        source=table.source,
        format="labctl-export",
        doses=doses,
        nrt=nrt,
        warnings=warnings,
        details={"runs": sorted({row.run for row in rows if row.run}), "wafers": wafers},
    )


def _some(items: list[str], shown: int = 4) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


@dataclass(frozen=True)
class _ExportRow:
    line: int
    run: str
    wafer: str
    label: str
    site: str
    thickness: float  # nm
    dose: float | None  # delivered, mJ/cm²


def _export_rows(table: _Table) -> list[_ExportRow]:
    if not table.rows:
        raise InputError(
            "a header but no measurements (allowed: the export of a run that measured)",
            source=table.source,
        )
    index = {name: table.header.index(name) for name in EXPORT_COLUMNS}
    run_index = table.column("run_id")
    dose_index = table.column(EXPORT_DOSE)
    rows = []
    for line, cells in table.rows:
        dose = None
        if dose_index is not None and cells[dose_index]:
            dose = _number(table, line, cells, dose_index, "a dose > 0", minimum=0.0)
        rows.append(
            _ExportRow(
                line=line,
                run=cells[run_index] if run_index is not None else "",
                wafer=cells[index["wafer_id"]],
                label=cells[index["label"]],
                site=cells[index["site"]],
                thickness=_number(
                    table,
                    line,
                    cells,
                    index["thickness_nm"],
                    "a thickness >= 0",
                    minimum=0.0,
                    strictly=False,
                ),
                dose=dose,
            )
        )
    return rows


# -- spin curve --------------------------------------------------------------------------


def read_spin_curve_csv(path: Path | str, steps: Path | str | None = None) -> SpinCurveInput:
    """Coat speeds (rpm) and thicknesses (nm) from a spin-curve CSV (see the module docstring).

    ``steps``: the steps CSV of an export, for wafers whose measurements do not
    name their coat speed; by default ``<run>_steps.csv`` beside ``path``.
    """
    table = _read_table(path, SPIN_ALLOWED)
    if _is_export(table):
        return _spin_from_export(table, steps)
    columns = {
        c.quantity: c
        for c in _columns(
            table, SPIN_QUANTITIES, SPIN_ALLOWED, "contrast curve: use labctl analyze contrast"
        )
    }
    for needed in SPIN_QUANTITIES:
        if needed not in columns:
            raise InputError(f"no {needed} column (allowed: {SPIN_ALLOWED})", source=table.source)
    if not table.rows:
        raise InputError("a header but no rows (allowed: one row per wafer)", source=table.source)
    speeds = _plain_values(table, columns["speed"], "a speed > 0", minimum=0.0, strictly=True)
    thicknesses = _plain_values(
        table, columns["thickness"], "a thickness > 0", minimum=0.0, strictly=True
    )
    speed_scale = _unit_scale(columns["speed"], table.source, "speed")
    thickness_scale = _unit_scale(columns["thickness"], table.source, "length")
    return SpinCurveInput(
        source=table.source,
        format="speed-thickness",
        speeds=[s * speed_scale for s in speeds],
        thicknesses=[t * thickness_scale for t in thicknesses],
        wafers=[None] * len(speeds),
        details={"speed_column": columns["speed"].header},
    )


_SPIN_LABEL = re.compile(r"spin\s+([-+0-9.eE]+)\s*(\S.*)")


def _spin_from_export(table: _Table, steps: Path | str | None) -> SpinCurveInput:
    """Mean thickness per wafer (``after`` rows left out) against the wafer's coat speed."""
    rows = _export_rows(table)
    films: dict[tuple[str, str], list[float]] = {}
    labelled: dict[tuple[str, str], float] = {}
    for row in rows:
        if row.label == "after":  # developed film, not the coated one
            continue
        key = (row.run, row.wafer)
        if row.thickness <= 0:
            raise InputError(
                f"thickness {row.thickness:g} nm of a coated film (allowed: a thickness > 0)",
                source=table.source,
                field=f"line {row.line}, column 'thickness_nm'",
            )
        films.setdefault(key, []).append(row.thickness)
        speed = _label_speed(table, row)
        if speed is not None:
            if key in labelled and not math.isclose(labelled[key], speed):
                raise InputError(
                    f"wafer {row.wafer} is labelled with two speeds, {labelled[key]:g} and "
                    f"{speed:g} rpm (allowed: one coat speed per wafer)",
                    source=table.source,
                    field=f"line {row.line}, column 'label'",
                )
            labelled[key] = speed
    if not films:
        raise InputError(
            "no measurement of a coated film: every row is labelled 'after' "
            "(allowed: the export of a spin-curve run)",
            source=table.source,
        )
    speeds = dict(labelled)
    speeds_from = "labels"
    unlabelled = [key for key in films if key not in speeds]
    if unlabelled:
        steps_files = _steps_files(table, steps, unlabelled, rows)
        coated: dict[tuple[str, str], float] = {}
        for steps_file in steps_files:
            coated.update(_coat_speeds(steps_file))
        for key in unlabelled:
            speeds[key] = _coat_speed_of(key, coated, table, steps_files)
        named = ", ".join(str(p) for p in steps_files)
        speeds_from = f"labels and {named}" if labelled else named
    keys = list(films)
    return SpinCurveInput(
        source=table.source,
        format="labctl-export",
        speeds=[speeds[key] for key in keys],
        thicknesses=[sum(films[key]) / len(films[key]) for key in keys],
        wafers=[wafer for _, wafer in keys],
        details={
            "runs": sorted({run for run, _ in keys if run}),
            "wafers": [wafer for _, wafer in keys],
            "speeds_from": speeds_from,
        },
    )


def _steps_files(
    table: _Table,
    steps: Path | str | None,
    unlabelled: list[tuple[str, str]],
    rows: Sequence[_ExportRow],
) -> list[Path]:
    """The steps CSV(s) that give the coat speeds: ``steps``, or the export's own beside FILE."""
    if steps is not None:
        return [Path(steps)]
    labels = ", ".join(sorted({row.label for row in rows})[:4])
    runs = sorted({run for run, _ in unlabelled})
    files = [Path(table.source).parent / f"{run}_steps.csv" for run in runs if run]
    missing = [p for p in files if not p.is_file()]
    if not files or missing:
        beside = f"; {missing[0]} is not there" if missing else ""
        raise InputError(
            f"no coat speed for wafer {unlabelled[0][1]}: the measurements CSV names none "
            f"outside spin-curve runs (labels here: {labels}){beside} (allowed: the steps CSV "
            "labctl export wrote beside it, <run>_steps.csv, or --steps FILE)",
            source=table.source,
        )
    return files


def _coat_speed_of(
    key: tuple[str, str],
    coated: dict[tuple[str, str], float],
    table: _Table,
    steps_files: list[Path],
) -> float:
    """The coat speed of wafer ``key`` (run, wafer); by wafer alone where a file has no run."""
    if key in coated:
        return coated[key]
    run, wafer = key
    found = {v for (r, w), v in coated.items() if w == wafer and (not r or not run)}
    if len(found) == 1:
        return found.pop()
    raise InputError(
        f"wafer {wafer} has no finished coat step in "
        f"{', '.join(str(p) for p in steps_files)} (allowed: the steps CSV of the same run)",
        source=table.source,
    )


def _label_speed(table: _Table, row: _ExportRow) -> float | None:
    """The speed in a ``spin 3000 rpm`` label, in rpm; None for any other label."""
    match = _SPIN_LABEL.fullmatch(row.label)
    if match is None:
        return None
    where = f"line {row.line}, column 'label'"
    allowed = "a label such as 'spin 3000 rpm'"
    unit = _parse_unit(match.group(2), table.source, where, allowed)
    try:
        speed = speed_in_rpm(parse_float(match.group(1)), unit)
    except ValueError:
        raise InputError(
            f"{row.label!r} does not give a speed (allowed: {allowed})",
            source=table.source,
            field=where,
        ) from None
    if not (math.isfinite(speed) and speed > 0):
        raise InputError(
            f"{row.label!r}: the speed is not positive (allowed: {allowed})",
            source=table.source,
            field=where,
        )
    return speed


def _coat_speed_cell(cell: str) -> tuple[Any, Any]:
    """(value, unit) of the coat speed in a steps CSV's ``parameters`` cell.

    The export writes JSON with quantities as ``{"value": ..., "unit": ...}``;
    exports made before it wrote a Python repr with ``{'__quantity__': [value, unit]}``.
    """
    try:
        speed = json.loads(cell)["speed"]
        return speed["value"], speed["unit"]
    except (ValueError, TypeError, KeyError):
        value, unit = ast.literal_eval(cell)["speed"]["__quantity__"]
        return value, unit


def _coat_speeds(path: Path) -> dict[tuple[str, str], float]:
    """``{(run, wafer): coat speed in rpm}`` from the finished coat steps of a steps CSV."""
    table = _read_table(path, "the steps CSV of labctl export (name, wafer_id, parameters)")
    needed = ("name", "wafer_id", "status", "parameters")
    missing = [name for name in needed if name not in table.header]
    if missing:
        raise InputError(
            f"no {missing[0]} column: not the steps CSV of labctl export "
            f"(allowed: a CSV with columns {', '.join(needed)})",
            source=table.source,
        )
    index: Callable[[str], int] = table.header.index
    run_index = table.column("run_id")
    speeds: dict[tuple[str, str], float] = {}
    for line, cells in table.rows:
        if cells[index("name")] != "coat" or cells[index("status")] != "finished":
            continue
        where = f"line {line}, column 'parameters'"
        allowed = "the coat step's parameters as labctl export writes them"
        try:
            value, unit = _coat_speed_cell(cells[index("parameters")])
            number = parse_float(value) if isinstance(value, str) else value
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise TypeError(f"{shown(value)} is not a number")
            speed = speed_in_rpm(float(number), str(unit))
        except Exception:  # a hand-edited cell can fail in many ways; each means "no speed"
            raise InputError(
                f"no coat speed in {cells[index('parameters')][:60]!r} (allowed: {allowed})",
                source=table.source,
                field=where,
            ) from None
        if not (math.isfinite(speed) and speed > 0):
            raise InputError(
                f"coat speed {speed:g} rpm is not positive (allowed: {allowed})",
                source=table.source,
                field=where,
            )
        run = cells[run_index] if run_index is not None else ""
        speeds[(run, cells[index("wafer_id")])] = speed
    return speeds
