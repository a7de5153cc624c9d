"""Deduplicate problems: exact after normalisation, then near-duplicates with MinHash LSH.

Normalisation (`normalize_problem`): Unicode NFKC, lower case, the operators ``+ - * / = < > ^`` kept as
words of their own, every other run of non-alphanumeric characters (LaTeX braces, ``$``, punctuation) one
space. Two problems with the same normalised text are exact duplicates; ``2^x-1=3^y`` and ``2^x+1=3^y`` are
not (`normalize_text`, which drops operators, stays decontamination's tokeniser). Near-duplicates: MinHash
(``num_perm`` permutations) over word ``shingle_words``-grams finds candidate pairs through LSH, and a
candidate counts only when the *exact* Jaccard of the two shingle sets reaches ``threshold`` (0.8), or
``same_answer_threshold`` (0.5) when the two golds agree (`eval.grader.verify`). One or two words changed in a
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
groups by ``bench/near_duplicates.py``.

Dedup precision: two problems whose numbers (`curation.similarity.numbers_of`) differ and whose golds differ
are never near-duplicates, whatever their Jaccard — MATH's "How many positive 3-digit numbers are divisible by
11?" is not a copy of "... by 7?" — unless ``template: true`` asks for template-level dedup.

Pool order decides which copy stays (the first), so results are deterministic. A dropped duplicate takes
its chains with it (reason ``duplicate_problem`` / ``near_duplicate_problem``, detail names the kept id).
Exact duplicate chains within one problem are dropped too (``duplicate_chain``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np

from curation.funnel import CurationState
from curation.options import DedupOptions
from curation.sharding import map_chunks
from curation.similarity import content_tokens, numbers_of
from eval.grader import verify

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_NOT_WORD_OR_OPERATOR = re.compile(r"[^\w+\-*/=<>^]+|_", re.UNICODE)
_OPERATOR = re.compile(r"\s*([+\-*/=<>^])\s*")

LSH_RECALL = 0.999  # chance that a pair exactly at the lowest threshold shares a band
# Installed in every worker by `_set_shingling` (module-level so the signature function stays picklable).
_SHINGLE_SIZE = 3
_NUM_PERM = 128
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


def _set_shingling(shingle_words: int, num_perm: int) -> None:
    global _SHINGLE_SIZE, _NUM_PERM
    _SHINGLE_SIZE, _NUM_PERM = shingle_words, num_perm


def minhash_signature(normalized: str) -> np.ndarray:
    """MinHash hash values of a normalised text (a pure function, so it shards over processes)."""
    from datasketch import MinHash

    signature = MinHash(num_perm=_NUM_PERM, seed=1, scheme=_SCHEME)
    signature.update_batch([s.encode("utf-8") for s in sorted(word_shingles(normalized, _SHINGLE_SIZE))])
    return signature.hashvalues


def find_duplicates(
    texts: dict[str, str], options: DedupOptions, workers: int = 1, answers: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """Map each duplicate id to ``(reason, kept_id)``; the first of each group (in ``texts`` order) stays.

    ``answers`` (problem id -> gold) enables the lower ``same_answer_threshold`` for pairs whose golds agree.
    """
    normalized = {pid: normalize_problem(t) for pid, t in texts.items()}
    duplicates: dict[str, tuple[str, str]] = {}
    first: dict[str, str] = {}
    for pid, norm in normalized.items():
        kept = first.setdefault(norm, pid)
        if kept != pid:
            duplicates[pid] = ("duplicate_problem", kept)
    if options.near:
        survivors = [pid for pid in normalized if pid not in duplicates]
        duplicates.update(_near_duplicates(survivors, normalized, options, workers, answers or {}, texts))
    return duplicates


def _near_duplicates(
    ids: list[str],
    normalized: dict[str, str],
    options: DedupOptions,
    workers: int,
    answers: Mapping[str, str],
    originals: Mapping[str, str],
) -> dict[str, tuple[str, str]]:
    from datasketch import MinHash, MinHashLSH

    texts = [normalized[i] for i in ids]
    signatures = map_chunks(
        minhash_signature,
        texts,
        workers=workers,
        setup=_set_shingling,
        setup_args=(options.shingle_words, options.num_perm),
    )
    lowest = lowest_threshold(options, bool(answers))
    lsh = MinHashLSH(num_perm=options.num_perm, params=lsh_bands(lowest, options.num_perm))
    order = {pid: index for index, pid in enumerate(ids)}
    found: dict[str, tuple[str, str]] = {}
    for pid, values in zip(ids, signatures, strict=True):
        signature = MinHash(num_perm=options.num_perm, seed=1, hashvalues=values, scheme=_SCHEME)
        shingles = word_shingles(normalized[pid], options.shingle_words)
        size = options.shingle_words
        similar = {m: jaccard(shingles, word_shingles(normalized[m], size)) for m in lsh.query(signature)}
        matches = [m for m, value in similar.items() if near_enough(value, pid, m, options, answers, originals)]
        if matches:
            found[pid] = ("near_duplicate_problem", min(matches, key=order.__getitem__))
            continue
        lsh.insert(pid, signature)
    return found


def lowest_threshold(options: DedupOptions, with_answers: bool) -> float:
    """The lowest Jaccard any rule accepts: the LSH bands must catch pairs down to it."""
    if with_answers and options.same_answer_threshold is not None:
        return min(options.threshold, options.same_answer_threshold)
    return options.threshold


def near_enough(
    similarity: float, a: str, b: str, options: DedupOptions, answers: Mapping[str, str], texts: Mapping[str, str]
) -> bool:
    """A near-duplicate pair: Jaccard at the threshold, or at the lower one when golds (and math) agree.

    Never two problems whose numbers and golds both differ (`different_problems`) unless ``options.template``
    (the lower threshold already asks for agreeing golds).
    """
    if similarity >= options.threshold:
        return options.template or not different_problems(texts[a], texts[b], answers.get(a), answers.get(b))
    lower = options.same_answer_threshold
    if lower is None or similarity < lower or a not in answers or b not in answers:
        return False
    if options.same_content and content_tokens(texts[a]) != content_tokens(texts[b]):
        return False
    return answers_agree(answers[a], answers[b])


def different_problems(text_a: str, text_b: str, gold_a: str | None, gold_b: str | None) -> bool:
    """Other numbers *and* another gold: a template sibling ("... divisible by 11?" vs "... by 7?"), which is a
    different problem for training. Without both golds nothing is known, so this says False."""
    if not gold_a or not gold_b or set(numbers_of(text_a)) == set(numbers_of(text_b)):
        return False
    return not answers_agree(gold_a, gold_b)


def answers_agree(a: str, b: str) -> bool:
    """Golds equal as the grader sees them (`eval.grader.verify`), an empty gold agreeing with nothing."""
    if not a.strip() or not b.strip():
        return False
    return a.strip() == b.strip() or verify(a, b, timeout_s=2.0)


def lsh_bands(threshold: float, num_perm: int, recall: float = LSH_RECALL) -> tuple[int, int]:
    """``(bands, rows)``: the most rows per band whose chance of a shared band at ``threshold`` is ``recall``."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def run_dedup(state: CurationState, options: DedupOptions, workers: int = 1) -> None:
    """Drop duplicate problems (keeping the first) and exact duplicate chains within a problem."""
    count = state.begin("dedup", options.enabled)
    if not options.enabled:
        state.apply(count)
        return
    texts = {pid: p.problem for pid, p in state.problems.items()}
    answers = {pid: p.answer for pid, p in state.problems.items()}
    problems = {
        pid: (reason, {"duplicate_of": kept})
        for pid, (reason, kept) in find_duplicates(texts, options, workers, answers).items()
    }
    chains: dict[str, tuple[str, dict[str, Any]]] = {}
    if options.exact_chains:
        seen: dict[tuple[str, bytes], str] = {}
        for chain in state.chains.values():
            key = (chain.problem_id, text_digest(chain.text))
            kept = seen.setdefault(key, chain.id)
            if kept != chain.id:
                chains[chain.id] = ("duplicate_chain", {"duplicate_of": kept})
    for pid, (_, detail) in problems.items():
        state.problem_notes[pid]["dedup"] = detail
    state.apply(count, chains=chains, problems=problems)
