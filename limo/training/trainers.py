"""The one dict of trainers: ``train.trainer`` -> what it reads and how it runs.

Every entry runs from a `limo.training.options.TrainRun` of plain values and returns the TRL trainer it
used. ``data_file`` is what it reads from ``<output_dir>/curate/`` when ``train.data`` is null; a curation
method names the entry that fits its output (`curation.methods.Method.trainer`). A new trainer is one entry
here; a different loss for an existing one is a TRL trainer subclass passed as ``TrainRun.trainer_class``
(the ``dpo`` entry takes a `DPOTrainer` subclass, as objective discovery does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limo.training.grpo import run_grpo
from limo.training.options import TrainRun
from limo.training.preference import train_preference
from limo.training.sft import run_sft


@dataclass(frozen=True)
class Trainer:
    """One entry: its name, the curated file it reads by default, and its run function."""

    name: str
    data_file: str
    run: Callable[[TrainRun], Any]
    summary: str


TRAINERS: dict[str, Trainer] = {
    t.name: t
    for t in (
        Trainer("sft", "messages.jsonl", run_sft, "TRL SFTTrainer, loss on assistant turns"),
        Trainer("weighted_sft", "messages.jsonl", run_sft, "SFT with per-example weights and last-turn loss (RISE)"),
        Trainer("dpo", "pairs.jsonl", train_preference, "TRL DPOTrainer (train.args.loss_type: sigmoid, discopop)"),
        Trainer("grpo", "prompts.jsonl", run_grpo, "TRL GRPOTrainer, RL with our grader as the reward (train.rl)"),
    )
}
