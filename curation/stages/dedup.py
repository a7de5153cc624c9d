"""Deduplicate problems: exact after normalisation, then near-duplicates with MinHash LSH.

Normalisation (`normalize_problem`): Unicode NFKC, lower case, the operators ``+ - * / = < > ^`` kept as
words of their own, every other run of non-alphanumeric characters (LaTeX braces, ``$``, punctuation) one
space. Two problems with the same normalised text are exact duplicates; ``2^x-1=3^y`` and ``2^x+1=3^y`` are
not (`normalize_text`, which drops operators, stays decontamination's tokeniser). Near-duplicates: MinHash
(``num_perm`` permutations) over word ``shingle_words``-grams finds candidate pairs through LSH, and a
candidate counts only when the *exact* Jaccard of the two shingle sets reaches ``threshold`` (0.8), or
``same_answer_threshold`` (0.5) when the two golds agree (`eval.grading.grader.verify`). One or two words changed in a
25-word problem leave a Jaccard of about 0.77 or 0.6, below 0.8; lowering the one threshold merges MATH's
template siblings (other numbers, usually another answer), while a copy keeps its answer: on planted groups
in MATH train the gold rule catches 98.5% / 99.6% of groups (tuning / held-out half) against 67.6% / 65.1% at
0.8 alone, for 23 more MATH-train merges out of 7,500 (about a third of them real duplicates; the rest
same-template siblings with the same gold), where a 0.6 threshold alone merges 135 more (docs/curation.md).
``same_content`` also asks for equal content tokens (`curation.similarity.content_tokens`): fewer sibling
merges, and fewer copies caught whose changed word was a number (CHAMP's recipe turns it on).

The LSH bands are not datasketch's default (which minimises false candidates plus misses and, at threshold 0.8
with 128 permutations, picks 9 bands of 13 rows: a pair at exactly 0.8 becomes a candidate 40% of the time):
`lsh_bands` takes the most rows per band whose collision probability at the lowest threshold in use is at least
`LSH_RECALL` (0.999). The extra candidates below the threshold cost one exact Jaccard each. Measured on planted
groups by ``bench/curation/near_duplicates.py``.

Dedup precision: two problems whose numbers (`curation.similarity.numbers_of`) differ and whose golds differ
are never near-duplicates, whatever their Jaccard — MATH's "How many positive 3-digit numbers are divisible by
11?" is not a copy of "... by 7?" — unless ``template: true`` asks for template-level dedup.

Pool order decides which copy stays (the first), so results are deterministic. A dropped duplicate takes
its chains with it (reason ``duplicate_problem`` / ``near_duplicate_problem``; the detail names the kept id,
the kind of match — ``exact``, ``shingles``, ``shingles_same_gold``, ``semantic`` — and its similarity).
Exact duplicate chains within one problem are dropped too (``duplicate_chain``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import sys
import unicodedata
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from curation.meaning.confirm import confirm
from curation.meaning.contamination import check_semantic
from curation.meaning.embedding import embed_texts
from curation.meaning.index import SemanticIndex, from_grid, to_grid
from curation.options import DedupOptions, SemanticDedupOptions, StageOptions
from curation.pool.golds import problem_reader
from curation.pool.store import first_of_equal, later_equal, write_once
from curation.runner import (
    ID_BATCH,
    DropItem,
    RunState,
    StageContext,
    alive_rows,
    items_run,
    key_run,
    options_dict,
    rows_of,
    run_items,
    run_parts,
)
from curation.schema import Chain
from curation.similarity import answers_agree, content_tokens, numbers_of
from curation.stages.base import StepStage
from eval.options import to_options
from eval.problem import Problem

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


_NOT_WORD_OR_OPERATOR = re.compile(r"[^\w+\-*/=<>^]+|_", re.UNICODE)


_OPERATOR = re.compile(r"\s*([+\-*/=<>^])\s*")


LSH_RECALL = 0.999  # chance that a pair exactly at the lowest threshold shares a band


_SCHEME = "affine32"  # datasketch 2 default; stated so signatures rebuilt from hash values match


def normalize_text(text: str) -> str:
    """Lower-cased NFKC text with every run of non-alphanumerics replaced by one space."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def normalize_problem(text: str) -> str:
    """`normalize_text` that keeps the operators ``+ - * / = < > ^`` as words of their own.

    Dedup's key: ``2^x-1=3^y`` and ``2^x+1=3^y`` (two CHAMP problems) must not normalise to the same text.
    """
    kept = _NOT_WORD_OR_OPERATOR.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return " ".join(_OPERATOR.sub(r" \1 ", kept).split())


