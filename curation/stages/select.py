"""Selection: a combined score per chain, the best chains per problem, then the top N problems.

    combined = (quality_weight * quality + difficulty_weight * difficulty
                + student_fit_weight * fit + length_weight * length) / (sum of the weights of the terms in use)

``fit`` and ``length`` are in use only when ``student_fit`` / ``length_preference`` are set (`chain_terms`); each is
a chain's place among its problem's chains, 1 for the best (a problem's only chain: 1), so they choose which of a
problem's chains it keeps and barely move the ranking of problems. ``fit`` ranks the verified chains by the student's
(``curate.student``) mean token log-likelihood (``likelihood``, GRAPE) or rank-surprisal ratio (``rsr``,
`eval.run.likelihood.rank_surprisal_ratio`; lower fits better), ``length`` by word count (``short``: the shortest
gets 1; ``long``: the longest; ``mixed``: both ends 1, the middle 0).

``difficulty`` is the problem's score from the difficulty stage (``1 - strong pass rate``, or the declared
metadata column's score). When no problem of the run has one (the stage is off or found no signal),
``fallback_difficulty: length`` uses the chain's length percentile among the chains still in (s1's
observation: harder problems take longer reasoning), so that ranking is never keyword density alone;
``none`` leaves quality to rank. A problem without a score in a run that has scores (an unparseable or
empty metadata value, no attempts) gets the neutral term `UNKNOWN_DIFFICULTY` (0.5), so that it ranks
neither as the hardest nor as the easiest problem. A missing
term's weight still divides, so scores stay comparable within a run. Ties break on pool order, so the
result is a pure function of the inputs (and the seed, which only diversity's s1 sampling uses).

When the method runs the diversity stage, its quota (`curation.stages.diversity.Quota`) is applied here, to this
one ranking, before the top N, under the diversity stage's own funnel row (`apply_quota`); the ranking is computed
again only where the quota's drops change the difficulty terms (chain-length percentiles are among the chains
still in).

Fewer problems left than ``n`` is not an error, but a user must hear of it: the stage's notes then hold a
``shortfall`` (asked, selected, and the stage that removed the most problems, with its reasons), which the
console and report.md state in one line (`curation.outputs.report.shortfall_line`). A run that voted its golds
also notes how many of the selected chains rest on a voted gold, and how many of those on a single generator
(`curation.stages.majority_gold.selection_trust`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from curation.funnel import HISTOGRAM, Chart, StageCount, domain_chart, problem_domains
from curation.options import (
    SelectOptions,
    StageOptions,
)
from curation.runner import RunState, StageContext, chunked_pairs
from curation.stages.base import Kept, Stage
from curation.stages.difficulty import UNKNOWN_TERM, Difficulties, mid_ranks, student_scores, verified_chains
from curation.stages.diversity import Quota, quota_decisions
from curation.stages.majority_gold import selection_trust
from curation.stages.quality import Scored

FALLBACKS = ("length", "none")
FIT_NOTES = {"likelihood": "student_nll", "rsr": "rsr"}  # a selected row's fit measure, by ``student_fit``
UNKNOWN_DIFFICULTY = UNKNOWN_TERM  # the difficulty term of a problem without a score (see the docstring)


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
    return [round(rank / len(words), 6) for rank in mid_ranks(words)]


def combine(
    quality: float, difficulty: float, options: SelectOptions, fit: float | None = None, length: float | None = None
) -> float:
    """The combined score of one chain from its quality, its difficulty term and, when in use, its fit and length
    terms."""
    return round(weighted(quality, difficulty, options, fit, length), 6)


def weighted(quality: Any, difficulty: Any, options: SelectOptions, fit: Any = None, length: Any = None) -> Any:
    """`combine` before rounding, for floats or numpy arrays: the same float operations (without fit and length terms,
    exactly LIMO's two-term score)."""
    total = options.quality_weight + options.difficulty_weight
    value = options.quality_weight * quality + options.difficulty_weight * difficulty
    if fit is not None:
        total, value = total + options.student_fit_weight, value + options.student_fit_weight * fit
    if length is not None:
        total, value = total + options.length_weight, value + options.length_weight * length
    return value / (total or 1.0)


@dataclass
class ChainTerms:
    """The chain terms in use, over every chain of the pool (pool index; NaN: not an alive chain).

    Attributes:
        fit: Each alive chain's fit to the student among its problem's verified chains (1: the best; a chain the
            student did not score, 0.5); None: ``student_fit: none``.
        length: Each alive chain's length term among its problem's chains; None: ``length_preference: none``.
        measured: The fit measure of each scored chain (mean log-likelihood, or RSR), for its notes.
        notes: What the select row's funnel notes say about the terms.
    """

    fit: np.ndarray | None = None
    length: np.ndarray | None = None
    measured: dict[int, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def at(self, chains: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The fit and length terms of ``chains`` (None where not in use)."""
        return (None if self.fit is None else self.fit[chains]), (None if self.length is None else self.length[chains])


def within_problem_places(problems: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's place among its problem's values, from 0 (the smallest) to 1 (the largest), ties sharing their
    mid-rank; NaN for a problem's only value."""
    order = np.lexsort((values, problems))
    grouped, ordered, n = problems[order], values[order], len(order)
    new_problem = np.ones(n, dtype=bool)
    new_problem[1:] = grouped[1:] != grouped[:-1]
    new_value = new_problem.copy()
    new_value[1:] |= ordered[1:] != ordered[:-1]
    starts, ties = np.flatnonzero(new_problem), np.flatnonzero(new_value)
    sizes, tie_sizes = np.diff(np.append(starts, n)), np.diff(np.append(ties, n))
    size = np.repeat(sizes, sizes)
    middle = np.repeat(ties, tie_sizes) - np.repeat(starts, sizes) + (np.repeat(tie_sizes, tie_sizes) - 1) / 2
    places = np.empty(n)
    places[order] = np.where(size > 1, middle / np.maximum(size - 1, 1), np.nan)
    return places


def length_terms(places: np.ndarray, preference: str) -> np.ndarray:
    """The length term from each chain's place by length among its problem's (0: shortest, 1: longest, NaN: alone).

    Raises:
        ValueError: An unknown ``preference``.
    """
    if preference == "short":
        terms = 1.0 - places
    elif preference == "long":
        terms = places
    elif preference == "mixed":
        terms = np.abs(2.0 * places - 1.0)
    else:
        raise ValueError(f"curate.stages.select.length_preference must be short, long or mixed, got {preference!r}")
    return np.round(np.nan_to_num(terms, nan=1.0), 6)


def fit_measure(scored: Any, measure: str) -> float:
    """A chain's fit measure from its `eval.run.likelihood.Scored`, lower fitting better, at 3 decimals: its mean
    negative log-likelihood per token (``likelihood``), or its rank-surprisal ratio (``rsr``:
    `eval.run.likelihood.rank_surprisal_ratio`, whose floor scores a chain of near-zero surprisal as the poor fit it
    is, never as the best)."""
    if measure == "likelihood":
        return round(scored.nll, 3)
    return round(scored.rsr, 3)


def chain_terms(state: RunState, options: StageOptions, context: StageContext) -> ChainTerms:
    """The fit and length terms of the alive chains (`ChainTerms`); empty when neither is in use."""
    settings = options.select
    terms = ChainTerms()
    chains = np.flatnonzero(state.chain_alive)
    problems = state.chain_problem[chains]
    if settings.length_preference != "none":
        places = within_problem_places(problems, state.store.columns.chain_words[chains].astype(np.float64))
        terms.length = np.full(len(state.chain_alive), np.nan)
        terms.length[chains] = length_terms(places, settings.length_preference)
        terms.notes["length_preference"] = settings.length_preference
    if settings.student_fit != "none":
        fit_terms(state, options, context, chains, terms)
    return terms


def fit_terms(
    state: RunState, options: StageOptions, context: StageContext, chains: np.ndarray, terms: ChainTerms
) -> None:
    """Each alive chain's fit term (`ChainTerms.fit`): the student scores every verified alive chain (one forward pass
    a chain, cached with the difficulty stage's), then each is placed among its problem's.

    Raises:
        ValueError: No student (``curate.student.model``) to score with.
    """
    measure, student = options.select.student_fit, context.student
    if not student.model:
        raise ValueError(f"curate.stages.select.student_fit: {measure} needs the student: set curate.student.model")
    verified = chains[verified_chains(state)[chains]]
    scored = student_scores(state, verified.tolist(), student, context, ranks=measure == "rsr")
    terms.measured = {c: fit_measure(scored[c], measure) for c in verified.tolist()}
    values = np.asarray([terms.measured[c] for c in verified.tolist()], dtype=np.float64)
    places = within_problem_places(state.chain_problem[verified], values)
    terms.fit = np.full(len(state.chain_alive), np.nan)
    terms.fit[chains] = UNKNOWN_DIFFICULTY  # alive but not verified (answer_check.keep_incorrect): neutral
    terms.fit[verified] = np.round(np.nan_to_num(1.0 - places, nan=1.0), 6)
    terms.notes["student_fit"] = {"measure": measure, "chains_scored": len(verified), "model": student.model}


# ------------------------------------------------------------------------------------------------ shard tasks


# ------------------------------------------------------------------------------------------------ the stage


class Best(NamedTuple):
    """Per alive problem (in first-alive-chain order) its best chain, that chain's combined score and difficulty
    term, and where the terms came from (`difficulty_terms`); with ``chains_per_problem`` above 1 its next best
    chains (``runners_up``: chain, problem, combined score, difficulty term, place 2, 3, ... in its problem)."""

    problems: np.ndarray
    chains: np.ndarray
    scores: list[float]
    terms: list[float]
    signal: str
    runners_up: tuple[np.ndarray, ...] = ()


@dataclass
class Selection:
    """What selection hands on: where its difficulty term came from, each selected problem's rank and each
    selected chain's combined score and term (by pool index), and its fit and length terms and place in its problem
    when those are in use (``terms``)."""

    signal: str
    rank: dict[int, int]
    scores: dict[int, tuple[float, float]]
    terms: dict[int, dict[str, Any]] = field(default_factory=dict)


def best_chains(state: RunState, options: StageOptions, extra: ChainTerms | None = None) -> Best:
    """`curation.stages.select.best_chains`: per alive problem (in first-alive-chain order) its best chain and score
    (and its next ``chains_per_problem - 1``), scored with ``extra``'s fit and length terms when in use.

    Scores and terms stay numpy arrays (8 bytes per alive chain each), never a Python float per chain.

    Returns:
        Problems, their best chain, its combined score and its difficulty term (the earlier chain wins a tie), and
        the difficulty signal.
    """
    chains = np.flatnonzero(state.chain_alive)
    signal, terms = difficulty_terms(state, chains, options)
    scores = chain_scores(state, chains, terms, options, *(extra or ChainTerms()).at(chains))
    problems = state.chain_problem[chains]
    order = np.lexsort((chains, -scores, problems))
    first = np.ones(len(order), dtype=bool)
    first[1:] = problems[order][1:] != problems[order][:-1]
    winners = order[first]
    runners_up: tuple[np.ndarray, ...] = ()
    if options.select.chains_per_problem > 1:
        place = np.arange(len(order)) - np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
        behind = (place > 0) & (place < options.select.chains_per_problem)
        more = order[behind]
        runners_up = (chains[more], problems[more], scores[more], terms[more], place[behind] + 1)
    by_first_chain = np.argsort(_first_chain_of(problems, chains)[problems[winners]], kind="stable")
    winners = winners[by_first_chain]
    return Best(
        problems[winners], chains[winners], scores[winners].tolist(), terms[winners].tolist(), signal, runners_up
    )


def _first_chain_of(problems: np.ndarray, chains: np.ndarray) -> np.ndarray:
    first = np.full(int(problems.max()) + 1 if len(problems) else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, problems, chains)
    return first


def chain_scores(
    state: RunState,
    chains: np.ndarray,
    terms: np.ndarray,
    options: StageOptions,
    fit: np.ndarray | None = None,
    length: np.ndarray | None = None,
) -> np.ndarray:
    """`curation.stages.select.combine` for each chain: `weighted`'s float operations on arrays, then Python's round
    value by value (numpy's rounding to 6 decimals can differ from it in the last place)."""
    scored = state.output("quality", Scored)
    quality = np.zeros(len(chains)) if scored is None else np.nan_to_num(scored.scores[chains], nan=0.0)
    raw = weighted(quality, terms, options.select, fit, length)
    return np.fromiter((round(float(value), 6) for value in raw), dtype=np.float64, count=len(raw))


def difficulty_terms(state: RunState, chains: np.ndarray, options: StageOptions) -> tuple[str, np.ndarray]:
    """The difficulty term of the alive ``chains``: the difficulty stage's score of their problem,
    or (no alive problem has one) the fallback: chain-length percentiles or none."""
    signal = term_source(state, options, len(chains) > 0)
    found = state.output("difficulty", Difficulties)
    if signal == "difficulty_stage" and found is not None:
        return signal, np.nan_to_num(found.score[state.chain_problem[chains]], nan=UNKNOWN_DIFFICULTY)
    if signal == "none":
        return signal, np.zeros(len(chains))
    return signal, np.asarray(length_percentiles(state.store.columns.chain_words[chains].tolist()), dtype=np.float64)


def term_source(state: RunState, options: StageOptions, any_chain: bool) -> str:
    """Where the difficulty term comes from: the difficulty stage when an alive problem has its score, else the
    fallback (`fallback_signal`)."""
    found = state.output("difficulty", Difficulties)
    if found is not None and not np.isnan(found.score[state.problem_alive]).all():
        return "difficulty_stage"
    return fallback_signal(options.select, any_chain)


def ranked(problems: np.ndarray, scores: list[float]) -> np.ndarray:
    """Positions of ``problems`` by descending score, pool order (problem index) breaking ties."""
    return np.lexsort((problems, -np.asarray(scores)))


def apply_quota(
    state: RunState, best: Best, quota: Quota, options: StageOptions, context: StageContext, extra: ChainTerms
) -> Best:
    """The diversity stage's quota over selection's ranking, under the diversity funnel row (closed here); returns
    the ranking of the problems left. It is ``best`` less the dropped problems unless their drops change the terms
    (chain-length percentiles, or no alive problem left with a difficulty score): then ranked again."""
    count = state.opened("diversity", quota.settings.enabled)
    if count is None:
        state.close(state.funnel[-1])
        return best
    order = best.problems[ranked(best.problems, best.scores)].tolist()
    notes, drops = quota_decisions(state, best[:2], order, quota.settings, options.select.n, context.seed)
    count.notes = notes
    state.apply(count, problems=[(p, reason, detail) for p, (reason, detail) in drops.items()])
    state.close(count)
    if not drops:
        return best
    if best.signal == "chain_length" or term_source(state, options, True) != best.signal:
        return best_chains(state, options, extra)
    kept = state.problem_alive[best.problems]
    scores, terms = (np.asarray(values)[kept].tolist() for values in (best.scores, best.terms))
    runners_up = best.runners_up
    if runners_up:
        alive = state.problem_alive[runners_up[1]]
        runners_up = tuple(values[alive] for values in runners_up)
    return Best(best.problems[kept], best.chains[kept], scores, terms, best.signal, runners_up)


def select(state: RunState, options: StageOptions, context: StageContext) -> Selection:
    """Drop every chain but its problem's best (or ``chains_per_problem`` best), then every problem below the top
    ``n`` (after the diversity quota, when the method runs the diversity stage: `apply_quota`)."""
    extra = chain_terms(state, options, context)
    best = best_chains(state, options, extra)
    quota = state.output("diversity", Quota)
    if quota is not None:
        best = apply_quota(state, best, quota, options, context, extra)
    count = state.begin("select", True)
    problems, chains, scores, terms, signal, runners_up = best
    winner = dict(zip(problems.tolist(), zip(chains.tolist(), scores, strict=True), strict=True))
    alive = np.flatnonzero(state.chain_alive)
    kept_chains = chains if not runners_up else np.concatenate([chains, runners_up[0]])
    losers = alive[chains_not_kept(state, alive, problems, chains, kept_chains)]
    del alive
    winner_ids = dict(zip(problems.tolist(), state.chain_ids(chains.tolist()), strict=True))
    chain_drops = (
        (c, "not_best_chain", {"best_chain": winner_ids[p], "best_score": winner[p][1]})
        for c, p in chunked_pairs(losers, state.chain_problem[losers])
    )
    order = ranked(problems, scores)
    n = options.select.n
    problem_drops = [
        (int(problems[i]), "below_top_n", {"rank": r + 1, "score": scores[i]}) for r, i in enumerate(order) if r >= n
    ]
    rank = {int(problems[i]): r + 1 for r, i in enumerate(order[:n])}
    selected = {int(chains[i]): (scores[i], terms[i]) for i in order[:n].tolist()}
    places = {int(chains[i]): 1 for i in order[:n].tolist()}
    if runners_up:
        for chain, problem, score, term, place in zip(*(values.tolist() for values in runners_up), strict=True):
            if problem in rank:
                selected[chain], places[chain] = (score, term), place
    count.notes = {"n": n, "difficulty_term": signal}
    if len(problems) < n:
        count.notes["shortfall"] = shortfall(state.funnel[:-1], n, len(problems))
    if state.golds is not None:
        count.notes["voted_golds"] = selection_trust(state.golds, problems[order[:n]])
    state.manifest["selection_difficulty"] = signal
    chain_extras = selection_terms(state, options, extra, count, places)
    state.apply(count, chains=chain_drops, problems=problem_drops)
    return Selection(signal, rank, selected, chain_extras)


def selection_terms(
    state: RunState, options: StageOptions, extra: ChainTerms, count: StageCount, places: dict[int, int]
) -> dict[int, dict[str, Any]]:
    """The fit and length terms and the place in its problem of each selected chain, when any is in use; the same
    facts in the select row's notes and in the manifest (``selection``)."""
    settings = options.select
    if extra.fit is None and extra.length is None and settings.chains_per_problem == 1:
        return {}  # LIMO's selection: nothing more is noted
    facts = {
        **extra.notes,
        "chains_per_problem": settings.chains_per_problem,
        "weights": {"quality": settings.quality_weight, "difficulty": settings.difficulty_weight}
        | ({"student_fit": settings.student_fit_weight} if extra.fit is not None else {})
        | ({"length": settings.length_weight} if extra.length is not None else {}),
    }
    count.notes["terms"] = facts
    state.manifest["selection"] = facts
    notes: dict[int, dict[str, Any]] = {}
    for chain, place in places.items():
        note: dict[str, Any] = {"place": place}
        if extra.fit is not None:
            note["student_fit"] = float(extra.fit[chain])
            if chain in extra.measured:
                note[FIT_NOTES[settings.student_fit]] = extra.measured[chain]
        if extra.length is not None:
            note["length"] = float(extra.length[chain])
        notes[chain] = note
    return notes


def shortfall(funnel: Sequence[StageCount], asked: int, selected: int) -> dict[str, Any]:
    """Why fewer than ``asked`` were selected: the earlier stage that removed the most problems (with its three
    commonest reasons), the problems ingest found and the rows it rejected."""
    removed = {c.stage: sum(c.problems_dropped.values()) for c in funnel if c.problems_dropped}
    ingest = next((c for c in funnel if c.stage == "ingest"), None)
    note: dict[str, Any] = {"asked": asked, "selected": selected}
    if ingest is not None:
        note.update(pool_problems=ingest.problems_out, rows_rejected=ingest.dropped.get("invalid_row", 0))
    if removed:
        stage = max(removed, key=lambda name: removed[name])  # max keeps the earliest of equal counts
        reasons = next(c.problems_dropped for c in funnel if c.stage == stage)
        top = dict(sorted(reasons.items(), key=lambda item: -item[1])[:3])
        note["most_removed_by"] = {"stage": stage, "problems": removed[stage], "reasons": top}
    return note


def chains_not_kept(
    state: RunState, alive: np.ndarray, problems: np.ndarray, chains: np.ndarray, kept: np.ndarray
) -> np.ndarray:
    """A mask over ``alive``: the chains selection does not keep for their problem (``kept``: the winners and the
    runners-up; without runners-up the winners alone, `chains_not_winning`)."""
    if len(kept) == len(chains):
        return chains_not_winning(state, alive, problems, chains)
    return ~np.isin(alive, kept)


def chains_not_winning(state: RunState, alive: np.ndarray, problems: np.ndarray, chains: np.ndarray) -> np.ndarray:
    """A mask over ``alive``: the chains that are not their problem's best (``chains[i]`` is ``problems[i]``'s),
    in arrays (a Python int per alive chain was ~150 bytes a chain at the peak on pools where most chains pass)."""
    best = np.full(len(state.problem_ids), -1, dtype=np.int64)
    best[problems] = chains
    return best[state.chain_problem[alive]] != alive


class Select(Stage):
    """Selection as a stage: each kept chain's combined score and term, each kept problem's rank."""

    name, options_type = "select", SelectOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Selection:
        return select(state, options, context)

    def chain_notes(self, output: Selection, kept: Kept) -> None:
        for chain_id, (combined, term) in kept.chain_values(output.scores):
            kept.survivors.chain_notes[chain_id] |= {"combined": combined, "difficulty_term": term}
        for chain_id, terms in kept.chain_values(output.terms):
            kept.survivors.chain_notes[chain_id]["selection_terms"] = terms

    def problem_notes(self, output: Selection, kept: Kept) -> None:
        for problem_id, rank in kept.problem_values(output.rank):
            kept.survivors.problem_notes[problem_id]["rank"] = rank

    def charts(self, output: Selection | None, kept: Kept) -> list[Chart]:
        """The selected chains' lengths, and the selection's domains beside the pool's (drawn as report.md's PNG when
        the run applied the diversity quota)."""
        lengths = {"curated": [len(c.text.split()) for c in kept.survivors.chains.values()]}
        pool = Counter(kept.state.store.facts.get("pool_domains", {}))
        quota = any(c.stage == "diversity" and c.enabled for c in kept.state.funnel)
        domains = {"pool": pool, "curated": problem_domains(kept.survivors.problems.values())}
        words = "chain length (words)"
        length = Chart("length", "Length of the selected", HISTOGRAM, lengths, "words", image_label=words)
        return [length, domain_chart(domains, image=quota)]


def problem_rank(notes: Mapping[str, Any]) -> int | None:
    """A kept problem's rank in the selection (`Select.problem_notes`; None: not ranked)."""
    return notes.get("rank")


def row_scores(notes: Mapping[str, Any]) -> dict[str, Any]:
    """A kept chain's combined score and the difficulty term in it (`Select.chain_notes`), for its curated row; with
    the fit and length terms and its place in its problem when the run used them."""
    return {"combined": notes.get("combined"), "difficulty": notes.get("difficulty_term"), **chain_place(notes)}


def chain_place(notes: Mapping[str, Any]) -> dict[str, Any]:
    """A kept chain's fit and length terms and place in its problem (`selection_terms`; empty: LIMO's selection)."""
    return dict(notes.get("selection_terms", {}))


STAGE = Select()
