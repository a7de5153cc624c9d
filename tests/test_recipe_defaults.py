"""The example pool recipes agree with the stages' defaults unless they say why, in a YAML comment.

A user copies an example recipe and trusts its numbers; a value that differs from the stage default without a word
(``pool_majority`` shipped ``min_votes: 4`` while the stage's default is 3) reads as a default and is not one. Every
key a ``pool_*`` recipe sets under ``curate.stages.<stage>`` (``ingest`` describes the pool's own columns and is
left out) whose value differs from `curation.options.StageOptions`' default carries a comment on its line or on
the comment line just above it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from curation.options import StageOptions
from eval.options import to_options
from limo.config.sections import CONFIG_DIR

POOL_RECIPES = sorted((Path(CONFIG_DIR) / "recipe").glob("pool_*.yaml"))
KEY = re.compile(r"^(\s*)([A-Za-z_]\w*):")


def key_lines(lines: list[str]) -> dict[tuple[str, ...], int]:
    """Each block-mapping key's path -> its line number (a flow mapping's inner keys are not keys here)."""
    paths: dict[tuple[str, ...], int] = {}
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        found = KEY.match(line)
        if not found or line.lstrip().startswith("#"):
            continue
        indent = len(found.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, found.group(2)))
        paths[tuple(name for _, name in stack)] = number
    return paths


def has_comment(lines: list[str], number: int) -> bool:
    """A ``#`` after the value on the key's line, or a comment line right above it."""
    above = lines[number - 1].strip() if number else ""
    return " #" in lines[number] or above.startswith("#")


def deviations(path: Path) -> list[tuple[str, str, object, object]]:
    """``(stage, key, recipe value, default)`` for every stage key the recipe sets to a non-default value."""
    stages = yaml.safe_load(path.read_text())["curate"]["stages"]
    recipe, default = to_options(StageOptions, stages, where="curate.stages"), StageOptions()
    found = []
    for stage, keys in stages.items():
        if stage == "ingest":
            continue
        for key in keys or {}:
            ours, theirs = getattr(getattr(recipe, stage), key), getattr(getattr(default, stage), key)
            if ours != theirs:
                found.append((stage, key, ours, theirs))
    return found


@pytest.mark.parametrize("path", POOL_RECIPES, ids=lambda p: p.stem)
def test_a_pool_recipe_says_why_it_leaves_a_stage_default(path):
    lines = path.read_text().splitlines()
    where = key_lines(lines)
    silent = [
        f"curate.stages.{stage}.{key}: {ours!r} (default {theirs!r})"
        for stage, key, ours, theirs in deviations(path)
        if not has_comment(lines, where[("curate", "stages", stage, key)])
    ]
    assert not silent, f"{path.name} leaves stage defaults without a comment saying why: {silent}"


def test_the_check_sees_a_silent_deviation(tmp_path):
    recipe = tmp_path / "pool_x.yaml"
    recipe.write_text("curate:\n  stages:\n    majority_gold:\n      enabled: true  # voted\n      min_votes: 4\n")
    lines = recipe.read_text().splitlines()
    where = key_lines(lines)
    found = {(stage, key) for stage, key, _, _ in deviations(recipe)}
    assert found == {("majority_gold", "enabled"), ("majority_gold", "min_votes")}
    assert has_comment(lines, where[("curate", "stages", "majority_gold", "enabled")])
    assert not has_comment(lines, where[("curate", "stages", "majority_gold", "min_votes")])
