"""From a formulation to the simulated resist's parameters.

The mapping makes the virtual bench respond to composition the way
``shared/domain/process-physics.md`` says a real resist does. It is a model,
calibrated so that the in-claim baseline formulation
(``examples/formulations/in_claims.toml``) gives the default
:class:`~sim_instruments.physics.ResistParameters`; every constant is named
here. It reads the composition through the formulation's own accessors
(solid mass, moles, the resin blend's unit mol %, which B-1/B-2 qualify), so
the simulator sees the formulation the claim check sees.

=======================  =====================================================
spin thickness           solids content of the solution (a component bought as
                         a solution brings only its solute to the solids, its
                         solvent to the solvent) and viscosity; viscosity
                         rises with solids and the resin's weight-average
                         molecular weight (a blend: the mass-weighted mean)
acid yield P0            acid generator wt % of solids
quencher Q0              base : acid generator mole ratio times P0
cross-linking rate       reactive CH2-O-R sites per gram of solids, weighted by
                         kind (phenolic B-1 faster than melamine, glycoluril,
                         urea) - the domain notes' k_eff = sum f n k / sum f n.
                         Sites: moles (molecular weight, or equivalent weight
                         for a cross-linker resin) x CH2-O-R groups; a B-1/B-2
                         that does not qualify as claim 1 defines it (one
                         methylol group, say) forms no cross-links
PEB shrink               B-2 swells (shrinks) less than B-1
dissolution rate Rmax    hydroxystyrene (formula (3)) mol % of the resin (A) -
                         a blend by its unit mole fractions: a resin below
                         ~70 mol % is nearly insoluble in aqueous base
absorbance               an additive of kind "dye" adds absorbance in
                         proportion to its wt % of solids; every additive
                         dilutes the solids (less acid and cross-linker per
                         gram) and never cross-links
=======================  =====================================================
"""

from __future__ import annotations

import math
import re

from labctl.formulation import Component, Formulation
from labctl.formulation_claims import qualifies

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
#: Grams per mole of CH2-O-R sites assumed for a cross-linker whose moles or
#: groups the file does not give (g/mol): the baseline's own - B-1 600 g/mol
#: with 4 CH2-OMe, B-2 hexamethoxymethylmelamine 390.4 g/mol with 6.
DEFAULT_B1_EQUIVALENT_WEIGHT = 600.0 / 4
DEFAULT_B2_EQUIVALENT_WEIGHT = 390.4 / 6
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
#: Hydroxystyrene mol % assumed for a resin whose repeating units the file does not give.
HYDROXYSTYRENE_REFERENCE = 85.0
#: Absorbance (1/um at the exposure wavelength) a dye adds per wt % of solids:
#: alpha = ln(10) eps w rho / M for a dye of eps ~5000 L/(mol cm) and M ~200
#: g/mol in a film of 1.2 g/cm^3 (9-anthracenemethanol at 365 nm is of this
#: order) - 0.07/um per wt %. Engineering estimate.
DYE_ABSORBANCE_PER_WT_PERCENT = 0.07
#: An additive is a dye when its ``kind`` has one of these words (any case).
_DYE_KIND = re.compile(r"\b(?:dye|absorber|absorbing)\b", re.IGNORECASE)


def _logistic(percent: float) -> float:
    return 1.0 / (1.0 + math.exp(-(percent - SOLUBILITY_MIDPOINT) / SOLUBILITY_WIDTH))


def _moles(formulation: Formulation, component: Component, default_mw: float) -> float:
    """Moles (mol, or mol per g/part) of an acid generator or base; ``default_mw`` if not given."""
    moles = formulation.moles(component)
    if moles is not None:
        return float(moles.magnitude)
    return formulation.solid_mass(component) / default_mw


def _sites(formulation: Formulation, component: Component) -> float:
    """Moles of CH2-O-R sites a cross-linker brings (0 if it does not qualify as claim 1 says).

    Its moles (of molecules, or skeleton units of a resin by its equivalent
    weight) times its CH2-O-R groups; when the file gives neither, its
    mass over the baseline's equivalent weight of its role. One whose
    qualification is undetermined (a structure field missing) is taken to
    cross-link, as it is labelled.
    """
    if qualifies(component)[0] == "not_met":
        return 0.0
    moles = formulation.moles(component)
    groups = component.crosslinking_sites()
    if moles is not None and groups is not None:
        return float(moles.magnitude) * groups
    default = (
        DEFAULT_B1_EQUIVALENT_WEIGHT
        if component.role == "crosslinker_b1"
        else DEFAULT_B2_EQUIVALENT_WEIGHT
    )
    return formulation.solid_mass(component) / default


