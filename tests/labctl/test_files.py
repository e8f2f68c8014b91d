"""labctl.files: input files bounded in size, nesting, dotted keys and numbers before parsing."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl import files
from labctl.errors import FormulationError, InputError, StationFileError
from labctl.files import (
    MAX_FILE_BYTES,
    MAX_KEY_PARTS,
    MAX_NESTING,
    file_bytes,
    read_toml,
    stored_files,
    toml_bounds_problem,
)
from labctl.names import MAX_NUMBER_CHARS

ROOT = Path(__file__).resolve().parents[2]
#: Every TOML file labctl ships: the bounds must take each one.
SHIPPED = sorted([*ROOT.glob("examples/**/*.toml"), *ROOT.glob("sim_instruments/*.toml")], key=str)


@pytest.fixture
def no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """tomllib must not be reached: the bounds refuse first."""

    def reached(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("tomllib.loads was reached")

    monkeypatch.setattr(files.tomllib, "loads", reached)


def _refused(path: Path, error: type[InputError] = FormulationError) -> str:
    with pytest.raises(error) as refused:
        read_toml(path, error)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_file_is_inside_the_bounds(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert toml_bounds_problem(text) is None
    assert read_toml(path, InputError) == tomllib.loads(text)


# -- size ---------------------------------------------------------------------------------


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    body = 'x = "'
    path.write_text(body + "a" * (MAX_FILE_BYTES - len(body) - 2) + '"\n')
    assert path.stat().st_size == MAX_FILE_BYTES
    assert len(read_toml(path, InputError)["x"]) == MAX_FILE_BYTES - len(body) - 2


def test_a_file_one_byte_over_is_refused_unread(tmp_path: Path, no_parser: None) -> None:
    path = tmp_path / "f.toml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    message = _refused(path)
    assert f"file: too large ({MAX_FILE_BYTES + 1} bytes; allowed: at most {MAX_FILE_BYTES}" in (
        message
    )


def test_a_100_mb_file_is_refused_from_its_size(tmp_path: Path, no_parser: None) -> None:
    path = tmp_path / "f.toml"
    with open(path, "wb") as big:
        big.truncate(100 * 1024 * 1024)  # sparse: its size, not its bytes, is refused
    assert "too large (104857600 bytes" in _refused(path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_file_without_end_is_read_no_further_than_the_limit(no_parser: None) -> None:
    """/dev/zero says 0 bytes and never ends: at most one byte past the limit is read."""
    assert "too large (over 1048576 bytes" in _refused(Path("/dev/zero"))
    with pytest.raises(InputError, match="too large"):
        file_bytes("/dev/zero", limit=10)


def test_file_bytes_takes_a_limit_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"0123456789")
    assert file_bytes(path, limit=10) == b"0123456789"
    with pytest.raises(InputError) as refused:
        file_bytes(path, limit=9)
    assert str(refused.value) == (f"{path}: file: too large (10 bytes; allowed: at most 9 bytes)")


def test_a_stored_copy_is_bounded_too(tmp_path: Path, no_parser: None) -> None:
    """A queue entry's kept bytes pass the same limit as the disk's (a file grown since)."""
    path = tmp_path / "f.toml"
    path.write_text("x = 1\n")
    with stored_files({path: b"#" * (MAX_FILE_BYTES + 1)}):
        assert "too large" in _refused(path)


# -- nesting, dotted keys, numbers ----------------------------------------------------------


def _nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "x = " + "[" * depth + "1" + "]" * depth + "\n"
    return "x = " + "{a = " * depth + "1" + "}" * depth + "\n"


@pytest.mark.parametrize("kind", ["array", "inline table"])
def test_nesting_at_the_bound_is_read_past_it_refused_unparsed(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.toml"
    path.write_text(_nested(MAX_NESTING, kind))
    assert read_toml(path, InputError)["x"]
    for depth in (MAX_NESTING + 1, 5000):
        path.write_text(_nested(depth, kind))
        with monkeypatch.context() as patch:
            patch.setattr(files.tomllib, "loads", _unreachable)
            message = _refused(path, StationFileError)
        assert f"line 1: nested more than {MAX_NESTING} deep" in message


def _unreachable(*_args: Any) -> Any:
    raise AssertionError("tomllib.loads was reached")


def _dotted(parts: int, where: str) -> str:
    key = ".".join(f"k{i}" for i in range(parts))
    if where == "key":
        return f"{key} = 1\n"
    if where == "quoted key":
        return ".".join(f'"k {i}"' for i in range(parts)) + " = 1\n"
    if where == "spaced key":
        return " . ".join(f"k{i}" for i in range(parts)) + " = 1\n"
    if where == "header":
        return f"[{key}]\nx = 1\n"
    if where == "array of tables":
        return f"[[{key}]]\nx = 1\n"
    return f"x = {{ {key} = 1 }}\n"  # inline table


@pytest.mark.parametrize(
    "where", ["key", "quoted key", "spaced key", "header", "array of tables", "inline table"]
)
def test_dotted_keys_at_the_bound_are_read_past_it_refused_unparsed(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.toml"
    path.write_text(_dotted(MAX_KEY_PARTS, where))
    read_toml(path, InputError)
    monkeypatch.setattr(files.tomllib, "loads", _unreachable)
    for parts in (MAX_KEY_PARTS + 1, 100_000):
        path.write_text(_dotted(parts, where))
        message = _refused(path)
        assert f"a dotted key of more than {MAX_KEY_PARTS} parts" in message


def test_a_dotted_key_on_a_later_line_is_named(tmp_path: Path, no_parser: None) -> None:
    path = tmp_path / "f.toml"
    path.write_text("a = 1\nb = 2\n\n" + _dotted(100_000, "key"))
    assert ": line 4: a dotted key" in _refused(path)


def test_numbers_at_the_bound_are_read_past_it_refused_unparsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.toml"
    integer = "9" * MAX_NUMBER_CHARS
    path.write_text(f"x = {integer}\ny = -{'1' * (MAX_NUMBER_CHARS - 1)}\n")
    assert read_toml(path, InputError)["x"] == int(integer)
    monkeypatch.setattr(files.tomllib, "loads", _unreachable)
    for text in (
        f"x = {'9' * 120_000}\n",
        f"x = -{'9' * MAX_NUMBER_CHARS}\n",
        f"x = 1.{'5' * 120_000}\n",
        f"x = [1, 2, {'9' * 65}]\n",
        f"x = 07:32:00.{'9' * 120_000}\n",  # a time's fraction: tomllib takes any length
    ):
        path.write_text(text)
        assert "a number longer than 64 characters" in _refused(path)


TRICKY = '''\
# a comment [[[[[[[[[[[[[[[[[[[[[[[[[ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r "
x = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r \\" [[[["
y = \'\'\'[[[[[[[[[[[[[[[[[[[[[[[[[
[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \'\' \'
\'\'\'
z = """
[[[[[[[[[[[[[[[[[[[[[\\"""[[[[[[[[[[[[[[[[[[[[[[[[[ "" \\\\"""
w = 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s[[[[[[[[[[[[[[[[[[[[[[['
v = """a""""
u = \'\'\'b\'\'\'\'\'
"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s" = 1
t = [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5, 15.5, 16.5, 17.5]
s = 1979-05-27T07:32:00.999999-07:00
r = "{9999999999999999999999999999999999999999999999999999999999999999999999}"
'''


def test_strings_and_comments_are_not_counted(tmp_path: Path) -> None:
    """Brackets, dots and digits inside strings and comments are text, not structure."""
    assert toml_bounds_problem(TRICKY) is None
    path = tmp_path / "f.toml"
    path.write_text(TRICKY)
    assert read_toml(path, InputError) == tomllib.loads(TRICKY)


def test_an_unterminated_string_does_not_hide_what_follows_on_the_next_line() -> None:
    # A single-line string ends at its line's end, as tomllib says (an error there).
    assert toml_bounds_problem('x = "abc\ny = ' + "[" * 100 + "\n") is not None
    assert toml_bounds_problem("x = 'abc\ny = " + "[" * 100 + "\n") is not None


@pytest.mark.parametrize(
    "failure",
    [RecursionError("maximum recursion depth exceeded"), MemoryError(), ValueError("too long\nx")],
)
def test_the_parser_s_own_failures_are_one_line(
    tmp_path: Path, failure: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A last guard behind the scan: what tomllib lets out is the caller's one-line error."""

    def fail(*_args: Any) -> Any:
        raise failure

    monkeypatch.setattr(files.tomllib, "loads", fail)
    path = tmp_path / "f.toml"
    path.write_text("x = 1\n")
    message = _refused(path)
    assert "Traceback" not in message


# -- the scan against tomllib, on documents generated at random ------------------------------

_STRINGS = st.text(
    alphabet=st.sampled_from([*"ab.[]{}#=,\"'\\ \n\t9", "\u00e4", "\u0663"]), max_size=12
)
_LEAVES = st.one_of(
    st.integers(-(10**18), 10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    _STRINGS,
)
_KEYS = st.text(alphabet=st.sampled_from(list("ab.[]\"' 9")), min_size=1, max_size=6)


def _values(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return _LEAVES
    inner = _values(depth - 1)
    return st.one_of(
        _LEAVES,
        st.lists(inner, max_size=3),
        st.dictionaries(_KEYS, inner, max_size=3),
    )


def _toml(value: Any) -> str:
    """``value`` as inline TOML (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_values(3),
    layers=st.lists(st.sampled_from(["array", "table"]), max_size=MAX_NESTING + 4),
    key=_KEYS,
)
def test_the_scan_counts_what_tomllib_nests(value: Any, layers: list[str], key: str) -> None:
    """Generated documents: refused exactly when nested past the bound, else read as written."""
    for layer in layers:
        value = [value] if layer == "array" else {"k.k": value}
    text = f"{json.dumps(key)} = {_toml(value)}\n"
    problem = toml_bounds_problem(text)
    if _depth(value) > MAX_NESTING:
        assert problem is not None and "nested more than" in problem[1]
    else:
        assert problem is None, (problem, text)
        assert tomllib.loads(text) == {key: value}
