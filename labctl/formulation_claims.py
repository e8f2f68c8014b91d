"""The claim check: claims 1-13 of the seed patent against a formulation.

Each claim gets ``met``, ``not_met`` or ``undetermined`` (a field it needs is
not in the file; the reason names the field) and a one-line reason. The
logic is three-valued (Kleene): "A and B" is not met if either is not met,
undetermined if either is undetermined, met otherwise; "some component
qualifies" is met if one does, not met if none can, undetermined otherwise.

The claims are *comprising* claims: the composition comprises a qualifying
(B-1) and a qualifying (B-2), and may contain other things. So a component
labelled B-1 or B-2 that does not qualify as claim 1 defines it does not make
claim 1 not met; it is listed (:func:`not_qualifying`) and not counted as
B-1/B-2 by any claim. One whose qualification is undetermined is counted
both ways: a claim whose verdict depends on it is undetermined.

* claims 8, 9, 10 (what B-1 or B-2 *is*): met when one qualifying
  component is so;
* claims 11, 12 (wt % of solids) and 13 (mole ratio): the qualifying
  components together;
* claims 2, 4 (the resin *contains* a unit): met when one resin component
  does; claims 6, 7 (mol % of the resin): the resin (A) as a whole, a blend's
  units weighted by their moles (:meth:`Formulation.resin_unit_percent`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from .formulation_model import (
    BOUNDARY_TOLERANCE,
    CH2OR_CLASSES,
    ClaimVerdict,
    Component,
    RepeatingUnit,
    Span,
)
from .formulation_vocabulary import CROSSLINKING_GROUP_KINDS, SKELETONS, SUBSTITUENTS
from .names import candidates_line

if TYPE_CHECKING:
    # Only its type: labctl.formulation calls this module, never the other way round.
    from .formulation import Formulation

__all__ = ["check_claims", "not_qualifying", "qualifies"]

MET, NOT_MET, UNDETERMINED = "met", "not_met", "undetermined"
Finding = tuple[str, str]

#: Claim classes per substituent (seed text).
CLASSES_A = ("hydrogen", "alkyl", "halogen", "cyano")
CLASSES_R1 = (
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
CLASSES_R101 = (
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
CLASSES_R16 = ("hydrogen", "alkyl")
LINK_X = ("single_bond", "COO", "O", "CON(R16)")
#: B-1 group classes claim 1 counts: the CH2-O-R groups.
CROSSLINKING_CLASSES = CH2OR_CLASSES
B2_R_CLASSES = ("hydrogen", "alkyl", "alkylcarbonyl")
B2_SKELETONS = ("melamine", "urea", "imidazolidine", "glycoluril")


def check_claims(formulation: Formulation) -> dict[int, ClaimVerdict]:
    """Verdicts on claims 1-13; a dependent claim is met only if its parent is."""
    return _ClaimCheck(formulation).run()


def qualifies(component: Component) -> tuple[str, str]:
    """Whether a B-1 or B-2 component is one as claim 1 defines it: (verdict, reason)."""
    if component.role == "crosslinker_b1":
        return _ClaimCheck.b1_qualifies(component)
    return _ClaimCheck.b2_qualifies(component)


def not_qualifying(formulation: Formulation) -> list[dict[str, str]]:
    """The B-1/B-2 components that do not, or may not, qualify as claim 1 defines them."""
    rows = []
    for component in (
        *formulation.by_role("crosslinker_b1"),
        *formulation.by_role("crosslinker_b2"),
    ):
        verdict, reason = qualifies(component)
        if verdict != MET:
            rows.append(
                {
                    "component": component.name,
                    "field": component.where,
                    "role": component.role,
                    "verdict": verdict,
                    "reason": reason,
                }
            )
    return rows


# -- three-valued logic ------------------------------------------------------------------


def _all_of(findings: Iterable[Finding]) -> Finding:
    """Kleene AND: the not-met reasons, else the undetermined ones, else met (first reason)."""
    findings = list(findings)
    for verdict in (NOT_MET, UNDETERMINED):
        reasons = [reason for v, reason in findings if v == verdict]
        if reasons:
            return verdict, "; ".join(reasons)
    return MET, next((reason for _, reason in findings if reason), "")


def _any_of(findings: Iterable[Finding], none: str) -> Finding:
    """Kleene OR: met if one is met, not met if none can be; ``none`` if there are none."""
    findings = list(findings)
    if not findings:
        return NOT_MET, none
    for verdict in (MET, UNDETERMINED):
        for v, reason in findings:
            if v == verdict:
                return v, reason
    return NOT_MET, "; ".join(dict.fromkeys(reason for _, reason in findings))


def _within(value: float, low: float, high: float) -> bool:
    """Inclusive range check that ignores float noise at the boundaries."""
    slack_low = abs(low) * BOUNDARY_TOLERANCE
    slack_high = abs(high) * BOUNDARY_TOLERANCE
    return low - slack_low <= value <= high + slack_high


def _span_verdict(span: Span, low: float, high: float) -> str:
    """Met if all of ``span`` is within [low, high], not met if none of it is, else undetermined."""
    if _within(span.low, low, high) and _within(span.high, low, high):
        return MET
    wholly_below = span.high < low - abs(low) * BOUNDARY_TOLERANCE
    wholly_above = span.low > high + abs(high) * BOUNDARY_TOLERANCE
    return NOT_MET if wholly_below or wholly_above else UNDETERMINED


def _g(value: float) -> str:
    return f"{value:.4g}"


def _names(components: Iterable[Component]) -> str:
    return ", ".join(repr(c.name) for c in components)


def _needs(fields: Iterable[str]) -> str:
    return candidates_line(list(dict.fromkeys(fields)), shown_at_most=3)


def _substituent_problem(key: str, word: str, allowed: tuple[str, ...]) -> str | None:
    kind = SUBSTITUENTS.class_of(word)
    if kind in allowed:
        return None
    shown = word if word == kind else f"{word} (a {kind} group)"
    return f"{key} is {shown}, not one of {', '.join(allowed)}"


def formula3_problem(unit: RepeatingUnit) -> str | None:
    """Why a formula (3) unit is outside claim 2's definition, or None (unrecorded: trusted)."""
    s = unit.substituents
    for key, allowed in (("A", CLASSES_A), ("R1", CLASSES_R1), ("R2", CLASSES_R1)):
        if key in s:
            problem = _substituent_problem(key, s[key], allowed)
            if problem:
                return problem
    if "n" in s and not 1 <= s["n"] <= 3:
        return f"n is {s['n']}, not 1-3"
    return None


