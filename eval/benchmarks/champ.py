"""CHAMP problems (the embedded default pool) and the `champ_heldout` split.

The problems live here rather than in `curation` because `champ_heldout` is a benchmark: evaluation
loads it, and curation excludes it. The split is a seeded, per-category 20% draw, so every part of the
toolkit that asks for it gets the same ids without a file.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from eval.problem import Problem

CHAMP_VERSION = "v0"
HELDOUT_FRACTION = 0.2
HELDOUT_SEED = 0


@lru_cache(maxsize=2)
def load_champ_raw(version: str = CHAMP_VERSION) -> Any:
    """The `champ_dataset.Dataset` object (loaded once per process; about 0.7 s)."""
    import champ_dataset

    return champ_dataset.load(version)


def champ_package_version() -> str:
    from importlib.metadata import version

    return version("champ-dataset")


def load_champ_problems(version: str = CHAMP_VERSION) -> list[Problem]:
    """CHAMP's 270 problems with gold answers, human solutions and categories, in id order."""
    dataset = load_champ_raw(version)
    provenance = {"dataset": "champ-dataset", "package_version": champ_package_version(), "version": version}
    return [_to_problem(p, provenance) for p in dataset.problems.values()]


def _to_problem(raw: Any, provenance: dict[str, str]) -> Problem:
    return Problem(
        id=raw.identifier,
        problem=raw.text,
        answer=raw.answer,
        source="champ",
        subject=raw.category,
        solution="\n".join(step.text for step in raw.solution.steps),
        extra=dict(provenance),
    )


def heldout_split(
    problems: Iterable[Problem], *, fraction: float = HELDOUT_FRACTION, seed: int = HELDOUT_SEED
) -> tuple[list[Problem], list[Problem]]:
    """Split problems per subject: ``round(fraction * n)`` of each subject held out, drawn with ``seed``.

    Returns:
        ``(train, heldout)``, each in input order.
    """
    by_subject: dict[str | None, list[Problem]] = defaultdict(list)
    ordered = list(problems)
    for problem in ordered:
        by_subject[problem.subject].append(problem)
    held: set[str] = set()
    for subject in sorted(by_subject, key=str):
        members = sorted(p.id for p in by_subject[subject])
        rng = random.Random(f"{seed}:{subject}")
        held.update(rng.sample(members, round(fraction * len(members))))
    return [p for p in ordered if p.id not in held], [p for p in ordered if p.id in held]


def champ_heldout_ids(*, fraction: float = HELDOUT_FRACTION, seed: int = HELDOUT_SEED) -> frozenset[str]:
    """Ids of the `champ_heldout` benchmark problems."""
    return frozenset(p.id for p in heldout_split(load_champ_problems(), fraction=fraction, seed=seed)[1])
