"""Formulation files: the composition of a negative resist, its math, and the claim check.

A formulation file (TOML, data only; format in ``docs/formulation-file.md``)
lists the components of one resist by role - alkali-soluble resin (A) (one or
a blend of several, with their repeating units), cross-linkers (B-1) and
(B-2) (compounds or commercial resins), acid generator (C),
nitrogen-containing base (D), surfactant, other additives, solvents - with
amounts (masses or parts by weight, as bought: a component may be a solution),
molecular weights and the structure fields the patent claims in
``shared/seed/`` ask about.

* :func:`load_formulation` validates a file and raises
  :class:`~labctl.errors.FormulationError` naming the file and field - only
  for a file that cannot be read (syntax, an unknown key or word, an amount
  without a unit); a field a claim needs and the file lacks makes that claim
  ``undetermined`` instead;
* :meth:`Formulation.composition` gives total solids, wt % of solids, moles,
  the B-1/B-2 mole ratio, the resin blend's repeating units, the solvents and
  the solids content, as pint quantities;
* :meth:`Formulation.check_claims` gives a verdict for each of claims 1-13
  (met, not_met, undetermined) with a one-line reason
  (:mod:`labctl.formulation_claims`; the records both build on, components
  to claim verdicts, are :mod:`labctl.formulation_model`, re-exported here);
* :meth:`Formulation.content_hash` identifies the composition: formatting,
  order, units, spelling and batch size do not change it; any change of
  substance does.

The claim check trusts the structure fields (which formula a unit is, how
many benzene rings, which groups); it does not parse chemical structures.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FormulationError
from .files import read_toml
from .formulation_model import (
    ClaimVerdict,
    Component,
    Moles,
    RepeatingUnit,
    Solution,
    Span,
)
from .formulation_vocabulary import (
    CROSSLINKING_GROUP_KINDS,
    LINKERS,
    SKELETONS,
    SUBSTITUENTS,
    Vocabulary,
)
from .names import quantity_problem, shown
from .units import Q_, U, format_quantity, ureg

__all__ = [
    "ROLES",
    "ClaimVerdict",
    "Component",
    "Formulation",
    "Moles",
    "RepeatingUnit",
    "Solution",
    "Span",
    "format_composition",
    "load_formulation",
    "parse_formulation",
    "summary_lines",
]

#: Component roles, in the order they are listed.
ROLES = (
    "resin",
    "crosslinker_b1",
    "crosslinker_b2",
    "acid_generator",
    "base",
    "surfactant",
    "additive",
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

#: Every form an amount may take, for messages.
AMOUNT_FORMS = '"10 g", "250 mg", "100 parts", "100 parts by weight" or "100 pbw"'
# "parts by weight" is how a recipe says it; pint reads "parts" (the unit) only.
_PARTS_BY_WEIGHT = re.compile(r"\b(?:parts?|pts?\.?)\s+by\s+(?:weight|wt\.?)\s*$", re.IGNORECASE)
# "20 wt %", "20 % w/w", "20 % (w/w)", "20 % by weight", "20 % by wt": a weight fraction,
# which pint reads as "%".
_WEIGHT_PERCENT = re.compile(
    r"\s*(?:wt\.?\s*%|%\s*(?:\(\s*w/w\s*\)|w/w|by\s+(?:weight|wt\.?)|wt\.?))\s*$", re.IGNORECASE
)
# An equivalent weight is often written per equivalent: g/eq is g per mole of groups.
_PER_EQUIVALENT = re.compile(r"/\s*eq(?:uiv(?:alent)?)?\.?\s*$", re.IGNORECASE)

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
_COUNT_KEYS = ("n", "a", "b", "c", "d", "e", "f")
_COMMON_KEYS = {"role", "name", "lot", "amount", "molecular_weight", "notes", "solution"}
_ROLE_KEYS: dict[str, set[str]] = {
    "resin": {"units"},
    "crosslinker_b1": {"phenol", "benzene_rings", "crosslinking_groups", "equivalent_weight"},
    "crosslinker_b2": {
        "skeleton",
        "form",
        "formula1_groups",
        "formula2_groups",
        "r_groups",
        "equivalent_weight",
    },
    "acid_generator": {"kind"},
    "base": {"nitrogen_containing"},
    "surfactant": {"kind"},
    "additive": {"kind"},
    "solvent": set(),
}
#: Tolerance of the mol % sum (mol %).
MOL_PERCENT_TOLERANCE = 0.01


def _fail(source: str, where: str, problem: str) -> FormulationError:
    return FormulationError(problem, source=source, field=where)


def load_formulation(path: str | Path) -> Formulation:
    """Read and validate a formulation file."""
    return parse_formulation(read_toml(path, FormulationError), source=str(path))


def _quantity(raw: Any, unit_kinds: tuple[Any, ...], source: str, where: str, hint: str) -> Any:
    """``raw`` as a pint quantity of one of ``unit_kinds``; ``hint`` shows how to write one."""
    if not isinstance(raw, str):
        raise _fail(source, where, f"{shown(raw)} needs a unit: write it as a string like {hint}")
    text = raw.strip()
    problem = quantity_problem(text)
    if problem is not None:  # before pint: long numbers, other scripts' digits, 9**9**9
        raise _fail(source, where, f"{shown(raw)} {problem}; write it like {hint}")
    text = _PARTS_BY_WEIGHT.sub("parts", text)
    text = _WEIGHT_PERCENT.sub(" %", text)
    text = _PER_EQUIVALENT.sub("/mol", text)
    try:
        quantity: Any = ureg.Quantity(text)
    except Exception:
        raise _fail(source, where, f"{shown(raw)} is not a quantity like {hint}") from None
    if not isinstance(quantity, ureg.Quantity) or not any(
        quantity.dimensionality == kind.dimensionality for kind in unit_kinds
    ):
        raise _fail(source, where, f"{shown(raw)} has the wrong dimension; write it like {hint}")
    if not math.isfinite(quantity.magnitude):
        raise _fail(source, where, f"{shown(raw)} is not a finite number")
    return quantity


def _positive_quantity(
    raw: Any, unit_kinds: tuple[Any, ...], source: str, where: str, hint: str
) -> Any:
    quantity = _quantity(raw, unit_kinds, source, where, hint)
    if quantity.magnitude <= 0:
        raise _fail(source, where, f"{shown(raw)} must be more than zero")
    return quantity


def _integer(raw: Any, source: str, where: str, low: int, high: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _fail(source, where, f"{shown(raw)} is not a whole number")
    if raw < low or (high is not None and raw > high):
        limit = f"{low} to {high}" if high is not None else f"at least {low}"
        raise _fail(source, where, f"{raw} is outside {limit}")
    return raw


def _word(raw: Any, source: str, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(source, where, f"{shown(raw)} is not a non-empty string")
    return raw.strip()


def _vocabulary_word(raw: Any, vocabulary: Vocabulary, source: str, where: str) -> str:
    """The word of ``vocabulary`` that ``raw`` spells; refused with the list otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(source, where, f"{shown(raw)} is not a {vocabulary.what} word")
    word = vocabulary.word(raw)
    if word is None:
        close = vocabulary.suggestion(raw)
        hint = f"did you mean {close!r}? " if close else ""
        raise _fail(
            source,
            where,
            f"{shown(raw)} is not a {vocabulary.what} this file format knows; {hint}"
            f"accepted (any case, and the other spellings docs/formulation-file.md lists): "
            f"{vocabulary.listing()}",
        )
    return word


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
    if not any(c.is_solid for c in components):
        raise _fail(source, "components", "no solid component: nothing to form a film")
    return Formulation(name=name, notes=notes, source=source, components=components)


