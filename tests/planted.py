"""Planted copies for measuring decontamination and near-duplicate recall (a test and bench helper, not shipped).

A measurement plants known items in a clean pool and counts how many the stage finds. Decontamination
plants benchmark problems in four forms (`PLANT_KINDS`): verbatim, lightly reworded (`reword`: TeX
dollars dropped, whitespace collapsed, one or two instruction phrases swapped, as a scraped copy
differs), with a prefix and a suffix (`affix`: "Problem 3." ... "Show your work."), and both. Dedup
plants near-duplicates with one or two words changed (`change_words`).

Two rewording tables: `SWAPS` is the one the thresholds were tuned against; `HELD_OUT_SWAPS` was
written separately and is used only to report recall on a rewording the tuning never saw. `split` puts
each id in the tuning or the held-out half by a hash, so both halves are stable across runs.
Everything is seeded; no row of any data set is stored here.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence

PLANT_KINDS = ("verbatim", "reworded", "affixed", "reworded+affixed")
SWAPS = (
    ("Find", "Determine"),
    ("find", "determine"),
    ("What is", "Compute"),
    ("Compute", "Calculate"),
    ("Determine", "Find"),
    ("Simplify", "Reduce"),
    ("Evaluate", "Work out"),
    ("Let ", "Suppose "),
    ("How many", "Find the number of"),
    ("Express your answer", "Give your answer"),
    (" the value of", ""),
    ("If ", "Suppose "),
    ("Suppose ", "Assume "),
)
HELD_OUT_SWAPS = (
    ("What is", "Find"),
    ("Find", "Calculate"),
    ("find", "compute"),
    ("How many", "What is the number of"),
    ("Let ", "Consider "),
    ("Given that", "If"),
    ("Determine", "Compute"),
    ("such that", "so that"),
    ("Express your answer", "Write your answer"),
    ("Compute", "Evaluate"),
)
PREFIXES = ("Problem 3. ", "Solve the following problem. ", "Q: ", "Question 12 (5 points): ")
SUFFIXES = (" Show your work.", " Put your final answer in \\boxed{}.", " Justify your answer.", "")
FILLER_WORDS = ("integer", "value", "number", "circle", "point", "sum", "total", "first", "each", "some")
_SPACES = re.compile(r"\s+")


def reword(text: str, rng: random.Random, swaps: Sequence[tuple[str, str]] = SWAPS, max_swaps: int = 2) -> str:
    """Drop TeX dollars, collapse whitespace and apply up to ``max_swaps`` phrase swaps (seeded order)."""
    text = _SPACES.sub(" ", text.replace("\\$", "\0").replace("$", "").replace("\0", "\\$")).strip()
    done = 0
    for old, new in rng.sample(list(swaps), len(swaps)):
        if done < max_swaps and old in text:
            text = text.replace(old, new, 1)
            done += 1
    return text


def affix(text: str, rng: random.Random) -> str:
    """The text with a prefix and a suffix, as a problem copied out of a worksheet."""
    return rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)


def plant(text: str, kind: str, rng: random.Random, swaps: Sequence[tuple[str, str]] = SWAPS) -> str:
    """One planted form of ``text`` (``kind`` in `PLANT_KINDS`)."""
    if kind == "verbatim":
        return text
    if kind == "reworded":
        return reword(text, rng, swaps)
    if kind == "affixed":
        return affix(text, rng)
    if kind == "reworded+affixed":
        return affix(reword(text, rng, swaps), rng)
    raise ValueError(f"unknown plant kind {kind!r} (known: {', '.join(PLANT_KINDS)})")


def change_words(text: str, changes: int, rng: random.Random) -> str:
    """``text`` with ``changes`` distinct words (whitespace-separated) replaced by other words."""
    words = text.split(" ")
    for index in rng.sample(range(len(words)), changes):
        words[index] = rng.choice([w for w in FILLER_WORDS if w != words[index]])
    return " ".join(words)


def split(identifier: str) -> str:
    """``tune`` or ``held_out``, by a stable hash of the id (about half each)."""
    return "tune" if hashlib.blake2b(identifier.encode("utf-8"), digest_size=2).digest()[0] % 2 == 0 else "held_out"
