"""The recipe's ``discover:`` section as frozen options (`eval.options`: unknown keys and wrong types fail at
start-up, naming the key), and the run layout.

The proposer is a generator like every other in the toolkit (`eval.backends.generation.GenerationOptions`), plus
``path``: a replay file of recorded replies, one ``{"text": <raw reply>}`` per proposal, served in order. The
inner training is the recipe's own ``train:`` section (``trainer: dpo``; TRL's `DPOConfig` fields under
``train.args``, ``beta`` included, which the loss programs receive), run on one process without LoRA or
DeepSpeed; the pairs come from the recipe's ``curate:`` section (``method: pairs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from omegaconf import DictConfig

from eval.backends.generation import GenerationOptions
from eval.options import OptionsError
from limo.config.sections import section, to_options

PATH = {"path": True}  # field metadata: a file path `limo.config.sections.to_options` resolves
Metric = Literal["preference_accuracy", "preference_margin", "benchmark_accuracy"]
Confinement = Literal["auto", "bubblewrap", "rlimits"]


@dataclass(frozen=True)
class ProposerOptions(GenerationOptions):
    """The LLM that proposes objectives: any generation backend (``replay``, ``openai``, ``hf``, ``vllm``).

    Attributes:
        path: ``replay`` only: the file of recorded replies (one ``{"text": ...}`` per proposal, in order).
    """

    temperature: float = 0.7
    batch_size: int = 1
    path: str | None = field(default=None, metadata=PATH)


@dataclass(frozen=True)
class PromptOptions:
    """Prompt texts: ``first_user`` has ``{archive}``, ``feedback_valid`` ``{fitness}`` (and may say
    ``{standard_error}``), ``feedback_invalid`` ``{reason}``. ``history``: past proposals shown verbatim;
    ``shown_best``: best ones listed with the seed."""

    system: str
    first_user: str
    feedback_valid: str
    feedback_invalid: str
    history: int = 20
    shown_best: int = 8


@dataclass(frozen=True)
class FitnessOptions:
    """How candidates are scored (see `limo.discovery.fitness`).

    Attributes:
        metric: ``preference_accuracy`` / ``preference_margin`` on held-out pairs, or ``benchmark_accuracy``.
        pairs: Preference pairs to split (null: ``${output_dir}/curate/pairs.jsonl``, curated first with the
            recipe's ``curate:`` section when missing and ``curate_if_missing``).
        selection_fraction, test_fraction: Shares of problems in the held-out splits (by problem).
        max_train_pairs, max_eval_pairs: Caps per split (null: none).
        max_pair_chars: Pairs with a longer side are left out (null: none).
        validation_trials: Random inputs per candidate, as in the paper.
        benchmark: ``benchmark_accuracy``: a name under ``benchmark_specs``, split by problem into selection /
            test halves of at most ``benchmark_limit`` problems each, answered greedily with
            ``max_new_tokens`` by the trained model and graded by `eval.grading.grader`.
    """

    metric: Metric = "preference_accuracy"
    pairs: str | None = field(default=None, metadata=PATH)
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


@dataclass(frozen=True)
class SandboxOptions:
    """Confinement of each candidate's worker: ``auto`` (bubblewrap when it works here), ``bubblewrap`` or
    ``rlimits``; limits per candidate (validation and fitness training together)."""

    confinement: Confinement = "auto"
    wall_seconds: float = 900.0
    cpu_seconds: int = 900
    memory_gb: float = 8.0


@dataclass(frozen=True)
class DiscoverOptions:
    """``discover:``. ``generations``: proposals to ask for after the seed (null: every row of a replay file)."""

    seed_archive: str = field(metadata=PATH)
    prompt: PromptOptions
    generations: int | None = None
    proposer: ProposerOptions = field(default_factory=ProposerOptions)
    fitness: FitnessOptions = field(default_factory=FitnessOptions)
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)


def build_discover_options(cfg: DictConfig) -> DiscoverOptions:
    """``discover:`` as `DiscoverOptions`, paths resolved.

    Raises:
        OptionsError: No such section, an unknown key, a wrong type or an inconsistent value (key named).
    """
    options = to_options(DiscoverOptions, section(cfg, "discover"), "discover")
    check_discover_options(options)
    return options


def check_discover_options(options: DiscoverOptions) -> None:
    """What types cannot say: a benchmark for ``benchmark_accuracy``, split fractions, counts."""
    fitness = options.fitness
    if fitness.metric == "benchmark_accuracy" and not fitness.benchmark:
        raise OptionsError("discover.fitness.benchmark: metric benchmark_accuracy needs a benchmark name")
    if options.generations is not None and options.generations < 0:
        raise OptionsError(f"discover.generations: must be >= 0, got {options.generations}")
    if (
        not 0 < fitness.selection_fraction + fitness.test_fraction < 1
        or min(fitness.selection_fraction, fitness.test_fraction) <= 0
    ):
        raise OptionsError("discover.fitness.selection_fraction, test_fraction: each must be > 0, together < 1")
    if options.proposer.backend == "replay" and not (options.proposer.path or options.proposer.backend_args):
        raise OptionsError('discover.proposer.path: a replay proposer needs a file of {"text": ...} rows')


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