def text_digest(text: str) -> bytes:
    """A 128-bit digest of the normalised text: dict keys for exact chain dedup stay small at any pool size."""
    return hashlib.blake2b(normalize_problem(text).encode("utf-8"), digest_size=16).digest()


def word_shingles(normalized: str, size: int) -> set[str]:
    """Word ``size``-grams of a normalised text; a shorter text is one shingle."""
    words = normalized.split()
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def minhash_signature(normalized: str, shingle_words: int, num_perm: int) -> np.ndarray:
    """MinHash hash values of a normalised text's word shingles (a pure function: it runs in shard tasks)."""
    signature = minhash_type()(num_perm=num_perm, seed=1, scheme=_SCHEME, permutations=_permutations(num_perm))
    signature.update_batch([s.encode("utf-8") for s in sorted(word_shingles(normalized, shingle_words))])
    return signature.hashvalues


@functools.lru_cache(maxsize=4)
def _permutations(num_perm: int) -> Any:
    """The seed-1 permutations, drawn once per process: datasketch draws them anew for every MinHash, which
    was four fifths of a signature's time (0.53 vs 0.12 ms at 128 permutations); the values are the same."""
    return minhash_type()(num_perm=num_perm, seed=1, scheme=_SCHEME).permutations


@functools.cache
def minhash_type() -> Any:
    """datasketch's `MinHash` without running its package's ``__init__``, which imports every sketch it has (its LSH
    classes import scipy: about 0.95 s of a curation's start-up, for classes dedup never uses). The package's folder
    stands in for the package while ``datasketch.minhash`` imports, and is taken out again, so a later
    ``import datasketch`` runs the real ``__init__`` (which then finds the same `MinHash`)."""
    if "datasketch" in sys.modules:
        return sys.modules["datasketch"].MinHash
    spec = importlib.util.find_spec("datasketch")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("datasketch is not installed: dedup's near-duplicate pass needs it")
    sys.modules["datasketch"] = importlib.util.module_from_spec(spec)  # its __path__, not its __init__
    try:
        return importlib.import_module("datasketch.minhash").MinHash
    finally:
        del sys.modules["datasketch"]


def lowest_threshold(options: DedupOptions, with_answers: bool) -> float:
    """The lowest Jaccard any rule accepts: the LSH bands must catch pairs down to it."""
    if with_answers and options.same_answer_threshold is not None:
        return min(options.threshold, options.same_answer_threshold)
    return options.threshold


def near_match(
    similarity: float, a: str, b: str, options: DedupOptions, answers: Mapping[str, str], texts: Mapping[str, str]
) -> str | None:
    """The kind of near-duplicate the pair is — ``shingles`` (Jaccard at the threshold) or ``shingles_same_gold``
    (at the lower one, golds and, with ``same_content``, math agreeing) — or None.

    Never two problems whose numbers and golds both differ (`different_problems`) unless ``options.template``
    (the lower threshold already asks for agreeing golds).
    """
    if similarity >= options.threshold:
        if options.template or not different_problems(texts[a], texts[b], answers.get(a), answers.get(b)):
            return "shingles"
        return None
    lower = options.same_answer_threshold
    if lower is None or similarity < lower or a not in answers or b not in answers:
        return None
    if options.same_content and content_tokens(texts[a]) != content_tokens(texts[b]):
        return None
    return "shingles_same_gold" if answers_agree(answers[a], answers[b]) else None


