"""Suspect golds: problems where the strong models agree with each other and not with the gold answer.

For each problem, the strong models' *incorrect* attempts are clustered by answer equivalence
(`eval.grading.grader.verify`, greedy: an answer joins the first cluster whose representative it equals). When
the largest cluster has at least ``min_agreeing`` members and outnumbers the strong attempts that match
the gold, the gold is suspect. Real pools have wrong golds (CHAMP has four, see the overrides file);
such a problem either teaches a wrong answer or drops good chains, so the recipe chooses: ``drop`` it or
keep it for ``review`` (listed in report.md with the agreed answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from curation.options import (
    StageOptions,
    SuspectGoldOptions,
)
from curation.runner import RunState, StageContext, rows_as
from curation.stages.answer_check import Checked, VerdictRow
from curation.stages.base import Kept, Stage
from eval.grading.grader import verify
from eval.grading.majority import cluster_answers as majority_clusters


@lru_cache(maxsize=1 << 16)
def equivalent(first: str, second: str) -> bool:
    """`eval.grading.grader.verify`, memoised: pools repeat the same short answers across many problems."""

    return first == second or verify(first, second)


def cluster_answers(answers: Sequence[str]) -> list[list[str]]:
    """Equivalent answers grouped as majority votes group them (`eval.grading.majority.cluster_answers`: greedy, the
    first representative wins), largest cluster first."""
    groups = majority_clusters(answers, equivalent=equivalent)
    return sorted(([answers[i] for i in group] for group in groups), key=len, reverse=True)


def judge_problem(
    wrong: Sequence[str], correct: int, attempts: int, options: SuspectGoldOptions
) -> dict[str, Any] | None:
    """One problem's verdict from its strong attempts: the wrong answers (in attempt order) and the counts.

    Returns:
        ``{agreed_answer, agreeing, correct, attempts}`` when the gold is suspect, else None.
    """
    if len(wrong) < options.min_agreeing:
        return None
    largest = cluster_answers(wrong)[0]
    if len(largest) >= options.min_agreeing and len(largest) > correct:
        return {"agreed_answer": largest[0], "agreeing": len(largest), "correct": correct, "attempts": attempts}
    return None


# ------------------------------------------------------------------------------------------------ shard tasks


# ------------------------------------------------------------------------------------------------ the stage


def suspect_gold(state: RunState, options: StageOptions, context: StageContext) -> dict[int, dict[str, Any]] | None:
    """Flag (or drop) problems whose strong attempts agree on another answer than the gold; returns the flagged
    problems by pool index, each with its evidence and gold."""
    settings = options.suspect_gold
    count = state.opened("suspect_gold", settings.enabled)
    if count is None:
        return None
    found = _suspects(state, settings)
    golds = state.problem_rows(found)
    suspects = {p: {**detail, "gold": row["answer"]} for (p, detail), row in zip(found.items(), golds, strict=True)}
    count.notes = {"flagged": len(found), "action": settings.action}
    drops = [(p, "suspect_gold", d) for p, d in found.items()] if settings.action == "drop" else []
    state.apply(count, problems=drops)
    return suspects


def _suspects(state: RunState, settings: Any) -> dict[int, dict[str, Any]]:
    """`curation.stages.suspect_gold.suspect_golds` over the answer check's rows: strong attempts of alive problems."""
    results = state.output("answer_check", Checked)
    if results is None:
        return {}
    generators = state.store.columns.generators
    strong = np.isin(
        state.store.columns.chain_generator, [i for i, g in enumerate(generators) if g in settings.models]
    )
    groups: dict[int, list[Any]] = {}  # problem -> [correct, attempts, wrong answers], in first-attempt order
    answers: dict[str, str] = {}  # one string per distinct wrong answer: a rollout pool repeats the same few
    for row in rows_as(results.job, VerdictRow):
        chain, correct, extracted = row.chain, row.correct, row.extracted
        problem = int(state.chain_problem[chain])
        if not (results.attempt[chain] and strong[chain] and state.problem_alive[problem]):
            continue
        group = groups.setdefault(problem, [0, 0, []])
        group[0] += correct
        group[1] += 1
        if not correct and extracted:
            group[2].append(answers.setdefault(extracted, extracted))
    judged = ((p, judge_problem(g[2], g[0], g[1], settings)) for p, g in groups.items())
    return {p: detail for p, detail in judged if detail is not None}


class SuspectGold(Stage):
    """The suspect-gold stage: a kept problem it flagged carries its evidence as a flag (``suspect_gold``), kept for
    review."""

    name, options_type = "suspect_gold", SuspectGoldOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> dict[int, dict[str, Any]] | None:
        return suspect_gold(state, options, context)

    def problem_notes(self, output: dict[int, dict[str, Any]], kept: Kept) -> None:
        for problem_id, detail in kept.problem_values(output):
            kept.survivors.problem_flags[problem_id][self.name] = detail


STAGE = SuspectGold()
