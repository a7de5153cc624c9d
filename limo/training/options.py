"""The ``train:`` section of a recipe as frozen options (unknown keys fail at start-up), and the run's paths.

TRL's own fields sit verbatim under ``train.args`` (``SFTConfig`` / ``DPOConfig`` names) and are not
re-declared here: TRL validates them when the config is built. Our own keys sit beside ``args``.
``train.trainer`` names an entry of `limo.training.trainers.TRAINERS`; null means the trainer that fits the
recipe's curation method (`curation.methods.Method.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from limo.config import section, to_options


@dataclass(frozen=True)
class LoraOptions:
    """PEFT LoRA adapter settings (``train.lora``); absent means a full fine-tune."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class DiscoveredLossOptions:
    """A loss found by ``python -m limo.discover`` (``train.discovered_loss``; ``dpo`` trainer only).

    Attributes:
        archive: Its ``archive.jsonl``; None: ``${output_dir}/discover/archive.jsonl``.
        name: A proposal's name, ``<name>@<generation>``, or ``best`` (highest fitness, seeds excluded).
    """

    archive: str | None = field(default=None, metadata={"path": True})
    name: str = "best"


@dataclass(frozen=True)
class TrainOptions:
    """Our training keys.

    Attributes:
        trainer: ``sft``, ``weighted_sft`` (per-example weights, last-turn loss: `limo.training.weighted`)
            or ``dpo`` (preference pairs, `limo.training.preference`); None: the curation method's trainer.
        data: File to train on; None reads ``${output_dir}/curate/messages.jsonl`` (``pairs.jsonl`` for ``dpo``).
        system_prompt: System turn added to every example; None adds none (the chat template's default applies).
        global_batch_size: Examples per optimizer step over all processes; per-device batch and gradient
            accumulation are derived from the world size.
        allow_truncation: Train even when some examples exceed ``args.max_length`` (they are cut).
        resume: Continue from the last ``train/checkpoint-*``.
        lora: LoRA settings, or None for a full fine-tune.
        discovered_loss: Train with a loss from a discovery archive instead of TRL's ``loss_type`` (``dpo`` only).
        args: ``SFTConfig`` / ``DPOConfig`` fields, verbatim.
    """

    trainer: str | None = None
    data: str | None = None
    system_prompt: str | None = None
    global_batch_size: int | None = None
    allow_truncation: bool = False
    resume: bool = False
    lora: LoraOptions | None = None
    discovered_loss: DiscoveredLossOptions | None = None
    args: dict[str, Any] = field(default_factory=dict)


def build_train_options(cfg: DictConfig) -> TrainOptions:
    """``train:`` as `TrainOptions` (unknown keys and wrong types raise, naming the key)."""
    return to_options(TrainOptions, section(cfg, "train"), "train")


@dataclass(frozen=True)
class TrainPaths:
    """Where a run's training inputs and outputs live (CONTRACTS.md run-directory table).

    ``data`` is the file the trainer reads (``train.data``, else the curated file of this run).
    """

    output_dir: str
    data: str = ""

    @property
    def train_dir(self) -> str:
        return f"{self.output_dir}/train"

    @property
    def model_dir(self) -> str:
        return f"{self.train_dir}/model"

    @property
    def plan(self) -> str:
        return f"{self.train_dir}/plan.json"

    @property
    def log_history(self) -> str:
        return f"{self.train_dir}/log_history.json"

    @property
    def config(self) -> str:
        return f"{self.train_dir}/config.yaml"


@dataclass(frozen=True)
class TrainRun:
    """Everything one training run needs, as plain values (built from the recipe by `limo.train_setup`).

    Attributes:
        trainer: The `limo.training.trainers.TRAINERS` entry that runs it.
        options: The ``train:`` section.
        paths: Where its data is read and its outputs go.
        model: The model group (path, dtype, revision, chat template, eos, build_tiny).
        deepspeed: The DeepSpeed config, or None.
        seed: Run seed.
        recipe: Recipe name (model card).
        config_yaml: The resolved config, saved as ``train/config.yaml``.
        callbacks: Extra `transformers.TrainerCallback`s (tests).
        trainer_class: A TRL trainer class to use instead of the entry's own (a `DPOTrainer` subclass with a
            custom loss, say: TRL has no loss hook), or None.
    """

    trainer: str
    options: TrainOptions
    paths: TrainPaths
    model: dict[str, Any]
    deepspeed: dict[str, Any] | None
    seed: int
    recipe: str
    config_yaml: str = ""
    callbacks: tuple[Any, ...] = ()
    trainer_class: type | None = None