def _parse_component(raw: Any, index: int, source: str) -> Component:
    where = f"components[{index}]"
    if not isinstance(raw, Mapping):
        raise _fail(source, where, "must be a table")
    role = raw.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _fail(
            source, f"{where}.role", f"{shown(role)} is not a role; roles: {', '.join(ROLES)}"
        )
    allowed = _COMMON_KEYS | _ROLE_KEYS[role]
    extra = set(raw) - allowed
    if extra:
        raise _fail(
            source,
            f"{where}.{sorted(extra)[0]}",
            f"unknown key for {'an' if role[0] in 'aeiou' else 'a'} {role}; "
            f"allowed: {', '.join(sorted(allowed))}",
        )
    name = _word(raw.get("name"), source, f"{where}.name")
    if "amount" not in raw:
        raise _fail(source, f"{where}.amount", f"missing: write it like {AMOUNT_FORMS}")
    amount = _positive_quantity(
        raw["amount"], (GRAM, PARTS), source, f"{where}.amount", AMOUNT_FORMS
    )
    weight = None
    if "molecular_weight" in raw:
        weight = _positive_quantity(
            raw["molecular_weight"],
            (GRAM_PER_MOLE,),
            source,
            f"{where}.molecular_weight",
            '"390.5 g/mol" or "8 kg/mol"',
        )
    equivalent = None
    if "equivalent_weight" in raw:
        equivalent = _positive_quantity(
            raw["equivalent_weight"],
            (GRAM_PER_MOLE,),
            source,
            f"{where}.equivalent_weight",
            '"65 g/mol" (grams per mole of CH2-O-R groups; "65 g/eq" too)',
        )
    lot = raw.get("lot", "")
    if not isinstance(lot, str | int) or isinstance(lot, bool):
        raise _fail(source, f"{where}.lot", "must be a string")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise _fail(source, f"{where}.notes", "must be a string")
    solution = None
    if "solution" in raw:
        if role == "solvent":
            raise _fail(
                source, f"{where}.solution", "a solvent is not a solution; list it as it is"
            )
        solution = _parse_solution(raw["solution"], f"{where}.solution", source)
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
    elif role in ("acid_generator", "surfactant", "additive") and "kind" in raw:
        structure = {"kind": _word(raw["kind"], source, f"{where}.kind")}
    return Component(
        role,
        name,
        amount,
        str(lot),
        weight,
        notes,
        units,
        structure,
        solution,
        equivalent,
        where,
    )


