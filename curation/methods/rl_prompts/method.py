"""``curate.method: rl_prompts``: prompts for RL with verifiable rewards, chosen from what curation measured.

The shared pool stages run as for SFT data — ingest, validate, answer check (every attempt graded; incorrect
chains are kept, since a prompt's failures are what RL learns from), dedup, decontamination, suspect golds (a
wrong gold poisons every reward of its prompt), difficulty (pass rates, and the window
``curate.stages.difficulty.strong_pass_rate``: open-r1 keeps 0.1 <= p <= 0.6) — and then this method's own
stage, ``rank``, orders the surviving problems by one score (`curation.methods.rl_prompts.history`):

- ``pass_rate``: ``p (1 - p)`` of the difficulty stage's pass rate (a problem without one ranks last): the strong
  models' (the pool's attempts or rollouts), or, with ``curate.stages.difficulty.pass_rate_of: student``, the
  student's own over its k samples — the student (``curate.student``) is the model GRPO will train, so that the
  prompts are those it sometimes solves (its rollouts: ``curate.student.pass_rate.rollouts``, its window:
  ``curate.student.pass_rate.window``; recipe ``smol_rlvr_student``);
- ``history_variance``: the standard deviation of a first GRPO run's per-epoch accuracy on the prompt
  (1-shot RLVR's ranking; its paper trains on the top one, repeated: ``n: 1`` here, ``train.rl.repeat`` there);
- ``lim``: LIMR's learning-impact score from the same history (LIMR keeps scores >= 0.6: ``min_score``).

The history comes from ``history`` (a run directory or its ``train/prompt_rewards`` folder); a problem the history
never saw, or saw in too few epochs, leaves with that reason. ``min_score`` then ``n`` cut the ranking. Outputs:
``prompts.jsonl`` (``id``, ``problem``, ``gold``, ``rank``, ``score``, ``pass_rate``, ``pass_rate_of``: ``student`` or
``strong``, ``provenance``), which
``limo.train`` with ``train.trainer: grpo`` reads, and the shared accounting and report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation import stages as pool_stages
from curation.funnel import Drop, Survivors
from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.graded_pool import method_manifest
from curation.methods.limo.method import pool_facts
from curation.methods.rl_prompts.history import (
    lim_scores,
    pass_rate_score,
    read_history,
    trajectories,
    variance_scores,
)
from curation.options import PATH, StageOptions
from curation.outputs.report import (
    PoolProblems,
    count_table,
    plot_funnel,
    plot_histograms,
    pool_counts,
    render_report,
    selection_notices,
)
from curation.outputs.writer import RunOutputs, write_outputs
from curation.pool.store import open_or_ingest
from curation.stages.difficulty import own_pass_rate, strong_pass_rate
from eval.problem import Problem

STAGES = ("validate", "answer_check", "dedup", "decontam", "suspect_gold", "difficulty")
RANKS = ("pass_rate", "history_variance", "lim")
PROMPTS_FILE = "prompts.jsonl"


@dataclass(frozen=True)
class RLPromptsOptions:
    """``curate.rl_prompts``: how the surviving problems are ranked and cut.

    Attributes:
        rank: ``pass_rate``, ``history_variance`` or ``lim`` (module docstring).
        history: A first GRPO run's directory or its ``train/prompt_rewards`` folder (the history ranks need it).
        epochs: Epochs of the history to score (LIMR: 21); None: every epoch the history has.
        min_score: Keep problems scoring at least this (LIMR: 0.6 with ``lim``); None: no floor.
        n: Keep the top ``n`` after the floor (1-shot RLVR: 1); None: every problem that passes.
    """

    rank: str = "pass_rate"
    history: str | None = field(default=None, metadata=PATH)
    epochs: int | None = None
    min_score: float | None = None
    n: int | None = None

    def __post_init__(self) -> None:
        if self.rank not in RANKS:
            raise ValueError(f"curate.rl_prompts.rank: unknown rank {self.rank!r} (known: {', '.join(RANKS)})")
        if self.rank != "pass_rate" and not self.history:
            raise ValueError(
                f"curate.rl_prompts.history: rank {self.rank!r} reads a first GRPO run's per-prompt reward history; "
                "give its run directory (a run trained with train.rl.prompt_rewards=true)"
            )
        if (self.n is not None and self.n < 1) or (self.epochs is not None and self.epochs < 1):
            raise ValueError("curate.rl_prompts.n and curate.rl_prompts.epochs must be at least 1")


@dataclass(frozen=True)
class Ranked:
    """The ranked problems kept, their scores, and the problems the rank stage dropped."""

    kept: list[tuple[str, float | None]]
    drops: list[Drop]
    notes: dict[str, Any]


def run_rl_prompts(stages: StageOptions, options: RLPromptsOptions, context: RunContext) -> CurationSummary:
    """Run the pool stages, rank the survivors, write ``prompts.jsonl`` and the accounting.

    Raises:
        DataError: Unreadable pool, benchmark or history files (the message names the file).
    """
    started = time.perf_counter()
    rate_of = stages.difficulty.pass_rate_of
    fallback = context.student.pass_rate.fallback
    if rate_of == "student" and fallback != "none":
        raise ValueError(
            f"curate.student.pass_rate.fallback: {fallback!r} scores problems by the student's likelihood where it "
            "solves almost nothing, and a prompt it never solves gives GRPO no reward spread; rl_prompts ranks by its "
            "pass rate: set curate.student.pass_rate.fallback=none"
        )
    stages = replace(stages, answer_check=replace(stages.answer_check, keep_incorrect=True))
    runner = context.stage_context()
    store = open_or_ingest(stages, runner.work_dir, runner.executor.shard_rows)
    names = pool_stages.stage_names(STAGES, stages)
    state = pool_stages.run_pool(store, stages, names, runner, context.out / "rejects.jsonl")
    kept = pool_stages.survivors(state, stages)
    ranked = rank_problems(kept, options, rate_of)
    counts = (len(kept.problems), len(ranked.kept))
    kept.record(
        "rank", unit="problem", items_in=counts[0], items_out=counts[1], rejects=ranked.drops, problems=counts,
        **ranked.notes,
    )  # fmt: skip
    rows = [prompt_row(kept, pid, score, i + 1, options.rank, rate_of) for i, (pid, score) in enumerate(ranked.kept)]
    facts = pool_facts(
        store.facts["source"],
        state.read,
        store.facts["provenance"],
        store.facts["checksums"],
        store.facts["gold_overrides"],
        state.manifest,
    )
    facts["execution"] = pool_stages.execution_facts(state, runner, context.output_dir)
    summary = {"prompts": len(rows), "problems_ranked": counts[0], "rank": options.rank, **ranked.notes}
    prompts = {"ranked": counts[0], "selected": counts[1], "dropped": len(ranked.drops)}
    totals = {"pool": state.totals, "prompts": prompts}
    manifest = method_manifest(context, facts, summary)
    report = rl_report(context, kept, stages, rows, summary)
    lookup = PoolProblems(state.problem_ids, store)  # report.html shows a rejected problem beside its evidence
    outputs = RunOutputs("rl_prompts", {PROMPTS_FILE: rows}, kept, totals, summary, manifest, report, problems=lookup)
    write_outputs(context.out, outputs)
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "rl_prompts",
        str(context.out),
        kept.read,
        len(rows),
        "prompts",
        kept.rejected,
        seconds,
        pool_counts(kept.funnel),
        tuple(selection_notices(kept.funnel)),
    )


def rank_problems(kept: Survivors, options: RLPromptsOptions, rate_of: str) -> Ranked:
    """Score every kept problem, drop those without a score where one is needed, then apply the floor and the cut
    (``rate_of``: whose pass rate ``rank: pass_rate`` scores, ``strong`` or ``student``)."""
    scores, drops, notes = _scores(kept, options, rate_of)
    order = sorted(scores, key=lambda pid: -_or_lowest(scores[pid]))
    if options.min_score is not None:
        low = {pid for pid in order if _or_lowest(scores[pid]) < options.min_score}
        drops += [
            _drop(pid, "below_min_score", score=scores[pid], min_score=options.min_score)
            for pid in order
            if pid in low
        ]
        order = [pid for pid in order if pid not in low]
    if options.n is not None:
        drops += [
            _drop(pid, "below_top_n", rank=r + 1, score=scores[pid]) for r, pid in enumerate(order) if r >= options.n
        ]
        order = order[: options.n]
    return Ranked([(pid, scores[pid]) for pid in order], drops, notes)


def pass_rate_of(kept: Survivors, problem_id: str, rate_of: str) -> float | None:
    """A kept problem's pass rate as the difficulty stage noted it: the student's own, or the strong models'."""
    return own_pass_rate(kept, problem_id) if rate_of == "student" else strong_pass_rate(kept, problem_id)


