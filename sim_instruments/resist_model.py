"""From a formulation to the simulated resist's parameters.

The mapping makes the virtual bench respond to composition the way
``shared/domain/process-physics.md`` says a real resist does. It is a model,
calibrated so that the in-claim baseline formulation
(``examples/formulations/in_claims.toml``) gives the default
:class:`~sim_instruments.physics.ResistParameters`; every constant is named
here.

=======================  =====================================================
spin thickness           solids content (solution) and viscosity; viscosity
                         rises with solids and resin molecular weight
acid yield P0            acid generator wt % of solids
quencher Q0              base : acid generator mole ratio times P0
cross-linking rate       reactive CH2-O-R sites per gram of solids, weighted by
                         kind (phenolic B-1 faster than melamine, glycoluril,
                         urea) - the domain notes' k_eff = sum f n k / sum f n
PEB shrink               B-2 swells (shrinks) less than B-1
dissolution rate Rmax    hydroxystyrene mol % of the resin: a resin below
                         ~70 mol % is nearly insoluble in aqueous base
=======================  =====================================================
"""

from __future__ import annotations

import math

from labctl.formulation import Component, Formulation

from .physics import ResistParameters

__all__ = ["resist_from_formulation"]

#: Viscosity of the baseline solution (cP) at its solids content and resin Mw.
VISCOSITY_REFERENCE = 10.0
SOLIDS_REFERENCE = 0.12
RESIN_MW_REFERENCE = 8000.0
#: Viscosity ~ solids^3 (concentrated polymer solution) and Mw^0.7 (Mark-Houwink).
VISCOSITY_SOLIDS_EXPONENT = 3.0
VISCOSITY_MW_EXPONENT = 0.7
#: Acid generator loading (wt % of solids) that gives P0 = 1.
ACID_GENERATOR_REFERENCE_PERCENT = 2.904
#: Molecular weights assumed when a file gives none (g/mol).
DEFAULT_ACID_GENERATOR_MW = 400.0
DEFAULT_BASE_MW = 350.0
#: Fraction of the base that quenches acid (1: stoichiometric).
QUENCH_EFFICIENCY = 1.0
#: Relative reactivity per CH2-O-R site, by cross-linker kind (modelling assumption).
REACTIVITY = {
    "b1": 1.5,
    "melamine": 1.0,
    "glycoluril": 0.8,
    "urea": 0.7,
    "imidazolidine": 0.7,
    "other": 0.5,
}
#: Cross-linking rate of the baseline (1/s per unit acid at 110 C), its blended
#: reactivity and its site density (mol of CH2-O-R per g of solids).
CROSSLINK_RATE_REFERENCE = 0.01
REACTIVITY_REFERENCE = 1.19709
SITE_DENSITY_REFERENCE = 1.63736e-3
#: PEB shrink of fully cross-linked film, by cross-linker kind.
SHRINK_B1 = 0.06
SHRINK_B2 = 0.04
#: Dissolution: Rmax of the baseline and the logistic solubility of the resin
#: in hydroxystyrene mol % (midpoint and width).
RATE_MAX_REFERENCE = 100.0
SOLUBILITY_MIDPOINT = 70.0
SOLUBILITY_WIDTH = 5.0
HYDROXYSTYRENE_REFERENCE = 85.0


def _grams(formulation: Formulation, component: Component) -> float:
    return formulation._mass(component)


def _sites(component: Component) -> float:
    """CH2-O-R sites per molecule."""
    s = component.structure
    if component.role == "crosslinker_b1":
        return float(sum(g["count"] for g in s.get("crosslinking_groups", [])))
    # formula (2) N(CH2OR)2 carries two sites, formula (1) one
    return float(s.get("formula1_groups", 0) + 2 * s.get("formula2_groups", 0))


def _logistic(percent: float) -> float:
    return 1.0 / (1.0 + math.exp(-(percent - SOLUBILITY_MIDPOINT) / SOLUBILITY_WIDTH))


def resist_from_formulation(formulation: Formulation) -> ResistParameters:
    """The simulated resist a formulation makes (see the module table)."""
    base = ResistParameters()
    total_solids = float(formulation.total_solids().magnitude)
    solids = formulation.solids_content().m_as("percent") / 100.0
    resins = formulation.by_role("resin")
    resin_mw = (
        float(resins[0].molecular_weight.m_as("g/mol"))
        if resins and resins[0].molecular_weight is not None
        else RESIN_MW_REFERENCE
    )
    viscosity = (
        VISCOSITY_REFERENCE
        * (solids / SOLIDS_REFERENCE) ** VISCOSITY_SOLIDS_EXPONENT
        * (resin_mw / RESIN_MW_REFERENCE) ** VISCOSITY_MW_EXPONENT
    )

    pag_percent = 100.0 * formulation.solids_fraction("acid_generator")
    acid_yield = pag_percent / ACID_GENERATOR_REFERENCE_PERCENT

    def moles(role: str, default_mw: float) -> float:
        total = 0.0
        for c in formulation.by_role(role):
            weight = float(c.molecular_weight.m_as("g/mol")) if c.molecular_weight else default_mw
            total += _grams(formulation, c) / weight
        return total

    pag_moles = moles("acid_generator", DEFAULT_ACID_GENERATOR_MW)
    base_moles = moles("base", DEFAULT_BASE_MW)
    quencher = QUENCH_EFFICIENCY * acid_yield * base_moles / pag_moles if pag_moles else 0.0

    weighted = 0.0
    sites_total = 0.0
    shrink_weighted = 0.0
    for c in (*formulation.by_role("crosslinker_b1"), *formulation.by_role("crosslinker_b2")):
        if c.molecular_weight is None:
            continue
        sites = _grams(formulation, c) / float(c.molecular_weight.m_as("g/mol")) * _sites(c)
        if c.role == "crosslinker_b1":
            kind, shrink = "b1", SHRINK_B1
        else:
            kind = c.structure.get("skeleton", "other")
            kind = kind if kind in REACTIVITY else "other"
            shrink = SHRINK_B2
        weighted += sites * REACTIVITY[kind]
        shrink_weighted += sites * shrink
        sites_total += sites
    if sites_total > 0:
        reactivity = weighted / sites_total
        density = sites_total / total_solids
        crosslink_rate = (
            CROSSLINK_RATE_REFERENCE
            * (reactivity / REACTIVITY_REFERENCE)
            * (density / SITE_DENSITY_REFERENCE)
        )
        crosslink_shrink = shrink_weighted / sites_total
    else:
        crosslink_rate, crosslink_shrink = 0.0, 0.0

    hydroxystyrene = (
        sum(u.mol_percent for r in resins for u in r.units if u.formula == "3")
        if any(r.units for r in resins)
        else HYDROXYSTYRENE_REFERENCE
    )
    rate_max = RATE_MAX_REFERENCE * _logistic(hydroxystyrene) / _logistic(HYDROXYSTYRENE_REFERENCE)

    return base.with_changes(
        name=formulation.name,
        solids=solids,
        viscosity=viscosity,
        acid_yield=acid_yield,
        quencher=quencher,
        crosslink_rate=crosslink_rate,
        crosslink_shrink=crosslink_shrink,
        rate_max=rate_max,
    )
