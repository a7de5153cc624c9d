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
``no_final_answer`` (no final-answer turn, ``\\boxed{}`` or answer marker), ``repetition_loop`` (more
than ``max_repetition`` of its ``repetition_window``-word windows repeat an earlier window), and
``quality_below_min``. Scoring is a pure per-chain function, sharded with `map_chunks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from curation.funnel import CurationState
from curation.options import QualityOptions
from curation.schema import Chain
from curation.sharding import map_chunks

_WORD = re.compile(r"\w+(?:[-']\w+)*")
_OPTIONS: QualityOptions | None = None
_PATTERNS: dict[str, re.Pattern[str]] = {}


def keyword_pattern(words: list[str]) -> re.Pattern[str]:
    """One case-insensitive regex matching any of ``words`` as whole words (longest first)."""
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def repetition_fraction(tokens: list[str], window: int) -> float:
    """Fraction of ``window``-word windows that repeat an earlier window (0 for short texts)."""
    if len(tokens) < 2 * window:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeated = 0
    total = len(tokens) - window + 1
    for start in range(total):
        key = tuple(tokens[start : start + window])
        repeated += key in seen
        seen.add(key)
    return repeated / total


def has_final_answer(chain: Chain) -> bool:
    if chain.final_answer and chain.final_answer.strip():
        return True
    from eval.extract import extract_answer

    return extract_answer(chain.text) is not None


def score_text(text: str, options: QualityOptions, patterns: Mapping[str, re.Pattern[str]]) -> dict[str, Any]:
    """LIMO's features and combined score for one chain text."""
    tokens = _WORD.findall(text.lower())
    words = max(1, len(tokens))
    features = {"elaborated": min(1.0, words / options.length_target_words)}
    hits = {}
    for family, pattern in patterns.items():
        hits[family] = len(pattern.findall(text))
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


def assess_chain(chain: Chain) -> dict[str, Any]:
    """Score and structural verdict of one chain (uses the options set by `assess_chains`)."""
    assert _OPTIONS is not None
    result = score_text(chain.text, _OPTIONS, _PATTERNS)
    result["final_answer"] = has_final_answer(chain)
    result["problem"] = structural_problem(chain, result, _OPTIONS)
    return result


def structural_problem(chain: Chain, result: dict[str, Any], options: QualityOptions) -> str | None:
    if options.drop_truncated and chain.truncated:
        return "truncated"
    if options.require_final_answer and not result["final_answer"]:
        return "no_final_answer"
    if result["repetition"] > options.max_repetition:
        return "repetition_loop"
    if result["score"] < options.min_score:
        return "quality_below_min"
    return None


def assess_chains(chains: list[Chain], options: QualityOptions) -> list[dict[str, Any]]:
    """`assess_chain` over ``chains`` (over ``options.workers`` processes), in order."""
    global _OPTIONS, _PATTERNS
    _OPTIONS = options
    _PATTERNS = {family: keyword_pattern(words) for family, words in options.keywords.items()}
    return map_chunks(assess_chain, chains, workers=options.workers, chunk_size=1024)


def run_quality(state: CurationState, options: QualityOptions) -> None:
    """Score every alive chain; drop those failing a structural check."""
    count = state.begin("quality", options.enabled)
    if not options.enabled:
        state.apply(count)
        return
    chains = list(state.chains.values())
    drops = {}
    for chain, result in zip(chains, assess_chains(chains, options), strict=True):
        problem = result.pop("problem")
        state.chain_notes[chain.id]["quality"] = result
        if problem:
            drops[chain.id] = (problem, {"score": result["score"], "repetition": result["repetition"]})
    state.apply(count, chains=drops)