def different_problems(text_a: str, text_b: str, gold_a: str | None, gold_b: str | None) -> bool:
    """Other numbers *and* another gold: a template sibling ("... divisible by 11?" vs "... by 7?"), which is a
    different problem for training. Without both golds nothing is known, so this says False."""
    if not gold_a or not gold_b or set(numbers_of(text_a)) == set(numbers_of(text_b)):
        return False
    return not answers_agree(gold_a, gold_b)


def lsh_bands(threshold: float, num_perm: int, recall: float = LSH_RECALL) -> tuple[int, int]:
    """``(bands, rows)``: the most rows per band whose chance of a shared band at ``threshold`` is ``recall``."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# ------------------------------------------------------------------------------------------------ shard tasks


def dedup_problem_keys(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, digest of the normalised text, LSH band keys]`` per alive problem (bands only when near)."""
    options = to_options(DedupOptions, item["options"])
    bands, rows = lsh_bands(lowest_threshold(options, True), options.num_perm)  # every problem has a gold
    for position, row in alive_rows(item):
        normalized = normalize_problem(row["problem"])
        keys: list[int] = []
        if options.near:
            values = minhash_signature(normalized, options.shingle_words, options.num_perm)
            keys = [_band_key(values[b * rows : (b + 1) * rows]) for b in range(bands)]
        yield [position, hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).hexdigest(), keys]


def _band_key(values: np.ndarray) -> int:
    """A band's hash values as one 32-bit key: equal bands, equal keys. Four bytes per band and problem is what
    the driver and the candidate tasks hold (128 bands at the same-gold threshold); a chance collision only
    adds a candidate pair, which the exact check then refuses, so the result does not depend on the width."""
    return int.from_bytes(hashlib.blake2b(values.tobytes(), digest_size=4).digest(), "little")


