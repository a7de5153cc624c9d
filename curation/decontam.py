"""Decontaminate: drop pool problems that overlap a benchmark, recording which benchmark item they hit.

Texts are normalised as in dedup (NFKC, lower case, non-alphanumerics to spaces, so ``$\\sqrt{242}$`` and
``√242``-free rewrites compare on their words). Two ways to match, chosen by length:

- Word n-grams (``ngram``, 8 by default as in s1 and open-r1): a pool problem is contaminated when it shares
  at least ``min_matches`` word 8-grams with one benchmark item.
- Character n-grams for short texts: when the pool problem *or* the benchmark item has fewer than
  ``ngram`` words (``Simplify $\\sqrt{242}$.`` has three), both are compared as character ``char_ngram``-grams
  of the normalised text with spaces removed. They match when the shared grams cover at least
  ``short_containment`` of the smaller text's grams, so a short problem embedded in a longer rewording
  still matches, while two long texts never match on characters alone.

The index is built once per run; matching is a pure per-problem function (sharded by `map_chunks`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curation.dedup import normalize_text
from curation.funnel import CurationState
from curation.options import DecontamOptions
from curation.sharding import map_chunks
from eval.benchmarks import BenchmarkSpec, load_benchmark
from eval.records import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str
    id: str
    text: str


@dataclass(frozen=True)
class Contamination:
    """A pool problem's match: the benchmark item and how it matched."""

    benchmark: str
    item_id: str
    method: str  # "word_ngram" or "char_ngram"
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "item_id": self.item_id, "method": self.method, "score": self.score}


def word_ngrams(normalized: str, n: int) -> set[str]:
    words = normalized.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def char_ngrams(normalized: str, n: int) -> set[str]:
    """Character n-grams of a normalised text without spaces; a text shorter than n is one gram."""
    squeezed = normalized.replace(" ", "")
    if len(squeezed) <= n:
        return {squeezed} if squeezed else set()
    return {squeezed[i : i + n] for i in range(len(squeezed) - n + 1)}


@dataclass
class ContaminationIndex:
    """Word and character n-gram indices over benchmark items."""

    items: list[BenchmarkItem]
    ngram: int = 8
    char_ngram: int = 8
    min_matches: int = 1
    short_containment: float = 0.6
    short_words: int = 8
    words: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    chars_all: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    chars_short: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    char_weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        char_sets: list[set[str]] = []
        for index, item in enumerate(self.items):
            normalized = normalize_text(item.text)
            for gram in word_ngrams(normalized, self.ngram):
                self.words[gram].append(index)
            grams = char_ngrams(normalized, self.char_ngram)
            char_sets.append(grams)
            short = len(normalized.split()) < self.short_words
            for gram in grams:
                self.chars_all[gram].append(index)
                if short:
                    self.chars_short[gram].append(index)
        self.char_weights = [sum(self.gram_weight(g) for g in grams) for grams in char_sets]

    def match(self, text: str) -> Contamination | None:
        """The best benchmark match of ``text``, or None when it is clean."""
        normalized = normalize_text(text)
        if len(normalized.split()) >= self.short_words:
            hit = self._word_match(normalized)
            if hit:
                return hit
            return self._char_match(normalized, self.chars_short) if self.chars_short else None
        return self._char_match(normalized, self.chars_all)

    def _word_match(self, normalized: str) -> Contamination | None:
        hits: Counter[int] = Counter()
        for gram in word_ngrams(normalized, self.ngram):
            hits.update(self.words.get(gram, ()))
        if not hits:
            return None
        index, shared = min(hits.items(), key=lambda kv: (-kv[1], kv[0]))
        if shared < self.min_matches:
            return None
        return Contamination(self.items[index].benchmark, self.items[index].id, "word_ngram", float(shared))

    def _char_match(self, normalized: str, index_map: Mapping[str, list[int]]) -> Contamination | None:
        grams = char_ngrams(normalized, self.char_ngram)
        hits: dict[int, float] = defaultdict(float)
        for gram in grams:
            for index in index_map.get(gram, ()):
                hits[index] += self.gram_weight(gram)
        query_weight = sum(self.gram_weight(g) for g in grams)
        best: tuple[float, int] | None = None
        for index in sorted(hits):
            coverage = hits[index] / max(1e-9, min(query_weight, self.char_weights[index]))
            if coverage >= self.short_containment and (best is None or coverage > best[0]):
                best = (coverage, index)
        if best is None:
            return None
        item = self.items[best[1]]
        return Contamination(item.benchmark, item.id, "char_ngram", round(best[0], 4))

    def gram_weight(self, gram: str) -> float:
        """Inverse document frequency over benchmark items: phrases every problem uses count little."""
        return math.log((1 + len(self.items)) / (1 + len(self.chars_all.get(gram, ()))))


