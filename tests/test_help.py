"""``python -m limo.<entry> --help`` on every entry point: what it does, its arguments, two examples, where the full
config is; under 40 lines, exit 0. Run as a user runs it, installed, from a folder outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import limo
from limo.cli.usage import USAGES

LIMO = Path(limo.__file__).resolve().parent
DEVELOPER_TOOLS = {"options_table"}  # writes docs/options.md for maintainers; argparse's help
MAX_LINES = 40


def entry_points() -> list[str]:
    """Every ``limo/<name>.py`` a user runs with ``python -m limo.<name>``."""
    runnable = [p.stem for p in LIMO.glob("*.py") if re.search(r'^if __name__ == "__main__":', p.read_text(), re.M)]
    return sorted(set(runnable) - DEVELOPER_TOOLS)


def hydra_entries() -> set[str]:
    """The entry points built on the recipes (`limo.cli.entry.hydra_entry`): their full config is ``--cfg job``."""
    return {name for name in entry_points() if "@hydra_entry(" in (LIMO / f"{name}.py").read_text()}


def test_every_entry_point_has_help():
    assert hydra_entries() >= {"curate", "train", "evaluate", "plan", "discover"}
    assert set(entry_points()) >= hydra_entries() | {"demo", "explore", "serve"}
    assert set(entry_points()) <= set(USAGES), "an entry point without a limo.cli.usage.USAGES row"


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("entry", entry_points())
def test_help_says_what_the_command_does_in_under_40_lines(entry, flag, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", f"limo.{entry}", flag], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert 10 <= len(lines) <= MAX_LINES, done.stdout
    assert lines[0].startswith(f"usage: python -m limo.{entry}")
    assert "Arguments:" in lines and "Examples:" in lines
    examples = lines[lines.index("Examples:") + 1 :]
    assert sum(f"limo.{entry}" in line for line in examples[:3]) == 2
    config = next(line for line in lines if line.startswith("Full config: "))
    if entry in hydra_entries():
        assert f"python -m limo.{entry} recipe=<name> --cfg job" in config
    assert not done.stderr.strip(), done.stderr


def test_hydra_own_flags_still_work(repo_root):
    """``--cfg job`` prints the composed config (every key), as before; the help only replaces ``--help``."""
    done = subprocess.run(
        [sys.executable, "-m", "limo.curate", "recipe=champ", "--cfg", "job"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "method: limo" in done.stdout and "benchmark_specs:" in done.stdout and "usage:" not in done.stdout


def test_an_unknown_argument_is_still_an_error(repo_root):
    done = subprocess.run(
        [sys.executable, "-m", "limo.demo", "--hlep"], cwd=repo_root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and done.stderr.startswith("limo.demo: error: unknown argument '--hlep'")


HEAVY = ("torch", "transformers", "trl", "peft", "sympy", "scipy", "eval.grading.grader")
# ``python -m limo.<entry> --help`` in this process, then what a key check needs ({parse}), then which heavy modules
# are loaded
HELP_IMPORTS = f"""
import runpy, sys
from limo.cli import overrides
sys.argv = ["limo.{{entry}}", "--help"]
try:
    runpy.run_module("limo.{{entry}}", run_name="__main__")
except SystemExit as stop:
    assert stop.code in (None, 0), stop.code
{{parse}}
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
IMPORTED_BY_HELP = (
    HELP_IMPORTS.replace("{entry}", "curate").replace(
        "{parse}", 'assert overrides.option_field("executor", "executor.workers").name == "workers"'
    )
    + """
assert overrides.schema_root("curate.stages.select.n") == "curate.stages"
assert overrides.schema_root("curate.method") is None and overrides.schema_root("curate.lemma.x") == "curate.lemma"
print(sorted(m for m in ("sympy", "eval.grading.grader") if m in sys.modules))
"""
)


def test_curate_help_and_its_option_parser_import_no_training_stack_and_no_grader(tmp_path):
    """``--help`` and the option parser read what the command line sets: a curate's ``--help`` and a check of
    ``executor.`` keys import neither torch nor sympy (the grader's); ``curate.stages.`` keys need the grader's options
    (their schema), and then the check sees them."""
    done = subprocess.run([sys.executable, "-c", IMPORTED_BY_HELP], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = done.stdout.strip().splitlines()[-2:]
    assert before == "[]"
    assert after == "['eval.grading.grader', 'sympy']"


@pytest.mark.parametrize("entry", ["train", "evaluate"])
def test_train_and_evaluate_help_import_no_training_stack_and_no_grader(tmp_path, entry):
    """What a training or evaluation needs (torch, TRL, the grader and sympy) loads when it runs, not for ``--help``
    (the curation methods' registry, which every stage's grader comes with, and the evaluation modes are deferred)."""
    code = HELP_IMPORTS.replace("{entry}", entry).replace("{parse}", "")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
