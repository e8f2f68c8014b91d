"""The import graph: every import of every module, one direction, no circles.

``docs/architecture.md`` draws the layers. What each may import, among the
four packages of the distribution::

    labctl           -> (nothing above it: it finds the rest by name, labctl/plugins.py)
    drivers          -> labctl
    protocols        -> labctl, drivers
    sim_instruments  -> labctl

Every import counts - at module level, inside a function, under ``if
TYPE_CHECKING:`` - and so does a module named by a string to
``importlib.import_module``, ``__import__`` or ``importlib.resources.files``:
a layer that reaches up by name is still reaching up. Finding by name means
through an entry-point group, whose lines live in ``pyproject.toml``.

No circles either: the modules of the four packages, joined by every import
that runs - at module level or inside a function (an import deferred into a
function to get round a circle is still a circle) - form no cycle; a failure
lists each cycle with its files. Only an import under ``if TYPE_CHECKING:``,
which never runs, may point back (a type named in an annotation).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("labctl", "drivers", "protocols", "sim_instruments")
#: What each package may import, among the four (its own modules always).
ALLOWED: dict[str, frozenset[str]] = {
    "labctl": frozenset(),
    "drivers": frozenset({"labctl"}),
    "protocols": frozenset({"labctl", "drivers"}),
    "sim_instruments": frozenset({"labctl"}),
}
#: Calls that import (or open a package's files) by a module name given as text.
BY_NAME = {"import_module", "__import__", "files", "find_spec"}


@dataclass(frozen=True)
class Import:
    """One import of a module: who, what (a module of the four packages, or outside), where."""

    importer: str
    imported: str
    path: Path
    line: int
    how: str  # "import", "from", or the call that named it
    #: Under ``if TYPE_CHECKING:``: read by a type checker, never run.
    typing_only: bool = False


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


MODULES = project_modules()


def _absolute(importer: str, path: Path, module: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    package = importer.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _deepest(name: str) -> str:
    """The longest prefix of ``name`` that is a module of the four packages ('' if none)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return ""


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node, and whether it stands under ``if TYPE_CHECKING:`` (its body, not its else)."""
    yield tree, typing_only
    if isinstance(tree, ast.If) and _type_checking(tree.test):
        for child in tree.body:
            yield from _nodes(child, True)
        for child in tree.orelse:
            yield from _nodes(child, typing_only)
        return
    for child in ast.iter_child_nodes(tree):
        yield from _nodes(child, typing_only)


def imports_of(importer: str, path: Path) -> Iterator[Import]:
    """Every import in the module - wherever it stands in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node, typing_only in _nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(importer, alias.name, path, node.lineno, "import", typing_only)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(importer, path, node.module, node.level)
            for alias in node.names:
                # ``from pkg import module`` imports the module; ``from m import name`` m.
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in MODULES else base
                yield Import(importer, target, path, node.lineno, "from", typing_only)
        elif isinstance(node, ast.Call):
            called = node.func
            name = (
                called.attr
                if isinstance(called, ast.Attribute)
                else called.id
                if isinstance(called, ast.Name)
                else ""
            )
            first = node.args[0] if node.args else None
            if (
                name in BY_NAME
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value.split(".")[0] in PACKAGES
            ):
                yield Import(importer, first.value, path, node.lineno, f"{name}()", typing_only)


ALL_IMPORTS = [i for name, path in MODULES.items() for i in imports_of(name, path)]


def where(found: Import) -> str:
    return f"{found.path.relative_to(ROOT)}:{found.line}: {found.importer} -> {found.imported}"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_imports_only_what_stands_below_it(package: str) -> None:
    wrong = [
        where(i)
        for i in dict.fromkeys(ALL_IMPORTS)
        if i.importer.split(".")[0] == package
        and i.imported.split(".")[0] in PACKAGES
        and i.imported.split(".")[0] != package
        and i.imported.split(".")[0] not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_takes_part_in_an_import_cycle() -> None:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for found in ALL_IMPORTS:
        target = _deepest(found.imported)
        if target and target != found.importer and not found.typing_only:
            edges[found.importer].add(target)
    circles = cycles(edges)
    described = [
        " <-> ".join(f"{name} ({MODULES[name].relative_to(ROOT)})" for name in circle)
        for circle in circles
    ]
    assert not circles, "import cycles:\n" + "\n".join(described)


# -- the walker itself: each of its rules catches what it is for --------------------------


def test_the_walker_sees_function_level_type_checking_and_by_name_imports(tmp_path: Path) -> None:
    package = ROOT / "labctl"
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from drivers.scpi import ScpiDriver\n"
        "def f():\n"
        "    from ..protocols import runner\n"
        "    import importlib\n"
        "    importlib.import_module('sim_instruments.bench')\n"
        "    from . import units\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    fake = package / "probe.py"  # named as if it stood in labctl/, for the relative imports
    found = [
        (i.imported, i.how)
        for i in imports_of("labctl.probe", path)
        if i.imported.split(".")[0] in PACKAGES
    ]
    assert fake.parent.is_dir()
    assert ("drivers.scpi", "from") in found
    assert ("protocols.runner", "from") in found
    assert ("sim_instruments.bench", "import_module()") in found
    assert ("labctl.units", "from") in found
    typing_only = {i.imported for i in imports_of("labctl.probe", path) if i.typing_only}
    assert typing_only == {"drivers.scpi"}


def test_the_cycle_finder_names_every_member() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(edges) == [["a", "b", "c"], ["e"]]
