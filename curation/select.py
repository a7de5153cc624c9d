"""Selection: a combined score per chain, the best chain per problem, then the top N problems.

    combined = (quality_weight * quality + difficulty_weight * difficulty) / (sum of weights)

``difficulty`` is the problem's score from the difficulty stage (``1 - strong pass rate``, or the declared
metadata column's score). When no problem of the run has one (the stage is off or found no signal),
``fallback_difficulty: length`` uses the chain's length percentile among the chains still in (s1's
observation: harder problems take longer reasoning), so that ranking is never keyword density alone;
``none`` leaves quality to rank. A problem without a score in a run that has scores counts 0. A missing
term's weight still divides, so scores stay comparable within a run. Ties break on pool order, so the
result is a pure function of the inputs (and the seed, which only diversity's s1 sampling uses).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from curation.difficulty import UNKNOWN_TERM
from curation.funnel import CurationState
from curation.options import SelectOptions
from curation.schema import Chain

FALLBACKS = ("length", "none")
# A problem without a difficulty score (an unparseable or empty metadata value, no attempts) when others have
# one: the middle of [0, 1], so that an unknown problem ranks neither as the hardest nor as the easiest.
UNKNOWN_DIFFICULTY = UNKNOWN_TERM


def difficulty_terms(state: CurationState, options: SelectOptions) -> tuple[str, dict[str, float]]:
    """The difficulty term of every alive chain, and the signal it came from (recorded in the manifest)."""
    scores = {pid: state.problem_notes.get(pid, {}).get("difficulty", {}).get("score") for pid in state.problems}
    if any(score is not None for score in scores.values()):
        return "difficulty_stage", {c.id: _known(scores.get(c.problem_id)) for c in state.chains.values()}
    signal = fallback_signal(options, bool(state.chains))
    if signal == "none":
        return signal, {c: 0.0 for c in state.chains}
    words = [len(chain.text.split()) for chain in state.chains.values()]
    return signal, dict(zip(state.chains, length_percentiles(words), strict=True))


def _known(score: float | None) -> float:
    return UNKNOWN_DIFFICULTY if score is None else score


def fallback_signal(options: SelectOptions, any_chain: bool) -> str:
    """The signal without a difficulty score: ``chain_length`` or ``none`` (also when no chain is left).

    Raises:
        ValueError: ``fallback_difficulty`` is not one of `FALLBACKS`.
    """
    if options.fallback_difficulty not in FALLBACKS:
        raise ValueError(
            f"curate.stages.select.fallback_difficulty must be one of {', '.join(FALLBACKS)}, "
            f"got {options.fallback_difficulty!r}"
        )
    return "chain_length" if options.fallback_difficulty == "length" and any_chain else "none"


def length_percentiles(words: Sequence[int]) -> list[float]:
    """Each chain's word count as the share of chains that are shorter (ties count half), in [0, 1)."""
    ordered = sorted(words)
    shorter = {n: bisect.bisect_left(ordered, n) for n in set(ordered)}
    equal = {n: bisect.bisect_right(ordered, n) - shorter[n] for n in shorter}
    return [round((shorter[n] + (equal[n] - 1) / 2) / len(ordered), 6) for n in words]


def combined_score(state: CurationState, chain: Chain, options: SelectOptions, difficulty: float) -> float:
    note = state.chain_notes.get(chain.id, {}).get("quality")
    return combine(note.score if note is not None else 0.0, difficulty, options)


def combine(quality: float, difficulty: float, options: SelectOptions) -> float:
    """The combined score of one chain from its quality and its difficulty term."""
    return round(weighted(quality, difficulty, options), 6)


def weighted(quality: Any, difficulty: Any, options: SelectOptions) -> Any:
    """`combine` before rounding, for floats or (the sharded runner) numpy arrays: the same float operations."""
    total = (options.quality_weight + options.difficulty_weight) or 1.0
    return (options.quality_weight * quality + options.difficulty_weight * difficulty) / total


def best_chains(
    state: CurationState, options: SelectOptions, terms: Mapping[str, float] | None = None
) -> dict[str, tuple[Chain, float]]:
    """``{problem_id: (best chain, its combined score)}``; the earlier chain wins a tie."""
    terms = difficulty_terms(state, options)[1] if terms is None else terms
    best: dict[str, tuple[Chain, float]] = {}
    for chain in state.chains.values():
        score = combined_score(state, chain, options, terms[chain.id])
        state.chain_notes[chain.id]["combined"] = score
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
    signal, terms = difficulty_terms(state, options)
    best = best_chains(state, options, terms)
    chains: dict[str, tuple[str, dict[str, Any]]] = {}
    for chain in state.chains.values():
        winner, score = best[chain.problem_id]
        state.chain_notes[chain.id]["difficulty_term"] = terms[chain.id]
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
    count.notes = {"n": options.n, "difficulty_term": signal}
    state.manifest["selection_difficulty"] = signal
    state.apply(count, chains=chains, problems=problems)
