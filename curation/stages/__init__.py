"""The shared pool stages and the one loop that runs them: every method's pool goes through `run_pool`.

A stage is one object (`curation.stages.base.Stage`: its options type, its step ``run(state, options, context)``
over a `curation.runner.RunState`, the notes it leaves on what a method reads back, its charts and its report
section), registered in `STAGES` by the name a recipe gives under ``curate.stages`` (plus ``problem_limit``, which
runs first whenever ``curate.stages.ingest.problem_limit`` is set, and ``majority_gold``, which runs next whenever
``curate.stages.majority_gold.enabled`` is: it decides the golds every later stage reads). A method lists the
names it runs, in order; `run_pool` runs them on the run's executor, streaming ``rejects.jsonl`` as it goes,
keeps each stage's output under its name (`curation.runner.RunState.outputs`, which later stages read), and
checks the accounting; `survivors` reads back only the chains the method asks for (the selection, or every chain
still alive) with the notes each stage's hooks leave on them, and the report sections and charts the stages
declare.
Nothing else decides which items stay: a new stage is one module and one entry here.

Grading runs before dedup so that every unaided attempt counts toward pass rates, including attempts whose
text duplicates another's (CHAMP has such pairs across prompt settings); dedup then drops the duplicate
*chains* as training candidates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curation.executors import ExecutorOptions
from curation.funnel import StageCount, Survivors
from curation.options import StageOptions, StudentOptions
from curation.pool.store import PoolStore, read_chains, store_items
from curation.runner import RunState, StageContext, release_free_memory
from curation.schema import Chain
from curation.stages import (
    answer_check,
    decontam,
    dedup,
    difficulty,
    diversity,
    majority_gold,
    quality,
    select,
    suspect_gold,
    validate,
)
from curation.stages.base import Kept, Stage
from eval.benchmarks.loader import BenchmarkSpec
from eval.problem import Problem
from eval.records import atomic_writer

log = logging.getLogger(__name__)

STAGES: dict[str, Stage] = {
    "problem_limit": validate.PROBLEM_LIMIT,
    "majority_gold": majority_gold.STAGE,
    "validate": validate.STAGE,
    "answer_check": answer_check.STAGE,
    "dedup": dedup.STAGE,
    "decontam": decontam.STAGE,
    "suspect_gold": suspect_gold.STAGE,
    "difficulty": difficulty.STAGE,
    "quality": quality.STAGE,
    "diversity": diversity.STAGE,
    "select": select.STAGE,
}


def stage_names(method_stages: Sequence[str], options: StageOptions) -> tuple[str, ...]:
    """The stages a run goes through: ``problem_limit`` first when it is set, ``majority_gold`` when golds are
    voted (before validation, which drops a problem without a gold), then the method's."""
    first = ("problem_limit",) if options.ingest.problem_limit is not None else ()
    return first + (("majority_gold",) if options.majority_gold.enabled else ()) + tuple(method_stages)


def run_pool(
    store: PoolStore,
    stages: StageOptions,
    names: Sequence[str],
    context: StageContext,
    rejects_path: Path,
    *,
    ingest_row: bool = True,
    before: Callable[[RunState], None] | None = None,
) -> RunState:
    """Run the named stages on ``store``; ``rejects.jsonl`` is complete at ``rejects_path`` when this returns.

    Args:
        store: The ingested pool (`curation.pool_store.open_or_ingest`, or items a method wrote).
        stages: The shared stages' options.
        names: The stages to run, in order (`stage_names`).
        context: Seed, benchmarks, work folder and executor.
        rejects_path: Where the drops go, row by row.
        ingest_row: Open the funnel with the ingest row (every row read, rejected rows first); off for items a
            method produced itself (MAmmoTH2's pairs), whose funnel opens with the method's own stages.
        before: Called after ``problem_limit`` and before the other stages (LEMMA shares annotations there).
    """
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(rejects_path) as rejects:
        state = RunState(store, rejects)
        if ingest_row:
            count_ingest(state)
        release_free_memory()  # ingest's transients: the stages' peaks must not sit on top of them
        for name in names:
            if before is not None and name != "problem_limit":
                before(state)
                before = None
            rows = len(state.funnel)
            output = STAGES[name].run(state, stages, context)
            if output is not None:
                state.outputs[name] = output
            close_rows(state, state.funnel[rows:])
            release_free_memory()
        state.totals = state.reconcile()
        state.close_files()
    return state


