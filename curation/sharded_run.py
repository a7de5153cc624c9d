"""A pool run on the executors: ingest to the pool store, the stages as sharded jobs, the selection read back.

`run_sharded` is `curation.stages.run_stages` for pools of any size: ingest streams the source into a
`curation.pool_store.PoolStore` under ``<output_dir>/curate/work/``, every stage runs as sharded jobs
(`curation.stream_stages`) while ``rejects.jsonl`` is written row by row, and at the end only the selected
chains are read back — with their verdicts and quality notes, from the stages' shard files — into a
`CurationState` that holds just the selection. The method's writer then produces the same files as after
an in-memory run.

Memory holds a few bytes per chain and per problem (alive flags, columns, the current stage's keys) and
never a text; the work folder holds a copy of the pool and every stage's shards, which is what lets a
killed run resume (``limo.curate`` again: finished jobs are reused, unfinished shards rerun).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from curation.answer_check import verdict_notes
from curation.difficulty import difficulty_note
from curation.executors import ExecutorOptions
from curation.funnel import CurationState
from curation.options import StageOptions
from curation.pool_store import PoolStore, open_or_ingest, read_chains, read_problems
from curation.quality import QualityNote
from curation.report import PoolPlots, selected_domains, selection_plots
from curation.stages import log_stage
from curation.stream_stages import STREAM_STAGES, problem_counts
from curation.streaming import StreamContext, StreamState, rows_of
from eval.grader import Verdict
from eval.records import atomic_writer

log = logging.getLogger(__name__)


def run_sharded(
    stages: StageOptions, names: Sequence[str], context: StreamContext, rejects_path: Any
) -> tuple[StreamState, PoolStore]:
    """Ingest and run the named stages; ``rejects.jsonl`` is complete at ``rejects_path`` when this returns."""
    store = open_or_ingest(stages, context.work_dir, context.executor.shard_rows)
    with atomic_writer(rejects_path) as rejects:
        state = StreamState(store, rejects)
        count_ingest(state)
        for name in names:
            STREAM_STAGES[name](state, stages, context)
            state.close(state.funnel[-1])
            log_stage(state.funnel[-1])
        state.totals = state.reconcile()
        state.close_files()
    return state, store


def count_ingest(state: StreamState) -> None:
    """The ingest row of the funnel: every row read, the rejected ones written first (`stages.initial_state`)."""
    count = state.begin("ingest")
    count.items_in = state.read
    rejected = state.copy_rejects(state.store.rejects_path)
    state.apply(count)
    if rejected:
        count.dropped["invalid_row"] = rejected
    state.close(count)


def selected_state(state: StreamState, stages: StageOptions) -> CurationState:
    """The selection as a `CurationState`: its problems, chains and notes, with the run's funnel and counts."""
    chains = np.flatnonzero(state.chain_alive)
    problems = sorted(set(state.chain_problem[chains].tolist()))
    selected = CurationState(
        {p.id: p for p in read_problems(state.store, problems)},
        {c.id: c for c in read_chains(state.store, chains.tolist())},
        read=state.read,
    )
    selected.funnel = state.funnel
    index_of = dict(zip((c for c in selected.chains), chains.tolist(), strict=True))
    _chain_notes(state, selected, index_of, stages)
    _problem_notes(state, selected, dict(zip(selected.problems, problems, strict=True)), stages)
    return selected


def _chain_notes(state: StreamState, selected: CurationState, index_of: dict[str, int], stages: StageOptions) -> None:
    """The notes the in-memory runner leaves on a selected chain: verdict (and what it means for the chain),
    quality, combined score and difficulty term."""
    wanted = set(index_of.values())
    results = state.results
    verdicts = {r[0]: _verdict(r[1:5]) for r in _rows(results.answer_job) if r[0] in wanted}
    notes = {r[0]: QualityNote(*r[1:4]) for r in _rows(results.quality_job) if r[0] in wanted}
    for chain_id, index in index_of.items():
        chain_notes = selected.chain_notes[chain_id]
        if index in verdicts:
            verdict_notes(chain_notes, selected.chains[chain_id], verdicts[index], stages.answer_check)
        if index in notes:
            chain_notes["quality"] = notes[index]
        chain_notes["combined"], chain_notes["difficulty_term"] = results.scores[index]


def _rows(job: Any) -> Any:
    return rows_of(job) if job is not None else ()


def _verdict(row: list[Any]) -> Verdict:
    """A verdict row as the grader's `Verdict` (`answer_check.NoAnswer` writes the same fields)."""
    return Verdict(*row)


def _problem_notes(
    state: StreamState, selected: CurationState, index_of: dict[str, int], stages: StageOptions
) -> None:
    results = state.results
    for problem_id, index in index_of.items():
        notes = selected.problem_notes[problem_id]
        if index in results.metadata_notes:
            notes["difficulty"] = results.metadata_notes[index]
        elif results.noted is not None and results.noted[index]:
            notes["difficulty"] = difficulty_note(problem_counts(results.counts, index), stages.difficulty)
        if index in results.suspects:
            notes["suspect_gold"] = results.suspects[index]
        if index in results.rank:
            notes["rank"] = results.rank[index]


def plots(state: StreamState, selected: CurationState) -> PoolPlots:
    """The report's plot data from the compact columns and the selection."""
    results = state.results
    rates: list[float] = []
    if results.noted is not None and results.strong_rate is not None:
        noted = results.strong_rate[results.noted]
        rates = noted[~np.isnan(noted)].tolist()
    quality = results.quality
    all_quality = [] if quality is None else quality[~np.isnan(quality)].tolist()
    pool_domains = Counter(state.store.facts["pool_domains"])
    return PoolPlots(rates, all_quality, *selection_plots(selected), pool_domains, selected_domains(selected))


def execution_facts(state: StreamState, executor: ExecutorOptions, context: StreamContext) -> dict[str, Any]:
    """What the manifest says about how a sharded run ran (executor, parts, where its work folder is)."""
    return {
        "executor": executor.kind,
        "workers": executor.workers,
        "shard_rows": executor.shard_rows,
        "chain_parts": state.store.chains.parts,
        "work_dir": str(context.work_dir),
    }
