"""The trainer entries own their rules (docs/architecture.md, "Adding a trainer"): no module outside
`limo.training.trainers` tests a trainer's name, and each entry builds only arguments its own TRL config accepts."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from limo.cli.compose import compose
from limo.setup.train import build_train_run
from limo.training.options import TrainOptions
from limo.training.trainers import TRAINERS
from tests.shared_data import REPO_ROOT

REGISTRY = REPO_ROOT / "limo" / "training" / "trainers.py"
# A curation method declares the entry it feeds (`Method(..., trainer="sft", ...)`): curation may not import limo,
# so that one keyword names the entry; nothing may test it.
DECLARATION = re.compile(r'^\s*trainer="\w+",\s*$')


def name_literals(text: str, path: str) -> list[str]:
    """``path:line: text`` for every line of ``text`` holding a trainer's name as a string literal."""
    quoted = re.compile(r"(['\"])(?:" + "|".join(map(re.escape, TRAINERS)) + r")\1")
    in_method = "/methods/" in path and path.endswith("/method.py")
    return [
        f"{path}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if quoted.search(line) and not (in_method and DECLARATION.match(line))
    ]


def source_files() -> list[Path]:
    return sorted(p for package in ("limo", "curation") for p in (REPO_ROOT / package).rglob("*.py") if p != REGISTRY)


def test_no_trainer_name_is_tested_outside_its_entry():
    found = [hit for p in source_files() for hit in name_literals(p.read_text(), str(p.relative_to(REPO_ROOT)))]
    assert found == []


def test_the_scan_finds_a_name_test():
    """The scan above would catch the tests this registry replaced, and lets a method's declaration through."""
    assert name_literals('    if run.trainer != "dpo" or lora:', "limo/discovery/build.py")
    assert name_literals("WEIGHTED = frozenset({'weighted_sft'})", "limo/training/build.py")
    assert not name_literals('    trainer="grpo",', "curation/methods/rl_prompts/method.py")
    assert name_literals('    trainer="grpo",', "limo/plan.py")


# One shipped recipe per entry.
RECIPES = {"sft": "limo", "weighted_sft": "rise", "dpo": "dpo", "grpo": "rlvr"}


def test_every_entry_has_a_recipe_here():
    assert set(RECIPES) == set(TRAINERS)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_an_entry_builds_only_its_configs_fields(name, tmp_path):
    """The arguments an entry builds from its shipped recipe are all fields of its TRL config, and build it."""
    cfg = compose(RECIPES[name], [f"output_dir={tmp_path}", "train.global_batch_size=8", f"train.trainer={name}"])
    run = dataclasses.replace(build_train_run(cfg), deepspeed=None)  # DeepSpeed's CPU set-up is tested elsewhere
    entry = TRAINERS[name]
    _, args = entry.build_args(run, 1)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    assert sorted(set(args) - fields) == []
    assert entry.config(**args).output_dir == run.paths.train_dir


def test_only_sft_entries_add_sft_defaults():
    """DPO and GRPO arguments carry no SFT-only key (they were built as SFT's and had keys deleted before)."""
    cfg = compose("dpo", ["train.global_batch_size=8"])
    run = dataclasses.replace(build_train_run(cfg), deepspeed=None)
    assert "assistant_only_loss" not in TRAINERS["dpo"].build_args(run, 1)[1]
    assert TRAINERS["sft"].build_args(run, 1)[1]["assistant_only_loss"] is True


def test_own_options_are_fields_of_the_train_section():
    hints = typing.get_type_hints(TrainOptions)
    for entry in TRAINERS.values():
        if entry.options is not None:
            assert hints[entry.options.key] == entry.options.type | None, entry.name
    assert [e.name for e in TRAINERS.values() if e.weighted] == ["weighted_sft"]
