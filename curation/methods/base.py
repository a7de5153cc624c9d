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
from curation.options import StageOptions, StudentOptions
from curation.runner import StageContext
from eval.benchmarks.loader import BenchmarkSpec


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
        student: The student (``curate.student``) that difficulty, selection and ``rl_prompts`` measure against.
    """

    output_dir: Path
    seed: int
    name: str
    benchmark_specs: Mapping[str, BenchmarkSpec] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    executor: ExecutorOptions | None = None
    student: StudentOptions = field(default_factory=StudentOptions)

    @property
    def out(self) -> Path:
        return Path(self.output_dir) / "curate"

    def stage_context(self) -> StageContext:
        """The runner's context: jobs and caches under ``<output_dir>/curate/work/``."""
        executor = self.executor or ExecutorOptions()
        return StageContext(self.seed, self.benchmark_specs, self.out / "work", executor, self.student)


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
        pool: Chain and problem totals of a pool run (`curation.outputs.report.pool_counts`), which the line
            shows apart so that each reconciles; None: the method read no pool (MAmmoTH2's documents).
        notices: Lines a user would not expect (a selection smaller than asked, golds one generator voted:
            `curation.outputs.report.selection_notices`), printed after the summary line.
    """

    method: str
    output_dir: str
    read: int
    selected: int
    unit: str
    rejected: int
    seconds: float
    pool: Mapping[str, int] | None = None
    notices: tuple[str, ...] = ()

    def line(self) -> str:
        """The run in one line: what was read, what was kept, what was left out (chains and problems apart)."""
        tail = f" ({self.seconds:.1f}s); outputs in {self.output_dir}/"
        if self.pool is None:
            kept = f"{self.read} items read -> {self.selected} {self.unit} selected"
            return f"[curate] {self.method}: {kept}; {self.rejected} rows in rejects.jsonl, each with its reason{tail}"
        p = self.pool
        read = f"{p['chains']} chains of {p['problems']} problems read"
        read += f" (+ {p['rows_rejected']} rows rejected at ingest)" if p["rows_rejected"] else ""
        kept = f"{p['chains_kept']} chains of {p['problems_kept']} problems"
        kept = f"{kept} selected" if self.unit == "chains" else f"{kept} kept -> {self.selected} {self.unit}"
        left = f"{p['chains'] - p['chains_kept']} chains and {p['problems'] - p['problems_kept']} problems"
        return (
            f"[curate] {self.method}: {read} -> {kept}; left out: {left}, each with its reason in rejects.jsonl{tail}"
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
