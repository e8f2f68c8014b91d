"""Formulation files: the composition of a negative resist, its math, and the claim check.

A formulation file (TOML, data only; format in ``docs/formulation-file.md``)
lists the components of one resist by role - alkali-soluble resin (A) with
its repeating units, cross-linkers (B-1) and (B-2), acid generator (C),
nitrogen-containing base (D), surfactant, solvents - with amounts (masses or
parts by weight), molecular weights and the structure fields the patent
claims in ``shared/seed/`` ask about.

* :func:`load_formulation` validates a file and raises
  :class:`~labctl.errors.FormulationError` naming the file and field;
* :meth:`Formulation.composition` gives total solids, wt % of solids, moles,
  the B-1/B-2 mole ratio and the solids content, as pint quantities;
* :meth:`Formulation.check_claims` gives a verdict for each of claims 1-13
  (met, not_met, undetermined) with a one-line reason;
* :meth:`Formulation.content_hash` identifies the composition: formatting,
  order, units and batch size do not change it; any change of substance does.

The claim check trusts the structure fields (which formula a unit is, how
many benzene rings, which groups); it does not parse chemical structures.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import FormulationError
from .files import read_toml
from .names import quantity_problem, shown
from .units import Q_, U, format_quantity, ureg

__all__ = [
    "ROLES",
    "ClaimVerdict",
    "Component",
    "Formulation",
    "RepeatingUnit",
    "load_formulation",
    "parse_formulation",
]

#: Component roles, in the order they are listed.
ROLES = (
    "resin",
    "crosslinker_b1",
    "crosslinker_b2",
    "acid_generator",
    "base",
    "surfactant",
    "solvent",
)
SOLID_ROLES = ROLES[:-1]

# Parts by weight: a relative mass, its own dimension so it never mixes with grams.
if "part_by_weight" not in ureg:
    ureg.define("part_by_weight = [relative_mass] = pbw = parts = part")
PARTS = ureg.Unit("part_by_weight")
GRAM = ureg.Unit("g")
GRAM_PER_MOLE = ureg.Unit("g/mol")
MOLE = ureg.Unit("mol")

#: Vocabulary of the claims (seed text), per substituent.
SUBSTITUENT_A = ("hydrogen", "alkyl", "halogen", "cyano")
SUBSTITUENT_R1 = (
    "hydrogen",
    "halogen",
    "alkyl",
    "alkenyl",
    "cycloalkyl",
    "aryl",
    "aralkyl",
    "alkoxy",
    "alkylcarbonyloxy",
)
SUBSTITUENT_R101 = (
    "hydroxyl",
    "halogen",
    "alkyl",
    "alkoxy",
    "alkylcarbonyloxy",
    "alkylsulfonyloxy",
    "alkenyl",
    "aryl",
    "aralkyl",
    "carboxyl",
)
LINK_X = ("single_bond", "COO", "O", "CON(R16)")
SUBSTITUENT_R16 = ("hydrogen", "alkyl")
CROSSLINKING_GROUPS = ("hydroxymethyl", "alkoxymethyl", "acyloxymethyl")
B2_R_GROUPS = ("hydrogen", "alkyl", "alkylcarbonyl")
B2_SKELETONS = ("melamine", "urea", "imidazolidine", "glycoluril")

#: Substituent keys each formula takes.
UNIT_KEYS: dict[str, tuple[str, ...]] = {
    "3": ("A", "R1", "R2", "n"),
    "4": ("A", "R11", "R12", "R13", "R14", "R15"),
    "5": (
        "A",
        "X",
        "R16",
        "R101",
        "R102",
        "R103",
        "R104",
        "R105",
        "R106",
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
    ),
    "6": (),
    # a unit outside the claim formulas (for example an acrylate): no substituents
    "other": (),
}
_COMMON_KEYS = {"role", "name", "lot", "amount", "molecular_weight", "notes"}
_ROLE_KEYS: dict[str, set[str]] = {
    "resin": {"units"},
    "crosslinker_b1": {"phenol", "benzene_rings", "crosslinking_groups"},
    "crosslinker_b2": {"skeleton", "form", "formula1_groups", "formula2_groups", "r_groups"},
    "acid_generator": {"kind"},
    "base": {"nitrogen_containing"},
    "surfactant": {"kind"},
    "solvent": set(),
}
#: Tolerance of the mol % sum (mol %).
MOL_PERCENT_TOLERANCE = 0.01
#: Relative tolerance at claim boundaries: float noise, never a real difference.
BOUNDARY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RepeatingUnit:
    """One repeating unit of the resin: which claim formula, mol %, substituents."""

    formula: str
    mol_percent: float
    substituents: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Component:
    """One component: role, identity, amount, and its structure fields."""

    role: str
    name: str
    amount: Any
    lot: str = ""
    molecular_weight: Any = None
    notes: str = ""
    units: tuple[RepeatingUnit, ...] = ()
    structure: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_solid(self) -> bool:
        return self.role != "solvent"


@dataclass(frozen=True)
class ClaimVerdict:
    """The verdict on one claim: ``met``, ``not_met`` or ``undetermined``, and why."""

    claim: int
    verdict: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"verdict": self.verdict, "reason": self.reason}


def _fail(source: str, where: str, problem: str) -> FormulationError:
    return FormulationError(problem, source=source, field=where)


def load_formulation(path: str | Path) -> Formulation:
    """Read and validate a formulation file."""
    return parse_formulation(read_toml(path, FormulationError), source=str(path))


def _quantity(raw: Any, unit_kinds: tuple[Any, ...], source: str, where: str, what: str) -> Any:
    if not isinstance(raw, str):
        raise _fail(source, where, f'{raw!r} needs a unit: write it as a string like "{what}"')
    problem = quantity_problem(raw.strip())
    if problem is not None:  # before pint: long numbers, other scripts' digits, 9**9**9
        raise _fail(source, where, f'{shown(raw)} {problem}; write it like "{what}"')
    try:
        quantity: Any = ureg.Quantity(raw)
    except Exception:
        raise _fail(source, where, f'{raw!r} is not a quantity like "{what}"') from None
    if not isinstance(quantity, ureg.Quantity) or not any(
        quantity.dimensionality == kind.dimensionality for kind in unit_kinds
    ):
        raise _fail(
            source, where, f'{raw!r} has the wrong dimension; expected something like "{what}"'
        )
    if not math.isfinite(quantity.magnitude):
        raise _fail(source, where, f"{raw!r} is not a finite number")
    return quantity


def _integer(raw: Any, source: str, where: str, low: int, high: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _fail(source, where, f"{raw!r} is not a whole number")
    if raw < low or (high is not None and raw > high):
        limit = f"{low} to {high}" if high is not None else f"at least {low}"
        raise _fail(source, where, f"{raw} is outside {limit}")
    return raw


def _word(raw: Any, source: str, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(source, where, f"{raw!r} is not a non-empty string")
    return raw.strip()


def parse_formulation(data: Mapping[str, Any], *, source: str = "formulation") -> Formulation:
    """Validate a parsed formulation table."""
    unknown = set(data) - {"formulation", "components"}
    if unknown:
        raise _fail(source, sorted(unknown)[0], "unknown table; allowed: formulation, components")
    header = data.get("formulation", {})
    if not isinstance(header, Mapping):
        raise _fail(source, "formulation", "must be a table")
    extra = set(header) - {"name", "notes", "date", "author"}
    if extra:
        raise _fail(
            source,
            f"formulation.{sorted(extra)[0]}",
            "unknown key; allowed: name, notes, date, author",
        )
    name = _word(header.get("name", Path(source).stem), source, "formulation.name")
    notes = header.get("notes", "")
    if not isinstance(notes, str):
        raise _fail(source, "formulation.notes", "must be a string")
    raw_components = data.get("components")
    if not isinstance(raw_components, list) or not raw_components:
        raise _fail(source, "components", "missing: list each component as a [[components]] table")
    components = tuple(
        _parse_component(raw, index, source) for index, raw in enumerate(raw_components)
    )
    amount_kinds = {c.amount.dimensionality == PARTS.dimensionality for c in components}
    if len(amount_kinds) > 1:
        raise _fail(
            source,
            "components.amount",
            "amounts mix masses and parts by weight; use one or the other",
        )
    formulation = Formulation(name=name, notes=notes, source=source, components=components)
    if formulation.by_role("crosslinker_b1") and formulation.by_role("crosslinker_b2"):
        for component in (
            *formulation.by_role("crosslinker_b1"),
            *formulation.by_role("crosslinker_b2"),
        ):
            if component.molecular_weight is None:
                index = components.index(component)
                raise _fail(
                    source,
                    f"components[{index}].molecular_weight",
                    f"missing for {component.name!r}: the B-1/B-2 mole ratio (claim 13) needs it",
                )
    if not any(c.is_solid for c in components):
        raise _fail(source, "components", "no solid component: nothing to form a film")
    return formulation


def _parse_component(raw: Any, index: int, source: str) -> Component:
    where = f"components[{index}]"
    if not isinstance(raw, Mapping):
        raise _fail(source, where, "must be a table")
    role = raw.get("role")
    if role not in ROLES:
        raise _fail(source, f"{where}.role", f"{role!r} is not a role; roles: {', '.join(ROLES)}")
    allowed = _COMMON_KEYS | _ROLE_KEYS[role]
    extra = set(raw) - allowed
    if extra:
        raise _fail(
            source,
            f"{where}.{sorted(extra)[0]}",
            f"unknown key for a {role}; allowed: {', '.join(sorted(allowed))}",
        )
    name = _word(raw.get("name"), source, f"{where}.name")
    if "amount" not in raw:
        raise _fail(source, f"{where}.amount", "missing")
    amount = _quantity(raw["amount"], (GRAM, PARTS), source, f"{where}.amount", "10 g")
    if amount.magnitude <= 0:
        raise _fail(source, f"{where}.amount", f"{raw['amount']!r} must be more than zero")
    weight = None
    if "molecular_weight" in raw:
        weight = _quantity(
            raw["molecular_weight"],
            (GRAM_PER_MOLE,),
            source,
            f"{where}.molecular_weight",
            "390.5 g/mol",
        )
        if weight.magnitude <= 0:
            raise _fail(source, f"{where}.molecular_weight", "must be more than zero")
    lot = raw.get("lot", "")
    if not isinstance(lot, str | int):
        raise _fail(source, f"{where}.lot", "must be a string")
    notes = raw.get("notes", "")
    units: tuple[RepeatingUnit, ...] = ()
    structure: dict[str, Any] = {}
    if role == "resin":
        units = _parse_units(raw.get("units", []), f"{where}.units", source)
    elif role == "crosslinker_b1":
        structure = _parse_b1(raw, where, source)
    elif role == "crosslinker_b2":
        structure = _parse_b2(raw, where, source)
    elif role == "base":
        value = raw.get("nitrogen_containing", True)
        if not isinstance(value, bool):
            raise _fail(source, f"{where}.nitrogen_containing", "must be true or false")
        structure = {"nitrogen_containing": value}
    elif role in ("acid_generator", "surfactant") and "kind" in raw:
        structure = {"kind": _word(raw["kind"], source, f"{where}.kind")}
    return Component(role, name, amount, str(lot), weight, str(notes), units, structure)


def _parse_units(raw: Any, where: str, source: str) -> tuple[RepeatingUnit, ...]:
    if not isinstance(raw, list):
        raise _fail(source, where, "must be a list of [[components.units]] tables")
    units = []
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(source, here, "must be a table")
        formula = str(item.get("formula", ""))
        if formula not in UNIT_KEYS:
            raise _fail(
                source,
                f"{here}.formula",
                f"{item.get('formula')!r} is not one of 3, 4, 5, 6, other",
            )
        mol_percent = item.get("mol_percent")
        if isinstance(mol_percent, bool) or not isinstance(mol_percent, int | float):
            raise _fail(source, f"{here}.mol_percent", f"{mol_percent!r} is not a number")
        if not 0 < mol_percent <= 100:
            raise _fail(source, f"{here}.mol_percent", f"{mol_percent} is outside 0 to 100")
        substituents = {k: v for k, v in item.items() if k not in ("formula", "mol_percent")}
        allowed = UNIT_KEYS[formula]
        extra = set(substituents) - set(allowed) - {"name"}
        if extra:
            raise _fail(
                source,
                f"{here}.{sorted(extra)[0]}",
                f"formula ({formula}) has no such substituent; "
                f"it has: {', '.join(allowed) or 'none recorded'}",
            )
        for key in ("n", "a", "b", "c", "d", "e", "f"):
            if key in substituents:
                _integer(substituents[key], source, f"{here}.{key}", 0)
        units.append(RepeatingUnit(formula, float(mol_percent), dict(substituents)))
    if units:
        total = sum(u.mol_percent for u in units)
        if abs(total - 100.0) > MOL_PERCENT_TOLERANCE:
            raise _fail(source, where, f"mol % of the repeating units sum to {total:g}, not 100")
    return tuple(units)


def _parse_b1(raw: Mapping[str, Any], where: str, source: str) -> dict[str, Any]:
    structure: dict[str, Any] = {}
    if "phenol" in raw:
        if not isinstance(raw["phenol"], bool):
            raise _fail(source, f"{where}.phenol", "must be true or false")
        structure["phenol"] = raw["phenol"]
    if "benzene_rings" in raw:
        structure["benzene_rings"] = _integer(
            raw["benzene_rings"], source, f"{where}.benzene_rings", 0
        )
    if "crosslinking_groups" in raw:
        groups = raw["crosslinking_groups"]
        if not isinstance(groups, list):
            raise _fail(source, f"{where}.crosslinking_groups", "must be a list of tables")
        parsed = []
        for index, group in enumerate(groups):
            here = f"{where}.crosslinking_groups[{index}]"
            if not isinstance(group, Mapping):
                raise _fail(source, here, "must be a table with kind, count, bonded_to_benzene")
            extra = set(group) - {"kind", "count", "bonded_to_benzene"}
            if extra:
                raise _fail(
                    source,
                    f"{here}.{sorted(extra)[0]}",
                    "unknown key; allowed: kind, count, bonded_to_benzene",
                )
            kind = _word(group.get("kind"), source, f"{here}.kind")
            count = _integer(group.get("count"), source, f"{here}.count", 0)
            bonded = group.get("bonded_to_benzene", True)
            if not isinstance(bonded, bool):
                raise _fail(source, f"{here}.bonded_to_benzene", "must be true or false")
            parsed.append({"kind": kind, "count": count, "bonded_to_benzene": bonded})
        structure["crosslinking_groups"] = parsed
    return structure


def _parse_b2(raw: Mapping[str, Any], where: str, source: str) -> dict[str, Any]:
    structure: dict[str, Any] = {}
    if "skeleton" in raw:
        structure["skeleton"] = _word(raw["skeleton"], source, f"{where}.skeleton").lower()
    if "form" in raw:
        form = raw["form"]
        if form not in ("compound", "resin"):
            raise _fail(source, f"{where}.form", f"{form!r} is not 'compound' or 'resin'")
        structure["form"] = form
    for key in ("formula1_groups", "formula2_groups"):
        if key in raw:
            structure[key] = _integer(raw[key], source, f"{where}.{key}", 0)
    if "r_groups" in raw:
        groups = raw["r_groups"]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise _fail(source, f"{where}.r_groups", "must be a list of strings")
        structure["r_groups"] = sorted({g.strip().lower() for g in groups})
    return structure


def _within(value: float, low: float, high: float) -> bool:
    """Inclusive range check that ignores float noise at the boundaries."""
    slack_low = abs(low) * BOUNDARY_TOLERANCE
    slack_high = abs(high) * BOUNDARY_TOLERANCE
    return low - slack_low <= value <= high + slack_high


def _g(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class Formulation:
    """A validated formulation."""

    name: str
    notes: str
    source: str
    components: tuple[Component, ...]

    def by_role(self, role: str) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.role == role)

    # -- composition math -----------------------------------------------------------

    def _mass(self, component: Component) -> float:
        """Amount in grams, or in parts by weight (the same number space for ratios)."""
        unit = PARTS if component.amount.dimensionality == PARTS.dimensionality else GRAM
        return float(component.amount.m_as(unit))

    @property
    def amount_unit(self) -> Any:
        first = self.components[0].amount
        return PARTS if first.dimensionality == PARTS.dimensionality else GRAM

    def total_solids(self) -> Any:
        """Total solids (solvent excluded), in g or parts by weight."""
        return Q_(sum(self._mass(c) for c in self.components if c.is_solid), self.amount_unit)

    def solids_fraction(self, role: str) -> float:
        """Weight fraction (0-1) of ``role`` in the total solids."""
        total = float(self.total_solids().magnitude)
        return sum(self._mass(c) for c in self.by_role(role)) / total

    def moles(self, component: Component) -> Any:
        """Moles (mol, or mol per part by weight); None without a molecular weight."""
        if component.molecular_weight is None:
            return None
        per_gram = self._mass(component) / float(component.molecular_weight.m_as(GRAM_PER_MOLE))
        return Q_(per_gram, MOLE) if self.amount_unit == GRAM else Q_(per_gram, MOLE / GRAM)

    def role_moles(self, role: str) -> float | None:
        values = [self.moles(c) for c in self.by_role(role)]
        if not values or any(v is None for v in values):
            return None
        return float(sum(v.magnitude for v in values))

    def b1_b2_mole_ratio(self) -> float | None:
        """n(B-1) / n(B-2); None without both, or without molecular weights."""
        b1, b2 = self.role_moles("crosslinker_b1"), self.role_moles("crosslinker_b2")
        if b1 is None or b2 is None or b2 == 0:
            return None
        return b1 / b2

    def solids_content(self) -> Any:
        """Solids as a percentage of the whole solution (percent quantity)."""
        total = sum(self._mass(c) for c in self.components)
        return Q_(100.0 * self.total_solids().magnitude / total, U.percent)

    def composition(self) -> dict[str, Any]:
        """The composition table: per component and totals, all as quantities."""
        total_solids = self.total_solids().magnitude
        total = sum(self._mass(c) for c in self.components)
        rows = []
        for component in self.components:
            mass = self._mass(component)
            rows.append(
                {
                    "role": component.role,
                    "name": component.name,
                    "lot": component.lot,
                    "amount": component.amount,
                    "wt_percent_of_solids": Q_(100.0 * mass / total_solids, U.percent)
                    if component.is_solid
                    else None,
                    "wt_percent_of_solution": Q_(100.0 * mass / total, U.percent),
                    "molecular_weight": component.molecular_weight,
                    "moles": self.moles(component),
                }
            )
        ratio = self.b1_b2_mole_ratio()
        return {
            "components": rows,
            "total_solids": self.total_solids(),
            "solids_content": self.solids_content(),
            "b1_b2_mole_ratio": None if ratio is None else Q_(ratio, U.dimensionless),
        }

    def composition_json(self) -> dict[str, Any]:
        """:meth:`composition` with every quantity as ``{"value", "unit"}``."""

        def plain(value: Any) -> Any:
            if value is None:
                return None
            if hasattr(value, "units"):
                return {"value": value.magnitude, "unit": f"{value.units:~P}"}
            return value

        table = self.composition()
        return {
            "components": [{k: plain(v) for k, v in row.items()} for row in table["components"]],
            "total_solids": plain(table["total_solids"]),
            "solids_content": plain(table["solids_content"]),
            "b1_b2_mole_ratio": None
            if table["b1_b2_mole_ratio"] is None
            else table["b1_b2_mole_ratio"].magnitude,
        }

    # -- identity ----------------------------------------------------------------------

    def canonical(self) -> dict[str, Any]:
        """The substance of the formulation, normalized: what the hash covers.

        Amounts become mass fractions of the whole (9 significant digits), so
        units and batch size drop out; components and repeating units are
        sorted; the formulation's name and free-text notes are left out (they
        describe, they are not the substance); lots are kept (a new lot is new
        material).
        """
        total = sum(self._mass(c) for c in self.components)

        def number(value: float) -> str:
            return format(value, ".9g")

        components = []
        for c in self.components:
            entry: dict[str, Any] = {
                "role": c.role,
                "name": c.name,
                "lot": c.lot,
                "fraction": number(self._mass(c) / total),
                "molecular_weight": None
                if c.molecular_weight is None
                else number(float(c.molecular_weight.m_as(GRAM_PER_MOLE))),
                "structure": _canonical_structure(c.structure),
                "units": sorted(
                    (
                        {
                            "formula": u.formula,
                            "mol_percent": number(u.mol_percent),
                            "substituents": {k: str(v) for k, v in sorted(u.substituents.items())},
                        }
                        for u in c.units
                    ),
                    key=lambda u: json.dumps(u, sort_keys=True),
                ),
            }
            components.append(entry)
        components.sort(key=lambda e: json.dumps(e, sort_keys=True))
        return {"components": components}

    def content_hash(self) -> str:
        """SHA-256 of :meth:`canonical` (hex)."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # -- the claims --------------------------------------------------------------------

    def check_claims(self) -> dict[int, ClaimVerdict]:
        """Verdicts on claims 1-13 of the seed patent; a dependent claim needs its parent met."""
        return _ClaimCheck(self).run()


