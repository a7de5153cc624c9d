"""Suspect golds: problems where the strong models agree with each other and not with the gold answer.

For each problem, the strong models' *incorrect* attempts are clustered by answer equivalence
(`eval.grader.verify`, greedy: an answer joins the first cluster whose representative it equals). When
the largest cluster has at least ``min_agreeing`` members and outnumbers the strong attempts that match
the gold, the gold is suspect. Real pools have wrong golds (CHAMP has four, see the overrides file);
such a problem either teaches a wrong answer or drops good chains, so the recipe chooses: ``drop`` it or
keep it for ``review`` (listed in report.md with the agreed answer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from curation.funnel import Attempt, CurationState
from curation.options import SuspectGoldOptions
from eval.grader import verify


@lru_cache(maxsize=1 << 16)
def equivalent(first: str, second: str) -> bool:
    """`eval.grader.verify`, memoised: pools repeat the same short answers across many problems."""

    return first == second or verify(first, second)


def cluster_answers(answers: Sequence[str]) -> list[list[str]]:
    """Group equivalent answers (greedy, first representative wins), largest cluster first."""
    clusters: list[list[str]] = []
    for answer in answers:
        for cluster in clusters:
            if equivalent(cluster[0], answer):
                cluster.append(answer)
                break
        else:
            clusters.append([answer])
    return sorted(clusters, key=len, reverse=True)


def suspect_golds(attempts: Sequence[Attempt], options: SuspectGoldOptions) -> dict[str, dict[str, Any]]:
    """Map each suspect problem id to ``{agreed_answer, agreeing, correct, attempts}``."""
    strong = set(options.models)
    by_problem: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        if attempt.generator in strong:
            by_problem[attempt.problem_id].append(attempt)
    found = {}
    for problem_id, group in by_problem.items():
        wrong = [a.answer for a in group if not a.correct and a.answer]
        correct = sum(a.correct for a in group)
        if len(wrong) < options.min_agreeing:
            continue
        largest = cluster_answers(wrong)[0]
        if len(largest) >= options.min_agreeing and len(largest) > correct:
            found[problem_id] = {
                "agreed_answer": largest[0],
                "agreeing": len(largest),
                "correct": correct,
                "attempts": len(group),
            }
    return found


def run_suspect_gold(state: CurationState, options: SuspectGoldOptions) -> None:
    """Flag suspect golds; drop them when ``options.action == "drop"``."""
    count = state.begin("suspect_gold", options.enabled)
    if not options.enabled:
        state.apply(count)
        return
    alive = [a for a in state.attempts if a.problem_id in state.problems]
    found = suspect_golds(alive, options)
    for problem_id, detail in found.items():
        state.problem_notes[problem_id]["suspect_gold"] = {**detail, "gold": state.problems[problem_id].answer}
    count.notes = {"flagged": len(found), "action": options.action}
    drops = {pid: ("suspect_gold", d) for pid, d in found.items()} if options.action == "drop" else {}
    state.apply(count, problems=drops)
