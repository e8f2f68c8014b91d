"""What a user may type: the names labctl is given, and the text of numbers.

Every name a user gives has one grammar, checked where it comes in (recipe
files and ``--set``, ``--operator``, run-id arguments), so a value that
would pass validation and fail later - half-way through a run, on a wire or
in a file name - is refused before anything moves. What decides each one:

* **wafer id** - sent to the wafer handler as one word of an ASCII line
  (``NEW <run>/<id>``, ``LOAD <run>/<id> hotplate``: no space, nothing
  outside ASCII), written into the ellipsometer's export file name
  (``RunRecipe(<recipe>/<run>_<id>_<label>_000)``: no ``/``, ``(``, ``)``,
  nor what a Windows file name refuses) and into the bench's wafer file
  (``<data>/bench/wafers/<run>%2F<id>.json``: a file name, at most 255
  bytes). labctl derives further wafers' ids from it (``W01-2``,
  ``W01-01``, ``W01-r1``), so it is short.
* **recipe name** - the ellipsometer recipe, sent as
  ``RunRecipe(<recipe>/<file>)`` in Latin-1 and listed by ``ListRecipes()``
  separated by ``/``; CompleteEASE keeps recipes as files on a Windows PC.
  Words separated by single spaces (``Resist on Si 632.8nm``).
* **operator** - recorded with the run, shown by ``show`` and the report,
  passed to a supervised run's child on its command line.
* **run id** - made by labctl (``20260124-173102-contrast-curve-3fa9c1``),
  a file name (``reports/<run>.html``, ``<run>_measurements.csv``) and part
  of every wafer's name on the handler. Given back on the command line, a run
  id or a unique prefix of one is matched exactly, never as a pattern.
* **wafer name on the handler** - ``<run id>/<wafer id>``, what labctl
  sends; the served bench's handler refuses any other ``NEW`` (a third-party
  client's 300-character name would be no file name on the bench).

=============  ======================================================  ======
name           grammar                                                 length
=============  ======================================================  ======
wafer id       ASCII letters, digits, ``-`` ``_`` ``.``;               1-32
               first a letter or digit
recipe name    words of ASCII letters, digits, ``-`` ``_`` ``.``,      1-64
               separated by single spaces; first a letter or digit
operator       words of ASCII letters, digits, ``-`` ``_`` ``.``       1-64
               ``@``, separated by single spaces; first a letter or
               digit
run id         ASCII letters, digits, ``-`` ``_`` ``.``;               1-64
               first a letter or digit (a prefix: the same)
=============  ======================================================  ======

Numbers: Python's ``int()`` and ``float()`` read other scripts' digits
(``"٣"`` is 3) and ``int()`` of a long digit string is quadratic (refused
past 4,300 digits, with a message about Python's limit); pint's
expression parser is quadratic in a long number and evaluates ``9**9**9``.
So the text of a number a user gives is ASCII and at most
:data:`MAX_NUMBER_CHARS` characters, and a quantity (``"10 mJ/cm**2"``) is a
plain ASCII number, then a unit with no power of a power, in at most
:data:`MAX_QUANTITY_CHARS` characters - checked before any conversion.

Only the standard library is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InputError

__all__ = [
    "GRAMMARS",
    "HANDLER_WAFER",
    "MAX_NUMBER_CHARS",
    "MAX_QUANTITY_CHARS",
    "NAME",
    "OPERATOR",
    "RECIPE_NAME",
    "RUN_ID",
    "WAFER_ID",
    "Grammar",
    "NumberTextError",
    "candidates_line",
    "check_name",
    "name_problem",
    "number_problem",
    "parse_float",
    "parse_integer",
    "quantity_problem",
    "shown",
    "unit_problem",
]

#: The longest number text read (characters): 64 holds any double written out
#: in full (17 significant digits, sign, point, exponent) four times over.
MAX_NUMBER_CHARS = 64
#: The longest quantity text read (characters): a number and a unit such as
#: ``"-1.2345678901234567e-10 mJ/cm**2"`` fit twice.
MAX_QUANTITY_CHARS = 64


@dataclass(frozen=True)
class Grammar:
    """The grammar of one kind of name: a pattern, a length, and the rule in words."""

    kind: str
    pattern: re.Pattern[str]
    max_length: int
    rule: str
    example: str

    def allowed(self) -> str:
        """The rule in one phrase, for messages and docs."""
        return f"1-{self.max_length} characters: {self.rule}"


_WORD = r"[A-Za-z0-9][A-Za-z0-9._-]*"

WAFER_ID = Grammar(
    "wafer id",
    re.compile(_WORD, re.ASCII),
    32,
    "ASCII letters, digits, '-', '_', '.', the first a letter or digit",
    "W01",
)
RECIPE_NAME = Grammar(
    "recipe name",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?: [A-Za-z0-9._-]+)*", re.ASCII),
    64,
    "words of ASCII letters, digits, '-', '_', '.' separated by single spaces,"
    " the first a letter or digit",
    "Resist on Si",
)
OPERATOR = Grammar(
    "operator",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*(?: [A-Za-z0-9._@-]+)*", re.ASCII),
    64,
    "words of ASCII letters, digits, '-', '_', '.', '@' separated by single spaces,"
    " the first a letter or digit",
    "jdoe",
)
RUN_ID = Grammar(
    "run id",
    re.compile(_WORD, re.ASCII),
    64,
    "ASCII letters, digits, '-', '_', '.', the first a letter or digit",
    "20260124-173102-contrast-curve-3fa9c1",
)
#: A wafer's name on the served bench's handler (``NEW <name>``): labctl sends
#: ``<run id>/<wafer id>`` (a derived wafer id may be longer than a given one);
#: it is one word of an ASCII line and, escaped, a file name on the bench.
HANDLER_WAFER = Grammar(
    "wafer name",
    re.compile(_WORD + "(?:/" + _WORD + ")?", re.ASCII),
    120,
    "a wafer id, or a run id, '/' and a wafer id",
    "20260124-173102-contrast-curve-3fa9c1/W01",
)
#: Any other name a protocol declares (a text parameter without its own grammar).
NAME = Grammar("name", RECIPE_NAME.pattern, 64, RECIPE_NAME.rule, "Resist on Si")

#: Every grammar by kind (docs/runs.md has them in one table).
GRAMMARS: dict[str, Grammar] = {g.kind: g for g in (WAFER_ID, RECIPE_NAME, OPERATOR, RUN_ID)}


def shown(value: object, limit: int = 40) -> str:
    """``value`` for a one-line message: quoted, ASCII, escaped, at most ``limit`` characters.

    Non-ASCII and control characters are escaped (``'W\\xe4'``), so a message
    never carries a line break, a terminal escape or a right-to-left mark; a
    long value is cut and its length said (``'WWW...' (300 characters)``).
    """
    if not isinstance(value, str):
        text = ascii(value)
        return text if len(text) <= limit else f"{text[:limit]}..."
    if len(value) <= limit:
        return ascii(value)
    head = ascii(value[:limit])
    return f"{head[:-1]}...{head[0]} ({len(value)} characters)"


def name_problem(grammar: Grammar, value: object) -> str | None:
    """Why ``value`` is not a ``grammar`` name (a phrase after the value), or None."""
    a = "an" if grammar.kind[0] in "aeiou" else "a"
    if not isinstance(value, str):
        return f"is not text ({a} {grammar.kind}: {grammar.allowed()})"
    if not value:
        return f"is empty ({a} {grammar.kind}: {grammar.allowed()})"
    if len(value) > grammar.max_length or not grammar.pattern.fullmatch(value):
        return f"is not {a} {grammar.kind} (allowed: {grammar.allowed()})"
    return None


def check_name(
    value: object,
    grammar: Grammar,
    *,
    source: str | None = None,
    field: str | None = None,
    error: type[InputError] = InputError,
) -> str:
    """``value`` if it is a ``grammar`` name; else ``error`` naming source, field, value and rule.

    The value is checked as given - not stripped - so what is checked is what
    is used.
    """
    problem = name_problem(grammar, value)
    if problem is not None:
        raise error(f"{shown(value)} {problem}", source=source, field=field)
    assert isinstance(value, str)
    return value


def _non_ascii_digit(text: str) -> str | None:
    return next((c for c in text if not c.isascii() and c.isdecimal()), None)


def number_problem(text: str) -> str | None:
    """Why ``text`` may not be read as a number at all, or None.

    Refused before any conversion: more than :data:`MAX_NUMBER_CHARS`
    characters, or any character outside ASCII (``"٣"``, ``"１０"``).
    Whether the ASCII text is a number is the parser's business.
    """
    if len(text) > MAX_NUMBER_CHARS:
        return f"is longer than {MAX_NUMBER_CHARS} characters (a number is at most that)"
    if not text.isascii():
        digit = _non_ascii_digit(text)
        if digit is not None:
            return f"has the non-ASCII digit {digit!a} (write numbers with 0-9)"
        return "has characters outside ASCII (write numbers with 0-9)"
    return None


class NumberTextError(ValueError):
    """Text refused as a number; ``problem`` is the reason without the value."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"{shown(text)} {problem}")
        self.text = text
        self.problem = problem