def dedup_chain_digests(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[chain, 128-bit digest of its normalised text]`` per alive chain (exact duplicate chains)."""
    for position, row in alive_rows(item):
        yield [position, text_digest(row["text"]).hex()]


def near_duplicate_pairs(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[earlier problem, later problem, Jaccard, kind]`` for every pair of a slice of LSH buckets that
    `near_match` accepts (exact shingle Jaccard at the threshold, or at the lower one when the golds agree); a
    pair is checked in the first band the two share only."""
    options = to_options(DedupOptions, item["options"])
    folder = Path(item["buckets"])
    problems, bands, members, starts, band_of = (
        np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("problems", "bands", "members", "starts", "band")
    )
    with problem_reader(item) as reader:
        for bucket in range(item["start"], item["stop"]):
            positions = members[starts[bucket] : starts[bucket + 1]]
            yield from _bucket_pairs(positions, problems, bands[:, : band_of[bucket]], reader, options)


def _bucket_pairs(
    positions: np.ndarray, problems: np.ndarray, earlier_bands: np.ndarray, reader: Any, options: DedupOptions
) -> Iterator[list[Any]]:
    rows = list(reader.read_many(problems[positions].tolist()))
    texts = {str(i): row["problem"] for i, row in enumerate(rows)}  # keyed as `near_match` takes them
    answers = {str(i): row["answer"] for i, row in enumerate(rows)}
    shingles = [word_shingles(normalize_problem(text), options.shingle_words) for text in texts.values()]
    keys = earlier_bands[positions]
    for later in range(1, len(positions)):
        shared_before = (keys[:later] == keys[later]).any(axis=1)  # already checked in an earlier band's bucket
        for earlier in np.flatnonzero(~shared_before).tolist():
            similarity = jaccard(shingles[later], shingles[earlier])
            kind = near_match(similarity, str(later), str(earlier), options, answers, texts)
            if kind is not None:
                yield [int(problems[positions[earlier]]), int(problems[positions[later]]), round(similarity, 4), kind]


# ------------------------------------------------------------------------------------------------ the stage


PAIRS_PER_TASK = 200_000


def dedup(state: RunState, options: StageOptions, context: StageContext) -> None:
    """Drop exact and near-duplicate problems (the first in pool order stays) and duplicate chains."""
    settings = options.dedup
    count = state.opened("dedup", settings.enabled)
    if count is None:
        return
    chains = duplicate_chains(state, context) if settings.exact_chains else iter(())
    drops = duplicate_problems(state, context, settings)
    if settings.semantic.enabled:
        drops += semantic_duplicates(state, context, settings.semantic, {p for p, *_ in drops})
    problem_drops = [(p, reason, {"duplicate_of": state.problem_ids[k], **match}) for p, reason, k, match in drops]
    state.apply(count, chains=chains, problems=problem_drops)


ProblemDrop = tuple[int, str, int, dict[str, Any]]  # problem, reason, kept problem, {match, similarity, ...}
EXACT: dict[str, Any] = {"match": "exact", "similarity": 1.0}


def duplicate_problems(state: RunState, context: StageContext, settings: DedupOptions) -> list[ProblemDrop]:
    """``(problem, reason, kept problem, match)`` for every exact or near-duplicate of an earlier alive problem;
    ``match`` says the kind of match (``exact``, ``shingles``, ``shingles_same_gold``) and its similarity."""
    params = {"options": options_dict(settings)}
    job = run_parts(state, context, "dedup-problems", dedup_problem_keys, params, table="problems")
    problems, exact, bands = _problem_keys(job, int(state.problem_alive.sum()), settings.near)
    first, kept = first_of_equal(exact)
    drops = [(int(problems[i]), "duplicate_problem", int(problems[kept[i]]), EXACT) for i in np.flatnonzero(~first)]
    if settings.near and first.any():
        problems = problems[first]
        buckets = save_buckets(context, problems, compacted(bands, first))
        del bands  # the candidate tasks memory-map the saved buckets: the driver holds no band keys meanwhile
        drops += near_duplicates(state, context, problems, buckets, params)
    return drops


def compacted(rows: np.ndarray, keep: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``rows[keep]`` moved to the front of ``rows`` itself, a chunk at a time, and returned as a view of it: the
    band keys (512 bytes a problem at the same-gold threshold) are never held twice. A kept row only moves up, so
    it never overwrites a row not yet moved."""
    kept = np.flatnonzero(keep)
    for start in range(0, len(kept), chunk):
        moved = kept[start : start + chunk]
        rows[start : start + len(moved)] = rows[moved]
    return rows[: len(kept)]


def _problem_keys(job: Any, rows: int, near: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dedup keys of every alive problem as arrays: problem, exact digest (2 words), band keys."""
    problems = np.zeros(rows, dtype=np.int64)
    exact = np.zeros((rows, 2), dtype=np.uint64)
    bands: np.ndarray | None = None
    for position, (problem, digest, keys) in enumerate(rows_of(job)):
        if bands is None:
            bands = np.zeros((rows, len(keys) if near else 0), dtype=np.uint32)
        problems[position] = problem
        exact[position] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint64)
        bands[position] = keys
    return problems, exact, bands if bands is not None else np.zeros((0, 0), dtype=np.uint32)


def duplicate_chains(state: RunState, context: StageContext) -> Iterator[DropItem]:
    """Exact duplicate chains within a problem (normalised text digest), the first in pool order kept.

    The duplicates are found now (`curation.pool.store.later_equal`, a sixteenth of the keys sorted at a time)
    and their drops made as the runner takes them, the kept chain's id read a batch at a time: a pool where
    sampling repeats chains has a drop per repeat, and none is held.
    """
    job = run_parts(state, context, "dedup-chains", dedup_chain_digests, {})
    rows = int(state.chain_alive.sum())
    keys = np.zeros((rows, 3), dtype=np.uint64)  # problem, digest
    chains = np.zeros(rows, dtype=np.int64)
    for position, (chain, digest) in enumerate(rows_of(job)):
        chains[position] = chain
        keys[position, 1:] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint64)
    keys[:, 0] = state.chain_problem[chains]
    duplicates, kept = later_equal(keys, 1)
    del keys
    return _duplicate_chain_drops(state, chains[duplicates], chains[kept])


