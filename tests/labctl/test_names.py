"""labctl.names: one grammar per kind of name, and numbers that are ASCII and short."""

from __future__ import annotations

import pytest

from labctl.errors import InputError, RecipeError
from labctl.names import (
    GRAMMARS,
    MAX_NUMBER_CHARS,
    MAX_QUANTITY_CHARS,
    OPERATOR,
    RECIPE_NAME,
    RUN_ID,
    WAFER_ID,
    Grammar,
    NumberTextError,
    candidates_line,
    check_name,
    name_problem,
    parse_float,
    parse_integer,
    quantity_problem,
    shown,
    unit_problem,
)

#: Names each grammar must take: labctl's own defaults and examples among them.
GOOD: dict[str, list[str]] = {
    "wafer id": ["W01", "W01-2", "W01-r1", "w", "7", "W01.a_b-c", "W" * 32],
    "recipe name": ["Resist on Si", "Resist on Si 632.8nm", "R", "PHS_v2-b.1", "a " * 31 + "ab"],
    "operator": ["jdoe", "Jane Doe", "j.doe@lab", "x" * 64, "operator 2"],
    "run id": ["20260124-173102-contrast-curve-3fa9c1", "2026", "bench", "r" * 64],
}
#: Names no grammar may take: what the issue reported, and the edges.
BAD_EVERYWHERE = [
    "",
    " W01",
    "W01 ",
    "W(1)",
    "Resist (v2)",
    "W\u00e4",
    "\u0663",
    "W01\n",
    "W01\r",
    "W01\tx",
    "-W01",
    ".W01",
    "_W01",
    "W01/2",
    "W01\\2",
    "%",
    "_",
    "W%",
    "W*",
    "W?",
    'W"1',
    "W:1",
    "W;1",
    "W\x00",
    "W\u202e1",
    "x" * 300,
]
#: Names one grammar takes and another refuses.
SPACES = ["W 01", "Resist on Si"]


@pytest.mark.parametrize("kind", list(GOOD))
def test_each_grammar_takes_its_names(kind: str) -> None:
    grammar = GRAMMARS[kind]
    for value in GOOD[kind]:
        assert name_problem(grammar, value) is None, value
        assert check_name(value, grammar) == value


@pytest.mark.parametrize("grammar", list(GRAMMARS.values()), ids=list(GRAMMARS))
@pytest.mark.parametrize("value", BAD_EVERYWHERE, ids=range(len(BAD_EVERYWHERE)))
def test_no_grammar_takes_a_hostile_name(grammar: Grammar, value: str) -> None:
    problem = name_problem(grammar, value)
    assert problem is not None
    with pytest.raises(RecipeError) as refused:
        check_name(value, grammar, source="--set", field="wafer", error=RecipeError)
    message = str(refused.value)
    assert message.startswith("--set: wafer: ")
    assert "\n" not in message and "\r" not in message and message.isascii()
    assert len(message) < 300  # the value is cut, not echoed whole
    assert grammar.allowed() in message


def test_spaces_only_where_words_are_names() -> None:
    for value in SPACES:
        assert name_problem(WAFER_ID, value) is not None
        assert name_problem(RUN_ID, value) is not None
        assert name_problem(RECIPE_NAME, value) is None
        assert name_problem(OPERATOR, value) is None
    for grammar in (RECIPE_NAME, OPERATOR):
        assert name_problem(grammar, "Resist  on Si") is not None  # one space between words


def test_lengths_are_bounded() -> None:
    assert name_problem(WAFER_ID, "W" * 33) is not None
    assert name_problem(RECIPE_NAME, "R" * 65) is not None
    assert name_problem(OPERATOR, "o" * 65) is not None
    assert name_problem(RUN_ID, "2" * 65) is not None


def test_a_wafer_id_and_its_derived_ids_fit_the_file_names_they_make() -> None:
    """The longest run id and wafer id, with labctl's suffixes, fit a 255-byte file name."""
    run_id, wafer = "r" * RUN_ID.max_length, "W" * WAFER_ID.max_length
    derived = f"{wafer}-99-r9"
    bench_file = f"{run_id}%2F{derived}.json"  # the bench's wafer file (quote(run/wafer))
    export = f"{run_id}_{derived}_spin 10000 rpm_999"  # the ellipsometer's export file
    assert len(bench_file) <= 255 and len(export) <= 255


def test_non_text_is_refused() -> None:
    assert name_problem(WAFER_ID, 1) is not None
    assert name_problem(WAFER_ID, None) is not None
    with pytest.raises(InputError, match="is not text"):
        check_name(["W01"], WAFER_ID)


def test_shown_is_one_short_ascii_line() -> None:
    assert shown("W01") == "'W01'"
    assert shown("W\u00e4\n") == "'W\\xe4\\n'"
    assert shown("W\u202e1") == "'W\\u202e1'"  # no right-to-left override reaches a terminal
    long = shown("x" * 300)
    assert long.startswith("'xxxx") and long.endswith("...' (300 characters)")
    assert len(long) < 80
    assert shown(12345) == "12345"
    assert len(shown(list(range(1000)))) <= 43