def _scores(
    kept: Survivors, options: RLPromptsOptions, rate_of: str
) -> tuple[dict[str, float | None], list[Drop], dict[str, Any]]:
    """Scores by problem id (pool order; stable sorting keeps it for ties), the drops of problems without one."""
    if options.rank == "pass_rate":
        rates = {pid: pass_rate_of(kept, pid, rate_of) for pid in kept.problems}
        scored = sum(1 for r in rates.values() if r is not None)
        return (
            {pid: pass_rate_score(r) for pid, r in rates.items()},
            [],
            {"with_pass_rate": scored, "pass_rate_of": rate_of},
        )
    history = read_history(str(options.history))
    complete, incomplete = trajectories(history, options.epochs)
    by_score = lim_scores(complete) if options.rank == "lim" else variance_scores(complete)
    drops, partial = [], set(incomplete)
    scores: dict[str, float | None] = {}
    for pid in kept.problems:
        if pid in by_score:
            scores[pid] = by_score[pid]
        else:
            reason = "incomplete_reward_history" if pid in partial else "no_reward_history"
            drops.append(_drop(pid, reason, history=history.folder))
    notes: dict[str, Any] = {
        "history": history.folder,
        "history_epochs": history.epochs,
        "epochs_scored": options.epochs or history.epochs,
        "history_prompts": len(history.accuracy),
    }
    return scores, drops, notes