def _resin_molecular_weight(formulation: Formulation) -> float:
    """Weight-average molecular weight of the resin (A) (g/mol): a blend's mass-weighted mean."""
    resins = formulation.by_role("resin")

    def weight(resin: Component) -> float:
        given = resin.molecular_weight
        return float(given.m_as("g/mol")) if given is not None else RESIN_MW_REFERENCE

    if len(resins) <= 1:
        return weight(resins[0]) if resins else RESIN_MW_REFERENCE
    masses = [formulation.solid_mass(r) for r in resins]
    return sum(m * weight(r) for m, r in zip(masses, resins, strict=True)) / sum(masses)


def _hydroxystyrene_percent(formulation: Formulation) -> float:
    """Formula (3) mol % of the resin (A), a blend by its unit mole fractions.

    The formulation's own figure when the file fixes it
    (:meth:`~labctl.formulation.Formulation.resin_unit_percent`). When it only
    bounds it (a blend without its units' formula weights) each resin is
    weighted by its mass - unit moles with equal unit formula weights - and a
    resin without recorded units counts as HYDROXYSTYRENE_REFERENCE.
    """
    resins = formulation.by_role("resin")
    if not resins:
        return HYDROXYSTYRENE_REFERENCE
    span = formulation.resin_unit_percent(lambda unit: unit.formula == "3")
    if span.exact:
        return span.low

    def own(resin: Component) -> float:
        if not resin.units:
            return HYDROXYSTYRENE_REFERENCE
        return sum(u.mol_percent for u in resin.units if u.formula == "3")

    if len(resins) == 1:
        return own(resins[0])
    masses = [formulation.solid_mass(r) for r in resins]
    return sum(m * own(r) for m, r in zip(masses, resins, strict=True)) / sum(masses)


def _is_dye(component: Component) -> bool:
    return bool(_DYE_KIND.search(str(component.structure.get("kind", ""))))


def resist_from_formulation(formulation: Formulation) -> ResistParameters:
    """The simulated resist a formulation makes (see the module table)."""
    base = ResistParameters()
    total_solids = float(formulation.total_solids().magnitude)
    solids = formulation.solids_content().m_as("percent") / 100.0
    viscosity = (
        VISCOSITY_REFERENCE
        * (solids / SOLIDS_REFERENCE) ** VISCOSITY_SOLIDS_EXPONENT
        * (_resin_molecular_weight(formulation) / RESIN_MW_REFERENCE) ** VISCOSITY_MW_EXPONENT
    )

    pag_percent = 100.0 * formulation.solids_fraction("acid_generator")
    acid_yield = pag_percent / ACID_GENERATOR_REFERENCE_PERCENT

    pag_moles = sum(
        _moles(formulation, c, DEFAULT_ACID_GENERATOR_MW)
        for c in formulation.by_role("acid_generator")
    )
    base_moles = sum(_moles(formulation, c, DEFAULT_BASE_MW) for c in formulation.by_role("base"))
    quencher = QUENCH_EFFICIENCY * acid_yield * base_moles / pag_moles if pag_moles else 0.0

    weighted = 0.0
    sites_total = 0.0
    shrink_weighted = 0.0
    for c in (*formulation.by_role("crosslinker_b1"), *formulation.by_role("crosslinker_b2")):
        sites = _sites(formulation, c)
        if sites == 0.0:
            continue
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

    hydroxystyrene = _hydroxystyrene_percent(formulation)
    rate_max = RATE_MAX_REFERENCE * _logistic(hydroxystyrene) / _logistic(HYDROXYSTYRENE_REFERENCE)

    dyes = [c for c in formulation.by_role("additive") if _is_dye(c)]
    absorbance = base.absorbance
    if dyes:
        dye_percent = 100.0 * sum(formulation.solid_mass(c) for c in dyes) / total_solids
        absorbance += DYE_ABSORBANCE_PER_WT_PERCENT * dye_percent

    return base.with_changes(
        name=formulation.name,
        solids=solids,
        viscosity=viscosity,
        acid_yield=acid_yield,
        quencher=quencher,
        crosslink_rate=crosslink_rate,
        crosslink_shrink=crosslink_shrink,
        rate_max=rate_max,
        absorbance=absorbance,
    )
