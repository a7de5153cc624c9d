"""Shard functions of a sharded curation run: one part of a pool table in, compact rows out.

Each function is ``function(index, item)`` for `curation.executors.ShardJob`: module-level (every engine
imports it by name), deterministic, and reading only files its JSON item names — the pool store
(`curation.pool_store`), a mask of the rows still alive, and for decontamination a pickled read-only
context. Each applies the very per-item function the in-memory stage applies (`validate.chain_problem`,
`answer_check.graded_text` + `eval.grader.grade_many`, `dedup.normalize_problem` / `minhash_signature` / `near_enough`,
`ContaminationIndex.scan` / `.confirm`, `quality` scoring) and yields JSON lists of a few numbers per row,
so the driver reads the results back without ever holding the texts.

A context file is written once by the driver (`write_context`) under a name derived from what determines
its content, and loaded once per process (`load_context`). It is our own pickle, read back by our own code.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from curation import quality
from curation.answer_check import NO_ANSWER, graded_text, unconfirmed
from curation.decontam import Candidate
from curation.dedup import (
    _set_shingling,
    jaccard,
    lowest_threshold,
    lsh_bands,
    minhash_signature,
    near_enough,
    normalize_problem,
    text_digest,
)
from curation.dedup import word_shingles as shingles_of
from curation.options import AnswerCheckOptions, DedupOptions, QualityOptions, ValidateOptions
from curation.pool_rows import CIRCULAR
from curation.pool_store import Table, column
from curation.schema import HUMAN, Chain
from curation.sharding import batches
from curation.validate import chain_problem, problem_problem
from eval.grader import grade_many
from eval.options import to_options
from eval.problem import Problem
from eval.records import atomic_writer

GRADE_BATCH = 4096  # chains held at once by a grading task


@lru_cache(maxsize=4)
def load_mask(path: str) -> np.ndarray:
    """A stage's alive mask (one bool per table row), memory-mapped."""
    return np.load(path, mmap_mode="r")


@lru_cache(maxsize=4)
def load_context(path: str) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - written by this run's driver (write_context)


def write_context(folder: Path, key: Any, value: Any) -> str:
    """Pickle ``value`` once to ``<folder>/context-<digest of key>.pkl``; returns the path."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = folder / f"context-{digest}.pkl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
    return str(path)


def alive_rows(item: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    """``(index, row)`` for the rows of ``item['part']`` of ``item['table']`` that ``item['mask']`` marks alive."""
    table = Table.open(Path(item["store"]), item["table"])
    mask = load_mask(item["mask"])
    with open(table.part_path(item["part"]), "rb") as handle:
        for index, line in enumerate(handle, start=table.bounds[item["part"]]):
            if mask[index]:
                yield index, json.loads(line)


def validate_problems(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, reason, characters of its text]`` for every alive problem validation drops."""
    options = to_options(ValidateOptions, item["options"])
    for position, row in alive_rows(item):
        problem = Problem.from_dict(row)
        reason = problem_problem(problem, options)
        if reason:
            yield [position, reason, len(problem.problem)]