def _parse_solution(raw: Any, where: str, source: str) -> Solution:
    if not isinstance(raw, Mapping):
        raise _fail(
            source, where, 'must be a table like { solute_fraction = "1 %", solvent = "PGMEA" }'
        )
    extra = set(raw) - {"solute_fraction", "solvent"}
    if extra:
        raise _fail(
            source, f"{where}.{sorted(extra)[0]}", "unknown key; allowed: solute_fraction, solvent"
        )
    if "solute_fraction" not in raw:
        raise _fail(source, f"{where}.solute_fraction", 'missing: write it like "20 %"')
    value = raw["solute_fraction"]
    here = f"{where}.solute_fraction"
    if isinstance(value, bool):
        raise _fail(source, here, f'{shown(value)} is not a fraction; write it like "20 %"')
    if isinstance(value, int | float):
        fraction = float(value)  # a plain number is a fraction: 0.2 is 20 %
        if fraction > 1:
            raise _fail(
                source, here, f'{value} is more than 1; a percentage is written "{value:g} %"'
            )
    else:
        quantity = _quantity(value, (ureg.Unit("percent"),), source, here, '"20 %" or "20 wt %"')
        fraction = float(quantity.m_as("dimensionless"))
        if quantity.units == ureg.dimensionless and fraction > 1:  # "20" meant "20 %"
            raise _fail(
                source, here, f'{shown(value)} is more than 1; a percentage is written "{value} %"'
            )
    if not math.isfinite(fraction) or not 0 < fraction <= 1:
        raise _fail(source, here, f"{shown(value)} is outside 0-100 % (more than 0)")
    solvent = _word(raw.get("solvent"), source, f"{where}.solvent")
    return Solution(fraction, solvent)


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
                f"{shown(item.get('formula'))} is not one of 3, 4, 5, 6, other",
            )
        mol_percent = item.get("mol_percent")
        if isinstance(mol_percent, bool) or not isinstance(mol_percent, int | float):
            raise _fail(source, f"{here}.mol_percent", f"{shown(mol_percent)} is not a number")
        if not 0 < mol_percent <= 100:
            raise _fail(source, f"{here}.mol_percent", f"{mol_percent} is outside 0 to 100")
        molar_mass = None
        if "molar_mass" in item:
            molar_mass = _positive_quantity(
                item["molar_mass"],
                (GRAM_PER_MOLE,),
                source,
                f"{here}.molar_mass",
                '"120.15 g/mol" (the repeating unit\'s formula weight)',
            )
        given = {k: v for k, v in item.items() if k not in ("formula", "mol_percent", "molar_mass")}
        allowed = UNIT_KEYS[formula]
        extra = set(given) - set(allowed) - {"name"}
        if extra:
            raise _fail(
                source,
                f"{here}.{sorted(extra)[0]}",
                f"formula ({formula}) has no such substituent; "
                f"it has: {', '.join(allowed) or 'none recorded'}",
            )
        substituents: dict[str, Any] = {}
        for key, value in given.items():
            if key == "name":
                substituents[key] = _word(value, source, f"{here}.name")
            elif key in _COUNT_KEYS:
                substituents[key] = _integer(value, source, f"{here}.{key}", 0)
            elif key == "X":
                substituents[key] = _vocabulary_word(value, LINKERS, source, f"{here}.X")
            else:
                substituents[key] = _vocabulary_word(value, SUBSTITUENTS, source, f"{here}.{key}")
        units.append(RepeatingUnit(formula, float(mol_percent), substituents, molar_mass, here))
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
            kind = _vocabulary_word(
                group.get("kind"), CROSSLINKING_GROUP_KINDS, source, f"{here}.kind"
            )
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
        structure["skeleton"] = _vocabulary_word(
            raw["skeleton"], SKELETONS, source, f"{where}.skeleton"
        )
    if "form" in raw:
        form = raw["form"]
        if not isinstance(form, str) or form.strip().lower() not in ("compound", "resin"):
            raise _fail(source, f"{where}.form", f"{shown(form)} is not 'compound' or 'resin'")
        structure["form"] = form.strip().lower()
    for key in ("formula1_groups", "formula2_groups"):
        if key in raw:
            structure[key] = _integer(raw[key], source, f"{where}.{key}", 0)
    if "r_groups" in raw:
        groups = raw["r_groups"]
        if not isinstance(groups, list):
            raise _fail(source, f"{where}.r_groups", "must be a list of words")
        structure["r_groups"] = sorted(
            {
                _vocabulary_word(g, SUBSTITUENTS, source, f"{where}.r_groups[{i}]")
                for i, g in enumerate(groups)
            }
        )
    return structure


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

    @property
    def amount_unit(self) -> Any:
        """The file's amount unit: g, or parts by weight."""
        first = self.components[0].amount
        return PARTS if first.dimensionality == PARTS.dimensionality else GRAM

    def amount_value(self, component: Component) -> float:
        """The amount as bought (a solution whole), in g or parts by weight."""
        unit = PARTS if component.amount.dimensionality == PARTS.dimensionality else GRAM
        return float(component.amount.m_as(unit))

    def solid_mass(self, component: Component) -> float:
        """The solid a component brings (g or parts): 0 for a solvent, the solute of a solution."""
        if not component.is_solid:
            return 0.0
        amount = self.amount_value(component)
        return amount * component.solution.solute_fraction if component.solution else amount

    def solvent_mass(self, component: Component) -> float:
        """The solvent a component brings (g or parts): a solvent whole, a solution's solvent."""
        if not component.is_solid:
            return self.amount_value(component)
        if component.solution is None:
            return 0.0
        return self.amount_value(component) * (1.0 - component.solution.solute_fraction)

    def _mass(self, component: Component) -> float:
        """The mass that counts in the component's role (g or parts): solid, or solvent."""
        return self.solid_mass(component) if component.is_solid else self.amount_value(component)

    def total_mass(self) -> float:
        """Everything in the bottle (g or parts)."""
        return sum(self.amount_value(c) for c in self.components)

    def total_solids(self) -> Any:
        """Total solids (solvents and the solvent of solutions excluded), in g or parts."""
        return Q_(sum(self.solid_mass(c) for c in self.components), self.amount_unit)

    def solids_fraction(self, role: str) -> float:
        """Weight fraction (0-1) of the components labelled ``role`` in the total solids."""
        total = float(self.total_solids().magnitude)
        return sum(self.solid_mass(c) for c in self.by_role(role)) / total

    def moles_of(self, component: Component) -> Moles:
        """A component's moles, of what, and which field is missing if the file cannot say.

        A compound: its (solid) mass / molecular weight; a cross-linker
        without one, or a B-2 resin, by its equivalent weight (per CH2-O-R
        group) times its groups per molecule or skeleton unit. A B-2 resin's
        molecular weight is a chain average and gives no moles of
        cross-linker. A resin (A): chains, by its molecular weight.
        """
        per = MOLE if self.amount_unit == GRAM else MOLE / GRAM
        mass = self._mass(component)
        where = component.where
        is_crosslinker = component.role in ("crosslinker_b1", "crosslinker_b2")
        is_b2_resin = (
            component.role == "crosslinker_b2" and component.structure.get("form") == "resin"
        )
        if component.molecular_weight is not None and not is_b2_resin:
            of = "chains" if component.role == "resin" else "molecules"
            weight = float(component.molecular_weight.m_as(GRAM_PER_MOLE))
            return Moles(Q_(mass / weight, per), of)
        of = "skeleton units" if is_b2_resin else "molecules"
        if is_crosslinker and component.equivalent_weight is not None:
            sites = component.crosslinking_sites()
            if not sites:
                field_name = (
                    "crosslinking_groups"
                    if component.role == "crosslinker_b1"
                    else "formula1_groups/formula2_groups"
                )
                return Moles(None, of, f"{where}.{field_name} of {component.name!r}")
            weight = float(component.equivalent_weight.m_as(GRAM_PER_MOLE)) * sites
            return Moles(Q_(mass / weight, per), of)
        if is_b2_resin:
            return Moles(
                None,
                of,
                f"{where}.equivalent_weight of {component.name!r} "
                "(a resin: its molecular weight, if any, is a chain average)",
            )
        return Moles(None, of, f"{where}.molecular_weight of {component.name!r}")

    def moles(self, component: Component) -> Any:
        """Moles (mol, or mol per part by weight); None if the file cannot give them."""
        return self.moles_of(component).value

    def role_moles(self, role: str) -> float | None:
        """Moles of all components labelled ``role`` (mol or mol/part); None if one lacks them."""
        values = [self.moles(c) for c in self.by_role(role)]
        if not values or any(v is None for v in values):
            return None
        return float(sum(v.magnitude for v in values))

    def b1_b2_mole_ratio(self) -> float | None:
        """n(B-1) / n(B-2); None without both, or without their moles.

        A component labelled B-1 or B-2 that does not qualify as claim 1
        defines it (:meth:`not_qualifying`) is left out, as claim 13 leaves
        it out; one whose qualification is undetermined is counted.
        """
        from .formulation_claims import qualifies

        sides = []
        for role in ("crosslinker_b1", "crosslinker_b2"):
            counted = [c for c in self.by_role(role) if qualifies(c)[0] != "not_met"]
            values = [self.moles(c) for c in counted]
            if not values or any(v is None for v in values):
                return None
            sides.append(float(sum(v.magnitude for v in values)))
        b1, b2 = sides
        return None if b2 == 0 else b1 / b2

    def solids_content(self) -> Any:
        """Solids as a percentage of the whole solution (percent quantity)."""
        return Q_(100.0 * self.total_solids().magnitude / self.total_mass(), U.percent)

    def solvents(self) -> list[tuple[str, Any]]:
        """Each solvent (by name, any case) and its total: solvents and solutions' solvents."""
        totals: dict[str, list[Any]] = {}
        for c in self.components:
            if not c.is_solid:
                name = c.name
            elif c.solution is not None:
                name = c.solution.solvent
            else:
                continue
            entry = totals.setdefault(name.casefold(), [name, 0.0])
            entry[1] += self.solvent_mass(c)
        return [(name, Q_(mass, self.amount_unit)) for name, mass in totals.values()]

    def _unit_moles(self, resin: Component) -> tuple[float | None, list[str]]:
        """Moles of repeating units in a resin (solid mass / mean unit formula weight)."""
        missing = [f"{u.where}.molar_mass" for u in resin.units if u.molar_mass is None]
        if missing or not resin.units:
            return None, missing or [f"{resin.where}.units"]
        mean = sum(
            u.mol_percent / 100.0 * float(u.molar_mass.m_as(GRAM_PER_MOLE)) for u in resin.units
        )
        return self.solid_mass(resin) / mean, []

    def resin_unit_percent(self, select: Callable[[RepeatingUnit], bool]) -> Span:
        """Mol % of the selected repeating units in the resin (A), all its components together.

        One resin: its own mol %. A blend: each resin's mol % weighted by its
        moles of repeating units (solid mass / mean unit formula weight); when
        a unit's ``molar_mass`` or a resin's units are not recorded, the blend
        is only known to lie between its resins' values (a resin without units
        anywhere in 0-100), and ``needs`` names the missing fields.
        """
        resins = self.by_role("resin")
        values: list[tuple[float, float]] = []
        weights: list[float | None] = []
        needs: list[str] = []
        for resin in resins:
            if resin.units:
                share = sum(u.mol_percent for u in resin.units if select(u))
                values.append((share, share))
            else:
                values.append((0.0, 100.0))
            weight, missing = self._unit_moles(resin)
            weights.append(weight)
            needs.extend(missing)
        if not resins:
            return Span(0.0, 0.0)
        if len(resins) == 1:
            low, high = values[0]
            return Span(low, high, () if low == high else tuple(needs))
        if all(w is not None for w in weights):
            total = sum(w for w in weights if w is not None)
            value = sum(w * v[0] for w, v in zip(weights, values, strict=True) if w is not None)
            return Span(value / total, value / total)
        low, high = min(v[0] for v in values), max(v[1] for v in values)
        span = Span(low, high)
        return span if span.exact else Span(low, high, tuple(needs))

    def resin_blend(self) -> list[dict[str, Any]]:
        """Per formula, the mol % of the resin's (or blend's) repeating units: exact or bounds."""
        present = {u.formula for r in self.by_role("resin") for u in r.units}
        rows = []
        for formula in ("3", "4", "5", "6", "other"):
            if formula not in present:
                continue
            span = self.resin_unit_percent(_of_formula(formula))
            rows.append(
                {
                    "formula": formula,
                    "mol_percent": Q_(span.low, U.percent) if span.exact else None,
                    "low": Q_(span.low, U.percent),
                    "high": Q_(span.high, U.percent),
                    "needs": list(span.needs),
                }
            )
        return rows

    def composition(self) -> dict[str, Any]:
        """The composition table: per component and totals, all as quantities.

        A component's ``solids`` is the solid it brings (its amount, or the
        solute of a solution); ``wt_percent_of_solids`` and
        ``wt_percent_of_solution`` are of that solid part (of the whole amount
        for a solvent); a solution's solvent is counted with ``solvents``.
        """
        total_solids = self.total_solids().magnitude
        total = self.total_mass()
        rows = []
        for component in self.components:
            mass = self._mass(component)
            moles = self.moles_of(component)
            rows.append(
                {
                    "role": component.role,
                    "name": component.name,
                    "lot": component.lot,
                    "amount": component.amount,
                    "solution": None
                    if component.solution is None
                    else {
                        "solute_fraction": Q_(
                            100.0 * component.solution.solute_fraction, U.percent
                        ),
                        "solvent": component.solution.solvent,
                    },
                    "solids": Q_(mass, self.amount_unit) if component.is_solid else None,
                    "wt_percent_of_solids": Q_(100.0 * mass / total_solids, U.percent)
                    if component.is_solid
                    else None,
                    "wt_percent_of_solution": Q_(100.0 * mass / total, U.percent),
                    "molecular_weight": component.molecular_weight,
                    "equivalent_weight": component.equivalent_weight,
                    "moles": moles.value,
                    "moles_of": moles.of if moles.value is not None else None,
                }
            )
        ratio = self.b1_b2_mole_ratio()
        return {
            "components": rows,
            "total_solids": self.total_solids(),
            "solids_content": self.solids_content(),
            "b1_b2_mole_ratio": None if ratio is None else Q_(ratio, U.dimensionless),
            "resin_units": self.resin_blend(),
            "solvents": [{"name": n, "amount": a} for n, a in self.solvents()],
        }

    def composition_json(self) -> dict[str, Any]:
        """:meth:`composition` with every quantity as ``{"value", "unit"}``."""

        def plain(value: Any) -> Any:
            if value is None:
                return None
            if hasattr(value, "units"):
                return {"value": value.magnitude, "unit": f"{value.units:~P}"}
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        table = self.composition()
        return {
            "components": [plain(row) for row in table["components"]],
            "total_solids": plain(table["total_solids"]),
            "solids_content": plain(table["solids_content"]),
            "b1_b2_mole_ratio": None
            if table["b1_b2_mole_ratio"] is None
            else table["b1_b2_mole_ratio"].magnitude,
            "resin_units": plain(table["resin_units"]),
            "solvents": plain(table["solvents"]),
        }

    # -- identity ----------------------------------------------------------------------

    def canonical(self) -> dict[str, Any]:
        """The substance of the formulation, normalized: what the hash covers.

        Amounts become mass fractions of the whole (9 significant digits), so
        units and batch size drop out; components and repeating units are
        sorted; vocabulary words are in their one spelling; the formulation's
        name and free-text notes are left out (they describe, they are not
        the substance); lots are kept (a new lot is new material). Fields
        added later (a solution, an equivalent weight, a unit's molar mass)
        appear only when given, so the hash of a file without them is the
        hash it always had.
        """
        total = self.total_mass()

        def number(value: float) -> str:
            return format(value, ".9g")

        def unit_entry(u: RepeatingUnit) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "formula": u.formula,
                "mol_percent": number(u.mol_percent),
                "substituents": {k: str(v) for k, v in sorted(u.substituents.items())},
            }
            if u.molar_mass is not None:
                entry["molar_mass"] = number(float(u.molar_mass.m_as(GRAM_PER_MOLE)))
            return entry

        components = []
        for c in self.components:
            entry: dict[str, Any] = {
                "role": c.role,
                "name": c.name,
                "lot": c.lot,
                "fraction": number(self.amount_value(c) / total),
                "molecular_weight": None
                if c.molecular_weight is None
                else number(float(c.molecular_weight.m_as(GRAM_PER_MOLE))),
                "structure": _canonical_structure(c.structure),
                "units": sorted(
                    (unit_entry(u) for u in c.units),
                    key=lambda u: json.dumps(u, sort_keys=True),
                ),
            }
            if c.solution is not None:
                entry["solution"] = {
                    "solute_fraction": number(c.solution.solute_fraction),
                    "solvent": c.solution.solvent,
                }
            if c.equivalent_weight is not None:
                entry["equivalent_weight"] = number(float(c.equivalent_weight.m_as(GRAM_PER_MOLE)))
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
        from .formulation_claims import check_claims

        return check_claims(self)

    def not_qualifying(self) -> list[dict[str, str]]:
        """The components labelled B-1 or B-2 that do not (or may not) qualify as claim 1 says.

        Each: ``component``, ``field`` (its place), ``role``, ``verdict``
        (``not_met`` or ``undetermined``) and ``reason``. They are not counted
        as B-1/B-2 by the claims (whether they qualify is undetermined: the
        claims that count them say undetermined when it matters).
        """
        from .formulation_claims import not_qualifying

        return not_qualifying(self)


