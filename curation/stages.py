"""The shared pool stages and their one runner: every method that curates a pool goes through `run_stages`.

A stage is a function ``(state, options, context)`` registered in `STAGES` by name; a method lists the
names it runs, in order, and `run_stages` runs them on one `CurationState`, timing each and logging its
counts. The names are the keys of ``curate.stages`` in a recipe (plus ``problem_limit``, which runs first
whenever ``curate.stages.ingest.problem_limit`` is set), so a new shared stage is one entry here and one
options type in `curation.options`.

Grading runs before dedup so that every unaided attempt counts toward pass rates, including attempts whose
text duplicates another's (CHAMP has such pairs across prompt settings); dedup then drops the duplicate
*chains* as training candidates. Fresh rollouts for pass rates are sharded, resumable and adaptive
(`curation.rollouts.run_rollout_stages`) under ``<output_dir>/curate/rollouts/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curation.answer_check import run_answer_check
from curation.decontam import run_decontam
from curation.dedup import run_dedup
from curation.difficulty import run_difficulty
from curation.diversity import run_diversity
from curation.executors import ExecutorOptions
from curation.funnel import Attempt, CurationState, Drop, StageCount
from curation.options import StageOptions
from curation.pool import Pool, ingest_pool
from curation.quality import run_quality
from curation.rollouts import run_rollout_stages
from curation.select import run_select
from curation.suspect_gold import run_suspect_gold
from curation.validate import run_validate
from eval.benchmarks import BenchmarkSpec
from eval.records import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageContext:
    """What stages need beyond their options: the run seed, benchmark specs, the folder for caches, and the
    executor that runs fresh rollouts (local by default)."""

    seed: int
    benchmark_specs: Mapping[str, BenchmarkSpec]
    work_dir: Path
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)


StageRun = Callable[[CurationState, StageOptions, StageContext], None]


def ingest(options: StageOptions) -> tuple[Pool, list[dict[str, str]], dict[str, str]]:
    """Load the pool and apply gold overrides; returns the pool, overrides applied and input checksums."""
    return ingest_pool(options.ingest)


def initial_state(pool: Pool) -> CurationState:
    """The state after ingest: every chain in, every unreadable row dropped (reason ``invalid_row``)."""
    state = CurationState({p.id: p for p in pool.problems}, {c.id: c for c in pool.chains}, read=pool.read)
    count = state.begin("ingest")
    count.items_in = pool.read
    for reject in pool.rejects:
        state.drops.append(
            Drop("row", reject.id or f"row{reject.row}", None, "ingest", "invalid_row", reject.to_dict())
        )
    state.apply(count)
    if pool.rejects:
        count.dropped["invalid_row"] = len(pool.rejects)
    state.close(count)
    return state


def limit_problems(state: CurationState, limit: int | None) -> None:
    """Drop every problem after the first ``limit`` (reason ``problem_limit``), keeping the funnel whole."""
    count = state.begin("problem_limit", limit is not None)
    over = list(state.problems)[limit:] if limit is not None else []
    state.apply(count, problems={pid: ("problem_limit", {"limit": limit}) for pid in over})


def difficulty_attempts(state: CurationState, options: StageOptions, context: StageContext) -> list[Attempt]:
    """Attempts for pass rates: the pool's graded chains, or fresh rollouts of the alive problems.

    Rollouts go through the sharded, adaptive `run_rollout_stages` (on ``context.executor``), the same
    function a sharded run calls; what they drew against fixed k goes to the manifest.
    """
    difficulty = options.difficulty
    if not difficulty.enabled or difficulty.source != "rollouts":
        return state.attempts
    problems = ({"id": p.id, "problem": p.problem, "answer": p.answer} for p in state.problems.values())
    outcome = run_rollout_stages(problems, options, context.work_dir / "rollouts", context.seed, context.executor)
    state.manifest["rollouts"] = outcome.manifest()
    return list(outcome.attempts())


def decontaminate(state: CurationState, options: StageOptions, context: StageContext) -> None:
    """`run_decontam`, with what to do about a benchmark that cannot be loaded added to its error."""
    try:
        run_decontam(state, options.decontam, context.benchmark_specs, options.quality.workers)
    except DataError as err:
        raise benchmark_error(err) from err


def benchmark_error(err: DataError) -> DataError:
    """A benchmark that cannot be loaded, with what to do about it and the key to look at."""
    hint = "pass data_dir=<folder with the benchmark files> or set curate.stages.decontam.missing=warn"
    return DataError(f"{err} ({hint}), curate.stages.decontam")


STAGES: dict[str, StageRun] = {
    "problem_limit": lambda state, options, context: limit_problems(state, options.ingest.problem_limit),
    "validate": lambda state, options, context: run_validate(state, options.validate),
    "answer_check": lambda state, options, context: run_answer_check(state, options.answer_check),
    "dedup": lambda state, options, context: run_dedup(state, options.dedup, options.quality.workers),
    "decontam": decontaminate,
    "suspect_gold": lambda state, options, context: run_suspect_gold(state, options.suspect_gold),
    "difficulty": lambda state, options, context: run_difficulty(
        state, options.difficulty, difficulty_attempts(state, options, context)
    ),
    "quality": lambda state, options, context: run_quality(state, options.quality),
    "diversity": lambda state, options, context: run_diversity(state, options.diversity, options.select, context.seed),
    "select": lambda state, options, context: run_select(state, options.select),
}


def stage_names(method_stages: Sequence[str], options: StageOptions) -> tuple[str, ...]:
    """The stages a run goes through: ``problem_limit`` first when it is set, then the method's."""
    return (("problem_limit",) if options.ingest.problem_limit is not None else ()) + tuple(method_stages)


def run_stages(state: CurationState, names: Sequence[str], options: StageOptions, context: StageContext) -> None:
    """Run the named stages in order on ``state``, each timed and logged."""
    for name in names:
        STAGES[name](state, options, context)
        count = state.funnel[-1]
        state.close(count)
        log_stage(count)


def log_stage(count: StageCount) -> None:
    """One line per stage: chains and problems in and out."""
    line = "%-13s chains %6d -> %6d  problems %5s -> %5s"
    log.info(line, count.stage, count.items_in, count.items_out, count.problems_in, count.problems_out)
