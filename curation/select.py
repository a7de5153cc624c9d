"""Selection: a combined score per chain, the best chain per problem, then the top N problems.

    combined = (quality_weight * quality + difficulty_weight * (1 - strong_pass_rate)) / (sum of weights)

A missing term (quality off, no pass rate) counts 0 and its weight still divides, so scores stay
comparable within a run. Ties break on pool order, so the result is a pure function of the inputs (and
the seed, which only diversity's s1 sampling uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curation.funnel import CurationState
from curation.options import SelectOptions
from curation.schema import Chain


def combined_score(state: CurationState, chain: Chain, options: SelectOptions) -> float:
    note = state.chain_notes.get(chain.id, {}).get("quality")
    rate = state.problem_notes.get(chain.problem_id, {}).get("difficulty", {}).get("strong_pass_rate")
    return combine(note.score if note is not None else 0.0, rate, options)


def combine(quality: float, strong_pass_rate: float | None, options: SelectOptions) -> float:
    """The combined score of one chain from its quality and its problem's strong pass rate (None counts 0)."""
    difficulty = 0.0 if strong_pass_rate is None else 1.0 - strong_pass_rate
    total = (options.quality_weight + options.difficulty_weight) or 1.0
    return round((options.quality_weight * quality + options.difficulty_weight * difficulty) / total, 6)


def best_chains(state: CurationState, options: SelectOptions) -> dict[str, tuple[Chain, float]]:
    """``{problem_id: (best chain, its combined score)}``; the earlier chain wins a tie."""
    best: dict[str, tuple[Chain, float]] = {}
    for chain in state.chains.values():
        score = combined_score(state, chain, options)
        if chain.problem_id not in best or score > best[chain.problem_id][1]:
            best[chain.problem_id] = (chain, score)
    return best


def ranked_problems(best: dict[str, tuple[Chain, float]], order: Sequence[str]) -> list[str]:
    """Problem ids by descending best score, pool order breaking ties."""
    position = {pid: i for i, pid in enumerate(order)}
    return sorted(best, key=lambda pid: (-best[pid][1], position[pid]))


def run_select(state: CurationState, options: SelectOptions) -> None:
    """Keep the best chain of each problem, then the ``options.n`` best problems."""
    count = state.begin("select", True)
    best = best_chains(state, options)
    chains: dict[str, tuple[str, dict[str, Any]]] = {}
    for chain in state.chains.values():
        winner, score = best[chain.problem_id]
        state.chain_notes[chain.id]["combined"] = combined_score(state, chain, options)
        if chain.id != winner.id:
            chains[chain.id] = ("not_best_chain", {"best_chain": winner.id, "best_score": score})
    ranked = ranked_problems(best, list(state.problems))
    problems = {
        pid: ("below_top_n", {"rank": rank + 1, "score": best[pid][1]})
        for rank, pid in enumerate(ranked)
        if rank >= options.n
    }
    for rank, pid in enumerate(ranked[: options.n]):
        state.problem_notes[pid]["rank"] = rank + 1
    count.notes = {"n": options.n}
    state.apply(count, chains=chains, problems=problems)
