r"""Decontaminate: drop pool problems that reproduce a benchmark item, and say why for each one.

Two steps, so that shared phrasing never drops a clean problem on its own:

1. **Candidates from n-grams.** Texts are normalised as in dedup (NFKC, lower case, non-alphanumerics to
   spaces). A pool problem becomes a candidate for a benchmark item when their shared word ``ngram``-grams
   weigh at least ``min_matches``. Each shared n-gram weighs ``min(1, boilerplate_docs / df)``, where
   ``df`` counts the benchmark items *and* pool problems that contain it: boilerplate that many problems
   share ("m and n are relatively prime positive integers find m n") counts for little, while an n-gram
   only the item and its copy share counts 1. The n-grams are 5 words, not the 8 of s1 / open-r1: they
   only nominate, so they must survive a reworded copy (two swapped verbs leave a 20-word problem no
   intact 8-gram). Items shorter than ``short_words`` words (``Simplify $\sqrt{242}$.``) are also
   matched on character ``char_ngram``-grams: of the normalised text (IDF-weighted containment of the
   shorter text, at least ``short_containment``), and of the item's formula — its content tokens with
   operators kept — inside the pool text, so "Evaluate $(1+2i)6-3i$." is found in "Work out (1+2i)6-3i."
   though the verb was most of its letters.
2. **Confirmation on the whole problem** (`curation.similarity`): a candidate is dropped only when the
   pool problem reproduces the item — `aligned_similarity` at least ``min_similarity`` (IDF-weighted
   words, a prefix or suffix free, insertions charged) — *and* keeps its content: `content_agreement`
   (the item's math, numbers, negations, in order) at least ``min_content``. That second test is what
   separates a reworded copy from a template sibling ("5 balls in 2 boxes" vs "... in 3 boxes";
   CHAMP's ``P_Combinatorics_11`` shares its definition sentence with ``P_Combinatorics_29`` and nothing
   else).

Every drop records the benchmark item, the method, the weighted n-gram evidence, up to five matched
n-grams (rarest first), the similarity and the content agreement; the stage notes count the candidates
that were not confirmed and list the closest of them and the most frequent boilerplate n-grams
(``funnel.json``), so a user can audit both thresholds. Word weights (IDF) come from the benchmark items and the
pool (a seeded sample of ``idf_sample`` problems when it is larger). Measured recall and false positives
are in docs/curation.md (and `bench/curation/decontam.py`).

Scanning and confirming are pure per-problem functions over a read-only index (sharded by `map_chunks`);
document frequencies are summed in between, in the parent.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import pkgutil
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation import meaning
from curation.meaning.confirm import forget_texts, item_key, number_rarity
from curation.meaning.contamination import check_semantic, find_semantic_contamination, judge_pairs, uses_screen
from curation.meaning.embedding import item_vectors
from curation.meaning.index import SemanticIndex
from curation.meaning.readings import keep_texts
from curation.meaning.screen import BATCH as SCREEN_BATCH
from curation.meaning.screen import ScreenIndex, screen
from curation.options import (
    DecontamOptions,
    SemanticDecontamOptions,
    StageOptions,
)
from curation.runner import (
    RunState,
    StageContext,
    alive_rows,
    items_run,
    load_context,
    options_dict,
    rows_of,
    run_items,
    run_parts,
    source_digest,
    write_context,
    write_rows_file,
)
from curation.schema import Chain
from curation.similarity import aligned_similarity, content_agreement, content_tokens, text_tokens
from curation.stages.base import StepStage
from curation.stages.dedup import (
    normalize_text,
)
from eval.backends.generation import cached_generator
from eval.benchmarks.loader import Benchmark, BenchmarkSpec, HubOfflineError, announce_fallbacks, load_benchmark
from eval.options import to_options
from eval.problem import Problem
from eval.records import DataError

log = logging.getLogger(__name__)


MAX_REPORTED_NGRAMS = 5


MAX_LISTED = 20  # near misses and boilerplate n-grams listed in the stage notes
# the screen's cached results are keyed by the code of every module of decontamination by meaning
MEANING_MODULES = tuple(f"curation.meaning.{m.name}" for m in pkgutil.iter_modules(meaning.__path__))


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str
    id: str
    text: str
    answer: str = ""


@dataclass(frozen=True)
class Contamination:
    """A pool problem's match with one benchmark item, and the evidence for it.

    Attributes:
        method: ``word_ngram``, ``char_ngram`` or ``formula_ngram`` (how the candidate was found).
        evidence: Weighted shared word n-grams, or the character containment of the other two methods.
        ngrams: Up to five shared n-grams, rarest first.
        similarity: `curation.similarity.aligned_similarity` of the whole problems.
        content: `curation.similarity.content_agreement` (1.0: all the item's content, in order).
    """

    benchmark: str
    item_id: str
    method: str
    evidence: float
    ngrams: tuple[str, ...]
    similarity: float
    content: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "item_id": self.item_id,
            "method": self.method,
            "evidence": round(self.evidence, 3),
            "ngrams": list(self.ngrams),
            "similarity": round(self.similarity, 3),
            "content": round(self.content, 3),
        }


@dataclass(frozen=True)
class Candidate:
    item: int
    method: str
    evidence: float
    ngrams: tuple[str, ...]


@dataclass(frozen=True)
class Scan:
    """What one pool problem shares with the index: word n-gram ids, and short-text character matches."""

    grams: tuple[int, ...] = ()
    chars: tuple[tuple[int, float], ...] = ()
    formulas: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The confirmed match (if any) and the closest candidate that was not confirmed."""

    match: Contamination | None
    near_miss: Contamination | None


def word_ngrams(normalized: str, n: int) -> set[str]:
    words = normalized.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def char_ngrams(normalized: str, n: int) -> set[str]:
    """Character n-grams of a normalised text without spaces; a text shorter than n is one gram."""
    return squeezed_ngrams(normalized.replace(" ", ""), n)


def squeezed_ngrams(squeezed: str, n: int) -> set[str]:
    if len(squeezed) <= n:
        return {squeezed} if squeezed else set()
    return {squeezed[i : i + n] for i in range(len(squeezed) - n + 1)}


@dataclass
class ContaminationIndex:
    """Word and character n-gram indices over benchmark items, with what confirmation needs per item."""

    items: list[BenchmarkItem]
    options: DecontamOptions = field(default_factory=DecontamOptions)
    gram_ids: dict[str, int] = field(default_factory=dict)
    gram_text: list[str] = field(default_factory=list)
    gram_items: list[list[int]] = field(default_factory=list)
    chars_all: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    chars_short: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    char_weights: list[float] = field(default_factory=list)
    char_idf: dict[str, float] = field(default_factory=dict)
    formula_grams: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    formula_sizes: dict[int, int] = field(default_factory=dict)
    item_words: list[list[str]] = field(default_factory=list)
    item_content: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        char_sets = [self._add(index, item) for index, item in enumerate(self.items)]
        self.char_idf = {g: math.log((1 + len(self.items)) / (1 + len(items))) for g, items in self.chars_all.items()}
        self.char_weights = [sum(self.char_idf[g] for g in sorted(grams)) for grams in char_sets]

    def _add(self, index: int, item: BenchmarkItem) -> set[str]:
        normalized = normalize_text(item.text)
        self.item_words.append(normalized.split())
        self.item_content.append(content_tokens(item.text))
        # sorted: ids and float sums must not depend on the process's string hashing, since shard tasks read a
        # pickled index that an earlier process may have built (a resumed run)
        for gram in sorted(word_ngrams(normalized, self.options.ngram)):
            gram_id = self.gram_ids.get(gram)
            if gram_id is None:
                gram_id = self.gram_ids[gram] = len(self.gram_text)
                self.gram_text.append(gram)
                self.gram_items.append([])
            self.gram_items[gram_id].append(index)
        grams = char_ngrams(normalized, self.options.char_ngram)
        short = len(self.item_words[-1]) < self.options.short_words
        for gram in sorted(grams):
            self.chars_all[gram].append(index)
            if short:
                self.chars_short[gram].append(index)
        formula = "".join(self.item_content[-1])
        if short and len(formula) >= self.options.char_ngram:
            self.formula_sizes[index] = len(formula_grams := squeezed_ngrams(formula, self.options.char_ngram))
            for gram in sorted(formula_grams):
                self.formula_grams[gram].append(index)
        return grams

    def char_weight(self, gram: str) -> float:
        """Inverse document frequency over benchmark items: phrases every problem uses count little."""
        return self.char_idf.get(gram, math.log(1 + len(self.items)))

    def scan(self, text: str) -> Scan:
        """The index n-grams ``text`` contains, and its short-text character matches."""
        normalized = normalize_text(text)
        grams = tuple(
            sorted(self.gram_ids[g] for g in word_ngrams(normalized, self.options.ngram) if g in self.gram_ids)
        )
        short = len(normalized.split()) < self.options.short_words
        chars = self._char_matches(normalized, self.chars_all if short else self.chars_short)
        return Scan(grams, chars, self._formula_matches(text))

    def _formula_matches(self, text: str) -> tuple[tuple[int, float], ...]:
        """Short items whose formula (content tokens, operators kept) ``text`` contains, character-wise."""
        if not self.formula_grams:
            return ()
        found: dict[int, int] = defaultdict(int)
        for gram in squeezed_ngrams("".join(text_tokens(text)), self.options.char_ngram):
            for item in self.formula_grams.get(gram, ()):
                found[item] += 1
        share = {item: count / self.formula_sizes[item] for item, count in found.items()}
        return tuple((item, round(v, 4)) for item, v in sorted(share.items()) if v >= self.options.short_containment)

    def _char_matches(self, normalized: str, index_map: Mapping[str, list[int]]) -> tuple[tuple[int, float], ...]:
        if not index_map:
            return ()
        grams = char_ngrams(normalized, self.options.char_ngram)
        shared: dict[int, float] = defaultdict(float)
        for gram in grams:
            for index in index_map.get(gram, ()):
                shared[index] += self.char_idf[gram]
        if not shared:
            return ()
        unseen = math.log(1 + len(self.items))
        query = sum(self.char_idf.get(g, unseen) for g in grams)
        found = []
        for index in sorted(shared):
            coverage = shared[index] / max(1e-9, min(query, self.char_weights[index]))
            if coverage >= self.options.short_containment:
                found.append((index, round(coverage, 4)))
        return tuple(found)

    def candidates(self, scan: Scan, gram_weight: Mapping[int, float]) -> list[Candidate]:
        """Items whose weighted shared n-grams reach ``min_matches``, plus character matches; best first."""
        evidence: dict[int, float] = defaultdict(float)
        shared: dict[int, list[int]] = defaultdict(list)
        for gram in scan.grams:
            for item in self.gram_items[gram]:
                evidence[item] += gram_weight[gram]
                shared[item].append(gram)
        found = {
            item: Candidate(item, "word_ngram", weight, self._rarest(shared[item], gram_weight))
            for item, weight in evidence.items()
            if weight >= self.options.min_matches
        }
        for method, matches in (("char_ngram", scan.chars), ("formula_ngram", scan.formulas)):
            for item, coverage in matches:
                found.setdefault(item, Candidate(item, method, coverage, ()))
        ranked = sorted(found.values(), key=lambda c: (c.method != "word_ngram", -c.evidence, c.item))
        return ranked[: self.options.max_candidates]

    def _rarest(self, grams: list[int], gram_weight: Mapping[int, float]) -> tuple[str, ...]:
        ordered = sorted(grams, key=lambda g: (-gram_weight[g], self.gram_text[g]))
        return tuple(self.gram_text[g] for g in ordered[:MAX_REPORTED_NGRAMS])

    def confirm(self, text: str, candidates: Sequence[Candidate], word_weight: WordWeights) -> Verdict:
        """Check each candidate on the whole problem; the best confirmed one wins."""
        words, tokens = normalize_text(text).split(), text_tokens(text)
        confirmed: list[Contamination] = []
        rejected: list[Contamination] = []
        for candidate in candidates:
            hit = self._evaluate(candidate, words, tokens, text, word_weight)
            ok = hit.similarity >= self.options.min_similarity and hit.content >= self.options.min_content
            (confirmed if ok else rejected).append(hit)
        best = max(confirmed, key=lambda h: (h.similarity, h.content), default=None)
        closest = max(rejected, key=lambda h: (h.similarity, h.content), default=None)
        return Verdict(best, None if best else closest)

    def _evaluate(
        self, candidate: Candidate, words: list[str], tokens: list[str], text: str, word_weight: WordWeights
    ) -> Contamination:
        item = self.items[candidate.item]
        ngrams = candidate.ngrams or self._shared_chars(text, candidate.item)
        return Contamination(
            item.benchmark,
            item.id,
            candidate.method,
            candidate.evidence,
            ngrams,
            aligned_similarity(words, self.item_words[candidate.item], word_weight),
            content_agreement(self.item_content[candidate.item], tokens),
        )

    def _shared_chars(self, text: str, item: int) -> tuple[str, ...]:
        ours = char_ngrams(normalize_text(text), self.options.char_ngram)
        theirs = char_ngrams(" ".join(self.item_words[item]), self.options.char_ngram)
        return tuple(sorted(ours & theirs, key=lambda g: (-self.char_weight(g), g))[:MAX_REPORTED_NGRAMS])


class WordWeights:
    """Inverse document frequency of words over the benchmark items and (a sample of) the pool."""

    def __init__(self, documents: Iterable[Sequence[str]]):
        counts: Counter[str] = Counter()
        total = 0
        for words in documents:
            counts.update(set(words))
            total += 1
        self.total = total
        self.idf = {w: math.log((total + 1) / (c + 1)) + 1.0 for w, c in counts.items()}
        self.unseen = math.log(total + 1) + 1.0

    def __call__(self, word: str) -> float:
        return self.idf.get(word, self.unseen)


def build_index(items: Sequence[BenchmarkItem], options: DecontamOptions) -> ContaminationIndex:
    """The n-gram index over ``items``. The last one built is kept for the next curation in this process that checks
    the same items with the same options (a notebook's or a test suite's many runs: about 0.3 s of CPU an index over
    MATH500, AIME and AMC); the index is read, never changed, after it is built."""
    key = (tuple(items), json.dumps(asdict(options), sort_keys=True, default=str))
    if _LAST_INDEX and _LAST_INDEX[0][0] == key:
        return _LAST_INDEX[0][1]
    index = ContaminationIndex(list(items), options)
    _LAST_INDEX[:] = [(key, index)]
    return index


_LAST_INDEX: list[tuple[tuple[tuple[BenchmarkItem, ...], str], ContaminationIndex]] = []


def load_benchmark_items(
    names: Sequence[str], specs: Mapping[str, BenchmarkSpec], options: DecontamOptions
) -> tuple[list[BenchmarkItem], dict[str, Any]]:
    """Load the named benchmarks; returns their items and, per benchmark, its checksum or why it was skipped.

    With ``missing: warn`` the benchmarks that cannot be loaded are skipped with one warning line (one for
    all of them when the hub is unreachable). Benchmarks read from the copies shipped with limo (the hub did not
    answer) are named in one line, and their entry says why (``fallback``).

    Raises:
        DataError: A benchmark is unknown, or cannot be loaded and ``options.missing`` is ``error``.
    """
    items: list[BenchmarkItem] = []
    loaded: dict[str, Any] = {}
    skipped: dict[str, DataError] = {}
    shipped: list[Benchmark] = []
    for name in names:
        if name not in specs:
            raise DataError(f"decontam: unknown benchmark {name!r} (known: {', '.join(sorted(specs))})")
        try:
            benchmark = load_benchmark(specs[name], data_dir=options.data_dir)
        except DataError as err:
            if options.missing != "warn":
                raise
            skipped[name] = err
            loaded[name] = {"skipped": str(err)}
            continue
        items.extend(BenchmarkItem(name, p.id, p.problem, p.answer or "") for p in benchmark.problems)
        loaded[name] = {"source": benchmark.source, "checksum": benchmark.checksum, "items": len(benchmark.problems)}
        if benchmark.fallback:
            loaded[name]["fallback"] = benchmark.fallback
            shipped.append(benchmark)
    announce_fallbacks(shipped, "decontam: screened against")
    _warn_skipped(skipped)
    return items, loaded


def _warn_skipped(skipped: Mapping[str, DataError]) -> None:
    offline = [name for name, err in skipped.items() if isinstance(err, HubOfflineError)]
    if offline:
        reason = next(err for err in skipped.values() if isinstance(err, HubOfflineError)).reason
        log.warning(
            "decontam: offline (%s): skipped %s; pass data_dir=<folder with the benchmark files> to check them",
            reason,
            ", ".join(offline),
        )
    for name, err in skipped.items():
        if name not in offline:
            log.warning("decontam: benchmark %s skipped: %s", name, err)


@dataclass
class DecontamResult:
    """Confirmed matches by problem id, the closest unconfirmed candidates, and the n-gram statistics."""

    matches: dict[str, Contamination]
    near_misses: list[tuple[str, Contamination]]
    candidates: int
    boilerplate: list[tuple[str, int]]

    def notes(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "confirmed": len(self.matches), "not_confirmed": len(self.near_misses)}

    def listing(self, limit: int = MAX_LISTED) -> dict[str, Any]:
        """The closest candidates that were not dropped and the most frequent boilerplate n-grams."""
        return {
            "near_misses": [{"problem_id": pid, **hit.to_dict()} for pid, hit in self.near_misses[:limit]],
            "boilerplate_ngrams": [{"ngram": gram, "documents": df} for gram, df in self.boilerplate[:limit]],
        }


def candidates_of(index: ContaminationIndex, scan: Scan, gram_weight: Mapping[int, float]) -> list[Candidate]:
    """The benchmark items one scanned problem is a candidate for (none without any shared n-gram)."""
    return index.candidates(scan, gram_weight) if scan.grams or scan.chars or scan.formulas else []


def contamination_result(
    ids: Sequence[str], verdicts: Sequence[Verdict], frequent: list[tuple[str, int]]
) -> DecontamResult:
    """Matches (in ``ids`` order) and near misses (closest first) from the confirmed candidates."""
    matches = {pid: v.match for pid, v in zip(ids, verdicts, strict=True) if v.match}
    misses = [(pid, v.near_miss) for pid, v in zip(ids, verdicts, strict=True) if v.near_miss]
    misses.sort(key=lambda m: (-m[1].similarity, -m[1].content, m[0]))
    return DecontamResult(matches, misses, len(ids), frequent)


def document_frequencies(index: ContaminationIndex, pool: Mapping[int, int]) -> dict[int, int]:
    """For every index n-gram: the benchmark items plus the pool problems that contain it (``pool`` counts)."""
    return {g: len(items) + pool.get(g, 0) for g, items in enumerate(index.gram_items)}


def gram_weights(index: ContaminationIndex, documents: Mapping[int, int]) -> dict[int, float]:
    """Each index n-gram's weight: 1, or ``boilerplate_docs / df`` for n-grams many documents share."""
    return {g: min(1.0, index.options.boilerplate_docs / df) for g, df in documents.items()}


def boilerplate(index: ContaminationIndex, documents: Mapping[int, int]) -> list[tuple[str, int]]:
    """N-grams held by more than ``boilerplate_docs`` documents, most frequent first."""
    frequent = [(index.gram_text[g], df) for g, df in documents.items() if df > index.options.boilerplate_docs]
    return sorted(frequent, key=lambda x: (-x[1], x[0]))


def idf_sample(problems: int, options: DecontamOptions) -> list[int] | None:
    """Positions of the pool problems whose words weigh words (a seeded sample; None: all of them)."""
    if problems <= options.idf_sample:
        return None
    return random.Random(0).sample(range(problems), options.idf_sample)  # the positions sample(pool, k) would take


def word_weights(index: ContaminationIndex, pool_texts: Iterable[str]) -> WordWeights:
    """IDF over the benchmark items and the (sampled) pool texts, counted as the texts are read (a list of every
    sampled text's words was about 4 kB a problem: 80 MB at the default sample)."""
    return WordWeights(itertools.chain(index.item_words, (normalize_text(t).split() for t in pool_texts)))


# ------------------------------------------------------------------------------------------------ shard tasks


def decontam_scans(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, word n-gram ids, character matches, formula matches]`` per alive problem."""
    contamination_index = load_context(item["context"])
    for position, row in alive_rows(item):
        scan = contamination_index.scan(row["problem"])
        yield [position, list(scan.grams), [list(c) for c in scan.chars], [list(f) for f in scan.formulas]]


def decontam_confirm(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, confirmed match or None, closest unconfirmed candidate or None]`` per candidate problem."""
    contamination_index, weights = load_context(item["context"])
    with open(item["jobs"], encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not item["start"] <= number < item["stop"]:
                continue
            position, text, candidates = json.loads(line)
            found = [Candidate(c[0], c[1], c[2], tuple(c[3])) for c in candidates]
            verdict = contamination_index.confirm(text, found, weights)
            yield [position, *(asdict(hit) if hit else None for hit in (verdict.match, verdict.near_miss))]


def decontam_semantic(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, confirmed match or None, closest unconfirmed candidate or None]`` per alive problem of a part
    that has a benchmark item among its nearest by meaning (`curation.meaning`: embeddings in batches,
    retrieval from the items' index, the confirmation rule, and the judge when the options ask for it). With
    ``screened`` the part's rows are those the screen passed (`decontam_screen`)."""
    items, semantic_index = load_context(item["context"])
    options = to_options(SemanticDecontamOptions, item["options"])
    rows = [(position, row["problem"], row.get("answer") or "") for position, row in alive_rows(item)]
    judge = None
    if options.confirmation == "judge":
        generator = cached_generator(options.judge, item["judge_dir"], f"same-problem-{item['part']}")
        judge = judge_pairs(generator, options)
    texts, answers = {str(p): t for p, t, _ in rows}, {str(p): a for p, _, a in rows}
    verdicts = find_semantic_contamination(texts, items, options, semantic_index, judge, answers, screened=True)
    for position, _, _ in rows:
        match, closest = verdicts.matches.get(str(position)), verdicts.closest.get(str(position))
        if match or closest:
            yield [position, match.to_dict() if match else None, closest.to_dict() if closest else None]


def decontam_screen(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, path]`` for each problem of a part that some benchmark item could be confirmed for by meaning,
    and the rule's path that could confirm it (`curation.meaning.screen.screen`): the problems the model embeds."""
    items, screen_index = load_context(item["context"])
    options = to_options(SemanticDecontamOptions, item["options"])
    rarity = number_rarity([i.text for i in items])
    texts: dict[str, str] = {}
    answers: dict[str, str] = {}
    rows = alive_rows(item)
    while True:  # a screen batch at a time: a part's texts are never all held (a part grows with the pool)
        texts.clear()
        answers.clear()
        for position, row in itertools.islice(rows, SCREEN_BATCH):
            texts[str(position)], answers[str(position)] = row["problem"], row.get("answer") or ""
        if not texts:
            return
        for problem, path in screen(texts, answers, items, screen_index, options, rarity).items():
            yield [int(problem), path]


# ------------------------------------------------------------------------------------------------ the stage


CANDIDATES_PER_TASK = 2_000


def benchmark_error(err: DataError) -> DataError:
    """A benchmark that cannot be loaded, with what to do about it and the key to look at."""
    hint = "pass data_dir=<folder with the benchmark files> or set curate.stages.decontam.missing=warn"
    return DataError(f"{err} ({hint}), curate.stages.decontam")


def decontam(state: RunState, options: StageOptions, context: StageContext) -> list[dict[str, Any]]:
    """Drop every alive problem confirmed to be a copy of a benchmark item (candidates from n-grams, then
    confirmation on the whole problem), with its evidence; returns the hits (problem id and evidence)."""
    settings = options.decontam
    count = state.begin("decontam", settings.enabled)
    if not settings.enabled or not settings.benchmarks:  # on, but nothing to check against: passes everything
        state.apply(count)
        return []
    try:
        items, loaded = load_benchmark_items(settings.benchmarks, context.benchmark_specs, settings)
    except DataError as err:
        raise benchmark_error(err) from err
    state.manifest["benchmarks"] = loaded
    if not items:  # missing: warn, and every benchmark was skipped
        log.warning("decontam: no benchmark was checked (%s skipped): no problem was screened", ", ".join(loaded))
        count.notes = {"benchmarks": {n: 0 for n in loaded}, "index_items": 0, "unchecked": True}
        state.apply(count)
        return []
    index = build_index(items, settings)
    key = {"benchmarks": loaded, "options": asdict(settings), "code": source_digest(__name__, "curation.similarity")}
    drops, result = contaminated(state, context, index, key)
    found = [(p, hit.to_dict()) for p, hit in drops]
    count.notes = {
        "benchmarks": {n: v.get("items", 0) for n, v in loaded.items()},
        "index_items": len(items),
        **result.notes(),
        **result.listing(),
    }
    if settings.semantic.enabled:
        meaning, notes = by_meaning(state, context, settings.semantic, items, {p for p, _ in drops})
        count.notes |= notes
        found += meaning
        keep_texts(())  # the items' readings too: the stage is done with them
        forget_texts()  # what the shard tasks cached, when they ran in this process
    hits = [{"problem_id": state.problem_ids[p], **hit} for p, hit in found]
    state.apply(count, problems=[(p, f"contaminated:{hit['benchmark']}", hit) for p, hit in found])
    return hits


def by_meaning(
    state: RunState,
    context: StageContext,
    options: SemanticDecontamOptions,
    items: Sequence[BenchmarkItem],
    dropped: set[int],
) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any]]:
    """The alive problems not ``dropped`` by n-grams that the semantic check confirms (`decontam_semantic`, one
    shard task per part of the pool; with a screen, over the problems `decontam_screen` passed), with their
    evidence; and the stage notes: how many (``semantic_confirmed``), the closest kept candidates, most similar
    first (``semantic_closest_kept``), and the screen's counts (``semantic_screen``)."""
    check_semantic(options, "curate.stages.decontam.semantic")
    rows = state.problem_alive.copy()
    rows[sorted(dropped)] = False
    notes: dict[str, Any] = {}
    if uses_screen(options):
        rows, notes = screened(state, context, options, items, rows)
    matches: list[tuple[int, dict[str, Any]]] = []
    closest: list[dict[str, Any]] = []
    if rows.any():  # the model and the items' vectors are loaded only when some problem reaches the model
        semantic_index = SemanticIndex.build(
            [item_key(i) for i in items], item_vectors([i.text for i in items], options)
        )
        code = source_digest(__name__, *MEANING_MODULES, "curation.similarity")
        key = {"semantic": [asdict(i) for i in items], "options": options_dict(options), "code": code}
        params = {
            "context": write_context(context.work_dir / "contexts", key, (list(items), semantic_index)),
            "options": options_dict(options),
            "judge_dir": str(context.work_dir / "judge"),
            "screened": uses_screen(options),
        }
        job = run_parts(state, context, "decontam-semantic", decontam_semantic, params, "problems", rows)
        for problem, match, near in rows_of(job):
            if match:
                matches.append((problem, semantic_hit(match)))
            elif near:
                closest.append({"problem_id": state.problem_ids[problem], **semantic_hit(near)})
    closest.sort(key=lambda hit: (-hit["similarity"], hit["problem_id"]))
    return matches, {**notes, "semantic_confirmed": len(matches), "semantic_closest_kept": closest[:MAX_LISTED]}


def screened(
    state: RunState,
    context: StageContext,
    options: SemanticDecontamOptions,
    items: Sequence[BenchmarkItem],
    rows: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The mask of the problems among ``rows`` that the screen passes (`decontam_screen`, one shard task per part),
    and its note: the screen model, problems screened, passed, and passed by each path (``semantic_screen``)."""
    code = source_digest(__name__, *MEANING_MODULES, "curation.similarity")
    key = {"screen": [asdict(i) for i in items], "options": options_dict(options), "code": code}
    params = {
        "context": write_context(context.work_dir / "contexts", key, (list(items), ScreenIndex.build(items, options))),
        "options": options_dict(options),
    }
    job = run_parts(state, context, "decontam-screen", decontam_screen, params, "problems", rows)
    passed = np.zeros_like(rows)
    paths: Counter[str] = Counter()
    for problem, path in rows_of(job):
        passed[problem] = True
        paths[path] += 1
    note = {"model": options.screen, "problems": int(rows.sum()), "passed": int(passed.sum()), "paths": dict(paths)}
    return passed, {"semantic_screen": note}


def semantic_hit(match: dict[str, Any]) -> dict[str, Any]:
    """A semantic match as a decontamination detail: its benchmark item, similarity and evidence; ``confirmed_by``
    names the rule's path (``embedding``: numbers and math; ``rare_numbers``) or ``judge``."""
    benchmark, item_id = match["key"].split("/", 1)
    method = "semantic_judge" if match["method"] == "judge" else "semantic"
    rest = {k: v for k, v in match.items() if k not in ("key", "method")}
    return {"benchmark": benchmark, "item_id": item_id, "method": method, "confirmed_by": match["method"], **rest}


def contaminated(
    state: RunState, context: StageContext, index: ContaminationIndex, key: dict[str, Any]
) -> tuple[list[tuple[int, Contamination]], DecontamResult]:
    """The alive problems confirmed as copies of ``index``'s items (with their evidence), and the result.

    ``key`` says what determines the index (benchmarks loaded, options): it names the context files the shard
    tasks read, so a rerun reuses them.
    """
    settings = index.options
    index_path = write_context(context.work_dir / "contexts", {"index": key}, index)
    scan_job = run_parts(state, context, "decontam-scan", decontam_scans, {"context": index_path}, table="problems")
    pool: Counter[int] = Counter()
    for row in rows_of(scan_job):
        pool.update(row[1])
    documents = document_frequencies(index, pool)
    weights = gram_weights(index, documents)
    jobs = [(p, found) for p, *scan in rows_of(scan_job) if (found := candidates_of(index, _scan(scan), weights))]
    alive = np.flatnonzero(state.problem_alive)
    sample = idf_sample(len(alive), settings)
    chosen = alive if sample is None else alive[sample]
    words = word_weights(index, (row["problem"] for row in state.store.problems.read_many(chosen)))
    verdicts = _confirm(state, context, jobs, (index, words), {"confirm": key, "scan": scan_job.digest})
    ids = [state.problem_ids[p] for p, _ in jobs]
    result = contamination_result(ids, verdicts, boilerplate(index, documents))
    return [(p, v.match) for (p, _), v in zip(jobs, verdicts, strict=True) if v.match], result


def find_contamination(texts: Mapping[str, str], index: ContaminationIndex) -> DecontamResult:
    """The decontamination stage's decisions on ``texts`` (problem id -> text) against ``index``'s items.

    A library entry (benches, tests, a caller's own texts): the stage's steps run, on the local executor.
    """
    problems = [Problem(pid, text, "", "texts") for pid, text in texts.items()]
    chains = [Chain(f"{pid}/text", pid, text) for pid, text in texts.items()]
    key = {"items": [asdict(item) for item in index.items], "options": asdict(index.options)}
    with items_run(problems, chains) as (state, context):
        _, result = contaminated(state, context, index, key)
    return result


def _scan(row: list[Any]) -> Scan:
    grams, chars, formulas = row
    return Scan(tuple(grams), tuple((c[0], c[1]) for c in chars), tuple((f[0], f[1]) for f in formulas))


def _confirm(
    state: RunState, context: StageContext, jobs: list[tuple[int, list[Candidate]]], confirm: Any, key: Any
) -> list[Verdict]:
    """Confirm every candidate problem on its whole text, as a sharded job over slices of the candidates."""
    if not jobs:
        return []
    folder = context.work_dir / "contexts"
    # keyed by the candidate list too: a file written for other candidates (an earlier run, other code) is never
    # reused for these, whose slices the confirm tasks read by position
    listing = _listing_digest(jobs)
    context_path = write_context(folder, {**key, "candidates": listing}, confirm)
    jobs_file = Path(context_path).with_suffix(".candidates.jsonl")
    if not jobs_file.is_file():
        texts = state.store.problems.read_many(p for p, _ in jobs)
        write_rows_file(
            jobs_file, (_candidate_row(p, row["problem"], found) for (p, found), row in zip(jobs, texts, strict=True))
        )
    items = tuple(
        {"jobs": str(jobs_file), "context": context_path, "start": a, "stop": min(a + CANDIDATES_PER_TASK, len(jobs))}
        for a in range(0, len(jobs), CANDIDATES_PER_TASK)
    )
    rows = rows_of(run_items(context, "decontam-confirm", decontam_confirm, items))
    return [Verdict(*(_contamination(hit) for hit in row[1:])) for row in rows]


def _listing_digest(jobs: list[tuple[int, list[Candidate]]]) -> str:
    """The candidate list's digest: sha256 of its JSON (``json.dumps(listing, sort_keys=True)``), fed one job at a
    time so that no second copy of every candidate, nor one string of them all, is held (a pool of many near
    copies has candidates for most of its problems)."""
    digest = hashlib.sha256(b"[")
    for number, (problem, found) in enumerate(jobs):
        entry = [problem, [[c.item, c.method, c.evidence, list(c.ngrams)] for c in found]]
        digest.update((", " if number else "").encode() + json.dumps(entry, sort_keys=True).encode())
    digest.update(b"]")
    return digest.hexdigest()[:16]


def _candidate_row(problem: int, text: str, found: list[Candidate]) -> list[Any]:
    return [problem, text, [[c.item, c.method, c.evidence, list(c.ngrams)] for c in found]]


def _contamination(hit: dict[str, Any] | None) -> Contamination | None:
    return None if hit is None else Contamination(**{**hit, "ngrams": tuple(hit["ngrams"])})


STAGE = StepStage("decontam", decontam, DecontamOptions)
