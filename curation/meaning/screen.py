"""The cheap first step of decontamination by meaning: which pool problems could the rule confirm at all?

Decontamination's model (``minilm``) costs several ms a problem on one core, more than ten times the n-gram
stage. But the rule (`curation.meaning.confirm`: `confirm`, `confirm_by_answer`, `confirm_by_score`)
asks more of a candidate than similarity: the numbers the two state, their math, how rare the shared numbers are,
whether the item's answer is the problem's gold. That evidence is computed here exactly as the rule computes it, for
a short list of items per problem, with the similarity taken at its best; a problem goes on to the model only when
some item on its list could then be confirmed. The model's decisions on those are the unscreened ones (retrieval
over every item, the same rule), so a screened run drops a subset of what an unscreened one drops: never a row more.

- **The short list** (`could_confirm`): the ``screen`` model's (``wordllama``, about 0.15 ms a problem) `SCREEN_K`
  nearest items, checked for the rule's first two paths (numbers and math; rare numbers) and its gold veto
  (`gold_differs`, the grader's verdict as the rule asks it); and the items whose
  answer has the gold's `curation.similarity.answer_key` (a retold story is often far from its item by wordllama
  but keeps the answer), checked for the two answer paths (same answer; answer score, given `SCORE_MARGIN` over
  the other items and the rank of the nearest) when they are among the `ANSWER_RANK` nearest, or at any rank for
  the answer score alone when it reaches `STRONG_SCORE` with shared numbers as rare as `STRONG_RARE`.
- **Cheapest first.** A pair's numbers (two cached readings per text) decide most pairs; the math in common (an
  LCS) is read only where the numbers leave a path open.
- **Calibration.** `SCREEN_K`, `ANSWER_RANK`, `STRONG_SCORE`, `STRONG_RARE` and `SCORE_MARGIN` were chosen on
  ``bench/curation/semantic_decontam.py``'s pool: paraphrase sets 1-6 and the MATH-train rows of one hash half, against
  the unscreened decisions; set 7 and the other half were measured after (docs/performance-history.md,
  "Meaning-level decontamination on by default").
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.meaning.confirm import (
    ANSWER_SCORE_WEIGHTS,
    RARE_EXTRA,
    RARE_RECALL,
    SUBSET_RARE,
    BenchmarkItem,
    NumberRarity,
    SemanticMatch,
    answer_features,
    answer_score,
    forget_texts,
    gold_differs,
    item_key,
)
from curation.meaning.embedding import cached_vectors, load_embedder
from curation.meaning.encoder import one_blas_thread
from curation.meaning.index import cosines, normalised, top_columns
from curation.meaning.readings import (
    both_number_readings,
    collection_paused,
    content_share,
    number_agreement,
    statement,
    telling_answer,
)
from curation.options import SemanticDecontamOptions
from curation.similarity import answer_key

SCREEN_K = 5  # items nearest by the screen model, checked for the rule's first two paths
ANSWER_RANK = 20  # items with the gold's answer this near by the screen model, checked for the answer paths ...
STRONG_SCORE = 4.0  # ... or at any rank, for the answer score, when it reaches this (similarity 1: ~98%) ...
STRONG_RARE = 4.0  # ... and the numbers the two share weigh this much (`curation.meaning.confirm.NumberRarity`)
SCORE_MARGIN = 0.05  # the lead over the other items an answer score is given
BATCH = 4096  # problems embedded and checked at a time (the items' cached readings are forgotten after each)
_BEST_CONTENT = 1.0 if ANSWER_SCORE_WEIGHTS["content"] >= 0 else 0.0  # the math in common that scores highest


@dataclass(frozen=True)
class ScreenIndex:
    """What the screen reads of the benchmark items: their screen-model vectors, and their rows by answer key."""

    vectors: np.ndarray
    by_answer: Mapping[str, tuple[int, ...]]

    @classmethod
    def build(cls, items: Sequence[BenchmarkItem], options: SemanticDecontamOptions) -> ScreenIndex:
        rows: defaultdict[str, list[int]] = defaultdict(list)
        for row, item in enumerate(items):
            if item.answer.strip():
                rows[answer_key(item.answer)].append(row)
        prepared = [statement(i.text) for i in items]
        # keyed apart from the model's vectors of the same texts, and by this module's code (`screen_vectors`)
        key = f"screen:{options.screen}:{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]}"
        vectors = cached_vectors(key, prepared, lambda: screen_vectors([i.text for i in items], options))
        return cls(vectors, {k: tuple(found) for k, found in rows.items()})


def screen_vectors(texts: Sequence[str], options: SemanticDecontamOptions) -> np.ndarray:
    """The screen model's unit vectors of ``texts`` as written (`statement`: a figure read by its labels), not as
    `embedding_text` prepares them for the model: reading the formulas out costs a third of the screen and
    shortlisted no better on the tuning rows."""
    if not texts:
        return np.zeros((0, 1), np.float32)
    return normalised(np.asarray(load_embedder(options.screen)([statement(t) for t in texts]), np.float32))


def screen(
    texts: Mapping[str, str],
    answers: Mapping[str, str],
    items: Sequence[BenchmarkItem],
    index: ScreenIndex,
    options: SemanticDecontamOptions,
    rarity: NumberRarity,
) -> dict[str, str]:
    """The pool problems (by id) that some item could be confirmed for, each with the rule's path that could
    confirm it (``embedding``, ``rare_numbers``, ``same_answer`` or ``answer_score``: `could_confirm`)."""
    ids = list(texts) if items else []  # no benchmark item: nothing can be confirmed, nothing passes
    passed: dict[str, str] = {}
    for start in range(0, len(ids), BATCH):
        part = ids[start : start + BATCH]
        with one_blas_thread():  # a batch against the few benchmark items: threads cost more than they save
            similarities = cosines(screen_vectors([texts[p] for p in part], options), index.vectors)
        # the batch's short lists and answer-rank cuts at once (each row's as alone: `top_columns` is a total order)
        ranks = zip(top_columns(similarities, SCREEN_K), _near_cuts(similarities), strict=True)
        with collection_paused():
            for pid, row, rank in zip(part, similarities, ranks, strict=True):
                path = could_confirm(texts[pid], answers.get(pid, ""), items, row, index, options, rarity, rank)
                if path:
                    passed[pid] = path
        forget_texts()  # the batch's texts are done with: a pool's many problems are not all held
    return passed


def could_confirm(
    text: str,
    gold: str,
    items: Sequence[BenchmarkItem],
    similarities: np.ndarray,
    index: ScreenIndex,
    options: SemanticDecontamOptions,
    rarity: NumberRarity,
    ranks: tuple[np.ndarray, float] | None = None,
) -> str | None:
    """The first of the rule's paths that could confirm an item on ``text``'s short list (the module docstring),
    or None. ``similarities``: the screen model's, to every item; ``ranks``: its `SCREEN_K` nearest items and
    `_near_cuts` where `screen` computed them for a batch (None: computed here)."""
    numbers_needed = options.min_numbers > 0 and options.min_rare > 0  # then neither rule path opens without them
    nearest, near_cut = ranks or (top_columns(similarities[None], SCREEN_K)[0], _near_cuts(similarities[None])[0])
    ours = both_number_readings(text)  # read once for the items below
    for row in nearest:
        if (not numbers_needed or _shares_numbers(ours, items[row].text)) and (
            path := _rule_path(text, items[row].text, options, rarity)
        ):
            if not gold_differs(gold, items[row], options):  # the rule's own veto, checked as it checks it
                return path
    rows = index.by_answer.get(answer_key(gold), ()) if options.same_answer and gold.strip() else ()
    if not rows:
        return None
    for row in rows:  # beyond the answer rank, `_answer_path` asks for rare shared numbers first: some are shared
        if path := _answer_path(text, items[row], bool(similarities[row] >= near_cut), options, rarity):
            return path
    return None


def _near_cuts(similarities: np.ndarray) -> np.ndarray:
    """Each row's `ANSWER_RANK`-th highest similarity (-inf where there are no more items than that): an item at
    least as similar is near."""
    if similarities.shape[1] <= ANSWER_RANK:
        return np.full(len(similarities), -np.inf)
    return np.partition(similarities, -ANSWER_RANK, axis=1)[:, -ANSWER_RANK]


def _shares_numbers(readings: tuple[tuple[frozenset[str], frozenset[str]], ...], item_text: str) -> bool:
    """Whether a text of these `both_number_readings` and the item share a number in either reading (with units or
    without), or neither states a digit in one of them: otherwise `curation.meaning.confirm.evidence` reads no number
    in common (Jaccard 0) and no rare ones."""
    pairs = zip(readings, both_number_readings(item_text), strict=True)
    for (ours, our_digits), (theirs, their_digits) in pairs:
        if not ours.isdisjoint(theirs) or not (our_digits or their_digits):
            return True
    return False


def _rule_path(text: str, item_text: str, options: SemanticDecontamOptions, rarity: NumberRarity) -> str | None:
    """`confirm`'s two paths with their similarity bars dropped, nothing else."""
    if rarity.shared_weight(text, item_text) >= options.min_rare:  # what the second path asks first
        rare, recall, extra = rarity.agreement(text, item_text)
        if (recall >= RARE_RECALL and extra <= RARE_EXTRA) or (extra == 0 and rare >= SUBSET_RARE):
            return "rare_numbers"
    _, numbers, swapped = number_agreement(text, item_text)
    if not swapped and numbers >= options.min_numbers and content_share(text, item_text) >= options.min_content:
        return "embedding"
    return None