_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def parse_integer(text: str) -> int:
    """A whole number from ASCII text (``"16"``, ``"-3"``), surrounding spaces allowed.

    Raises :class:`NumberTextError` (a :class:`ValueError`) with the reason
    for non-ASCII digits, text longer than :data:`MAX_NUMBER_CHARS` (before
    conversion) and anything else that is not ``[+-]digits`` (``"1_0"``,
    ``"1.0"``).
    """
    stripped = text.strip()
    problem = number_problem(stripped)
    if problem is None and not _INTEGER.fullmatch(stripped):
        problem = "is not a whole number"
    if problem is not None:
        raise NumberTextError(text, problem)
    return int(stripped)


def parse_float(text: str) -> float:
    """A number from ASCII decimal text (``"1.5"``, ``"2e-3"``, ``"-.5"``), spaces allowed.

    ``inf`` and ``nan`` are read too (callers refuse them as not finite, with
    their own words). Raises :class:`NumberTextError` (a :class:`ValueError`)
    with the reason for non-ASCII digits, text longer than :data:`MAX_NUMBER_CHARS` (before
    conversion) and anything else that is not a decimal number
    (``"1_0"``, ``"0x10"``).
    """
    stripped = text.strip()
    problem = number_problem(stripped)
    if problem is None and not (
        _FLOAT.fullmatch(stripped) or stripped.lower().lstrip("+-") in ("inf", "nan", "infinity")
    ):
        problem = "is not a number"
    if problem is not None:
        raise NumberTextError(text, problem)
    return float(stripped)


