"""The ``train:`` section of a recipe as typed dataclasses (unknown keys fail at start-up).

TRL's own fields sit verbatim under ``train.args`` (``SFTConfig`` names) and are not re-declared here:
TRL validates them when the config is built. Our own keys sit beside ``args``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

TRAINERS = ("sft", "dpo", "weighted_sft")


@dataclass
class LoraSection:
    """PEFT LoRA adapter settings (``train.lora``); absent means a full fine-tune."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class DiscoveredLossSection:
    """A loss found by `python -m limo.discover` (``train.discovered_loss``; ``dpo`` trainer only).

    ``name``: a proposal's name, ``<name>@<generation>``, or ``best``; ``archive``: its ``archive.jsonl``
    (None: ``${output_dir}/discover/archive.jsonl``).
    """

    archive: str | None = None
    name: str = "best"


@dataclass
class TrainSection:
    """Our training keys.

    Attributes:
        trainer: Which TRL trainer: ``sft``, ``weighted_sft`` (per-example weights, last-turn loss:
            `limo.training.weighted`), or ``dpo`` (preference pairs, `limo.training.preference`).
        data: messages JSONL to train on; None reads ``${output_dir}/curate/messages.jsonl``
            (``curate/pairs.jsonl`` for ``dpo``).
        system_prompt: System turn added to every example; None adds none (the chat template's default applies).
        global_batch_size: Examples per optimizer step over all processes; per-device batch and gradient
            accumulation are derived from the world size.
        allow_truncation: Train even when some examples exceed ``args.max_length`` (they are cut).
        resume: Continue from the last ``train/checkpoint-*``.
        lora: LoRA settings, or None for a full fine-tune.
        discovered_loss: Train with a loss from a discovery archive instead of TRL's ``loss_type`` (``dpo``).
        args: ``SFTConfig`` fields, verbatim.
    """

    trainer: str = "sft"
    data: str | None = None
    system_prompt: str | None = None
    global_batch_size: int | None = None
    allow_truncation: bool = False
    resume: bool = False
    lora: LoraSection | None = None
    discovered_loss: DiscoveredLossSection | None = None
    args: dict[str, Any] = field(default_factory=dict)


def parse_train_section(cfg: DictConfig) -> TrainSection:
    """Validate ``cfg.train`` against `TrainSection`; unknown keys raise with the key named."""
    if "train" not in cfg or cfg.train is None:
        raise ValueError(f"recipe {cfg.get('name')!r} has no `train:` section")
    merged = OmegaConf.merge(OmegaConf.structured(TrainSection), cfg.train)
    section: TrainSection = OmegaConf.to_object(merged)  # type: ignore[assignment]
    if section.trainer not in TRAINERS:
        raise ValueError(f"train.trainer={section.trainer!r}: expected one of {', '.join(TRAINERS)}")
    if section.discovered_loss is not None and section.trainer != "dpo":
        raise ValueError("train.discovered_loss needs train.trainer=dpo (a discovered loss is a preference loss)")
    return section


@dataclass(frozen=True)
class TrainPaths:
    """Where a run's training inputs and outputs live (CONTRACTS.md run-directory table)."""

    output_dir: str

    @property
    def default_data(self) -> str:
        return f"{self.output_dir}/curate/messages.jsonl"

    @property
    def default_pairs(self) -> str:
        return f"{self.output_dir}/curate/pairs.jsonl"

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
