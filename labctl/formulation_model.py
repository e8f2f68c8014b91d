"""The formulation's data: components, repeating units, spans, claim verdicts.

The plain records a formulation is made of and the claim check returns -
what both :mod:`labctl.formulation` (reading a file, the composition math)
and :mod:`labctl.formulation_claims` (claims 1-13) build on, so neither has
to import the other to run. :mod:`labctl.formulation` re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .formulation_vocabulary import CROSSLINKING_GROUP_KINDS

__all__ = [
    "BOUNDARY_TOLERANCE",
    "CH2OR_CLASSES",
    "ClaimVerdict",
    "Component",
    "Moles",
    "RepeatingUnit",
    "Solution",
    "Span",
]

#: Classes of B-1 cross-linking groups that are CH2-O-R groups (R = H, alkyl, acyl): the
#: ones claim 1 counts and an equivalent weight is per.
CH2OR_CLASSES = ("hydroxymethyl", "alkoxymethyl", "acyloxymethyl")
#: Relative tolerance at claim boundaries: float noise, never a real difference.
BOUNDARY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RepeatingUnit:
    """One repeating unit of a resin: which claim formula, mol %, substituents.

    ``substituents`` holds the vocabulary words (``"hydrogen"``, ``"methyl"``)
    and counts (``n``, ``a``-``f``) as the file gives them, normalized;
    ``molar_mass`` is the unit's formula weight (g/mol), needed only to weigh
    the units of a resin blend.
    """

    formula: str
    mol_percent: float
    substituents: Mapping[str, Any] = field(default_factory=dict)
    molar_mass: Any = None
    where: str = ""


@dataclass(frozen=True)
class Solution:
    """A component bought as a solution: its solid is ``solute_fraction`` (0-1) of the amount."""

    solute_fraction: float
    solvent: str


@dataclass(frozen=True)
class Component:
    """One component: role, identity, amount (as bought), and its structure fields.

    ``where`` is its place in the file (``components[2]``), for reasons that
    name a field.
    """

    role: str
    name: str
    amount: Any
    lot: str = ""
    molecular_weight: Any = None
    notes: str = ""
    units: tuple[RepeatingUnit, ...] = ()
    structure: Mapping[str, Any] = field(default_factory=dict)
    solution: Solution | None = None
    equivalent_weight: Any = None
    where: str = ""

    @property
    def is_solid(self) -> bool:
        return self.role != "solvent"

    def crosslinking_sites(self) -> int | None:
        """CH2-O-R groups per molecule (or per skeleton unit of a resin); None if not recorded.

        B-1: every recorded CH2-O-R group (hydroxymethyl, alkoxymethyl,
        acyloxymethyl, on a benzene ring or not) - an epoxy or vinyl ether
        group is recorded but is not what an equivalent weight counts; B-2:
        one per formula (1) group and two per formula (2) group (a count not
        written is 0 when the other is written).
        """
        s = self.structure
        if self.role == "crosslinker_b1":
            if "crosslinking_groups" not in s:
                return None
            return int(
                sum(
                    g["count"]
                    for g in s["crosslinking_groups"]
                    if CROSSLINKING_GROUP_KINDS.class_of(g["kind"]) in CH2OR_CLASSES
                )
            )
        if self.role == "crosslinker_b2":
            if "formula1_groups" not in s and "formula2_groups" not in s:
                return None
            return int(s.get("formula1_groups", 0) + 2 * s.get("formula2_groups", 0))
        return None


@dataclass(frozen=True)
class Moles:
    """A component's moles: the quantity (None if the file cannot give it), of what, and why not.

    ``of`` is ``"molecules"``, ``"chains"`` (a resin (A) by its molecular
    weight) or ``"skeleton units"`` (a cross-linker resin by its equivalent
    weight); ``needs`` names the field that is missing when ``value`` is None.
    """

    value: Any
    of: str = "molecules"
    needs: str = ""


@dataclass(frozen=True)
class Span:
    """A figure the file fixes exactly (``low == high``) or only between bounds.

    ``needs`` names the fields that would fix it.
    """

    low: float
    high: float
    needs: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return math.isclose(self.low, self.high, rel_tol=BOUNDARY_TOLERANCE, abs_tol=1e-12)


@dataclass(frozen=True)
class ClaimVerdict:
    """The verdict on one claim: ``met``, ``not_met`` or ``undetermined``, and why."""

    claim: int
    verdict: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"verdict": self.verdict, "reason": self.reason}
