"""The import graph of eval, curation and limo, read from the source (AST, nothing imported).

The rules docs/architecture.md states ("Layers"): imports run one way (eval <- curation <- limo), no module imports
itself back through a cycle, a function-level import of the project's own modules is only there to defer a heavy
optional dependency, saying so in a ``# deferred:`` comment on the import, inside a layer the parts stand on floors
(`FLOORS`: a part imports only parts on lower floors), and the parts that share a format import it from below both
(`ONE_WAY`, which the floors add to).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from tests.shared_data import REPO_ROOT

PACKAGES = ("eval", "curation", "limo")
LAYER = {"eval": 0, "curation": 1, "limo": 2}


def module_files() -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = module_files()


def imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The project modules an import statement names (``from pkg import sub`` names ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] in PACKAGES]
    base = node.module or ""
    if node.level:  # relative import: resolve against the importing module's package
        package = module.split(".")[: -node.level] if module in MODULES else module.split(".")
        base = ".".join([*package, base] if base else package)
    if base.split(".")[0] not in PACKAGES:
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def imports_of(name: str) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every project import in module ``name``."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((target, child.lineno, inside) for target in imported(child, name))
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(ast.parse(MODULES[name].read_text()), False)
    return found


@functools.cache
def graph() -> dict[str, list[tuple[str, int, bool]]]:
    """Every module's `imports_of`, read when a test first asks (not while the suite is collected: every test
    process collects every module)."""
    return {name: imports_of(name) for name in MODULES}


def test_the_walk_sees_every_package():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    assert len(MODULES) > 60 and sum(len(edges) for edges in graph().values()) > 200


def test_no_upward_import():
    upward = [
        f"{name}:{line} imports {target}"
        for name, edges in graph().items()
        for target, line, _ in edges
        if LAYER[target.split(".")[0]] > LAYER[name.split(".")[0]]
    ]
    assert upward == []


def test_no_import_cycle():
    edges = {name: sorted({t for t, _, _ in graph()[name] if t in MODULES and t != name}) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in edges[name]:
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])
    assert cycles == [], [" -> ".join(c) for c in cycles]


def test_function_level_imports_only_defer_heavy_optional_dependencies():
    lines = {name: MODULES[name].read_text().splitlines() for name in MODULES}
    unexplained = [
        f"{name}:{line} imports {target}"
        for name, edges in graph().items()
        for target, line, inside in edges
        if inside and "# deferred:" not in lines[name][line - 1]
    ]
    assert unexplained == []


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


ENTRY_POINTS = tuple(
    f"limo.{c}"
    for c in ("curate", "train", "evaluate", "plan", "discover", "export", "explore", "serve", "demo", "ablate")
)

# The floors of a layer, lowest first: a part (a package or a module, by dotted name) imports only parts on lower
# floors, never one on its own floor or above (docs/architecture.md, "Layers"). Every module of the layer but its
# __init__ belongs to exactly one part.
FLOORS = {
    "eval": (
        ("eval.problem", "eval.options", "eval.answers", "eval.niceness"),  # the problem record, options, reading an
        # answer, and the nice of a process started with setsid
        ("eval.records",),  # readers and writers
        ("eval.backends",),  # generation backends, generators, model sources
        ("eval.benchmarks",),  # benchmarks and task generators
        ("eval.grading",),  # the grader, its pool, policy and judge, and its internals
        ("eval.reports",),  # metrics, reports and pages
        ("eval.run",),  # generate and grade
        ("eval.grader", "eval.extract"),  # the grader's public names, handed on
    ),
    "limo": (
        ("limo.config",),  # where recipes are, a section as typed options, sweep folders
        ("limo.models",),  # chat templates, tiny models
        ("limo.training",),  # training on TRL + DeepSpeed, with its options
        ("limo.setup",),  # a recipe section as plain options, one module per command
        ("limo.discovery", "limo.gguf"),  # the commands' parts
        ("limo.cli",),  # the command line: checked against every options type, one error style, --help, compose
        ("limo.ablation",),  # a study composes its runs as the command line does
        ENTRY_POINTS,  # what users type: python -m limo.<command>
    ),
}


def part_of(module: str) -> str | None:
    """The part of its layer's floors that ``module`` belongs to (the longest name it lies under), if any."""
    parts = [p for floor in FLOORS.get(module.split(".")[0], ()) for p in floor if _under(module, p)]
    return max(parts, key=len, default=None)