def validate_chains(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[chain, reason, prompt setting]`` for every alive chain validation drops."""
    options = to_options(ValidateOptions, item["options"])
    for position, row in alive_rows(item):
        chain = Chain.from_dict(row)
        reason = chain_problem(chain, options, {chain.problem_id})  # an alive chain's problem is alive
        if reason:
            yield [position, reason, chain.prompt_setting]


def answer_check_chains(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[chain, status, correct, extracted, reason, why unconfirmed, circular gold, pool marked incorrect]`` for
    every alive chain (distinct (gold, text, problem) triples graded once; ``why unconfirmed`` is
    `answer_check.unconfirmed`'s reason for a model chain, None for a confirmed or human one)."""
    options = to_options(AnswerCheckOptions, item["options"])
    graded: dict[tuple[str, str, str], Any] = {}
    for batch in batches(alive_rows(item), GRADE_BATCH):
        chains = [(position, Chain.from_dict(row)) for position, row in batch]
        problems = _problems(item["store"], [position for position, _ in chains])
        texts = [graded_text(chain) for _, chain in chains]
        triples = [
            (problems[position][0], text, problems[position][1])
            for (position, _), text in zip(chains, texts, strict=True)
            if text is not None
        ]
        new = [triple for triple in dict.fromkeys(triples) if triple not in graded]
        graded.update(zip(new, grade_many(new, workers=1, timeout_s=options.timeout_s, progress=False), strict=True))
        for (position, chain), text in zip(chains, texts, strict=True):
            gold, problem = problems[position]
            verdict = graded[(gold, text, problem)] if text is not None else NO_ANSWER
            why = None if chain.generator == HUMAN else unconfirmed(chain, verdict)
            circular = chain.provenance.get("gold") == CIRCULAR
            marked = chain.provenance.get("pool_correct") is False
            yield [position, verdict.status, verdict.correct, verdict.extracted, verdict.reason, why, circular, marked]


def _problems(store: str, chains: list[int]) -> dict[int, tuple[str, str]]:
    """Each chain's gold answer and problem text, read from the problems table (once per problem)."""
    problem_of = column(store, "chain_problem")
    problems = sorted({int(problem_of[c]) for c in chains})
    rows = Table.open(Path(store), "problems").read_many(problems)
    found = dict(zip(problems, ((row["answer"], row["problem"]) for row in rows), strict=True))
    return {c: found[int(problem_of[c])] for c in chains}


def dedup_problem_keys(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, digest of the normalised text, LSH band keys]`` per alive problem (bands only when near)."""
    options = to_options(DedupOptions, item["options"])
    _set_shingling(options.shingle_words, options.num_perm)
    bands, rows = lsh_bands(lowest_threshold(options, True), options.num_perm)  # every problem has a gold
    for position, row in alive_rows(item):
        normalized = normalize_problem(row["problem"])
        keys: list[int] = []
        if options.near:
            values = minhash_signature(normalized)
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


def near_duplicate_pairs(index: int, item: dict[str, Any]) -> Iterator[list[int]]:
    """``[earlier problem, later problem]`` for every pair of a slice of LSH buckets that `dedup.near_enough`
    accepts (exact shingle Jaccard at the threshold, or at the lower one when the golds agree); a pair is
    checked in the first band the two share only."""
    options = to_options(DedupOptions, item["options"])
    folder = Path(item["buckets"])
    problems, bands, members, starts, band_of = (
        np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("problems", "bands", "members", "starts", "band")
    )
    with Table.open(Path(item["store"]), "problems").reader() as reader:
        for bucket in range(item["start"], item["stop"]):
            positions = members[starts[bucket] : starts[bucket + 1]]
            yield from _bucket_pairs(positions, problems, bands[:, : band_of[bucket]], reader, options)


def _bucket_pairs(
    positions: np.ndarray, problems: np.ndarray, earlier_bands: np.ndarray, reader: Any, options: DedupOptions
) -> Iterator[list[int]]:
    rows = list(reader.read_many(problems[positions].tolist()))
    texts = {str(i): row["problem"] for i, row in enumerate(rows)}  # keyed as `near_enough` takes them
    answers = {str(i): row["answer"] for i, row in enumerate(rows)}
    shingles = [shingles_of(normalize_problem(text), options.shingle_words) for text in texts.values()]
    keys = earlier_bands[positions]
    for later in range(1, len(positions)):
        shared_before = (keys[:later] == keys[later]).any(axis=1)  # already checked in an earlier band's bucket
        for earlier in np.flatnonzero(~shared_before).tolist():
            similarity = jaccard(shingles[later], shingles[earlier])
            if near_enough(similarity, str(later), str(earlier), options, answers, texts):
                yield [int(problems[positions[earlier]]), int(problems[positions[later]])]


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


def quality_chains(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[chain, score, words, repetition, drop reason or None]`` per alive chain."""
    quality._setup(to_options(QualityOptions, item["options"]))
    for position, row in alive_rows(item):
        note, problem = quality._assess_item((row["text"], row["truncated"], row["final_answer"]))
        yield [position, note.score, note.words, note.repetition, problem]


def write_rows_file(path: Path, rows: Iterator[Any]) -> None:
    """JSON lines of a driver-side input file for a job (written atomically)."""
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
