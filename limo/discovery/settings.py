"""The recipe's ``discover:`` section as typed dataclasses (unknown keys fail at start-up), and the run layout.

The inner training is the recipe's own ``train:`` section (``trainer: dpo``; TRL's `DPOConfig` fields under
``train.args``, ``beta`` included, which the loss programs receive), run on one process without LoRA or
DeepSpeed; the pairs come from the recipe's ``curate:`` section (``method: pairs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from limo.discovery.fitness import METRICS
from limo.discovery.sandbox import CONFINEMENTS


@dataclass
class ProposerSection:
    """The LLM that proposes objectives: any generation backend (``replay``, ``openai``, ``hf``, ``vllm``).

    ``path`` is the replay file (one ``{"text": <raw reply>}`` per proposal, served in order); ``model`` is
    the served model (``openai``, ``vllm``) or the model folder (``hf``); ``backend_args`` go to the backend.
    """

    backend: str = "replay"
    path: str | None = None
    model: str | None = None
    temperature: float = 0.7
    max_new_tokens: int = 2048
    backend_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptSection:
    """Prompt texts: ``first_user`` has ``{archive}``, ``feedback_valid`` ``{fitness}``, ``feedback_invalid``
    ``{reason}``. ``history``: past proposals shown verbatim; ``shown_best``: best ones listed with the seed."""

    system: str = MISSING
    first_user: str = MISSING
    feedback_valid: str = MISSING
    feedback_invalid: str = MISSING
    history: int = 20
    shown_best: int = 8


@dataclass
class FitnessSection:
    """How candidates are scored (see `limo.discovery.fitness`).

    ``pairs``: preference pairs to split (null: ``${output_dir}/curate/pairs.jsonl``, curated first with the
    recipe's ``curate:`` section when missing and ``curate_if_missing``). Pairs are split by problem into
    train / selection / test; ``max_*_pairs`` cap each split, ``max_pair_chars`` drops long pairs (null: no cap).
    ``metric: benchmark_accuracy`` also needs ``benchmark`` (a name under ``benchmark_specs``), split by problem
    into selection / test halves of at most ``benchmark_limit`` problems each, answered greedily with
    ``max_new_tokens`` by the trained model and graded by `eval.grader`.
    """

    metric: str = "preference_accuracy"
    pairs: str | None = None
    curate_if_missing: bool = True
    selection_fraction: float = 0.2
    test_fraction: float = 0.2
    max_train_pairs: int | None = None
    max_eval_pairs: int | None = None
    max_pair_chars: int | None = None
    validation_trials: int = 10
    benchmark: str | None = None
    benchmark_limit: int | None = None
    max_new_tokens: int = 1024
    generation_batch_size: int = 8


@dataclass
class SandboxSection:
    """Confinement of each candidate's worker: ``auto`` (bubblewrap when it works here), ``bubblewrap`` or
    ``rlimits``; limits per candidate (validation and fitness training together)."""

    confinement: str = "auto"
    wall_seconds: float = 900.0
    cpu_seconds: int = 900
    memory_gb: float = 8.0


@dataclass
class DiscoverSection:
    """``generations``: proposals to ask for after the seed (null: every row of a replay file)."""

    generations: int | None = None
    seed_archive: str = MISSING
    proposer: ProposerSection = field(default_factory=ProposerSection)
    prompt: PromptSection = field(default_factory=PromptSection)
    fitness: FitnessSection = field(default_factory=FitnessSection)
    sandbox: SandboxSection = field(default_factory=SandboxSection)


def parse_discover_section(cfg: DictConfig) -> DiscoverSection:
    """Validate ``cfg.discover``; unknown keys, missing texts and bad values raise naming the key."""
    if cfg.get("discover") is None:
        raise ValueError(f"recipe {cfg.get('name')!r} has no discover: section (recipes with one: discover)")
    merged = OmegaConf.merge(OmegaConf.structured(DiscoverSection), cfg.discover)
    section: DiscoverSection = OmegaConf.to_object(merged)  # type: ignore[assignment]
    if section.fitness.metric not in METRICS:
        raise ValueError(f"discover.fitness.metric={section.fitness.metric!r}: expected one of {', '.join(METRICS)}")
    if section.fitness.metric == "benchmark_accuracy" and not section.fitness.benchmark:
        raise ValueError("discover.fitness.metric=benchmark_accuracy needs discover.fitness.benchmark=<name>")
    if section.sandbox.confinement not in CONFINEMENTS:
        raise ValueError(f"discover.sandbox.confinement={section.sandbox.confinement!r}: expected one of "
                         f"{', '.join(CONFINEMENTS)}")  # fmt: skip
    if section.generations is not None and section.generations < 0:
        raise ValueError(f"discover.generations={section.generations}: must be >= 0")
    fractions = section.fitness.selection_fraction + section.fitness.test_fraction
    if not 0 < fractions < 1 or min(section.fitness.selection_fraction, section.fitness.test_fraction) <= 0:
        raise ValueError("discover.fitness.selection_fraction and test_fraction must be > 0 and sum to < 1")
    return section


@dataclass(frozen=True)
class DiscoverPaths:
    """Where a discovery run keeps its files (``<output_dir>/discover/``)."""

    output_dir: str

    @property
    def root(self) -> Path:
        return Path(self.output_dir) / "discover"

    @property
    def archive(self) -> Path:
        return self.root / "archive.jsonl"

    @property
    def replies(self) -> Path:
        return self.root / "replies.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def candidates(self) -> Path:
        return self.root / "candidates"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"