def floor_rules() -> tuple[tuple[str, str, str], ...]:
    """One rule per ordered pair of parts where the first may not import the second: the second stands on the same
    floor or higher."""
    rules = []
    for floors in FLOORS.values():
        for low, floor in enumerate(floors):
            for part in floor:
                above = [p for higher in floors[low:] for p in higher if p != part]
                rules += [(part, other, f"{part} stands below {other} or beside it") for other in above]
    return tuple(rules)


# (importer, imported, why): no module under the first (the package itself included) imports one under the second.
SHARED_FORMATS = (
    (
        "limo.training",
        "limo.discovery",
        "discovery trains through training; the loss language and archive live in training",
    ),
    ("limo.training", "curation.methods", "the reward-history format is curation.reward_history, not a method's file"),
    ("eval.answers", "eval.grading", "grading reads answers with eval.answers; shared text helpers sit below both"),
    ("curation.stages", "curation.outputs", "stages declare what outputs render; outputs read stages"),
)
ONE_WAY = SHARED_FORMATS + tuple(r for r in floor_rules() if r[:2] not in {s[:2] for s in SHARED_FORMATS})


def _in(module: str, name: str) -> bool:
    """Whether ``module`` is in ``name``: in that floor part when ``name`` is one (not in a part inside it), else
    under it."""
    parts = {p for floors in FLOORS.values() for floor in floors for p in floor}
    return part_of(module) == name if name in parts else _under(module, name)


def crossings(importer: str, imported: str) -> list[str]:
    """``module:line imports target`` for every import from in ``importer`` into in ``imported``."""
    return [
        f"{name}:{line} imports {target}"
        for name, edges in graph().items()
        if _in(name, importer)
        for target, line, _ in edges
        if _in(target, imported)
    ]


@pytest.mark.parametrize(("importer", "imported", "why"), ONE_WAY, ids=[f"{a}-not-{b}" for a, b, _ in ONE_WAY])
def test_shared_parts_import_one_way(importer, imported, why):
    assert crossings(importer, imported) == [], why


def test_a_crossing_is_seen():
    """The rule's walk finds a real import: limo.training imports eval (a reading of the whole package)."""
    assert crossings("limo.training", "eval") and crossings("limo.discovery", "limo.training")
    assert not crossings("limo.training", "limo.discovery")


@pytest.mark.parametrize("layer", sorted(FLOORS))
def test_every_module_stands_on_a_floor(layer):
    """A new module (or package) is placed on a floor: its layer's FLOORS name a part it belongs to."""
    assert [m for m in MODULES if m.split(".")[0] == layer and m != layer and part_of(m) is None] == []


def test_a_floor_crossing_is_seen():
    """The floors' rules see a real import: the grader (grading) reads answers (answers), not the other way."""
    assert crossings("eval.grading", "eval.answers") and ("eval.answers", "eval.grading") in {r[:2] for r in ONE_WAY}
    assert ("eval.grading", "eval.answers") not in {r[:2] for r in ONE_WAY}


def test_limo_shows_its_entry_points_and_packages():
    """The only modules at the top of limo are the entry points: every helper lives in a package."""
    top = {
        m for m, path in MODULES.items() if m.startswith("limo.") and path.parent.name == "limo" and m.count(".") == 1
    }
    assert top <= set(ENTRY_POINTS), sorted(top - set(ENTRY_POINTS))


@pytest.mark.parametrize("module", ["curation.methods", "eval.backends.generation", "limo.setup.curate"])
def test_the_checked_modules_are_in_the_graph(module):
    """Guards against the walk missing the modules this refactor is about."""
    assert module in graph() and graph()[module]
