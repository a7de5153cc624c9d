"""What a curation method is: its options type, the shared stages it runs, its run function, its trainer.

A method is registered in `curation.methods.METHODS` under the name a recipe gives as ``curate.method``;
that name is the only key that dispatches. A recipe's ``curate:`` section has the same shape for every
method::

    curate:
      method: lemma          # default: limo
      stages: {...}          # the shared stages' options (curation.options.StageOptions)
      lemma: {...}           # the method's own options (Method.options), when it has any

`Method.run` takes plain values — the stage options, the method's options and a `RunContext` — and writes
``<output_dir>/curate/`` through `curation.outputs.write_outputs`. ``trainer`` names the ``train.trainer``
that fits what the method writes (``sft`` for ``messages.jsonl``, ``dpo`` for ``pairs.jsonl``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.executors import ExecutorOptions
from curation.options import StageOptions
from curation.runner import StageContext
from eval.benchmarks import BenchmarkSpec


@dataclass(frozen=True)
class RunContext:
    """A run's plain context: where it writes, its seed and name, the benchmarks and the section it echoes.

    Attributes:
        output_dir: The run root; the method writes under ``<output_dir>/curate/``.
        seed: Run seed.
        name: Recipe name (reports and manifests).
        benchmark_specs: Benchmarks by name, for decontamination.
        config: The validated ``curate:`` section, echoed in the manifest.
        executor: Where the pool stages' shard jobs and fresh rollouts run (`curation.executors`); None: the
            local executor with its defaults (in this process, one shard at a time).
    """

    output_dir: Path
    seed: int
    name: str
    benchmark_specs: Mapping[str, BenchmarkSpec] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    executor: ExecutorOptions | None = None

    @property
    def out(self) -> Path:
        return Path(self.output_dir) / "curate"

    def stage_context(self) -> StageContext:
        """The runner's context: jobs and caches under ``<output_dir>/curate/work/``."""
        return StageContext(self.seed, self.benchmark_specs, self.out / "work", self.executor or ExecutorOptions())


@dataclass(frozen=True)
class CurationSummary:
    """What a run produced, for the entry point to print (and to refuse an empty result).

    Attributes:
        method: The method that ran.
        output_dir: Where its files are.
        read: Items the run read (pool chains and rows, or documents).
        selected: Items it wrote to its training file.
        unit: What ``selected`` counts (``chains``, ``examples``, ``pairs``).
        rejected: Rows in ``rejects.jsonl``.
        seconds: Wall time.
    """

    method: str
    output_dir: str
    read: int
    selected: int
    unit: str
    rejected: int
    seconds: float

    def line(self) -> str:
        return (
            f"[curate] {self.method}: {self.read} items read -> {self.selected} {self.unit} selected, "
            f"{self.rejected} left out with reasons ({self.seconds:.1f}s); outputs in {self.output_dir}/"
        )


@dataclass(frozen=True)
class Method:
    """A registered curation method.

    Attributes:
        name: The ``curate.method`` value.
        run: ``(stage options, method options, context) -> summary``.
        options: Its own options type (the ``curate.<name>`` section), or None when it has none.
        stages: The shared stages it runs, in order; ``curate.stages`` may set only these (and
            ``ingest`` / ``report``, and ``majority_gold`` for a pool method: `curation.stages.stage_names`).
        trainer: The ``train.trainer`` that fits its output.
        pool: Whether it ingests a pool (``curate.stages.ingest``); MAmmoTH2 mines documents instead.
        summary: One sentence for docs and errors.
    """

    name: str
    run: Callable[[StageOptions, Any, RunContext], CurationSummary]
    options: type | None
    stages: tuple[str, ...]
    trainer: str
    pool: bool = True
    summary: str = ""

    def configurable_stages(self) -> tuple[str, ...]:
        """The ``curate.stages`` keys a recipe may set for this method."""
        return (*(("ingest", "majority_gold") if self.pool else ()), *self.stages, "report")
