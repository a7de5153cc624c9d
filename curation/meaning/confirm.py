"""The confirmation rule of decontamination and dedup by meaning: similarity retrieves, the evidence decides.

**Embeddings see meaning, not numbers.** "How many 3-digit numbers are divisible by 11?" and "... by 7?" score
0.95, a paraphrase of the first 0.74. So similarity only retrieves; the rule (`confirm`) also asks that the pool
problem state the item's numbers (``min_numbers``) and share its math (``min_content``), or state its rare numbers
(``rare_threshold``, `NumberRarity`); the answer paths (`confirm_by_answer`, `confirm_by_score`) take an item whose
answer is the pool problem's gold; the gold veto (`gold_differs`) turns down a candidate whose gold the grader finds
different. A template sibling with other numbers is not the same problem; a paraphrase keeps the numbers. Every
match reports its evidence (`SemanticMatch`: shared numbers and words, the similarity, the path). The constants were
tuned on the paraphrase sets of ``bench/curation/semantic_decontam.py`` named in docs/performance.md, the held-out sets
measured after.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from curation.meaning.readings import (
    content_share,
    content_words,
    forget_readings,
    keep_texts,
    number_agreement,
    number_readings,
    stated_numbers,
    telling_answer,
)
from curation.options import SemanticDecontamOptions, SemanticOptions
from curation.similarity import answers_agree
from curation.similarity import forget_texts as forget_similarity_texts

MAX_EVIDENCE = 8  # shared numbers and words listed per match


class BenchmarkItem(Protocol):
    """A benchmark item as the semantic check reads it (`curation.stages.decontam.BenchmarkItem` is one)."""

    @property
    def benchmark(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def answer(self) -> str: ...


@dataclass(frozen=True)
class SemanticMatch:
    """A confirmed (or closest unconfirmed) pair and its evidence.

    Attributes:
        key: What the pool problem matched (a benchmark item as ``benchmark/id``, or a kept problem id).
        similarity: Cosine similarity of the two embeddings.
        numbers: Jaccard of the two texts' distinct numbers, number words on one side only not counted (1.0
            when neither states one).
        shared_numbers: Numbers both state (up to eight).
        shared_words: Content words both use (up to eight, longest first).
        swapped: Each text states a number the other does not (a template sibling's sign).
        content: `content_share` of the two texts.
        rare: How rare the shared numbers are (`NumberRarity`: summed inverse document frequency over the
            benchmark items; 0 without a rarity table).
        method: ``embedding`` (similarity, numbers and math), ``rare_numbers`` (similarity and the same rare
            numbers: `confirm`), ``same_answer`` (similarity, numbers and the item's answer as the pool
            problem's gold: `confirm_by_answer`), ``answer_score`` (the item's answer as the gold, and the
            evidence's `answer_score`: `confirm_by_score`) or ``judge`` (a model's same-problem verdict).
        answer: The answer both have, on the ``same_answer`` and ``answer_score`` paths.
        score: `answer_score`, on the ``answer_score`` path.
        gold_differs: The rule's first two paths confirmed the pair but the pool problem's gold is not the item's
            answer (`gold_differs`): a closest kept candidate, never a match.
    """

    key: str
    similarity: float
    numbers: float
    shared_numbers: tuple[str, ...]
    shared_words: tuple[str, ...]
    swapped: bool = False
    content: float = 1.0
    rare: float = 0.0
    method: str = "embedding"
    answer: str = ""
    score: float = 0.0
    gold_differs: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "method": self.method,
            "similarity": round(self.similarity, 3),
            "numbers": round(self.numbers, 3),
            "shared_numbers": list(self.shared_numbers),
            "shared_words": list(self.shared_words),
            "swapped_numbers": self.swapped,
            "content": round(self.content, 3),
            "rare_numbers": round(self.rare, 2),
            **({"same_answer": self.answer} if self.answer else {}),
            **({"answer_score": round(self.score, 2)} if self.method == "answer_score" else {}),
            **({"gold_differs": True} if self.gold_differs else {}),
        }


@dataclass(frozen=True, eq=False)  # hashed by identity: one table per item list (`number_rarity`), a cache key
class NumberRarity:
    """How rare each number is among the benchmark items, as an inverse document frequency.

    ``2`` or ``10`` appear in many items and say little; ``487`` and ``513`` together name one problem. Built
    from the items alone (`of`), so every shard task computes the same table without seeing the pool.
    """

    counts: Mapping[str, int]
    documents: int
    weights: dict[str, float] = dataclasses.field(default_factory=dict, repr=False)  # memo of `weight`

    @classmethod
    def of(cls, texts: Iterable[str]) -> NumberRarity:
        counts: Counter[str] = Counter()
        documents = 0
        for text in texts:
            counts.update(stated_numbers(text))
            documents += 1
        return cls(dict(counts), documents)

    def weight(self, number: str) -> float:
        found = self.weights.get(number)
        if found is None:
            found = self.weights[number] = math.log((self.documents + 1) / (self.counts.get(number, 0) + 1))
        return found

    def shared_weight(self, pool_text: str, item_text: str) -> float:
        """`agreement`'s first value alone (the rarity-weighted numbers both state), summed as it sums it."""
        return sum(map(self.weight, number_readings(pool_text, True)[0] & number_readings(item_text, True)[0]))

    def agreement(self, pool_text: str, item_text: str) -> tuple[float, float, float]:
        """``(shared weight, item recall, pool extra)``: the rarity-weighted numbers both state, the share of
        the item's digits the pool states, and the share of the pool's digits the item does not state
        (number words on one side only are not counted, as in `evidence`)."""
        (ours, pool_digits), (theirs, item_digits) = number_readings(pool_text, True), number_readings(item_text, True)
        shared = ours & theirs
        item_side = item_digits | shared
        total = sum(map(self.weight, shared))
        item_weight = sum(map(self.weight, item_side))
        extra_weight = sum(map(self.weight, pool_digits - theirs))
        pool_side = extra_weight + total
        return total, total / item_weight if item_weight else 0.0, extra_weight / pool_side if pool_side else 0.0


RARE_RECALL = 0.9  # `confirm`'s second path: the item's numbers the pool states, rarity-weighted
RARE_EXTRA = 0.1  # ... and the pool's own numbers the item does not state, at most
# The rarer the shared numbers, the less the wording must agree: the bar falls from ``rare_threshold`` by
# RARE_SLOPE per unit of rarity past ``min_rare``, to RARE_FLOOR (three numbers no other item states, ~17,
# need 0.6). On the tuning paraphrases and the clean rows it changed nothing (61 MATH500 flags at slopes 0 to
# 0.03); it is there for a rewording that changes many words around rare numbers ("GCD" for "greatest common
# divisor" scored 0.62 before abbreviations were spelled out).
RARE_SLOPE = 0.02
RARE_FLOOR = 0.6
# The first path needs this similarity (not ``threshold``) when the numbers both state are common ones (rarity
# below THIN_RARE: "2", "10", "40 degrees"): on the tuning rows 14 clean MATH-train flags against MATH500 at
# 0.7-0.8 had only such numbers, against 2 paraphrases (one-angle figure problems, "odd function" questions).
THIN_RARE = 3.0
THIN_THRESHOLD = 0.8
THIN_MIN_ITEMS = 100  # fewer benchmark items than this: no number can be told common from rare
# ... or, when the pool text states none of its own numbers and the rare ones it shares weigh this much (two
# numbers no other item states ~ 11), at this similarity: a paraphrase that leaves out the item's worked example
# or expansion (on the tuning paraphrases 2 more caught, no clean MATH-train row more flagged).
SUBSET_RARE = 9.0
SUBSET_SIMILARITY = 0.85


def _rare_bar(rare: float, options: SemanticOptions) -> float:
    """The similarity the rare-numbers path needs for shared numbers of rarity ``rare``."""
    return max(
        min(RARE_FLOOR, options.rare_threshold), options.rare_threshold - RARE_SLOPE * (rare - options.min_rare)
    )


def evidence(
    pool_text: str, other_text: str, similarity: float, key: str = "", rarity: NumberRarity | None = None
) -> SemanticMatch:
    """What the two texts share: their distinct numbers and content words.

    The numbers' agreement is a Jaccard in which a number *word* on one side only ("two seatings", "twice")
    does not count: prose says "one", "two" or "half" where a paraphrase need not (on the tuning paraphrases 2
    more caught, 8 more MATH-train flags against MATH500, none against AIME/AMC). A swap counts every number.
    The numbers are read with their units (a unit change keeps the quantity) or, when that agrees more and at
    least two numbers are shared, without them (a unit named on one side only: "6.5 centimeters" and 6.5).
    """
    return dataclasses.replace(_evidence(pool_text, other_text, key, rarity), similarity=float(similarity))


@functools.lru_cache(maxsize=1 << 12)
def _evidence(pool_text: str, other_text: str, key: str, rarity: NumberRarity | None) -> SemanticMatch:
    """`evidence` but the similarity, once per pair: the confirmation paths look at the same nearest items."""
    shared, numbers, swapped = number_agreement(pool_text, other_text)
    words = sorted(content_words(pool_text) & content_words(other_text), key=lambda w: (-len(w), w))
    return SemanticMatch(
        key,
        0.0,
        numbers,
        tuple(sorted(shared, key=lambda n: (len(n), n)))[:MAX_EVIDENCE],
        tuple(words[:MAX_EVIDENCE]),
        swapped,
        content_share(pool_text, other_text),
        rarity.agreement(pool_text, other_text)[0] if rarity else 0.0,
    )


def confirm(
    pool_text: str,
    item_text: str,
    similarity: float,
    options: SemanticOptions,
    key: str = "",
    rarity: NumberRarity | None = None,
) -> SemanticMatch | None:
    """The match when the rule confirms it, by either of two paths.

    - **Numbers and math** (method ``embedding``): similarity at ``threshold`` (`THIN_THRESHOLD` when the shared
      numbers are all common ones, by a ``rarity`` table of `THIN_MIN_ITEMS` items or more); the two texts'
      distinct numbers agree (Jaccard at least ``min_numbers``: 0.8 lets a paraphrase say "twice" or
      "$n = 2, \\dots, 7$" in a problem with several numbers) and no number is *swapped* — each text stating a
      number the other lacks — which marks a template sibling ("... divisible by 11?" vs "... by 7?"): never the
      same problem; and their math agrees (`content_share` at least ``min_content``): embeddings of
      formula-heavy problems are close whatever the formula.
    - **Rare numbers** (method ``rare_numbers``, with a ``rarity`` table): similarity at ``rare_threshold``
      (lower, down to `RARE_FLOOR`, as the shared numbers are rarer: `_rare_bar`), and
      the pool text states the item's numbers (rarity-weighted, at least `RARE_RECALL`) and few of its own
      (`RARE_EXTRA`) — or none of its own, at `SUBSET_SIMILARITY` with shared numbers as rare as
      `SUBSET_RARE` — and the shared numbers are rare (summed weight at least ``min_rare``). A paraphrase
      that says "the square of 513 minus the square of 487" fails the math test (prose has no formula) but
      keeps 513 and 487, which no other problem states together.
    """
    if similarity < min(options.threshold, _rare_bar(float("inf"), options) if rarity else options.threshold):
        return None
    match = evidence(pool_text, item_text, similarity, key, rarity)
    thin = rarity is not None and rarity.documents >= THIN_MIN_ITEMS and match.rare < THIN_RARE
    if (
        similarity >= (max(options.threshold, THIN_THRESHOLD) if thin else options.threshold)
        and not match.swapped
        and match.numbers >= options.min_numbers
        and match.content >= options.min_content
    ):
        return match
    if rarity is None or match.rare < options.min_rare or similarity < _rare_bar(match.rare, options):
        return None
    _, recall, extra = rarity.agreement(pool_text, item_text)
    states_the_item = recall >= RARE_RECALL and extra <= RARE_EXTRA
    within_the_item = extra == 0 and match.rare >= SUBSET_RARE and similarity >= SUBSET_SIMILARITY
    return dataclasses.replace(match, method="rare_numbers") if states_the_item or within_the_item else None


# `confirm_by_answer` looks at the nearest items up to this many, and only those within ANSWER_MARGIN of the
# nearest: a retold story is often about as near to a sibling item as to its own (on the tuning paraphrases 7
# more caught than with the nearest alone, 1 more clean MATH-train row flagged against MATH500).
ANSWER_CANDIDATES = 3
ANSWER_MARGIN = 0.05
# ... and needs this much less similarity when the two state exactly the same numbers: a story retold around the
# same numbers and the same answer ("six flowers from three kinds" for "six cookies of three kinds"; on the
# tuning paraphrases 3 more caught, no clean MATH-train row more flagged).
ANSWER_FLOOR_DROP = 0.1  # below ``answer_threshold``: 0.5 at the default 0.6


def forget_texts() -> None:
    """Empty the caches keyed by pool texts (numbers, content, evidence), here and in `curation.similarity`.

    They serve one problem's many looks (its numbers for each candidate item): the screen forgets them after each
    batch and the decontam stage after its last step, so a driver that runs the shard tasks itself holds at most a
    batch of texts, not the 16k-32k entries they are bounded by (60 MB at 20k problems)."""
    forget_readings()
    _evidence.cache_clear()
    forget_similarity_texts()


def confirm_by_answer(
    pool_text: str,
    pool_answer: str,
    item: BenchmarkItem,
    similarity: float,
    options: SemanticOptions,
    rarity: NumberRarity | None = None,
    nearest: bool = True,
) -> SemanticMatch | None:
    """The third path (method ``same_answer``), for a pool problem's nearest items only (`ANSWER_CANDIDATES`
    within `ANSWER_MARGIN` of the nearest, tried in order): similarity at
    ``answer_threshold`` (`ANSWER_FLOOR_DROP` less for the ``nearest`` item when the two state the same numbers), the
    numbers' agreement (`evidence`) at ``answer_min_numbers``, and the pool problem's
    gold equal to the item's answer (`curation.similarity.answers_agree`, the grader under its time limit),
    that answer telling (`telling_answer`).

    A retold story, a formula in words or a unit change fails the math test and may keep few rare numbers, but a
    paraphrase keeps its answer; another problem near it by meaning rarely has the same telling answer. On the
    four paraphrase sets used for tuning: 128 -> 152 of 170 caught; 0 clean MATH-train rows dropped as
    AIME/AMC and 2 more of 7,500 flagged against MATH500 (docs/performance.md).
    """
    floor = options.answer_threshold - ANSWER_FLOOR_DROP
    if not options.same_answer or similarity < floor or not telling_answer(item.answer, pool_text):
        return None
    match = evidence(pool_text, item.text, similarity, item_key(item), rarity)
    all_numbers = match.numbers >= 1.0 and not match.swapped
    if similarity < (floor if all_numbers and nearest else options.answer_threshold):
        return None
    if match.numbers < options.answer_min_numbers or not answers_agree(pool_answer, item.answer):
        return None
    return dataclasses.replace(match, method="same_answer", answer=item.answer)


# `answer_score`'s logistic model: log-odds that an item whose answer is the pool problem's gold is its source,
# from the evidence. Fitted by ``python bench/curation/fit_answer_score.py`` (sklearn's LogisticRegression, C=1,
# positives weighted 3) on the candidates with agreeing answers among the nearest three items of the six paraphrase
# sets' rows and of half the clean MATH-train rows (the other half never seen: docs/performance.md).
ANSWER_SCORE_WEIGHTS: dict[str, float] = {
    "bias": -4.924, "similarity": 1.805, "margin": 2.829, "nearest": 2.263, "numbers": 2.383, "swapped": -0.529,
    "content": 0.504, "rare": 0.965, "recall": -0.239, "extra": -0.88, "telling": 1.66,
}  # fmt: skip
ANSWER_SCORE_FEATURES = (
    "similarity", "margin", "nearest", "numbers", "swapped", "content", "rare", "recall", "extra", "telling",
)  # fmt: skip


def answer_features(
    pool_text: str, item: BenchmarkItem, match: SemanticMatch, margin: float, nearest: bool, rarity: NumberRarity
) -> dict[str, float]:
    """The evidence `answer_score` weighs, for a candidate ``item`` of ``pool_text`` (``match``: `evidence`):
    its similarity, its lead over the best other candidate (``margin``), whether it is the ``nearest``, the
    numbers' agreement and swap, the math in common, how rare the shared numbers are (log), the share of the
    item's numbers the pool states and of the pool's own, and whether the answer is telling."""
    _, recall, extra = rarity.agreement(pool_text, item.text)
    return {
        "similarity": match.similarity, "margin": margin, "nearest": float(nearest), "numbers": match.numbers,
        "swapped": float(match.swapped), "content": match.content, "rare": math.log1p(match.rare),
        "recall": recall, "extra": extra, "telling": float(telling_answer(item.answer, pool_text)),
    }  # fmt: skip


def answer_score(features: Mapping[str, float], weights: Mapping[str, float] = ANSWER_SCORE_WEIGHTS) -> float:
    """The log-odds of ``features`` (`answer_features`) under ``weights`` (the fitted `ANSWER_SCORE_WEIGHTS`)."""
    return weights["bias"] + sum(weights[name] * features[name] for name in ANSWER_SCORE_FEATURES)


def confirm_by_score(
    pool_text: str,
    pool_answer: str,
    items: Sequence[BenchmarkItem],
    similarities: np.ndarray,
    rows: np.ndarray,
    options: SemanticOptions,
    rarity: NumberRarity,
) -> SemanticMatch | None:
    """The fourth path (method ``answer_score``): among the nearest `ANSWER_CANDIDATES` items, the one with the
    highest `answer_score` at ``answer_min_score`` or more whose answer is the pool problem's gold
    (`curation.similarity.answers_agree`, asked only of candidates that score high enough).

    Where the same-answer path asks each piece of evidence to pass its own bar, this weighs them together: a
    retold story with a one-digit answer but the same rare numbers and a clear lead over every other item, or a
    formula told in words whose numbers half agree, can pass. Pools without golds never take it.
    """
    if not options.same_answer or not pool_answer or not len(rows):
        return None
    scored = []
    for rank, (similarity, row) in enumerate(
        zip(similarities[:ANSWER_CANDIDATES], rows[:ANSWER_CANDIDATES], strict=True)
    ):
        others = [float(s) for i, s in enumerate(similarities) if i != rank]
        item = items[row]
        match = evidence(pool_text, item.text, float(similarity), item_key(item), rarity)
        features = answer_features(
            pool_text, item, match, float(similarity) - max(others, default=0.0), rank == 0, rarity
        )
        score = answer_score(features)
        if score >= options.answer_min_score:
            scored.append((score, rank, match, item))
    for score, _, match, item in sorted(scored, key=lambda s: (-s[0], s[1])):
        if answers_agree(pool_answer, item.answer):
            return dataclasses.replace(match, method="answer_score", answer=item.answer, score=score)
    return None


def item_key(item: BenchmarkItem) -> str:
    """``benchmark/id``: how a match names its benchmark item."""
    return f"{item.benchmark}/{item.id}"


def gold_differs(gold: str, item: BenchmarkItem, options: SemanticOptions) -> bool:
    """Whether ``gold_must_agree`` keeps a pool problem from the item: both answers are known and the grader finds
    them different (`curation.similarity.answers_agree`). A paraphrase keeps its item's answer; a sibling with
    other numbers, the same figure asking something else, or another problem of the same form mostly does not
    (of 7,500 clean MATH-train rows 64 -> 24 flagged against MATH500, n-grams' 4 included; no paraphrase of the
    seven sets lost)."""
    if not isinstance(options, SemanticDecontamOptions) or not options.gold_must_agree:
        return False
    return bool(gold.strip() and item.answer.strip()) and not answers_agree(gold, item.answer)


def number_rarity(texts: Sequence[str]) -> NumberRarity:
    """The items' `NumberRarity`, once per process and item list (every part of the pool asks); their readings are
    kept from now on (`curation.meaning.readings.keep_texts`): every batch of pool problems is compared with them."""
    keep_texts(texts)
    return _rarity(tuple(texts))


@functools.lru_cache(maxsize=4)
def _rarity(texts: tuple[str, ...]) -> NumberRarity:
    return NumberRarity.of(texts)