def _answer_path(
    text: str, item: BenchmarkItem, near: bool, options: SemanticDecontamOptions, rarity: NumberRarity
) -> str | None:
    """The answer paths (`confirm_by_answer`, `confirm_by_score`) for an item whose answer key is the gold's, with
    similarity 1, the item the nearest and `SCORE_MARGIN` ahead: the same answer for an item ``near`` by the screen
    model; the answer score for one near, or at any rank when it reaches `STRONG_SCORE` with shared numbers as rare
    as `STRONG_RARE`."""
    if not near and rarity.shared_weight(text, item.text) < STRONG_RARE:
        return None  # the one path left at this rank needs rare shared numbers: nothing else is worth reading
    _, numbers, swapped = number_agreement(text, item.text)
    if near and telling_answer(item.answer, text) and numbers >= options.answer_min_numbers:
        return "same_answer"
    rare = rarity.agreement(text, item.text)[0]
    bar = options.answer_min_score if near else max(options.answer_min_score, STRONG_SCORE)
    match = SemanticMatch(item_key(item), 1.0, numbers, (), (), swapped, _BEST_CONTENT, rare)
    if answer_score(answer_features(text, item, match, SCORE_MARGIN, True, rarity)) < bar:
        return None  # not even with the math at its best: the LCS is not worth reading
    match = dataclasses.replace(match, content=content_share(text, item.text))
    score = answer_score(answer_features(text, item, match, SCORE_MARGIN, True, rarity))
    return "answer_score" if score >= bar else None
