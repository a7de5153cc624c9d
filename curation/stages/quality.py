"""Chain quality: LIMO's rule-based score plus structural checks.

Score (every number comes from `QualityOptions`, so a recipe can change it):

    words      = number of word tokens in the chain
    elaborated = min(1, words / length_target_words)
    rate_f     = (keyword hits of family f) / words * per_words          # hits per 100 words by default
    feature_f  = min(1, rate_f / saturation_f)                           # f in verification, exploration, granularity
    quality    = sum_f weight_f * feature_f / sum_f weight_f             # in [0, 1]

with LIMO's weights: elaborated reasoning 0.30, self-verification 0.20, exploratory approach 0.25,
adaptive granularity 0.25. Keywords match as whole words or phrases, case-insensitively.

Structural checks drop a chain with a reason: ``truncated`` (stopped at its length limit),
``no_final_answer`` (no final-answer turn, ``\boxed{}`` or answer marker), ``repetition_loop`` (more
than ``max_repetition`` of its ``repetition_window``-word windows repeat an earlier window), and
``quality_below_min``. Scoring is a pure per-chain function; the stage runs it as shard tasks.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from curation.executors import ShardJob
from curation.funnel import HISTOGRAM, Chart
from curation.options import QualityOptions, StageOptions
from curation.runner import DropItem, RunState, StageContext, alive_rows, options_dict, rows_as, run_parts
from curation.schema import Chain
from curation.stages.base import Kept, Stage
from eval.answers.extract import extract_answer
from eval.options import to_options

_WORD = re.compile(r"\w+(?:[-']\w+)*")


@dataclass(frozen=True, slots=True)
class QualityNote:
    """What the funnel keeps per chain (small: pools have millions); `quality_details` has the rest."""

    score: float
    words: int
    repetition: float


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; hyphenated and apostrophe words stay one token (``re-check``, ``let's``)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class KeywordSet:
    """Keywords of one family as token tuples (``what if`` -> ``("what", "if")``), matched on word tokens."""

    phrases: frozenset[tuple[str, ...]]
    lengths: tuple[int, ...]

    def count(self, tokens: list[str], grams: Mapping[int, Counter[tuple[str, ...]]] | None = None) -> int:
        """Occurrences of any keyword as whole words in ``tokens`` (lower-cased word tokens).

        ``grams`` (token n-gram counts by n, from `ngram_counts`) lets several families share one count.
        """
        grams = grams if grams is not None else ngram_counts(tokens, self.lengths)
        return sum(grams[len(phrase)][phrase] for phrase in self.phrases)


def ngram_counts(tokens: list[str], lengths: Iterable[int]) -> dict[int, Counter[tuple[str, ...]]]:
    """Token n-gram counts for each n in ``lengths`` (counted in C by `Counter` over `zip`)."""
    return {n: Counter(zip(*(tokens[i:] for i in range(n)), strict=False)) for n in set(lengths)}


def keyword_pattern(words: list[str]) -> KeywordSet:
    """The matcher for one keyword family: case-insensitive, whole words or phrases."""
    phrases = frozenset(tuple(_WORD.findall(word.lower())) for word in words if _WORD.search(word))
    return KeywordSet(phrases, tuple(sorted({len(p) for p in phrases})))


def repetition_fraction(tokens: list[str], window: int) -> float:
    """Fraction of ``window``-word windows that repeat an earlier window (0 for short texts).

    Each window is a 64-bit polynomial hash of its tokens' hashes, computed for all windows at once.
    """
    if len(tokens) < 2 * window:
        return 0.0
    codes = np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)
    powers = np.uint64(1_000_003) ** np.arange(window, dtype=np.uint64)  # wraps mod 2**64, as intended
    windows = sliding_window_view(codes, window) @ powers
    return 1.0 - len(set(windows.tolist())) / len(windows)


def answer_present(text: str, final_answer: str | None) -> bool:
    """A final-answer turn, or an answer the extractor finds in the text (``\\boxed{}``, markers)."""
    if final_answer and final_answer.strip():
        return True

    return extract_answer(text) is not None


def score_text(text: str, options: QualityOptions, patterns: Mapping[str, KeywordSet]) -> dict[str, Any]:
    """LIMO's features and combined score for one chain text."""
    tokens = tokenize(text)
    words = max(1, len(tokens))
    features = {"elaborated": min(1.0, words / options.length_target_words)}
    hits = {}
    grams = ngram_counts(tokens, [n for pattern in patterns.values() for n in pattern.lengths])
    for family, pattern in patterns.items():
        hits[family] = pattern.count(tokens, grams)
        rate = hits[family] / words * options.per_words
        features[family] = min(1.0, rate / options.saturation.get(family, 1.0))
    total_weight = sum(options.weights.values()) or 1.0
    score = sum(options.weights.get(name, 0.0) * value for name, value in features.items()) / total_weight
    return {
        "score": round(score, 6),
        "features": {k: round(v, 6) for k, v in features.items()},
        "keyword_hits": hits,
        "words": len(tokens),
        "repetition": round(repetition_fraction(tokens, options.repetition_window), 6),
    }