def _duplicate_chain_drops(state: RunState, duplicates: np.ndarray, kept: np.ndarray) -> Iterator[DropItem]:
    for start in range(0, len(duplicates), ID_BATCH):
        kept_ids = state.chain_ids(kept[start : start + ID_BATCH].tolist())
        for chain, kept_id in zip(duplicates[start : start + ID_BATCH].tolist(), kept_ids, strict=True):
            yield chain, "duplicate_chain", {"duplicate_of": kept_id}


def save_buckets(context: StageContext, problems: np.ndarray, bands: np.ndarray) -> Path | None:
    """The LSH buckets of ``bands`` (`lsh_buckets`) with the problems and band keys, saved as ``.npy`` files in
    a folder named from their content (`write_once`), which the candidate tasks memory-map: each reads the few
    rows of its buckets, so neither they nor the driver hold the band keys of every problem (4 bytes x 128
    bands per problem at the same-gold threshold). None when no bucket has two members."""
    members, starts, band_of = lsh_buckets(bands)
    if len(starts) <= 1:
        return None
    arrays = {"problems": problems, "bands": bands, "members": members, "starts": starts, "band": band_of}

    def fill(partial: Path) -> None:
        for name, values in arrays.items():
            np.save(partial / f"{name}.npy", values)

    return write_once(context.work_dir / "buckets" / f"{_digest_of(bands)}-{_digest_of(problems)}", fill)


def near_duplicates(
    state: RunState, context: StageContext, problems: np.ndarray, buckets: Path | None, params: dict[str, Any]
) -> list[ProblemDrop]:
    """`curation.stages.dedup`'s LSH pass: in pool order, a problem whose verified candidates include a kept (not
    duplicate) earlier problem is a near-duplicate of the earliest such; otherwise it is kept.

    Candidates are the members of each LSH bucket (`save_buckets`: problems with equal band keys); a sharded
    job checks each pair's exact shingle Jaccard in the first band the two share only, so memory holds one
    bucket at a time and never a list of all candidate pairs.
    """
    pairs: list[array[Any]] = [array("q"), array("q"), array("d"), array("b")]  # later, earlier, similarity, kind
    if buckets is not None:
        starts = np.load(buckets / "starts.npy")
        common = {**state.task_store(), "buckets": str(buckets), **params}
        items = tuple({**common, "start": a, "stop": b} for a, b in _bucket_slices(starts, PAIRS_PER_TASK))
        for earlier, later, similarity, kind in rows_of(run_items(context, "dedup-near", near_duplicate_pairs, items)):
            for column, value in zip(pairs, (later, earlier, similarity, NEAR_KINDS.index(kind)), strict=True):
                column.append(value)
    return first_kept(problems.tolist(), PairMatches(*pairs), "near_duplicate_problem")


NEAR_KINDS = ("shingles", "shingles_same_gold")  # `near_match`'s kinds


class PairMatches(Mapping[int, dict[int, dict[str, Any]]]):
    """The verified near-duplicate pairs as arrays sorted by the later problem (about 25 bytes a pair), read as
    `first_kept`'s mapping ``later -> {earlier: {match, similarity}}``, built for one problem at a time: the pairs
    grow faster than the pool where many problems are near-copies (244k of 770k problems at 10M chains of
    bench/curation/sharded.py's pool), and a dict per pair was about 300 bytes."""

    def __init__(self, later: array[int], earlier: array[int], similarity: array[float], kind: array[int]):
        order = np.argsort(np.frombuffer(later, dtype=np.int64), kind="stable")
        self.later = np.frombuffer(later, dtype=np.int64)[order]
        self.earlier = np.frombuffer(earlier, dtype=np.int64)[order]
        self.similarity = np.frombuffer(similarity, dtype=np.float64)[order]
        self.kind = np.frombuffer(kind, dtype=np.int8)[order]

    def __getitem__(self, problem: int) -> dict[int, dict[str, Any]]:
        low, high = key_run(self.later, problem)
        if low == high:
            raise KeyError(problem)
        found = zip(*(a[low:high].tolist() for a in (self.earlier, self.similarity, self.kind)), strict=True)
        return {earlier: {"match": NEAR_KINDS[kind], "similarity": similarity} for earlier, similarity, kind in found}

    def __iter__(self) -> Iterator[int]:
        return iter(np.unique(self.later).tolist())

    def __len__(self) -> int:
        return len(np.unique(self.later))


