"""Preference pairs for fitness: curated pairs split by problem into train / selection / test.

Splitting by problem (``provenance.problem_id``, else the pair id) keeps every held-out pair's problem
unseen in training. Assignment is by a seeded hash of the problem id, so it does not depend on file order;
caps keep the first pairs in hash order. ``selection`` scores are the fitness the proposer sees; ``test``
scores are never shown to it and tell whether the best objectives generalise beyond what was selected on.
Pairs with a side longer than ``max_pair_chars`` are left out first (the cost of a fitness run grows with
length). The split files and ``split.json`` (counts that reconcile: read = too long + train + selection +
test + over cap) go to ``discover/data/``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.records import DataError, read_jsonl, sha256_file, write_json, write_jsonl

SPLITS = ("train", "selection", "test")


@dataclass(frozen=True)
class PairSplits:
    paths: dict[str, str]
    summary: dict[str, Any]


def problem_key(row: Mapping[str, Any]) -> str:
    provenance = row.get("provenance")
    if isinstance(provenance, Mapping) and provenance.get("problem_id"):
        return str(provenance["problem_id"])
    return str(row["id"])


def _bucket(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"discover-split\x1f{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    rows: Sequence[Mapping[str, Any]], *, seed: int, selection: float, test: float
) -> dict[str, list[Mapping[str, Any]]]:
    """Rows per split, by a seeded hash of their problem, each split in hash order (then file order)."""
    keyed = sorted(enumerate(rows), key=lambda item: (_bucket(problem_key(item[1]), seed), item[0]))
    splits: dict[str, list[Mapping[str, Any]]] = {name: [] for name in SPLITS}
    for _, row in keyed:
        value = _bucket(problem_key(row), seed)
        name = "selection" if value < selection else "test" if value < selection + test else "train"
        splits[name].append(row)
    return splits


def write_benchmark_halves(problems: Sequence[Any], out: Path, *, seed: int, limit: int | None) -> dict[str, str]:
    """Benchmark problems split by a seeded hash of their id into selection / test halves (each capped at
    ``limit``), written as ``benchmark_<half>.jsonl`` rows ``{"id", "problem", "answer"}``.

    Raises:
        DataError: A half is left empty.
    """
    ordered = sorted(problems, key=lambda p: _bucket(str(p.id), seed))
    halves = {
        "selection": [p for p in ordered if _bucket(str(p.id), seed) < 0.5],
        "test": [p for p in ordered if _bucket(str(p.id), seed) >= 0.5],
    }
    paths = {}
    for name, half in halves.items():
        if not half:
            raise DataError(f"the benchmark's {len(problems)} problems leave its {name} half empty")
        rows = [{"id": p.id, "problem": p.problem, "answer": p.answer} for p in half[:limit]]
        paths[name] = str(out / f"benchmark_{name}.jsonl")
        write_jsonl(paths[name], rows)
    return paths


def write_splits(
    source: str | Path,
    out: Path,
    *,
    seed: int,
    selection: float,
    test: float,
    caps: Mapping[str, int | None],
    max_pair_chars: int | None = None,
) -> PairSplits:
    """Validate ``source`` (every row, as training would), drop pairs longer than ``max_pair_chars`` (either
    side), split, cap and write the splits.

    Raises:
        DataError: Invalid rows (file, row and field named), or a split left empty.
    """
    from limo.training.preference import load_pairs  # deferred: imports TRL and torch

    load_pairs(source)  # validation only: the raw rows keep their provenance
    rows = read_jsonl(source)
    short = [r for r in rows if max_pair_chars is None or max(len(r["chosen"]), len(r["rejected"])) <= max_pair_chars]
    splits = assign_splits(short, seed=seed, selection=selection, test=test)
    over_cap = {
        name: max(0, len(split) - caps[name]) if caps.get(name) is not None else 0  # type: ignore[operator]
        for name, split in splits.items()
    }
    kept = {name: split[: len(split) - over_cap[name]] for name, split in splits.items()}
    empty = [name for name, split in kept.items() if not split]
    if empty:
        raise DataError(
            f"{source}: {len(rows)} pairs leave the {', '.join(empty)} split empty; curate more pairs "
            "or change discover.fitness.selection_fraction / test_fraction"
        )
    paths = {name: str(out / f"{name}.jsonl") for name in SPLITS}
    for name in SPLITS:
        write_jsonl(paths[name], kept[name])
    summary = {
        "source": str(source),
        "source_sha256": sha256_file(source),
        "read": len(rows),
        "too_long": len(rows) - len(short),
        "max_pair_chars": max_pair_chars,
        "pairs": {name: len(kept[name]) for name in SPLITS},
        "over_cap": over_cap,
        "problems": {name: len({problem_key(r) for r in kept[name]}) for name in SPLITS},
    }
    assert len(rows) == len(rows) - len(short) + sum(len(k) for k in kept.values()) + sum(over_cap.values())
    write_json(out / "split.json", summary)
    return PairSplits(paths, summary)
