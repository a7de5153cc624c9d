"""The one dict of trainers: ``train.trainer`` -> everything the rest of limo asks about a trainer.

An entry is the trainer's signature: the curated file it reads when ``train.data`` is null (a curation method
names the entry that fits its output: `curation.methods.Method.trainer`), the ``train:`` section only it reads
(its options type), its argument builder (each trainer builds only its own TRL arguments), the TRL config class
those arguments fill (``train.args`` keys are checked against its fields before anything loads: `limo.train`),
whether it applies per-example weights, whether it generates while it trains (the memory and cost plan add
generation: `limo.plan`), and its run function, which gets the run and its own entry. Nothing outside this file
tests a trainer's name (tests/test_trainers_registry.py). A new trainer is one entry here; a different loss for an
existing one is a TRL trainer subclass passed as ``TrainRun.trainer_class`` (the ``dpo`` entry takes a
`DPOTrainer` subclass, as objective discovery does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limo.training.build import build_run_args, build_sft_run_args
from limo.training.options import DiscoveredLossOptions, RLOptions, TrainOptions, TrainRun

ArgsBuilder = Callable[[TrainRun, int], tuple[tuple[int, int], dict[str, Any]]]


@dataclass(frozen=True)
class OwnOptions:
    """A ``train.<key>`` section only one trainer reads (a field of `TrainOptions`, of type ``type | None``).

    ``misuse`` is the error when another trainer is given it, with ``{owner}`` and ``{trainer}`` to fill.
    """

    key: str
    type: type
    misuse: str


@dataclass(frozen=True)
class Trainer:
    """One entry (see the module docstring)."""

    name: str
    data_file: str
    config_name: str
    build_args: ArgsBuilder
    run: Callable[[TrainRun, Trainer], Any]
    summary: str
    options: OwnOptions | None = None
    weighted: bool = False
    generates: bool = False

    @property
    def config(self) -> type:
        """The TRL config class (``config_name`` in `trl`), imported on first use: TRL pulls in torch and
        transformers, which ``--help`` and a configuration error never need."""
        import trl

        return getattr(trl, self.config_name)

    def train(self, run: TrainRun) -> Any:
        """Run this trainer; returns the TRL trainer it used."""
        return self.run(run, self)


# The run functions import torch, transformers and TRL: the registry reaches them only when a run starts, so that
# `--help`, the plan and a configuration error never load them.
def run_sft(run: TrainRun, entry: Trainer) -> Any:
    """`limo.training.sft.run_sft`."""
    from limo.training.sft import run_sft as start  # deferred: torch, transformers, TRL

    return start(run, entry)


def train_preference(run: TrainRun, entry: Trainer) -> Any:
    """`limo.training.preference.train_preference`."""
    from limo.training.preference import train_preference as start  # deferred: torch, transformers, TRL

    return start(run, entry)


def run_grpo(run: TrainRun, entry: Trainer) -> Any:
    """`limo.training.grpo.run_grpo`."""
    from limo.training.grpo import run_grpo as start  # deferred: torch, transformers, TRL

    return start(run, entry)


SFT = Trainer(
    "sft", "messages.jsonl", "SFTConfig", build_sft_run_args, run_sft, "TRL SFTTrainer, loss on assistant turns"
)
WEIGHTED_SFT = Trainer(
    "weighted_sft",
    "messages.jsonl",
    "SFTConfig",
    build_sft_run_args,
    run_sft,
    "SFT with per-example weights and last-turn loss (RISE)",
    weighted=True,
)
DPO = Trainer(
    "dpo",
    "pairs.jsonl",
    "DPOConfig",
    build_run_args,
    train_preference,
    "TRL DPOTrainer (train.args.loss_type: sigmoid, discopop)",
    options=OwnOptions(
        "discovered_loss",
        DiscoveredLossOptions,
        "a discovered loss is a preference loss (train.trainer={owner}, not {trainer!r})",
    ),
)
GRPO = Trainer(
    "grpo",
    "prompts.jsonl",
    "GRPOConfig",
    build_run_args,
    run_grpo,
    "TRL GRPOTrainer, RL with our grader as the reward (train.rl)",
    options=OwnOptions("rl", RLOptions, "RL settings are for train.trainer={owner}, not {trainer!r}"),
    generates=True,
)

TRAINERS: dict[str, Trainer] = {t.name: t for t in (SFT, WEIGHTED_SFT, DPO, GRPO)}


def misplaced_options(options: TrainOptions, trainer: Trainer) -> str | None:
    """The error for a trainer's own section set under another trainer (``train.rl`` with ``sft``), or None."""
    for owner in TRAINERS.values():
        own = owner.options
        if own is not None and owner is not trainer and getattr(options, own.key) is not None:
            return f"train.{own.key}: " + own.misuse.format(owner=owner.name, trainer=trainer.name)
    return None