def build_index(items: Sequence[BenchmarkItem], options: DecontamOptions) -> ContaminationIndex:
    return ContaminationIndex(
        list(items),
        options.ngram,
        options.char_ngram,
        options.min_matches,
        options.short_containment,
        options.short_words,
    )


def load_benchmark_items(
    names: Sequence[str], specs: Mapping[str, BenchmarkSpec], options: DecontamOptions
) -> tuple[list[BenchmarkItem], dict[str, Any]]:
    """Load the named benchmarks; returns their items and, per benchmark, its checksum or why it was skipped.

    Raises:
        DataError: A benchmark is unknown, or cannot be loaded and ``options.missing`` is ``error``.
    """
    items: list[BenchmarkItem] = []
    loaded: dict[str, Any] = {}
    for name in names:
        if name not in specs:
            raise DataError(f"decontam: unknown benchmark {name!r} (known: {', '.join(sorted(specs))})")
        try:
            benchmark = load_benchmark(specs[name], data_dir=options.data_dir)
        except DataError as err:
            if options.missing != "warn":
                raise
            log.warning("decontam: benchmark %s skipped: %s", name, err)
            loaded[name] = {"skipped": str(err)}
            continue
        items.extend(BenchmarkItem(name, p.id, p.problem) for p in benchmark.problems)
        loaded[name] = {"source": benchmark.source, "checksum": benchmark.checksum, "items": len(benchmark.problems)}
    return items, loaded


_INDEX: ContaminationIndex | None = None  # installed in every worker by `_set_index`


def _set_index(index: ContaminationIndex) -> None:
    global _INDEX
    _INDEX = index


def _match_one(text: str) -> Contamination | None:
    assert _INDEX is not None
    return _INDEX.match(text)


def find_contamination(
    texts: Mapping[str, str], index: ContaminationIndex, workers: int = 1
) -> dict[str, Contamination]:
    """Map each contaminated problem id to its match."""
    ids = list(texts)
    matches = map_chunks(
        _match_one, [texts[i] for i in ids], workers=workers, chunk_size=512, setup=_set_index, setup_args=(index,)
    )
    return {pid: m for pid, m in zip(ids, matches, strict=True) if m is not None}


def run_decontam(
    state: CurationState, options: DecontamOptions, specs: Mapping[str, BenchmarkSpec], workers: int = 1
) -> None:
    """Drop problems that match any benchmark item (reason ``contaminated:<benchmark>``)."""
    count = state.begin("decontam", options.enabled)
    if not options.enabled or not options.benchmarks:
        state.apply(count)
        return
    items, loaded = load_benchmark_items(options.benchmarks, specs, options)
    state.manifest["benchmarks"] = loaded
    index = build_index(items, options)
    hits = find_contamination({pid: p.problem for pid, p in state.problems.items()}, index, workers)
    problems = {}
    for pid, hit in hits.items():
        state.problem_notes[pid]["decontam"] = hit.to_dict()
        problems[pid] = (f"contaminated:{hit.benchmark}", hit.to_dict())
    count.notes = {"benchmarks": {n: v.get("items", 0) for n, v in loaded.items()}, "index_items": len(items)}
    state.apply(count, problems=problems)
