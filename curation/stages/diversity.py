"""Diversity: balance domains before the final top-N, as a quota that selection applies.

The stage itself decides nothing: it hands its options on (`Quota`), and `curation.stages.select.select` applies
them to its one ranking (best chain per problem, combined score) before the top N, writing this stage's funnel row
and its drops (stage ``diversity``) first. Two methods (``DiversityOptions.method``):

- ``quota``: walk problems by descending best combined score; a problem whose domain already holds
  ``max_per_domain`` problems (or ``max_fraction`` of N) is dropped (``domain_quota``).
- ``s1``: s1K's sampling. Until N problems are drawn: pick a domain uniformly at random among those with
  problems left, rank that domain's problems by the length of their best chain (longest first), and draw
  one with probability proportional to ``2^-rank``. Undrawn problems are dropped (``not_sampled``).
  A `random.Random(seed)` drives it, so a seed gives one selection.

The domain is the problem's ``subject`` (``unknown`` when the pool has none).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from curation.funnel import UNKNOWN_DOMAIN
from curation.options import (
    DiversityOptions,
    StageOptions,
)
from curation.runner import RunState, StageContext
from curation.stages.base import Stage

T = TypeVar("T")


def quota_drops(ranked: Sequence[T], domain: Callable[[T], str], limit: int) -> dict[T, tuple[str, dict[str, Any]]]:
    """Problems (best first) over their domain's quota, in ranked order, with the drop detail."""
    taken: Counter[str] = Counter()
    drops = {}
    for problem in ranked:
        name = domain(problem)
        if taken[name] >= limit:
            drops[problem] = ("domain_quota", {"domain": name, "limit": limit})
        else:
            taken[name] += 1
    return drops


def s1_sample(by_domain: dict[str, list[tuple[str, int]]], n: int, seed: int) -> list[str]:
    """Draw up to ``n`` problem ids: domain uniform, then 2^-rank by chain length within the domain."""
    rng = random.Random(seed)
    pools = {d: sorted(items, key=lambda item: (-item[1], item[0])) for d, items in sorted(by_domain.items())}
    drawn: list[str] = []
    while len(drawn) < n and pools:
        domain = rng.choice(sorted(pools))
        items = pools[domain]
        weights = [2.0**-rank for rank in range(len(items))]
        index = rng.choices(range(len(items)), weights=weights)[0]
        drawn.append(items.pop(index)[0])
        if not items:
            del pools[domain]
    return drawn


def quota_limit(options: DiversityOptions, n: int) -> int | None:
    limits = [options.max_per_domain] if options.max_per_domain is not None else []
    if options.max_fraction is not None:
        limits.append(max(1, int(options.max_fraction * n)))
    return min(limits) if limits else None


def s1_drops(best: Sequence[tuple[str, str, int]], n: int, seed: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """s1 sampling over ``(problem id, domain, best chain length)``; the problems not drawn, in ``best`` order."""
    by_domain: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for pid, domain, length in best:
        by_domain[domain].append((pid, length))
    kept = set(s1_sample(by_domain, n, seed))
    return {pid: ("not_sampled", {"domain": domain}) for pid, domain, _ in best if pid not in kept}


# ------------------------------------------------------------------------------------------------ shard tasks


# ------------------------------------------------------------------------------------------------ the stage


def domain(state: RunState, problem: int) -> str:
    return state.store.columns.subjects[state.store.columns.problem_subject[problem]] or UNKNOWN_DOMAIN


@dataclass(frozen=True)
class Quota:
    """What the diversity stage hands on: its options, a quota that selection applies over its own ranking
    (`curation.stages.select.select`), under this stage's funnel row."""

    settings: DiversityOptions


def quota_decisions(
    state: RunState,
    best: tuple[np.ndarray, np.ndarray],
    order: Sequence[int],
    settings: DiversityOptions,
    n: int,
    seed: int,
) -> tuple[dict[str, Any], dict[int, tuple[str, dict[str, Any]]]]:
    """The funnel notes (domains in) and the problems the quota drops, with their reason and detail.

    Args:
        best: Selection's alive problems (first-alive-chain order) and their best chains.
        order: The same problems, best score first.
        n: ``select.n``, which ``max_fraction`` and s1's draw count against.

    Raises:
        ValueError: ``method`` is neither ``quota`` nor ``s1``.
    """
    problems, chains = best
    domains = [domain(state, p) for p in problems.tolist()]
    notes = {"method": settings.method, "domains_in": dict(sorted(Counter(domains).items()))}
    if settings.method == "quota":
        limit = quota_limit(settings, n)
        return notes, quota_drops(order, lambda p: domain(state, p), limit) if limit is not None else {}
    if settings.method == "s1":
        lengths = state.store.columns.chain_chars[chains].tolist()
        items = [(state.problem_ids[p], d, k) for p, d, k in zip(problems.tolist(), domains, lengths, strict=True)]
        index = {state.problem_ids[p]: p for p in problems.tolist()}
        return notes, {index[pid]: v for pid, v in s1_drops(items, n, seed).items()}
    raise ValueError(f"diversity.method must be 'quota' or 's1', got {settings.method!r}")


class Diversity(Stage):
    """Domain balance as a quota: the stage hands its options on, and selection applies them to its ranking
    before the top N (one ranking, never a second copy of selection's)."""

    name, options_type = "diversity", DiversityOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Quota:
        return Quota(options.diversity)


STAGE = Diversity()
