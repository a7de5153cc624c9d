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