@dataclass(frozen=True)
class Scorer:
    """Quality options with their compiled keyword sets: built once per process (`scorer`), never a global."""

    options: QualityOptions
    patterns: Mapping[str, KeywordSet]

    def assess(self, text: str, truncated: bool, final_answer: str | None) -> tuple[QualityNote, str | None]:
        """Compact score and structural verdict (drop reason or None) of one chain; `quality_details`
        recomputes every feature for the few chains that are selected."""
        result = score_text(text, self.options, self.patterns)
        result["final_answer"] = answer_present(text, final_answer)
        note = QualityNote(result["score"], result["words"], result["repetition"])
        return note, structural_problem(truncated, result, self.options)


def scorer(options: QualityOptions) -> Scorer:
    """The `Scorer` of ``options``, cached by their JSON form (options hold dicts, so they are not hashable):
    a shard task builds the keyword sets once per process."""
    return _scorer(json.dumps(asdict(options)))  # key order kept: the features follow the keywords order


@lru_cache(maxsize=4)
def _scorer(options_json: str) -> Scorer:
    options = to_options(QualityOptions, json.loads(options_json))
    return Scorer(options, {family: keyword_pattern(words) for family, words in options.keywords.items()})


def assess_chain(chain: Chain, options: QualityOptions) -> tuple[QualityNote, str | None]:
    """`Scorer.assess` of one chain."""
    return scorer(options).assess(chain.text, chain.truncated, chain.final_answer)


def structural_problem(truncated: bool, result: dict[str, Any], options: QualityOptions) -> str | None:
    if options.drop_truncated and truncated:
        return "truncated"
    if options.require_final_answer and not result["final_answer"]:
        return "no_final_answer"
    if result["repetition"] > options.max_repetition:
        return "repetition_loop"
    if result["score"] < options.min_score:
        return "quality_below_min"
    return None


def quality_details(chain: Chain, options: QualityOptions) -> dict[str, Any]:
    """Every feature of one chain's score, for its curated row (recomputed: cheap for a few hundred rows)."""
    return score_text(chain.text, options, scorer(options).patterns)


def row_quality(chain: Chain, notes: Mapping[str, Any], options: QualityOptions) -> dict[str, Any] | None:
    """A kept chain's quality features for its curated row (`quality_details`; None: the stage did not score it)."""
    return quality_details(chain, options) if "quality" in notes else None


# ------------------------------------------------------------------------------------------------ shard tasks


class QualityRow(NamedTuple):
    """What the quality task says of one chain: its compact score and its structural drop reason (or None)."""

    chain: int
    score: float
    words: int
    repetition: float
    problem: str | None

    def note(self) -> QualityNote:
        return QualityNote(self.score, self.words, self.repetition)


def quality_chains(index: int, item: dict[str, Any]) -> Iterator[QualityRow]:
    """A `QualityRow` per alive chain of one part."""
    assess = scorer(to_options(QualityOptions, item["options"])).assess
    for position, row in alive_rows(item):
        note, problem = assess(row["text"], row["truncated"], row["final_answer"])
        yield QualityRow(position, note.score, note.words, note.repetition, problem)


# ------------------------------------------------------------------------------------------------ the stage


@dataclass
class Scored:
    """What the quality stage hands on: per chain its score (NaN: not scored), and the finished job (its notes)."""

    scores: np.ndarray
    job: ShardJob


def quality(state: RunState, options: StageOptions, context: StageContext) -> Scored | None:
    settings = options.quality
    count = state.opened("quality", settings.enabled)
    if count is None:
        return None
    job = run_parts(state, context, "quality", quality_chains, {"options": options_dict(settings)})
    earlier = state.output("quality", Scored)
    scores = earlier.scores if earlier is not None else np.full(len(state.chain_alive), np.nan)

    def drops() -> Iterator[DropItem]:
        for row in rows_as(job, QualityRow):
            scores[row.chain] = row.score
            if row.problem:
                yield row.chain, row.problem, {"score": row.score, "repetition": row.repetition}

    state.apply(count, chains=drops())
    return Scored(scores, job)


class Quality(Stage):
    """The quality stage: each kept chain's note (``quality``) and every score for the report's chart."""

    name, options_type = "quality", QualityOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Scored | None:
        return quality(state, options, context)

    def chain_notes(self, output: Scored, kept: Kept) -> None:
        for chain_id, note in kept.chain_rows(output.job, QualityRow, QualityRow.note):
            kept.survivors.chain_notes[chain_id]["quality"] = note

    def charts(self, output: Scored | None, kept: Kept) -> list[Chart]:
        """Every chain's score beside the kept chains' (none when the stage was off)."""
        if output is None:
            return []
        notes = kept.survivors.chain_notes
        kept_scores = [n["quality"].score for c in kept.survivors.chains if "quality" in (n := notes.get(c, {}))]
        series = {"candidates": output.scores[~np.isnan(output.scores)].tolist(), "curated": kept_scores}
        return [Chart("quality", "Quality score", HISTOGRAM, series, "quality score")]


STAGE = Quality()