def formula456_problem(unit: RepeatingUnit) -> str | None:
    """Why a formula (4)/(5)/(6) unit is outside claim 4's definition, or None."""
    s = unit.substituents
    checks: list[tuple[str, tuple[str, ...]]] = [("A", CLASSES_A)]
    if unit.formula == "4":
        checks += [(key, CLASSES_R1) for key in ("R11", "R12", "R13", "R14", "R15")]
    if unit.formula == "5":
        if "X" in s and s["X"] not in LINK_X:
            return f"X is {s['X']}, not one of {', '.join(LINK_X)}"
        checks += [("R16", CLASSES_R16)]
        checks += [(f"R10{i}", CLASSES_R101) for i in range(1, 7)]
    for key, allowed in checks:
        if key in s:
            problem = _substituent_problem(key, s[key], allowed)
            if problem:
                return problem
    if unit.formula == "5":
        for key in ("a", "b", "c", "d", "e", "f"):
            if key in s and not 0 <= s[key] <= 3:
                return f"{key} is {s[key]}, not 0-3"
    return None


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
            if parent is not None and verdicts[parent].verdict != MET:
                parent_verdict = verdicts[parent].verdict
                if own_verdict == NOT_MET:
                    verdict, reason = NOT_MET, own_reason
                elif parent_verdict == NOT_MET:
                    verdict, reason = NOT_MET, f"claim {parent} is not met (its parent)"
                else:
                    verdict, reason = UNDETERMINED, f"claim {parent} is undetermined (its parent)"
            else:
                verdict, reason = own_verdict, own_reason
            verdicts[claim] = ClaimVerdict(claim, verdict, f"claim {claim}: {reason}")
        return verdicts

    # -- does a cross-linker qualify as claim 1 defines it

    @staticmethod
    def qualifies(component: Component) -> Finding:
        return qualifies(component)

    @staticmethod
    def qualifying_groups(component: Component) -> int:
        return sum(
            g["count"]
            for g in component.structure.get("crosslinking_groups", [])
            if CROSSLINKING_GROUP_KINDS.class_of(g["kind"]) in CROSSLINKING_CLASSES
            and g["bonded_to_benzene"]
        )

    @classmethod
    def b1_qualifies(cls, c: Component) -> Finding:
        s, label = c.structure, f"B-1 {c.name!r}"
        problems: list[str] = []
        missing: list[str] = []
        if "phenol" not in s:
            missing.append(f"{c.where}.phenol")
        elif not s["phenol"]:
            problems.append("is not a phenol compound")
        if "benzene_rings" not in s:
            missing.append(f"{c.where}.benzene_rings")
        elif s["benzene_rings"] < 1:
            problems.append("has no benzene ring")
        groups = cls.qualifying_groups(c)
        if "crosslinking_groups" not in s:
            missing.append(f"{c.where}.crosslinking_groups")
        elif groups < 2:
            problems.append(
                f"has {groups} hydroxymethyl/alkoxymethyl/acyloxymethyl group(s) "
                "on benzene rings, fewer than 2"
            )
        if problems:
            return NOT_MET, f"{label} {' and '.join(problems)}"
        if missing:
            return UNDETERMINED, f"{label} does not record {', '.join(missing)}"
        return MET, f"{label}: phenol, {s['benzene_rings']} benzene ring(s), {groups} groups"

    @staticmethod
    def b2_qualifies(c: Component) -> Finding:
        s, label = c.structure, f"B-2 {c.name!r}"
        problems: list[str] = []
        missing: list[str] = []
        count = None
        if "formula1_groups" not in s and "formula2_groups" not in s:
            missing.append(f"{c.where}.formula1_groups/formula2_groups")
        else:
            count = s.get("formula1_groups", 0) + s.get("formula2_groups", 0)
            if count < 2:
                problems.append(f"has {count} group(s) of formula (1)/(2), fewer than 2")
        if "r_groups" not in s:
            missing.append(f"{c.where}.r_groups")
        else:
            bad = [g for g in s["r_groups"] if SUBSTITUENTS.class_of(g) not in B2_R_CLASSES]
            if bad:
                problems.append(f"has R groups {', '.join(bad)}, not hydrogen/alkyl/alkylcarbonyl")
        if problems:
            return NOT_MET, f"{label} {' and '.join(problems)}"
        if missing:
            return UNDETERMINED, f"{label} does not record {', '.join(missing)}"
        return MET, f"{label}: {count} groups of formula (1)/(2)"

    def _candidates(self, role: str) -> list[tuple[Component, Finding]]:
        """Components of ``role`` that qualify or may: with their qualification."""
        return [
            (c, status) for c in self.f.by_role(role) if (status := self.qualifies(c))[0] != NOT_MET
        ]

    def _some_crosslinker(
        self, role: str, label: str, test: Callable[[Component], Finding]
    ) -> Finding:
        """Met when one qualifying ``role`` component passes ``test``."""
        components = self.f.by_role(role)
        if not components:
            return NOT_MET, f"no {label}"
        candidates = self._candidates(role)
        if not candidates:
            reasons = "; ".join(self.qualifies(c)[1] for c in components)
            return NOT_MET, f"no qualifying {label} ({reasons})"
        return _any_of(
            (_all_of([test(c), status]) for c, status in candidates), f"no qualifying {label}"
        )

    def _not_counted(self) -> str:
        rows = not_qualifying(self.f)
        if not rows:
            return ""
        shown = "; ".join(
            f"{r['reason']}" + (" (undetermined)" if r["verdict"] == UNDETERMINED else "")
            for r in rows
        )
        return f"; not counted as B-1/B-2: {shown}"

    # -- the resin

    def _resin_contains(
        self, formulas: tuple[str, ...], problem: Callable[..., str | None]
    ) -> Finding:
        resins = self.f.by_role("resin")
        if not resins:
            return NOT_MET, "no (A) resin"
        labels = "/".join(f"({f})" for f in formulas)
        findings: list[Finding] = []
        for resin in resins:
            if not resin.units:
                findings.append(
                    (
                        UNDETERMINED,
                        f"the repeating units of resin {resin.name!r} are not recorded "
                        f"({resin.where}.units)",
                    )
                )
                continue
            for unit in resin.units:
                if unit.formula not in formulas:
                    continue
                why = problem(unit)
                if why is None:
                    findings.append(
                        (
                            MET,
                            f"formula ({unit.formula}) unit, {_g(unit.mol_percent)} mol % "
                            f"of {resin.name!r}",
                        )
                    )
                else:
                    findings.append((NOT_MET, f"formula ({unit.formula}) unit: {why}"))
        none = (
            f"the resin has no unit of formula {labels}"
            if len(resins) == 1
            else f"no resin component has a unit of formula {labels}"
        )
        return _any_of(findings, none)

    def _resin_percent(
        self, select: Callable[[RepeatingUnit], bool], label: str, low: float, high: float
    ) -> Finding:
        resins = self.f.by_role("resin")
        if not resins:
            return NOT_MET, "no (A) resin"
        if not any(r.units for r in resins):
            fields = ", ".join(f"{r.where}.units" for r in resins)
            return UNDETERMINED, f"the resin's repeating units are not recorded ({fields})"
        span = self.f.resin_unit_percent(select)
        verdict = _span_verdict(span, low, high)
        whole = "the resin" if len(resins) == 1 else f"the resin blend ({len(resins)} resins)"
        bounds = f"{_g(low)}-{_g(high)}"
        if span.exact:
            where = "within" if verdict == MET else "outside"
            return verdict, f"{label} units are {_g(span.low)} mol % of {whole}, {where} {bounds}"
        text = f"{label} units are {_g(span.low)}-{_g(span.high)} mol % of {whole}"
        if verdict == MET:
            return MET, f"{text}, within {bounds} whatever the weighting"
        if verdict == NOT_MET:
            return NOT_MET, f"{text}, outside {bounds} whatever the weighting"
        return UNDETERMINED, f"{text}, which may or may not be within {bounds}; " + (
            f"weighting the resins by moles of units needs {_needs(span.needs)}"
        )

    # -- the claims

    def claim1(self) -> Finding:
        findings: list[Finding] = []
        if not self.f.by_role("resin"):
            findings.append((NOT_MET, "no (A) resin"))
        for role, label in (("crosslinker_b1", "(B-1)"), ("crosslinker_b2", "(B-2)")):
            components = self.f.by_role(role)
            if not components:
                findings.append((NOT_MET, f"no {label}"))
                continue
            statuses = [self.qualifies(c) for c in components]
            verdict, _ = _any_of(statuses, f"no {label}")
            if verdict == MET:
                findings.append((MET, ""))
            elif verdict == UNDETERMINED:
                reasons = "; ".join(r for v, r in statuses if v == UNDETERMINED)
                findings.append((UNDETERMINED, f"whether there is a qualifying {label}: {reasons}"))
            else:
                reasons = "; ".join(r for _, r in statuses)
                findings.append((NOT_MET, f"no qualifying {label}: {reasons}"))
        if not self.f.by_role("acid_generator"):
            findings.append((NOT_MET, "no (C) acid generator"))
        verdict, reason = _all_of(findings)
        if verdict != MET:
            return verdict, reason
        b1 = [c for c in self.f.by_role("crosslinker_b1") if self.qualifies(c)[0] == MET]
        b2 = [c for c in self.f.by_role("crosslinker_b2") if self.qualifies(c)[0] == MET]
        return MET, (
            f"resin, B-1 {_names(b1)} (phenol with >= 2 groups on benzene rings), "
            f"B-2 {_names(b2)} (>= 2 N-CH2-OR groups), acid generator" + self._not_counted()
        )

    def claim2(self) -> Finding:
        return self._resin_contains(("3",), formula3_problem)

    def claim3(self) -> Finding:
        bases = self.f.by_role("base")
        if not bases:
            return NOT_MET, "no (D) nitrogen-containing base"
        nitrogen = [b for b in bases if b.structure.get("nitrogen_containing", True)]
        if not nitrogen:
            return NOT_MET, "the base is not nitrogen-containing"
        return MET, f"base {nitrogen[0].name!r}"

    def claim4(self) -> Finding:
        return self._resin_contains(("4", "5", "6"), formula456_problem)

    def claim5(self) -> Finding:
        surfactants = self.f.by_role("surfactant")
        if surfactants:
            return MET, f"surfactant {surfactants[0].name!r}"
        return NOT_MET, "no surfactant"

    def claim6(self) -> Finding:
        return self._resin_percent(
            lambda u: u.formula == "3" and formula3_problem(u) is None, "formula (3)", 50.0, 100.0
        )

    def claim7(self) -> Finding:
        return self._resin_percent(
            lambda u: u.formula in ("4", "5", "6") and formula456_problem(u) is None,
            "formula (4)/(5)/(6)",
            3.0,
            50.0,
        )

    def claim8(self) -> Finding:
        def test(c: Component) -> Finding:
            findings: list[Finding] = []
            if c.molecular_weight is None:
                findings.append((UNDETERMINED, f"{c.where}.molecular_weight of {c.name!r}"))
            else:
                weight = float(c.molecular_weight.m_as("g/mol"))
                if not _within(weight, 0.0, 2000.0):
                    findings.append(
                        (NOT_MET, f"B-1 molecular weight is {_g(weight)} g/mol, above 2,000")
                    )
            rings = c.structure.get("benzene_rings")
            if rings is None:
                findings.append((UNDETERMINED, f"{c.where}.benzene_rings of {c.name!r}"))
            elif not 3 <= rings <= 5:
                findings.append((NOT_MET, f"B-1 has {rings} benzene ring(s), outside 3-5"))
            verdict, reason = _all_of(findings)
            if verdict == UNDETERMINED:
                return verdict, f"claim 8 needs {reason}"
            if verdict == NOT_MET:
                return verdict, reason
            return MET, (
                f"B-1 {_g(float(c.molecular_weight.m_as('g/mol')))} g/mol, "
                f"{rings} benzene rings, {self.qualifying_groups(c)} groups"
            )

        return self._some_crosslinker("crosslinker_b1", "B-1", test)

    def claim9(self) -> Finding:
        def test(c: Component) -> Finding:
            rings = c.structure.get("benzene_rings")
            if rings is None:
                return UNDETERMINED, f"claim 9 needs {c.where}.benzene_rings of {c.name!r}"
            if not 1 <= rings <= 2:
                return NOT_MET, f"B-1 has {rings} benzene ring(s), outside 1-2"
            return MET, f"B-1 {rings} benzene ring(s), {self.qualifying_groups(c)} groups"

        return self._some_crosslinker("crosslinker_b1", "B-1", test)

    def claim10(self) -> Finding:
        def test(c: Component) -> Finding:
            skeleton = c.structure.get("skeleton")
            if skeleton is None:
                return UNDETERMINED, f"claim 10 needs {c.where}.skeleton of {c.name!r}"
            if SKELETONS.class_of(skeleton) in B2_SKELETONS:
                form = c.structure.get("form", "compound")
                return MET, f"B-2 has a {skeleton} skeleton ({form})"
            return NOT_MET, (
                f"B-2 skeleton is {skeleton!r}, not melamine, urea, imidazolidine or glycoluril"
            )

        return self._some_crosslinker("crosslinker_b2", "B-2", test)

    def _wt_claim(self, role: str, label: str) -> Finding:
        components = self.f.by_role(role)
        if not components:
            return NOT_MET, f"no {label}"
        statuses = [(c, self.qualifies(c)) for c in components]
        sure = [c for c, (v, _) in statuses if v == MET]
        maybe = [c for c, (v, _) in statuses if v == UNDETERMINED]
        left_out = [c for c, (v, _) in statuses if v == NOT_MET]
        if not sure and not maybe:
            return NOT_MET, f"no qualifying {label}"
        total = float(self.f.total_solids().magnitude)
        low = 100.0 * sum(self.f.solid_mass(c) for c in sure) / total
        high = low + 100.0 * sum(self.f.solid_mass(c) for c in maybe) / total
        span = Span(low, high)
        verdict = _span_verdict(span, 0.5, 50.0)
        note = f" (not counting {_names(left_out)}, which does not qualify)" if left_out else ""
        if span.exact:
            where = "within" if verdict == MET else "outside"
            return verdict, f"{label} is {_g(low)} wt % of solids, {where} 0.5-50{note}"
        text = f"{label} is {_g(low)}-{_g(high)} wt % of solids"
        if verdict != UNDETERMINED:
            where = "within" if verdict == MET else "outside"
            return verdict, f"{text}, {where} 0.5-50 either way{note}"
        reasons = "; ".join(self.qualifies(c)[1] for c in maybe)
        return UNDETERMINED, f"{text}: whether {_names(maybe)} counts is undetermined ({reasons})"

    def claim11(self) -> Finding:
        return self._wt_claim("crosslinker_b1", "B-1")

    def claim12(self) -> Finding:
        return self._wt_claim("crosslinker_b2", "B-2")

    def claim13(self) -> Finding:
        sides = []
        for role, label in (("crosslinker_b1", "B-1"), ("crosslinker_b2", "B-2")):
            if not self.f.by_role(role):
                return NOT_MET, "needs both B-1 and B-2"
            statuses = [(c, self.qualifies(c)[0]) for c in self.f.by_role(role)]
            sure = [c for c, v in statuses if v == MET]
            maybe = [c for c, v in statuses if v == UNDETERMINED]
            if not sure and not maybe:
                return NOT_MET, f"no qualifying {label}"
            sides.append((sure, maybe))
        needs = [
            found.needs
            for sure, maybe in sides
            for c in (*sure, *maybe)
            if (found := self.f.moles_of(c)).value is None
        ]
        if needs:
            return UNDETERMINED, f"the B-1/B-2 mole ratio needs {_needs(needs)}"

        def total(components: list[Component]) -> float:
            return sum(float(self.f.moles_of(c).value.magnitude) for c in components)

        (b1_sure, b1_maybe), (b2_sure, b2_maybe) = sides
        b1_low, b1_high = total(b1_sure), total(b1_sure) + total(b1_maybe)
        b2_low, b2_high = total(b2_sure), total(b2_sure) + total(b2_maybe)
        # B-1's share of B-1 + B-2 moles: least with the fewest B-1 and the most B-2
        span = Span(b1_low / (b1_low + b2_high), b1_high / (b1_high + b2_low))
        verdict = _span_verdict(span, 0.03, 0.97)
        if span.exact:
            shown = f"{_g(100 * span.low)}/{_g(100 * (1 - span.low))}"
            where = "within" if verdict == MET else "outside"
            return verdict, f"B-1/B-2 is {shown} by mole, {where} 3/97-97/3"
        text = f"B-1 is {_g(100 * span.low)}-{_g(100 * span.high)} % of the B-1 + B-2 moles"
        if verdict != UNDETERMINED:
            where = "within" if verdict == MET else "outside"
            return verdict, f"{text}, {where} 3/97-97/3 either way"
        maybe = [*b1_maybe, *b2_maybe]
        reasons = "; ".join(self.qualifies(c)[1] for c in maybe)
        return UNDETERMINED, f"{text}: whether {_names(maybe)} counts is undetermined ({reasons})"
