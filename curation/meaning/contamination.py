"""The entry points of decontamination and dedup by meaning.

- `find_semantic_contamination`: pool problems against benchmark items. The screen first
  (`curation.meaning.screen`: only problems the rule could confirm go on), then MiniLM, retrieval over every item
  and the rule (`_model_contamination`), as the options ask. Benchmark items' vectors are embedded once per model
  and code version (`curation.meaning.embedding.item_vectors`), the model loaded only when some problem reaches it.
  Per-problem results are frozen dataclasses (`curation.meaning.confirm.SemanticMatch`) in a `SemanticVerdicts`
  that a shard task can return and a reduce can merge: any part of the pool can be checked on its own.
- **Optional judge.** With ``confirmation: judge``, candidates the rule does not confirm but whose similarity
  reaches ``judge_threshold`` are asked "same problem?" through a generation backend
  (`eval.backends.generation.cached_generator`: resumable, replayable in tests).
- `find_semantic_duplicates`: near-duplicates within the pool, each problem against the earlier ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.meaning.confirm import (
    ANSWER_CANDIDATES,
    ANSWER_MARGIN,
    BenchmarkItem,
    NumberRarity,
    SemanticMatch,
    confirm,
    confirm_by_answer,
    confirm_by_score,
    evidence,
    gold_differs,
    item_key,
    number_rarity,
)
from curation.meaning.embedding import PRECISIONS, embed_texts, item_vectors
from curation.meaning.encoder import one_blas_thread
from curation.meaning.index import QUERY_BLOCK, SemanticIndex
from curation.meaning.readings import collection_paused
from curation.meaning.screen import ScreenIndex, screen
from curation.options import SemanticDecontamOptions, SemanticOptions
from curation.similarity import answers_agree
from eval.backends.base import GenerationRequest
from eval.options import OptionsError


def check_semantic(options: SemanticOptions, where: str, allowed: tuple[str, ...] = ("rule", "judge")) -> None:
    """Raise `eval.options.OptionsError` naming ``<where>.confirmation`` when it is not one of ``allowed``, or
    ``<where>.precision`` when it is not one of `PRECISIONS`."""
    if options.confirmation not in allowed:
        expected = " or ".join(repr(a) for a in allowed)
        raise OptionsError(f"{where}.confirmation: {options.confirmation!r}: expected {expected}")
    if options.precision not in PRECISIONS:
        expected = " or ".join(repr(a) for a in PRECISIONS)
        raise OptionsError(f"{where}.precision: {options.precision!r}: expected {expected}")


@dataclass
class SemanticVerdicts:
    """Per pool problem: its confirmed match, or its closest candidate that was not confirmed; and, when a screen
    ran (`curation.meaning.screen`), the problems it sent to the model with the path that could confirm each (the
    others were never embedded by the model, so they have no closest candidate)."""

    matches: dict[str, SemanticMatch]
    closest: dict[str, SemanticMatch]
    screened: dict[str, str] | None = None


def _model_contamination(
    texts: Mapping[str, str],
    items: Sequence[BenchmarkItem],
    options: SemanticOptions,
    index: SemanticIndex | None = None,
    judge: Callable[[list[tuple[str, str]]], list[bool]] | None = None,
    answers: Mapping[str, str] | None = None,
) -> SemanticVerdicts:
    """Match each pool problem (any part of the pool) against the benchmark items by meaning, every one through
    the model: no screen (`find_semantic_contamination` screens first, as the options ask).

    Args:
        texts: Pool problems by id.
        items: Benchmark items (the index rows, in order).
        options: Model, threshold, numbers, k, batch size, confirmation, screen.
        index: The items' index when the caller built it once for all shards (None: built here, when some
            problem reaches the model).
        judge: ``[(pool text, item text)] -> [same problem?]`` for ``confirmation: judge`` (`judge_pairs`).
        answers: Pool problems' golds by id, for `confirm_by_answer` (a problem without one never takes it).
    """
    check_semantic(options, "curate.stages.decontam.semantic")
    rarity = number_rarity([i.text for i in items])
    verdicts = SemanticVerdicts({}, {})
    if not texts:  # the model is never loaded
        return verdicts
    index = index or SemanticIndex.build([item_key(i) for i in items], item_vectors([i.text for i in items], options))
    ids = list(texts)
    for start in range(0, len(ids), max(1, options.batch_size)):
        part = ids[start : start + options.batch_size]
        with one_blas_thread():  # the model's small products, and a batch against the few benchmark items
            similarities, rows = index.nearest(embed_texts([texts[p] for p in part], options), options.k)
        with collection_paused():
            asked = [
                _decide(texts[p], (answers or {}).get(p, ""), items, s, r, options, verdicts, p, rarity)
                for p, s, r in zip(part, similarities, rows, strict=True)
            ]
        _ask_judge([a for a in asked if a is not None], texts, items, judge, verdicts)
    return verdicts


def uses_screen(options: SemanticOptions) -> bool:
    """Whether decontamination screens the pool first: a ``screen`` model is named and the rule decides (a judge's
    candidates are chosen by the model's similarity, which only the model gives)."""
    return isinstance(options, SemanticDecontamOptions) and options.screen != "none" and options.confirmation == "rule"


def _decide(
    text: str, answer: str, items: Sequence[BenchmarkItem], similarities: np.ndarray, rows: np.ndarray,
    options: SemanticOptions, verdicts: SemanticVerdicts, pid: str, rarity: NumberRarity | None = None,
) -> tuple[str, int, float] | None:  # fmt: skip
    """Record the best confirmed match or the closest candidate; returns a (pid, row, similarity) for the judge."""
    vetoed = set()
    for similarity, row in zip(similarities, rows, strict=True):
        match = confirm(text, items[row].text, float(similarity), options, item_key(items[row]), rarity)
        if match is not None and gold_differs(answer, items[row], options):
            vetoed.add(int(row))
        elif match is not None:
            verdicts.matches[pid] = match
            return None
    candidates = zip(similarities[:ANSWER_CANDIDATES], rows[:ANSWER_CANDIDATES], strict=True)
    for rank, (similarity, row) in enumerate(candidates):
        if not answer or similarity < similarities[0] - ANSWER_MARGIN:
            break
        match = confirm_by_answer(text, answer, items[row], float(similarity), options, rarity, rank == 0)
        if match is not None:
            verdicts.matches[pid] = match
            return None
    match = confirm_by_score(text, answer, items, similarities, rows, options, rarity) if rarity else None
    if match is not None:
        verdicts.matches[pid] = match
        return None
    if len(rows):
        nearest = items[rows[0]]
        match = evidence(text, nearest.text, float(similarities[0]), item_key(nearest), rarity)
        verdicts.closest[pid] = dataclasses.replace(match, gold_differs=int(rows[0]) in vetoed)
        if options.confirmation == "judge" and similarities[0] >= options.judge_threshold:
            return pid, int(rows[0]), float(similarities[0])
    return None


def _ask_judge(
    asked: list[tuple[str, int, float]],
    texts: Mapping[str, str],
    items: Sequence[BenchmarkItem],
    judge: Callable[[list[tuple[str, str]]], list[bool]] | None,
    verdicts: SemanticVerdicts,
) -> None:
    if not asked:
        return
    if judge is None:
        raise ValueError("semantic: confirmation is 'judge' but no judge generator was given")
    same = judge([(texts[pid], items[row].text) for pid, row, _ in asked])
    for (pid, _, _), yes in zip(asked, same, strict=True):
        if yes:
            match = verdicts.closest.pop(pid)
            verdicts.matches[pid] = dataclasses.replace(match, method="judge")


JUDGE_PROMPT = (
    "Are these two math problems the same problem, i.e. the same question with the same given values, so that "
    "they have the same answer (wording, variable names and units may differ)?\n\nProblem A:\n{a}\n\nProblem B:\n{b}"
    "\n\nAnswer with one word: yes or no."
)


def judge_request_id(a: str, b: str) -> str:
    """A stable request id for the pair (what the judge's cache and a replay file are keyed by)."""
    return "same-problem/" + hashlib.blake2b(f"{a}\x00{b}".encode(), digest_size=8).hexdigest()


def judge_pairs(generator: Any, options: SemanticOptions) -> Callable[[list[tuple[str, str]]], list[bool]]:
    """A judge for `_model_contamination`: ``generator`` (a `eval.backends.generation.CachedGenerator`) answers."""
    sampling = options.judge.sampling()

    def ask(pairs: list[tuple[str, str]]) -> list[bool]:
        requests = [
            GenerationRequest(
                judge_request_id(a, b), ({"role": "user", "content": JUDGE_PROMPT.format(a=a, b=b)},), sampling
            )
            for a, b in pairs
        ]
        return [_says_yes(g.text) for g in generator.generate(requests)]

    return ask


def _says_yes(reply: str) -> bool:
    words = re.findall(r"[a-z]+", reply.lower())
    return bool(words) and words[-1] == "yes" or (bool(words) and words[0] == "yes")


def find_semantic_duplicates(
    ids: Sequence[str],
    texts: Mapping[str, str],
    options: SemanticOptions,
    vectors: np.ndarray | None = None,
    answers: Mapping[str, str] | None = None,
) -> dict[str, SemanticMatch]:
    """Pool problems that say the same as an earlier kept one (pool order decides, as in `curation.dedup`).

    Each problem's ``k`` nearest neighbours come from an index over the whole pool; a problem is dropped
    when the rule confirms it against an earlier neighbour that was kept and, where ``answers`` gives both
    golds, the golds agree (`curation.similarity.answers_agree`: another answer is another problem). The match's
    key names the kept id.
    """
    check_semantic(options, "curate.stages.dedup.semantic", ("rule",))
    vectors = embed_texts([texts[i] for i in ids], options) if vectors is None else vectors
    index = SemanticIndex.build(ids, vectors)
    dropped: dict[str, SemanticMatch] = {}
    for start in range(0, len(ids), QUERY_BLOCK):
        similarities, rows = index.nearest(vectors[start : start + QUERY_BLOCK], options.k + 1)
        for offset, (sims, near) in enumerate(zip(similarities, rows, strict=True)):
            earlier = [(float(s), ids[r]) for s, r in zip(sims, near, strict=True) if r < start + offset]
            match = _first_duplicate(ids[start + offset], earlier, texts, options, answers or {}, dropped)
            if match is not None:
                dropped[ids[start + offset]] = match
    return dropped


def _first_duplicate(
    pid: str,
    earlier: list[tuple[float, str]],
    texts: Mapping[str, str],
    options: SemanticOptions,
    answers: Mapping[str, str],
    dropped: Mapping[str, SemanticMatch],
) -> SemanticMatch | None:
    for similarity, other in earlier:
        if other in dropped:
            continue
        match = confirm(texts[pid], texts[other], similarity, options, other)
        if match is None:
            continue
        if pid in answers and other in answers and not answers_agree(answers[pid], answers[other]):
            continue
        return match
    return None


def find_semantic_contamination(
    texts: Mapping[str, str],
    items: Sequence[BenchmarkItem],
    options: SemanticOptions,
    index: SemanticIndex | None = None,
    judge: Callable[[list[tuple[str, str]]], list[bool]] | None = None,
    answers: Mapping[str, str] | None = None,
    screened: bool = False,
) -> SemanticVerdicts:
    """Match each pool problem against the benchmark items by meaning: the options' ``screen`` first
    (`uses_screen`), then `_model_contamination` on the problems it passed.

    Args:
        texts, items, options, index, judge, answers: As `_model_contamination` takes them.
        screened: ``texts`` already passed the screen (the stage screens in a job of its own): the model alone.
    """
    check_semantic(options, "curate.stages.decontam.semantic")
    if screened or not uses_screen(options):
        return _model_contamination(texts, items, options, index, judge, answers)
    assert isinstance(options, SemanticDecontamOptions)  # uses_screen: only decontamination screens
    rarity = number_rarity([i.text for i in items])
    passed = screen(texts, answers or {}, items, ScreenIndex.build(items, options), options, rarity)
    kept = {pid: text for pid, text in texts.items() if pid in passed}
    verdicts = _model_contamination(kept, items, options, index, judge, answers)
    verdicts.screened = passed
    return verdicts