def first_kept(
    problems: list[int], matches: Mapping[int, Mapping[int, dict[str, Any]]], reason: str
) -> list[ProblemDrop]:
    """In pool order: a problem matching a kept (not dropped) earlier problem is dropped as a duplicate of the
    earliest such, with that match's evidence; otherwise it is kept."""
    kept: set[int] = set()
    found: list[ProblemDrop] = []
    for problem in problems:
        earlier = [e for e in matches.get(problem, {}) if e in kept]
        if earlier:
            found.append((problem, reason, min(earlier), matches[problem][min(earlier)]))
        else:
            kept.add(problem)
    return found


def semantic_duplicates(
    state: RunState, context: StageContext, options: SemanticDedupOptions, dropped: set[int]
) -> list[ProblemDrop]:
    """Near-duplicates by meaning among the problems not already ``dropped``, in pool order (`first_kept`):
    embeddings in one shard task per part of the pool (int16 ``.npy`` files: `curation.meaning.index.to_grid`),
    one index over them all that the pair tasks memory-map, and in each pair task a slice's nearest earlier problems
    confirmed by the rule of `curation.meaning` (golds, where both are known, agreeing)."""
    check_semantic(options, "curate.stages.dedup.semantic", ("rule",))
    params = {"options": options_dict(options), "folder": str(context.work_dir / "embeddings")}
    job = run_parts(state, context, "dedup-embed", dedup_embeddings, params, table="problems")
    parts = sorted(rows_of(job), key=lambda row: row[1][0] if row[1] else -1)
    problems = np.asarray([p for _, positions in parts for p in positions], dtype=np.int64)
    if len(problems) < 2:
        return []

    def fill(partial: Path) -> None:
        vectors = np.concatenate([np.load(path) for path, positions in parts if positions])
        np.save(partial / "vectors.npy", vectors)
        np.save(partial / "problems.npy", problems)

    index = write_once(context.work_dir / "semantic-index" / f"{job.digest}", fill)
    common = {**state.task_store(), "index": str(index), "options": options_dict(options)}
    items = tuple({**common, "start": a, "stop": min(a + EMBEDDED_PER_TASK, len(problems))}
                  for a in range(0, len(problems), EMBEDDED_PER_TASK))  # fmt: skip
    matches: dict[int, dict[int, dict[str, Any]]] = {}
    for earlier, later, match in rows_of(run_items(context, "dedup-semantic", semantic_pairs, items)):
        matches.setdefault(later, {})[earlier] = {"match": "semantic", **match}
    survivors = [p for p in problems.tolist() if p not in dropped]
    return first_kept(survivors, matches, "near_duplicate_problem")


EMBEDDED_PER_TASK = 20_000