def _canonical_structure(structure: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(structure.items()):
        if key == "crosslinking_groups":
            out[key] = sorted(
                (dict(sorted(g.items())) for g in value),
                key=lambda g: json.dumps(g, sort_keys=True),
            )
        else:
            out[key] = value
    return out


class _ClaimCheck:
    """The claim logic, one method per claim; each returns (verdict, reason)."""

    PARENTS: ClassVar[dict[int, int]] = {
        2: 1,
        3: 1,
        4: 1,
        5: 1,
        6: 2,
        7: 4,
        8: 1,
        9: 1,
        10: 1,
        11: 1,
        12: 1,
        13: 1,
    }

    def __init__(self, formulation: Formulation) -> None:
        self.f = formulation

    def run(self) -> dict[int, ClaimVerdict]:
        verdicts: dict[int, ClaimVerdict] = {}
        for claim in range(1, 14):
            parent = self.PARENTS.get(claim)
            own_verdict, own_reason = getattr(self, f"claim{claim}")()
            if parent is not None and verdicts[parent].verdict != "met":
                parent_verdict = verdicts[parent].verdict
                if own_verdict == "not_met":
                    verdict, reason = "not_met", own_reason
                elif parent_verdict == "not_met":
                    verdict, reason = "not_met", f"claim {parent} is not met (its parent)"
                else:
                    verdict, reason = "undetermined", f"claim {parent} is undetermined (its parent)"
            else:
                verdict, reason = own_verdict, own_reason
            verdicts[claim] = ClaimVerdict(claim, verdict, f"claim {claim}: {reason}")
        return verdicts

    # -- helpers

    def _b1_qualifies(self, component: Component) -> tuple[str, str]:
        s = component.structure
        if "phenol" not in s or "benzene_rings" not in s or "crosslinking_groups" not in s:
            missing = [k for k in ("phenol", "benzene_rings", "crosslinking_groups") if k not in s]
            return "undetermined", f"B-1 {component.name!r} does not record {', '.join(missing)}"
        if not s["phenol"]:
            return "not_met", f"B-1 {component.name!r} is not a phenol compound"
        if s["benzene_rings"] < 1:
            return "not_met", f"B-1 {component.name!r} has no benzene ring"
        groups = self._qualifying_groups(component)
        if groups < 2:
            return "not_met", (
                f"B-1 {component.name!r} has {groups} hydroxymethyl/alkoxymethyl/acyloxymethyl "
                "group(s) on benzene rings, fewer than 2"
            )
        return "met", ""

    @staticmethod
    def _qualifying_groups(component: Component) -> int:
        return sum(
            g["count"]
            for g in component.structure.get("crosslinking_groups", [])
            if g["kind"] in CROSSLINKING_GROUPS and g["bonded_to_benzene"]
        )

    def _b2_qualifies(self, component: Component) -> tuple[str, str]:
        s = component.structure
        if "formula1_groups" not in s and "formula2_groups" not in s:
            return "undetermined", f"B-2 {component.name!r} records no formula (1)/(2) group counts"
        count = s.get("formula1_groups", 0) + s.get("formula2_groups", 0)
        if count < 2:
            return (
                "not_met",
                f"B-2 {component.name!r} has {count} group(s) of formula (1)/(2), fewer than 2",
            )
        if "r_groups" not in s:
            return "undetermined", f"B-2 {component.name!r} does not record its R groups"
        bad = [g for g in s["r_groups"] if g not in B2_R_GROUPS]
        if bad:
            return (
                "not_met",
                f"B-2 {component.name!r} has R groups {bad}, not H/alkyl/alkylcarbonyl",
            )
        return "met", ""

    def _all(self, role: str, check: Any) -> tuple[str, str]:
        results = [check(c) for c in self.f.by_role(role)]
        for verdict in ("not_met", "undetermined"):
            for v, reason in results:
                if v == verdict:
                    return v, reason
        return "met", ""

    def _units(self, formulas: tuple[str, ...]) -> list[RepeatingUnit]:
        return [u for r in self.f.by_role("resin") for u in r.units if u.formula in formulas]

    def _resin_units_recorded(self) -> bool:
        return any(r.units for r in self.f.by_role("resin"))

    # -- the claims

    def claim1(self) -> tuple[str, str]:
        missing = [
            label
            for role, label in (
                ("resin", "(A) resin"),
                ("crosslinker_b1", "(B-1)"),
                ("crosslinker_b2", "(B-2)"),
                ("acid_generator", "(C) acid generator"),
            )
            if not self.f.by_role(role)
        ]
        if missing:
            return "not_met", f"no {', '.join(missing)}"
        for role, check in (
            ("crosslinker_b1", self._b1_qualifies),
            ("crosslinker_b2", self._b2_qualifies),
        ):
            verdict, reason = self._all(role, check)
            if verdict != "met":
                return verdict, reason
        return (
            "met",
            "resin, B-1 phenol with >= 2 groups on benzene rings, "
            "B-2 with >= 2 N-CH2-OR groups, acid generator",
        )

    def claim2(self) -> tuple[str, str]:
        if not self._resin_units_recorded():
            return "undetermined", "the resin's repeating units are not recorded"
        units = self._units(("3",))
        if not units:
            return "not_met", "the resin has no unit of formula (3)"
        for unit in units:
            problem = _formula3_problem(unit)
            if problem is None:
                return "met", f"formula (3) unit, {_g(unit.mol_percent)} mol %"
        return "not_met", f"formula (3) unit: {_formula3_problem(units[0])}"

    def claim3(self) -> tuple[str, str]:
        bases = self.f.by_role("base")
        if not bases:
            return "not_met", "no (D) nitrogen-containing base"
        if not any(b.structure.get("nitrogen_containing", True) for b in bases):
            return "not_met", "the base is not nitrogen-containing"
        return "met", f"base {bases[0].name!r}"

    def claim4(self) -> tuple[str, str]:
        if not self._resin_units_recorded():
            return "undetermined", "the resin's repeating units are not recorded"
        units = self._units(("4", "5", "6"))
        if not units:
            return "not_met", "the resin has no unit of formula (4), (5) or (6)"
        for unit in units:
            if _formula456_problem(unit) is None:
                return "met", f"formula ({unit.formula}) unit, {_g(unit.mol_percent)} mol %"
        return "not_met", f"formula ({units[0].formula}) unit: {_formula456_problem(units[0])}"

    def claim5(self) -> tuple[str, str]:
        if self.f.by_role("surfactant"):
            return "met", f"surfactant {self.f.by_role('surfactant')[0].name!r}"
        return "not_met", "no surfactant"

    def claim6(self) -> tuple[str, str]:
        if not self._resin_units_recorded():
            return "undetermined", "the resin's repeating units are not recorded"
        total = sum(u.mol_percent for u in self._units(("3",)) if _formula3_problem(u) is None)
        ok = _within(total, 50.0, 100.0)
        return ("met" if ok else "not_met"), (
            f"formula (3) units are {_g(total)} mol % of the resin, "
            f"{'within' if ok else 'outside'} 50-100"
        )

    def claim7(self) -> tuple[str, str]:
        if not self._resin_units_recorded():
            return "undetermined", "the resin's repeating units are not recorded"
        total = sum(
            u.mol_percent for u in self._units(("4", "5", "6")) if _formula456_problem(u) is None
        )
        ok = _within(total, 3.0, 50.0)
        return ("met" if ok else "not_met"), (
            f"formula (4)/(5)/(6) units are {_g(total)} mol % of the resin, "
            f"{'within' if ok else 'outside'} 3-50"
        )

    def _b1_each(self, test: Any) -> tuple[str, str]:
        components = self.f.by_role("crosslinker_b1")
        if not components:
            return "not_met", "no B-1"
        results: list[tuple[str, str]] = [test(c) for c in components]
        for verdict in ("not_met", "undetermined"):
            for v, reason in results:
                if v == verdict:
                    return v, reason
        return results[0]

    def claim8(self) -> tuple[str, str]:
        def test(c: Component) -> tuple[str, str]:
            if c.molecular_weight is None:
                return "undetermined", f"B-1 {c.name!r} has no molecular weight"
            if "benzene_rings" not in c.structure:
                return "undetermined", f"B-1 {c.name!r} does not record its benzene rings"
            weight = float(c.molecular_weight.m_as(GRAM_PER_MOLE))
            rings = c.structure["benzene_rings"]
            groups = self._qualifying_groups(c)
            if not _within(weight, 0.0, 2000.0):
                return "not_met", f"B-1 molecular weight is {_g(weight)} g/mol, above 2,000"
            if not 3 <= rings <= 5:
                return "not_met", f"B-1 has {rings} benzene ring(s), outside 3-5"
            if groups < 2:
                return "not_met", f"B-1 has {groups} cross-linking group(s), fewer than 2"
            return "met", f"B-1 {_g(weight)} g/mol, {rings} benzene rings, {groups} groups"

        return self._b1_each(test)

    def claim9(self) -> tuple[str, str]:
        def test(c: Component) -> tuple[str, str]:
            if "benzene_rings" not in c.structure:
                return "undetermined", f"B-1 {c.name!r} does not record its benzene rings"
            rings = c.structure["benzene_rings"]
            groups = self._qualifying_groups(c)
            if not 1 <= rings <= 2:
                return "not_met", f"B-1 has {rings} benzene ring(s), outside 1-2"
            if groups < 2:
                return "not_met", f"B-1 has {groups} cross-linking group(s), fewer than 2"
            return "met", f"B-1 {rings} benzene ring(s), {groups} groups"

        return self._b1_each(test)

    def claim10(self) -> tuple[str, str]:
        components = self.f.by_role("crosslinker_b2")
        if not components:
            return "not_met", "no B-2"
        for c in components:
            skeleton = c.structure.get("skeleton")
            if skeleton is None:
                return "undetermined", f"B-2 {c.name!r} does not record its skeleton"
            if skeleton in B2_SKELETONS:
                return (
                    "met",
                    f"B-2 has a {skeleton} skeleton ({c.structure.get('form', 'compound')})",
                )
        return (
            "not_met",
            f"B-2 skeleton is {components[0].structure.get('skeleton')!r}, "
            "not melamine, urea, imidazolidine or glycoluril",
        )

    def _wt_claim(self, role: str, label: str) -> tuple[str, str]:
        if not self.f.by_role(role):
            return "not_met", f"no {label}"
        percent = 100.0 * self.f.solids_fraction(role)
        ok = _within(percent, 0.5, 50.0)
        return ("met" if ok else "not_met"), (
            f"{label} is {_g(percent)} wt % of solids, {'within' if ok else 'outside'} 0.5-50"
        )

    def claim11(self) -> tuple[str, str]:
        return self._wt_claim("crosslinker_b1", "B-1")

    def claim12(self) -> tuple[str, str]:
        return self._wt_claim("crosslinker_b2", "B-2")

    def claim13(self) -> tuple[str, str]:
        ratio = self.f.b1_b2_mole_ratio()
        if ratio is None:
            return "not_met", "needs both B-1 and B-2"
        fraction = ratio / (1.0 + ratio)  # B-1 share of B-1 + B-2 moles
        ok = _within(fraction, 0.03, 0.97)
        shown = f"{_g(100 * fraction)}/{_g(100 * (1 - fraction))}"
        return ("met" if ok else "not_met"), (
            f"B-1/B-2 is {shown} by mole, {'within' if ok else 'outside'} 3/97-97/3"
        )


def _formula3_problem(unit: RepeatingUnit) -> str | None:
    s = unit.substituents
    for key, allowed in (("A", SUBSTITUENT_A), ("R1", SUBSTITUENT_R1), ("R2", SUBSTITUENT_R1)):
        if key in s and s[key] not in allowed:
            return f"{key} is {s[key]!r}, not one of {', '.join(allowed)}"
    if "n" in s and not 1 <= s["n"] <= 3:
        return f"n is {s['n']}, not 1-3"
    return None


def _formula456_problem(unit: RepeatingUnit) -> str | None:
    s = unit.substituents
    if "A" in s and s["A"] not in SUBSTITUENT_A:
        return f"A is {s['A']!r}, not one of {', '.join(SUBSTITUENT_A)}"
    if unit.formula == "4":
        for key in ("R11", "R12", "R13", "R14", "R15"):
            if key in s and s[key] not in SUBSTITUENT_R1:
                return f"{key} is {s[key]!r}, not one of {', '.join(SUBSTITUENT_R1)}"
    if unit.formula == "5":
        if "X" in s and s["X"] not in LINK_X:
            return f"X is {s['X']!r}, not one of {', '.join(LINK_X)}"
        if "R16" in s and s["R16"] not in SUBSTITUENT_R16:
            return f"R16 is {s['R16']!r}, not hydrogen or alkyl"
        for key in ("R101", "R102", "R103", "R104", "R105", "R106"):
            if key in s and s[key] not in SUBSTITUENT_R101:
                return f"{key} is {s[key]!r}, not one of {', '.join(SUBSTITUENT_R101)}"
        for key in ("a", "b", "c", "d", "e", "f"):
            if key in s and not 0 <= s[key] <= 3:
                return f"{key} is {s[key]}, not 0-3"
    return None


def format_composition(formulation: Formulation) -> list[tuple[str, str, str, str, str]]:
    """Rows (role, name, amount, wt % of solids, moles) for a printed table."""
    rows = []
    for row in formulation.composition()["components"]:
        wt = row["wt_percent_of_solids"]
        moles = row["moles"]
        rows.append(
            (
                row["role"],
                row["name"],
                format_quantity(row["amount"]),
                f"{wt.magnitude:.3g} %" if wt is not None else "(solvent)",
                f"{moles.magnitude:.4g} {moles.units:~P}" if moles is not None else "",
            )
        )
    return rows
