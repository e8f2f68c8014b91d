"""The closed vocabularies of a formulation file: substituents, linkers, groups, skeletons.

A structure field of a formulation file (a repeating unit's ``A``, ``R1``,
``X``; a B-1 cross-linking group's ``kind``; a B-2's ``r_groups`` and
``skeleton``) takes one word of a closed list. Each word belongs to a *class*,
the word the patent claims use (``methyl`` is an ``alkyl``, ``OMe`` is a
``methoxy`` is an ``alkoxy``); the claim check compares classes, the hash
keeps the word (a methyl is not an ethyl). Reading is case-insensitive and
ignores spaces, ``-`` and ``_`` and a trailing "group"/"atom", and the usual
chemical abbreviations are accepted (``H``, ``Me``, ``Et``, ``tBu``, ``OMe``,
``OAc``, ``Ph``...). A spelling not in the list is refused with the list -
never read as "something outside the claim". A substituent the list lacks is
written ``other`` (outside every claim list) and named in ``notes``.

The lists are in ``docs/formulation-file.md`` too; a test keeps them equal.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "CROSSLINKING_GROUP_KINDS",
    "LINKERS",
    "SKELETONS",
    "SUBSTITUENTS",
    "Vocabulary",
]


@dataclass(frozen=True)
class Vocabulary:
    """A closed list of words: each word's class and the other spellings it accepts."""

    what: str
    #: word -> (class, other spellings)
    words: Mapping[str, tuple[str, tuple[str, ...]]]
    _index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for word, (_, spellings) in self.words.items():
            for spelling in (word, *spellings):
                key = _key(spelling)
                if index.get(key, word) != word:  # a spelling must name one word only
                    raise ValueError(f"{spelling!r} names both {index[key]!r} and {word!r}")
                index[key] = word
        object.__setattr__(self, "_index", index)

    def word(self, text: str) -> str | None:
        """The word ``text`` spells, or None if it spells none."""
        return self._index.get(_key(text))

    def class_of(self, word: str) -> str:
        """The claim class of a word (any accepted spelling); ``other`` for none."""
        known = self.word(word)
        return self.words[known][0] if known is not None else "other"

    def suggestion(self, text: str) -> str | None:
        """The word closest to a misspelling, or None if nothing is close.

        Fewest edits (a swap of two letters is one) first, so ``alkly`` is
        ``alkyl``, not ``allyl``.
        """
        key = _key(text)
        close = difflib.get_close_matches(key, list(self._index), n=5, cutoff=0.7)
        if not close:
            return None
        best = min(close, key=lambda candidate: _edits(key, candidate))
        return self._index[best] if _edits(key, best) <= max(2, len(key) // 3) else None

    def listing(self) -> str:
        """The accepted words, for a one-line message."""
        return ", ".join(self.words)


def _edits(a: str, b: str) -> int:
    """Edit distance with adjacent swaps (optimal string alignment)."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def _key(text: str) -> str:
    key = re.sub(r"[\s_\-]+", "", text.strip().lower())
    for tail in ("group", "atom"):
        if key.endswith(tail) and len(key) > len(tail):
            key = key[: -len(tail)]
    return key


#: Substituents (A, R1, R2, R11-R15, R16, R101-R106, and B-2's R3-R5), by class.
#: The classes the claims name: hydrogen, halogen, alkyl, alkenyl, cycloalkyl,
#: aryl, aralkyl, alkoxy, alkylcarbonyloxy, alkylsulfonyloxy, hydroxyl,
#: carboxyl, cyano, alkylcarbonyl. Others (nitro, amino, alkoxycarbonyl,
#: alkoxycarbonyloxy, other) are valid and outside every claim list.
SUBSTITUENTS = Vocabulary(
    "substituent",
    {
        "hydrogen": ("hydrogen", ("H",)),
        "halogen": ("halogen", ("halo",)),
        "fluoro": ("halogen", ("F", "fluorine")),
        "chloro": ("halogen", ("Cl", "chlorine")),
        "bromo": ("halogen", ("Br", "bromine")),
        "iodo": ("halogen", ("I", "iodine")),
        "alkyl": ("alkyl", ()),
        "methyl": ("alkyl", ("Me", "CH3")),
        "ethyl": ("alkyl", ("Et", "C2H5")),
        "propyl": ("alkyl", ("n-propyl", "Pr", "n-Pr")),
        "isopropyl": ("alkyl", ("i-propyl", "iPr", "i-Pr")),
        "butyl": ("alkyl", ("n-butyl", "Bu", "n-Bu")),
        "isobutyl": ("alkyl", ("i-butyl", "iBu", "i-Bu")),
        "sec-butyl": ("alkyl", ("s-butyl", "sBu", "s-Bu")),
        "tert-butyl": ("alkyl", ("t-butyl", "tBu", "t-Bu")),
        "pentyl": ("alkyl", ("n-pentyl",)),
        "hexyl": ("alkyl", ("n-hexyl",)),
        "octyl": ("alkyl", ("n-octyl",)),
        "alkenyl": ("alkenyl", ()),
        "vinyl": ("alkenyl", ("ethenyl",)),
        "allyl": ("alkenyl", ("2-propenyl",)),
        "isopropenyl": ("alkenyl", ()),
        "cycloalkyl": ("cycloalkyl", ()),
        "cyclopentyl": ("cycloalkyl", ()),
        "cyclohexyl": ("cycloalkyl", ("Cy", "c-Hex")),
        "norbornyl": ("cycloalkyl", ()),
        "adamantyl": ("cycloalkyl", ("Ad",)),
        "aryl": ("aryl", ()),
        "phenyl": ("aryl", ("Ph", "C6H5")),
        "tolyl": ("aryl", ("methylphenyl",)),
        "naphthyl": ("aryl", ()),
        "aralkyl": ("aralkyl", ()),
        "benzyl": ("aralkyl", ("Bn", "PhCH2")),
        "phenethyl": ("aralkyl", ("phenylethyl",)),
        "alkoxy": ("alkoxy", ()),
        "methoxy": ("alkoxy", ("OMe", "MeO", "OCH3")),
        "ethoxy": ("alkoxy", ("OEt", "EtO")),
        "propoxy": ("alkoxy", ("OPr", "n-propoxy")),
        "isopropoxy": ("alkoxy", ("OiPr",)),
        "butoxy": ("alkoxy", ("OBu", "n-butoxy")),
        "tert-butoxy": ("alkoxy", ("OtBu", "t-butoxy")),
        "alkylcarbonyloxy": ("alkylcarbonyloxy", ()),
        "acetoxy": ("alkylcarbonyloxy", ("OAc", "AcO", "acetyloxy")),
        "propionyloxy": ("alkylcarbonyloxy", ()),
        "pivaloyloxy": ("alkylcarbonyloxy", ("OPiv",)),
        "alkylsulfonyloxy": ("alkylsulfonyloxy", ()),
        "methanesulfonyloxy": ("alkylsulfonyloxy", ("OMs", "mesyloxy", "methylsulfonyloxy")),
        "hydroxyl": ("hydroxyl", ("OH", "hydroxy")),
        "carboxyl": ("carboxyl", ("COOH", "carboxy")),
        "cyano": ("cyano", ("CN", "nitrile")),
        "alkylcarbonyl": ("alkylcarbonyl", ()),
        "acetyl": ("alkylcarbonyl", ("Ac",)),
        "propionyl": ("alkylcarbonyl", ()),
        "nitro": ("nitro", ("NO2",)),
        "amino": ("amino", ("NH2",)),
        "alkoxycarbonyl": ("alkoxycarbonyl", ()),
        "tert-butoxycarbonyl": ("alkoxycarbonyl", ("Boc", "t-Boc", "t-butoxycarbonyl")),
        "alkoxycarbonyloxy": ("alkoxycarbonyloxy", ()),
        "tert-butoxycarbonyloxy": ("alkoxycarbonyloxy", ("OBoc", "t-Boc-oxy")),
        "other": ("other", ()),
    },
)

#: Formula (5)'s linking group X. The claims: a single bond, -COO-, -O-, -CON(R16)-.
LINKERS = Vocabulary(
    "linking group",
    {
        "single_bond": ("single_bond", ("single bond", "bond", "direct bond")),
        "COO": ("COO", ("-COO-", "C(=O)O", "-C(=O)O-")),
        "O": ("O", ("-O-", "oxy", "ether")),
        "CON(R16)": ("CON(R16)", ("-CON(R16)-", "CONR16", "-CONR16-")),
        "OCO": ("OCO", ("-OCO-", "OC(=O)", "-OC(=O)-")),
        "CO": ("CO", ("-CO-", "carbonyl")),
        "S": ("S", ("-S-", "thio")),
        "SO2": ("SO2", ("-SO2-", "sulfonyl")),
        "CH2": ("CH2", ("-CH2-", "methylene")),
        "other": ("other", ()),
    },
)

#: A B-1 cross-linking group's kind. The claims count hydroxymethyl, alkoxymethyl
#: and acyloxymethyl groups; the others are recorded and do not count.
CROSSLINKING_GROUP_KINDS = Vocabulary(
    "cross-linking group",
    {
        "hydroxymethyl": ("hydroxymethyl", ("CH2OH", "methylol")),
        "alkoxymethyl": ("alkoxymethyl", ()),
        "methoxymethyl": ("alkoxymethyl", ("CH2OMe", "CH2OCH3")),
        "ethoxymethyl": ("alkoxymethyl", ("CH2OEt",)),
        "propoxymethyl": ("alkoxymethyl", ()),
        "isopropoxymethyl": ("alkoxymethyl", ()),
        "butoxymethyl": ("alkoxymethyl", ("CH2OBu",)),
        "isobutoxymethyl": ("alkoxymethyl", ()),
        "acyloxymethyl": ("acyloxymethyl", ()),
        "acetoxymethyl": ("acyloxymethyl", ("CH2OAc",)),
        "propionyloxymethyl": ("acyloxymethyl", ()),
        "benzoyloxymethyl": ("acyloxymethyl", ()),
        "epoxy": ("epoxy", ("glycidyl", "glycidyl ether", "glycidyloxy")),
        "vinyl_ether": ("vinyl_ether", ("vinyloxy",)),
        "other": ("other", ()),
    },
)

#: A B-2's skeleton. Claim 10 names melamine, urea, imidazolidine and glycoluril.
SKELETONS = Vocabulary(
    "skeleton",
    {
        "melamine": ("melamine", ()),
        "urea": ("urea", ()),
        "imidazolidine": ("imidazolidine", ("ethyleneurea", "ethylene urea", "imidazolidinone")),
        "glycoluril": ("glycoluril", ()),
        "benzoguanamine": ("benzoguanamine", ()),
        "acetoguanamine": ("acetoguanamine", ()),
        "other": ("other", ()),
    },
)