def _of_formula(formula: str) -> Callable[[RepeatingUnit], bool]:
    def select(unit: RepeatingUnit) -> bool:
        return unit.formula == formula

    return select


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


def summary_lines(formulation: Formulation) -> list[str]:
    """Lines under the composition table: the resin's units, the solvents, what is not counted."""
    lines = []
    blend = formulation.resin_blend()
    if blend:
        resins = len(formulation.by_role("resin"))
        whole = "the resin" if resins == 1 else f"the resin blend ({resins} resins)"
        parts = []
        needs: list[str] = []
        for row in blend:
            if row["mol_percent"] is not None:
                parts.append(f"formula ({row['formula']}) {row['mol_percent'].magnitude:.4g}")
            else:
                low, high = row["low"].magnitude, row["high"].magnitude
                parts.append(f"formula ({row['formula']}) {low:.4g}-{high:.4g}")
                needs.extend(row["needs"])
        line = f"repeating units, mol % of {whole}: {', '.join(parts)}"
        if needs:
            line += f" (exact figures need {', '.join(dict.fromkeys(needs))})"
        lines.append(line)
    solvents = formulation.solvents()
    if solvents:
        lines.append(
            "solvents (with those of solutions): "
            + ", ".join(f"{name} {format_quantity(amount)}" for name, amount in solvents)
        )
    for row in formulation.not_qualifying():
        state = "does not qualify" if row["verdict"] == "not_met" else "may not qualify"
        label = "B-1" if row["role"] == "crosslinker_b1" else "B-2"
        lines.append(f"not counted as {label}: {row['reason']} ({state})")
    return lines


def format_composition(formulation: Formulation) -> list[tuple[str, str, str, str, str]]:
    """Rows (role, name, amount, wt % of solids, moles) for a printed table."""
    rows = []
    for row in formulation.composition()["components"]:
        wt = row["wt_percent_of_solids"]
        moles = row["moles"]
        amount = format_quantity(row["amount"])
        if row["solution"] is not None:
            fraction = row["solution"]["solute_fraction"].magnitude
            amount += f" ({fraction:.3g} % in {row['solution']['solvent']})"
        of = f" ({row['moles_of']})" if row["moles_of"] not in (None, "molecules") else ""
        rows.append(
            (
                row["role"],
                row["name"],
                amount,
                f"{wt.magnitude:.3g} %" if wt is not None else "(solvent)",
                f"{moles.magnitude:.4g} {moles.units:~P}{of}" if moles is not None else "",
            )
        )
    return rows