def dedup_embeddings(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[vectors file, positions]`` for a part: its alive problems embedded (`to_grid`: int16), saved once."""
    options = to_options(SemanticDedupOptions, item["options"])
    rows = [(position, row["problem"]) for position, row in alive_rows(item)]
    folder = Path(item["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    key = json.dumps([item["mask"], item["options"]["model"], "grid16"]).encode()  # which rows, model, format
    path = folder / f"part-{item['part']}-{hashlib.sha256(key).hexdigest()[:16]}.npy"
    if not path.is_file():
        vectors = to_grid(embed_texts([text for _, text in rows], options))
        partial = folder / f".{path.name}.{os.getpid()}.npy"
        np.save(partial, vectors)
        partial.replace(path)
    yield [str(path), [position for position, _ in rows]]


def semantic_pairs(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[earlier problem, later problem, match]`` for each problem of a slice of the index whose nearest
    earlier problems include one the rule confirms (`curation.meaning.confirm.confirm`, golds agreeing)."""
    options = to_options(SemanticDedupOptions, item["options"])
    folder = Path(item["index"])
    grid = np.load(folder / "vectors.npy", mmap_mode="r")
    problems = np.load(folder / "problems.npy")
    semantic_index = SemanticIndex.of_grid(range(len(problems)), grid)
    similarities, rows = semantic_index.nearest(from_grid(grid[item["start"] : item["stop"]]), options.k + 1)
    with problem_reader(item) as reader:
        for offset, (sims, near) in enumerate(zip(similarities, rows, strict=True)):
            row = item["start"] + offset
            earlier = [
                (float(s), int(r)) for s, r in zip(sims, near, strict=True) if r < row and s >= options.threshold
            ]
            if earlier:
                yield from _confirmed(row, earlier, problems, reader, options)


def _confirmed(
    row: int, earlier: list[tuple[float, int]], problems: np.ndarray, reader: Any, options: SemanticDedupOptions
) -> Iterator[list[Any]]:
    texts = list(reader.read_many(problems[[row, *(r for _, r in earlier)]].tolist()))
    later = texts[0]
    for (similarity, other), record in zip(earlier, texts[1:], strict=True):
        match = confirm(later["problem"], record["problem"], similarity, options)
        if match is None or not answers_agree(later["answer"], record["answer"]):
            continue
        detail = {k: v for k, v in match.to_dict().items() if k not in ("key", "method")}
        yield [int(problems[other]), int(problems[row]), detail]


def lsh_buckets(bands: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every LSH bucket with at least two members: the members (positions, ascending within a bucket), where
    each bucket starts in that array (plus the end), and each bucket's band.

    Found with arrays, a band at a time (an array per bucket cost about a hundred bytes of object per bucket,
    and a pool of many near-copies has millions of two-member buckets)."""
    members, sizes, band_of = [np.zeros(0, dtype=np.int32)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, np.int16)]
    for band in range(bands.shape[1] if len(bands) else 0):
        order = np.argsort(bands[:, band], kind="stable")
        keys = bands[order, band]
        lengths = np.diff(np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1], [True]))))
        shared = lengths > 1
        members.append(order[np.repeat(shared, lengths)].astype(np.int32))
        sizes.append(lengths[shared])
        band_of.append(np.full(int(shared.sum()), band, dtype=np.int16))
    starts = np.concatenate(([0], np.cumsum(np.concatenate(sizes)))).astype(np.int64)
    return np.concatenate(members), starts, np.concatenate(band_of)


def _bucket_slices(starts: np.ndarray, pairs_per_task: int) -> Iterator[tuple[int, int]]:
    """Ranges of buckets holding about ``pairs_per_task`` member pairs each."""
    begin = pairs = 0
    sizes = np.diff(starts).tolist()
    for index, size in enumerate(sizes):
        pairs += size * (size - 1) // 2
        if pairs >= pairs_per_task:
            yield begin, index + 1
            begin, pairs = index + 1, 0
    if begin < len(sizes):
        yield begin, len(sizes)


def _digest_of(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def find_duplicates(
    texts: Mapping[str, str], options: DedupOptions, answers: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """The dedup stage's decisions on ``texts`` (problem id -> text, pool order): each duplicate's
    ``(reason, kept id)``. ``answers`` (problem id -> gold) enables the same-gold threshold.

    A library entry (benches, tests, a caller's own texts): the stage itself runs, on the local executor.
    """
    gold = answers or {}
    problems = [Problem(pid, text, gold.get(pid, ""), "texts") for pid, text in texts.items()]
    chains = [Chain(f"{pid}/text", pid, text) for pid, text in texts.items()]
    with items_run(problems, chains) as (state, context):
        drops = duplicate_problems(state, context, options)
        found = {state.problem_ids[p]: (reason, state.problem_ids[k]) for p, reason, k, _ in drops}
    return {pid: found[pid] for pid in texts if pid in found}


STAGE = StepStage("dedup", dedup, DedupOptions)