#: A power: ``**``, ``^``, or superscript digits (pint reads ``cm²`` as ``cm**2``).
_POWER = re.compile(r"\*\*|\^|[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+")
#: The exponent a power may have: a plain number of at most two digits.
_EXPONENT = re.compile(r"\s*[+-]?[0-9]{1,2}(?:\.[0-9]{1,3})?(?![0-9.])", re.ASCII)
#: A unit's text: unit words (any letters: pint has ``°C``, ``µm``, ``Ω``), ``%``,
#: numbers (``1/s``, exponents), ``*`` ``/`` ``^`` ``·``, brackets, spaces.
_UNIT_CHARACTERS = re.compile(r"[\w%°µμΩÅ·*/^().+\- ⁰¹²³⁴⁵⁶⁷⁸⁹⁻]*")
_QUANTITY = re.compile(
    r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*(?P<unit>.*?)\s*",
    re.ASCII | re.DOTALL,
)


def _power_problem(text: str) -> str | None:
    """Why the powers in a unit's text are unsafe for pint, or None.

    pint's unit parser evaluates what it reads: ``9**999999999`` or
    ``s**9**9**9`` (a power of a power) computes a number of a billion digits
    and never returns. A power here is a unit word's (the character before it
    is a letter), with a plain exponent of at most two digits, and no power
    follows it.
    """
    for match in _POWER.finditer(text):
        before = text[: match.start()].rstrip()
        if not before or not before[-1].isalpha():
            return "raises a number or a bracket to a power (write a unit's power, like cm**2)"
        if match.group()[0] in "*^":
            exponent = _EXPONENT.match(text, match.end())
            if exponent is None:
                return "has a power without a plain exponent of 1-2 digits (like cm**2)"
            after = text[exponent.end() :].lstrip()
        else:
            if len(match.group().lstrip("⁻")) > 2:
                return "has a power of more than 2 digits"
            after = text[match.end() :].lstrip()
        if _POWER.match(after):
            return "raises a power to a power (write one exponent, like cm**2)"
    return None


def unit_problem(text: str) -> str | None:
    """Why ``text`` may not be given to pint as a unit, or None.

    Refused: more than :data:`MAX_QUANTITY_CHARS` characters, a non-ASCII
    digit, a character no unit has, and a power pint would evaluate without
    bound (see :func:`_power_problem`).
    """
    if len(text) > MAX_QUANTITY_CHARS:
        return f"is longer than {MAX_QUANTITY_CHARS} characters (a unit is at most that)"
    digit = _non_ascii_digit(text)
    if digit is not None:
        return f"has the non-ASCII digit {digit!a} (write numbers with 0-9)"
    if not _UNIT_CHARACTERS.fullmatch(text):
        return "has characters no unit has"
    return _power_problem(text)


def quantity_problem(text: str) -> str | None:
    """Why ``text`` may not be read as a quantity ``"<number> <unit>"``, or None.

    Refused before pint sees it: more than :data:`MAX_QUANTITY_CHARS`
    characters; anything but a plain ASCII number first (``"٣ s"``,
    ``"9**9**9 s"``); a unit :func:`unit_problem` refuses.
    """
    if len(text) > MAX_QUANTITY_CHARS:
        return f"is longer than {MAX_QUANTITY_CHARS} characters (a quantity is at most that)"
    match = _QUANTITY.fullmatch(text)
    if match is None:
        digit = _non_ascii_digit(text)
        if digit is not None:
            return f"has the non-ASCII digit {digit!a} (write numbers with 0-9)"
        return 'does not start with a number (write a number, then a unit: "10 mJ/cm**2")'
    return unit_problem(match.group("unit"))


def candidates_line(names: Iterable[str], shown_at_most: int = 5) -> str:
    """``a, b, c and 4 more``: a few of ``names`` for a one-line message."""
    names = list(names)
    head = ", ".join(names[:shown_at_most])
    more = len(names) - shown_at_most
    return head + (f" and {more} more" if more > 0 else "")