def _or_lowest(score: float | None) -> float:
    """A missing score ranks below every score (and below any floor)."""
    return float("-inf") if score is None else score


def _drop(problem_id: str, reason: str, **detail: Any) -> Drop:
    return Drop("problem", problem_id, problem_id, "rank", reason, detail)


def prompt_row(
    kept: Survivors, problem_id: str, score: float | None, rank: int, rank_by: str, rate_of: str
) -> dict[str, Any]:
    """One row of ``prompts.jsonl``: what GRPO trains on, with the measurements that chose it."""
    problem: Problem = kept.problems[problem_id]
    provenance = {"source": problem.source, "subject": problem.subject, **kept.problem_flags.get(problem_id, {})}
    return {
        "id": problem.id,
        "problem": problem.problem,
        "gold": problem.answer,
        "rank": rank,
        "score": {rank_by: score},
        "pass_rate": pass_rate_of(kept, problem_id, rate_of),
        "pass_rate_of": rate_of,
        "provenance": provenance,
    }


def rl_report(
    context: RunContext, kept: Survivors, stages: StageOptions, rows: Sequence[dict[str, Any]], summary: dict[str, Any]
) -> str | None:
    """report.md with the funnel, the ranking's top rows and (plots on) the score distribution."""
    if not stages.report.enabled:
        return None
    out = Path(context.out)
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    if stages.report.plots:
        plot_funnel(kept.funnel, out / "funnel.png")
        scores = [s for r in rows for s in r["score"].values() if s is not None]
        plot_histograms({f"selected ({summary['rank']})": scores}, out / "scores.png", "score")
        plots = ["funnel.png", "scores.png"]
    top = "\n".join(
        f"| {r['rank']} | `{r['id']}` | {_shown(next(iter(r['score'].values())))} | {_shown(r['pass_rate'])} |"
        for r in rows[:20]
    )
    intro = (
        f"{len(rows)} prompts ranked by `{summary['rank']}` out of {summary['problems_ranked']} problems the pool "
        f"stages kept ({kept.read} items read). Every other item is in `rejects.jsonl` with its stage and reason."
    )
    sections = [
        "## Ranking (first 20)",
        "| rank | id | score | pass rate |\n|---|---|---|---|\n" + (top or "| - | none | - | - |"),
        count_table("Rank stage", {k: v for k, v in summary.items() if k not in ("prompts",)}),
        "## Plots",
        *[f"![{p}]({p})" for p in plots],
    ]
    return render_report(f"RL prompts: {context.name}", intro, kept.funnel, sections)


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


METHOD = Method(
    name="rl_prompts",
    run=run_rl_prompts,
    options=RLPromptsOptions,
    stages=STAGES,
    trainer="grpo",
    summary="prompts for RL (GRPO) ranked by pass rate, history variance (1-shot RLVR) or learning impact (LIMR)",
)