def curate_items(
    problems: Sequence[Problem],
    chains: Sequence[Chain],
    stages: StageOptions,
    names: Sequence[str],
    work_dir: Path,
    *,
    benchmark_specs: Mapping[str, BenchmarkSpec] | None = None,
    executor: ExecutorOptions | None = None,
    seed: int = 0,
    student: StudentOptions | None = None,
) -> tuple[RunState, Survivors]:
    """`run_pool` over items held in memory (a library caller's or a test's pool): drops in
    ``<work_dir>/rejects.jsonl``; returns the finished state and what the stages kept, read back (``student``: the
    student the difficulty and select stages measure against, ``curate.student``)."""
    student = student or StudentOptions()
    context = StageContext(seed, benchmark_specs or {}, work_dir, executor or ExecutorOptions(), student)
    store = store_items(work_dir, "items", problems, chains, context.executor.shard_rows)
    state = run_pool(store, stages, names, context, work_dir / "rejects.jsonl")
    return state, survivors(state, stages)


def close_rows(state: RunState, added: Sequence[StageCount]) -> None:
    """Close the last funnel row a stage added (a stage that adds none, as diversity, whose quota selection
    applies, closes nothing) and log each one."""
    if added:
        state.close(added[-1])
    for count in added:
        log_stage(count)


def count_ingest(state: RunState) -> None:
    """The ingest row of the funnel: every row read, the rejected ones written first."""
    count = state.begin("ingest")
    count.items_in = state.read
    rejected = state.copy_rejects(state.store.rejects_path)
    state.apply(count)
    if rejected:
        count.dropped["invalid_row"] = rejected
    state.close(count)
    log_stage(count)


def log_stage(count: StageCount) -> None:
    """One line per stage: chains and problems in and out."""
    line = "%-13s chains %6d -> %6d  problems %5s -> %5s"
    log.info(line, count.stage, count.items_in, count.items_out, count.problems_in, count.problems_out)


def survivors(state: RunState, stages: StageOptions) -> Survivors:
    """The alive chains and their problems read back, with the notes the stages left on them, the run's funnel and
    the sections and charts the stages declare.

    For LIMO's funnel these are the selected chains; for a graded-pool method every chain the pool stages kept.
    """
    chains = np.flatnonzero(state.chain_alive)
    problems = sorted(set(state.chain_problem[chains].tolist()))
    kept = Survivors(
        {p.id: p for p in map(Problem.from_dict, state.problem_rows(problems))},
        {c.id: c for c in read_chains(state.store, chains.tolist())},
        read=state.read,
        pool_rejected=state.rejected_rows,
        manifest=state.manifest,
    )
    kept.funnel = list(state.funnel)
    chain_index = dict(zip(kept.chains, chains.tolist(), strict=True))
    readback = Kept(state, kept, chain_index, dict(zip(kept.problems, problems, strict=True)), stages)
    for name, output in state.outputs.items():
        stage = STAGES[name]
        stage.chain_notes(output, readback)
        stage.problem_notes(output, readback)
        section = stage.report_section(output, state)
        if section is not None:
            kept.sections.append(section)
    for name in dict.fromkeys(c.stage for c in state.funnel if c.stage in STAGES):  # every stage run, even off
        kept.charts.extend(STAGES[name].charts(state.outputs.get(name), readback))
    return kept


def execution_facts(state: RunState, context: StageContext, run_dir: Path | None = None) -> dict[str, Any]:
    """What the manifest says about how the pool stages ran (executor, parts, where the work folder is: relative
    to ``run_dir`` when given, so that the same run in another folder writes the same manifest)."""
    executor = context.executor
    work_dir = os.path.relpath(context.work_dir, run_dir) if run_dir is not None else str(context.work_dir)
    return {
        "executor": executor.kind,
        "workers": executor.workers,
        "shard_rows": executor.shard_rows,
        "chain_parts": state.store.chains.parts,
        "work_dir": work_dir,
    }