def test_integers_are_ascii_digits_of_bounded_length() -> None:
    assert parse_integer("16") == 16
    assert parse_integer(" -3 ") == -3
    assert parse_integer("+7") == 7
    assert parse_integer("9" * MAX_NUMBER_CHARS) == int("9" * MAX_NUMBER_CHARS)
    for text, reason in [
        ("\u0663", "non-ASCII digit"),  # Arabic-Indic 3: int() says 3
        ("\uff11\uff16", "non-ASCII digit"),  # full-width 16
        ("1\u0663", "non-ASCII digit"),
        ("9" * (MAX_NUMBER_CHARS + 1), "longer than 64"),
        ("9" * 120_000, "longer than 64"),  # int() would say "Exceeds the limit (4300 digits)"
        ("1_000", "not a whole number"),
        ("1.0", "not a whole number"),
        ("0x10", "not a whole number"),
        ("", "not a whole number"),
        ("1e3", "not a whole number"),
    ]:
        with pytest.raises(NumberTextError) as refused:
            parse_integer(text)
        assert reason in refused.value.problem, text
        assert isinstance(refused.value, ValueError)
        assert len(str(refused.value)) < 200


def test_floats_are_ascii_decimals_of_bounded_length() -> None:
    assert parse_float("1.5") == 1.5
    assert parse_float("-.5") == -0.5
    assert parse_float("2e-3") == 0.002
    assert parse_float(" 5. ") == 5.0
    assert parse_float("inf") == float("inf")
    for text in ["\u0663.5", "1_0.5", "0x1p3", "9" * 65, "1,5", "", "1.5 mm", "١٫٥"]:
        with pytest.raises(NumberTextError):
            parse_float(text)


@pytest.mark.parametrize(
    "text",
    [
        "3000 rpm",
        "100 Hz",
        "10 mJ/cm**2",
        "10 mJ/cm^2",
        "10 mJ/cm²",
        "10 mJ/(cm**2)",
        "1.5e-3 J/cm**2",
        "110 degC",
        "110 °C",
        "5 delta_degC",
        "5 degC/min",
        "50 %",
        "0.5",
        "8 mm",
        "1 1/s",
        "1 cm**-2",
        " 30 s ",
    ],
)
def test_quantities_labctl_writes_pass(text: str) -> None:
    assert quantity_problem(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\u0663 s", "non-ASCII digit"),
        ("\uff13 s", "non-ASCII digit"),
        ("3 s\u0663", "non-ASCII digit"),
        ("9" * 120_000 + " rpm", "longer than 64"),
        ("1 " + "m" * 70, "longer than 64"),
        ("rpm", "does not start with a number"),
        ("x s", "does not start with a number"),
        ("9**9**9 s", "raises a number"),
        ("1 s**9**9**9", "power to a power"),
        ("1 s^9^9^9", "power to a power"),
        ("1 s**9 ** 9", "power to a power"),
        ("1 s**2²", "power to a power"),
        ("1 s**(9**9**9)", "plain exponent"),
        ("1 s**((9)**((9)**(9)))", "plain exponent"),
        ("1 s**999999999", "plain exponent"),
        ("1 9**999999999", "raises a number"),
        ("1 9\u2079\u2079\u2079\u2079\u2079\u2079\u2079\u2079\u2079", "raises a number"),
        ("1 s\u2079\u2079\u2079", "more than 2 digits"),
        ("1 (s)**9", "raises a number or a bracket"),
        ("1 s; import os", "characters no unit has"),
        ("1 s\n2", "characters no unit has"),
    ],
)
def test_quantities_pint_cannot_be_trusted_with_are_refused(text: str, reason: str) -> None:
    problem = quantity_problem(text)
    assert problem is not None and reason in problem, problem


def test_unit_text_alone() -> None:
    assert unit_problem("mJ/cm**2") is None
    assert unit_problem("cm**2") is None
    assert unit_problem("cm**9**9**9") is not None
    assert unit_problem("m" * (MAX_QUANTITY_CHARS + 1)) is not None


def test_parse_quantity_refuses_before_pint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A power of a power never reaches pint's parser (which would not return)."""
    from labctl import units

    def reached(*_args: object) -> None:
        raise AssertionError("pint's parser was reached")

    monkeypatch.setattr(units.ureg, "parse_units", reached)
    monkeypatch.setattr(units.ureg, "parse_expression", reached)
    for text in ["1 s**9**9**9", "9**9**9 s", "\u0663 s", "9" * 200 + " s"]:
        with pytest.raises(ValueError) as refused:
            units.parse_quantity(text)
        assert "pint's parser" not in str(refused.value)


def test_as_quantity_still_reads_good_text() -> None:
    from labctl.units import U, as_quantity

    assert as_quantity("100 Hz", U.rpm).magnitude == pytest.approx(6000)
    assert as_quantity("10 mJ/cm²", U.mJ_per_cm2).magnitude == pytest.approx(10)


def test_candidates_line() -> None:
    assert candidates_line(["a", "b"]) == "a, b"
    assert candidates_line([str(i) for i in range(8)]) == "0, 1, 2, 3, 4 and 3 more"
