"""Difficulty from pass rates, and LIMO's two filters.

Attempts come from the pool (CHAMP: 4 models x 3 unaided settings = 12 per problem; validate already
removed hinted settings) or from fresh rollouts (`curation.rollouts`). Per problem we count, for every
generator, correct attempts out of tries. Filters (each off when unset):

- weak filter: drop a problem when any weak model solves it in at least ``weak_max_solved`` of its tries
  (LIMO: Qwen2.5-Math-7B-Instruct, any success in 4 tries -> ``weak_max_solved: 1``);
- strong window: keep a problem only when the strong models' pooled pass rate lies in ``[lo, hi]``
  (LIMO: DeepSeek-R1-Distill-Qwen-32B solving 1 to 3 of 32 -> ``[0.03125, 0.09375]``).

The strong pass rate is also the problem's difficulty score used by selection (``1 - pass_rate``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from curation.funnel import Attempt, CurationState
from curation.options import DifficultyOptions


def solve_counts(attempts: Iterable[Attempt]) -> dict[str, dict[str, list[int]]]:
    """``{problem_id: {generator: [correct, tries]}}``."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for attempt in attempts:
        cell = counts[attempt.problem_id][attempt.generator]
        cell[0] += int(attempt.correct)
        cell[1] += 1
    return counts


def pooled_rate(counts: dict[str, list[int]], models: Sequence[str]) -> float | None:
    """Pass rate over ``models`` together (None when they made no attempt)."""
    correct = sum(counts[m][0] for m in models if m in counts)
    tries = sum(counts[m][1] for m in models if m in counts)
    return correct / tries if tries else None


def difficulty_decision(counts: dict[str, list[int]], options: DifficultyOptions) -> str | None:
    """The drop reason for one problem's counts, or None to keep it."""
    if options.weak_max_solved is not None:
        for model in options.weak_models:
            if model in counts and counts[model][0] >= options.weak_max_solved:
                return "too_easy_for_weak_model"
    if options.strong_pass_rate is not None:
        rate = pooled_rate(counts, options.strong_models)
        lo, hi = options.strong_pass_rate
        if rate is None:
            return "no_strong_attempts"
        if rate < lo:
            return "strong_pass_rate_below_window"
        if rate > hi:
            return "strong_pass_rate_above_window"
    return None


def difficulty_note(per_model: dict[str, list[int]], options: DifficultyOptions) -> dict[str, object]:
    """A problem's pass-rate note: ``[correct, tries]`` per generator (sorted), the pooled rates, the source."""
    return {
        "attempts": {m: list(c) for m, c in sorted(per_model.items())},
        "strong_pass_rate": pooled_rate(per_model, options.strong_models) if per_model else None,
        "weak_pass_rate": pooled_rate(per_model, options.weak_models) if per_model else None,
        "source": options.source,
    }


def run_difficulty(state: CurationState, options: DifficultyOptions, attempts: Sequence[Attempt]) -> None:
    """Record pass rates for every alive problem and apply the weak filter and strong window."""
    count = state.begin("difficulty", options.enabled)
    if not options.enabled:
        state.apply(count)
        return
    counts = solve_counts(a for a in attempts if a.problem_id in state.problems)
    drops = {}
    for problem_id in state.problems:
        per_model = counts.get(problem_id, {})
        note = difficulty_note(per_model, options)
        state.problem_notes[problem_id]["difficulty"] = note
        reason = difficulty_decision(per_model, options)
        if reason:
            drops[problem_id] = (reason, {k: note[k] for k in ("strong_pass_rate", "weak_pass_rate")})
    count.notes = {"source": options.source, "problems_with_attempts": sum(1 for p in state.problems if p in counts)}
    state.apply(count, problems=drops)
