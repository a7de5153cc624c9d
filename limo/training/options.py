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

from eval.grading.policy import GraderOptions
from limo.config.sections import section, to_options
from limo.models.chat import ChatSetup


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


REWARD_FUNCTIONS = ("accuracy", "format")


@dataclass(frozen=True)
class RLOptions:
    """The RL stage's own keys (``train.rl``; ``grpo`` trainer only). TRL's ``GRPOConfig`` fields
    (``num_generations``, ``beta``, ``temperature``, ``reward_weights``, ...) stay under ``train.args``.

    Attributes:
        rewards: Reward functions, in ``args.reward_weights`` order: ``accuracy`` (the grader: 1 correct, 0
            otherwise; always first) and ``format`` (1 when the completion boxes a final answer).
        grader: Who decides ``accuracy`` (`eval.grading.policy`: ``symbolic`` ... ``both``) and the judge.
        grader_workers: Grading processes per training process (`eval.grading.pool.GraderPool`).
        grader_timeout_s: The grader's limit for its slow symbolic step; the pool's per-pair deadline is this
            plus one second of CPU time.
        user_template: The user turn, with ``{problem}`` (1-shot RLVR appends its instruction here).
        repeat: Each prompt this many times per epoch (1-shot RLVR repeats its one example to fill a batch).
        max_prompt_length: Prompts longer than this (tokens, chat template and system turn included) stop
            the run; TRL does not cut prompts. The memory plan uses it too.
        expected_prompts: Prompt count the offline plan (`limo.plan`) assumes when the prompts file does not
            exist yet (before curation); None: read the file.
        expected_completion_tokens: Mean completion length the plan prices generation with; None: every
            completion at ``args.max_completion_length`` (an upper bound).
        prompt_rewards: Write every completion's reward by prompt and step to ``train/prompt_rewards/``
            (the history LIMR's learning-impact score and 1-shot RLVR's variance ranking read).
    """

    rewards: tuple[str, ...] = ("accuracy",)
    grader: GraderOptions = field(default_factory=GraderOptions)
    grader_workers: int = 2
    grader_timeout_s: float = 2.0
    user_template: str = "{problem}"
    repeat: int = 1
    max_prompt_length: int = 1024
    expected_prompts: int | None = None
    expected_completion_tokens: int | None = None
    prompt_rewards: bool = True

    def __post_init__(self) -> None:
        unknown = [r for r in self.rewards if r not in REWARD_FUNCTIONS]
        if unknown:
            raise ValueError(f"train.rl.rewards: unknown reward {unknown[0]!r} (known: {', '.join(REWARD_FUNCTIONS)})")
        if not self.rewards or self.rewards[0] != "accuracy" or len(set(self.rewards)) != len(self.rewards):
            raise ValueError(
                f"train.rl.rewards: accuracy (the grader) comes first, each reward once; got {self.rewards}"
            )
        if "{problem}" not in self.user_template:
            raise ValueError("train.rl.user_template: the placeholder {problem} is missing")
        if self.repeat < 1 or self.grader_workers < 1:
            raise ValueError("train.rl.repeat and train.rl.grader_workers must be at least 1")


@dataclass(frozen=True)
class TrainOptions:
    """Our training keys.

    Attributes:
        trainer: ``sft``, ``weighted_sft`` (per-example weights, last-turn loss: `limo.training.weighted`),
            ``dpo`` (preference pairs, `limo.training.preference`) or ``grpo`` (RL with verifiable rewards,
            `limo.training.grpo`); None: the curation method's trainer.
        data: File to train on; None reads ``${output_dir}/curate/messages.jsonl`` (``pairs.jsonl`` for ``dpo``,
            ``prompts.jsonl`` for ``grpo``).
        system_prompt: System turn added to every example; None adds none (the chat template's default applies).
        global_batch_size: Examples per optimizer step over all processes; per-device batch and gradient
            accumulation are derived from the world size.
        allow_truncation: Train even when some examples exceed ``args.max_length`` (they are cut).
        resume: Continue from the last ``train/checkpoint-*``.
        lora: LoRA settings, or None for a full fine-tune.
        discovered_loss: Train with a loss from a discovery archive instead of TRL's ``loss_type`` (``dpo`` only).
        rl: The RL stage's reward and prompt settings (``grpo`` only; None there: the defaults).
        args: ``SFTConfig`` / ``DPOConfig`` / ``GRPOConfig`` fields, verbatim.
    """

    trainer: str | None = None
    data: str | None = field(default=None, metadata={"path": True})
    system_prompt: str | None = None
    global_batch_size: int | None = None
    allow_truncation: bool = False
    resume: bool = False
    lora: LoraOptions | None = None
    discovered_loss: DiscoveredLossOptions | None = None
    rl: RLOptions | None = None
    args: dict[str, Any] = field(default_factory=dict)


def build_train_options(cfg: DictConfig) -> TrainOptions:
    """``train:`` as `TrainOptions` (unknown keys and wrong types raise, naming the key)."""
    return to_options(TrainOptions, section(cfg, "train"), "train")


@dataclass(frozen=True)
class TrainPaths:
    """Where a run's training inputs and outputs live (docs/architecture.md, "Run directory").

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
    """Everything one training run needs, as plain values (built from the recipe by `limo.setup.train`).

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
        chat: The chat template and end-of-turn token the run uses and where each comes from (set by `limo.train`
            once it has checked there is a template: `limo.models.chat.require_chat_template`), or None.
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
    chat: ChatSetup | None = None
