"""Every repository path and module that README.md, docs/*.md and the Makefile name exists.

A path is a run of path characters starting at one of the repository's folders (``eval/``, ``limo/``, ``bench/``,
...) that names a file (it has an extension) or a folder (it ends with ``/``); under the three packages only source
files and folders count (``eval/suite.md`` in a run directory is an output, not a file of the repository), and a
placeholder (``recipes/recipe/<name>.yaml``) is skipped. A module is a dotted name starting at a package
(``eval.grading.grader.grade``): the longest run of its parts that is a package or module must exist, and the next
part must be a name that package or module holds. So a moved file leaves no stale name behind in the docs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import limo  # noqa: F401  (registers limo's old module names beside eval's)
from eval import MovedModules
from tests.shared_data import REPO_ROOT

# An earlier layout's module names still import (docs/architecture.md), but a doc must name the module's home.
MOVED = {old for finder in sys.meta_path if isinstance(finder, MovedModules) for old in finder.moved}

DOCS = ["README.md", "Makefile", *sorted(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md"))]
FOLDERS = ("eval", "curation", "limo", "bench", "tests", "recipes", "docs", ".ci")
PACKAGES = ("eval", "curation", "limo")
SOURCE = (".py", ".js", ".css", ".ipynb", ".yaml", ".jinja")
PATH = re.compile(r"(?<![\w/.$-])((?:" + "|".join(re.escape(f) for f in FOLDERS) + r")/[\w./-]*)")
MODULE = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")(?:\.\w+)+)")
NOT_MODULES = {"md", "py", "yaml", "json", "jsonl", "html"}  # a file name such as curation.md
# (doc, path): why a path that is not in the repository may be named there
ELSEWHERE = {
    ("docs/architecture.md", "limo/recipes/"): "the copy of recipes/ that setup.py puts into a built package",
    ("docs/grader-history.md", "tests/test_all.py"): "math-verify's test file",
    ("docs/grader-history.md", "tests/test_math_equal.py"): "NeMo-Skills' test file",
    ("docs/performance-history.md", "curation/semantic.py"): "named as it was; the history says it is now meaning/",
    ("docs/performance-history.md", "curation/semantic_screen.py"): "named as it was (now curation/meaning/)",
}


def named_paths(text: str) -> list[tuple[int, str]]:
    """``(line, path)`` for every repository path the text names (see the module docstring)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in PATH.finditer(line):
            path = match.group(1).rstrip(".")
            if line[match.end() : match.end() + 1] in ("<", "*", "{", "$"):
                continue  # a placeholder or a glob
            is_folder, suffix = path.endswith("/"), Path(path).suffix
            if path.split("/")[0] in PACKAGES and not (is_folder or suffix in SOURCE):
                continue
            if is_folder or suffix:
                found.append((number, path))
    return found


def named_modules(text: str) -> list[tuple[int, str]]:
    return [
        (number, m.group(1).rstrip("."))
        for number, line in enumerate(text.splitlines(), 1)
        for m in MODULE.finditer(line)
        if m.group(1).rstrip(".").rsplit(".", 1)[-1] not in NOT_MODULES
    ]


def module_exists(name: str) -> bool:
    """Whether ``name``'s longest package or module prefix exists and holds the part that follows it."""
    if any(name == old or name.startswith(f"{old}.") for old in MOVED):
        return False
    parts = name.split(".")
    where, i = REPO_ROOT / parts[0], 1
    while i < len(parts):
        if (where / parts[i]).is_dir():
            where, i = where / parts[i], i + 1
        elif (where / f"{parts[i]}.py").is_file():
            where, i = where / f"{parts[i]}.py", i + 1
            break
        else:
            break
    if i == len(parts):
        return True
    source = where / "__init__.py" if where.is_dir() else where
    return source.is_file() and re.search(rf"\b{re.escape(parts[i])}\b", source.read_text()) is not None


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_path_exists(doc):
    text = (REPO_ROOT / doc).read_text()
    missing = [
        f"{doc}:{n}: {p}" for n, p in named_paths(text) if not (REPO_ROOT / p).exists() and (doc, p) not in ELSEWHERE
    ]
    assert missing == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_module_exists(doc):
    text = (REPO_ROOT / doc).read_text()
    assert [f"{doc}:{n}: {name}" for n, name in named_modules(text) if not module_exists(name)] == []


def test_the_reading_sees_paths_and_modules():
    """The checks find what the docs name, and a stale name fails them."""
    text = "`eval/grading/grader.py`, `eval/<benchmark>/report.md`, eval/suite.md, 10 docs/s, `eval.grader.grade`"
    assert [p for _, p in named_paths(text)] == ["eval/grading/grader.py"]
    assert [m for _, m in named_modules(text)] == ["eval.grader.grade"]
    assert module_exists("eval.grading.grader.grade") and module_exists("limo.cli")
    assert not module_exists("eval.grader_pool.GraderPool") and not module_exists("eval.grader.no_such_name")
    assert len(named_paths((REPO_ROOT / "README.md").read_text())) > 20
