"""Adaptive rollouts: stop sampling a problem as soon as its filter's outcome is decided.

A rollout stage draws ``k`` samples per problem and its filter looks only at how many were solved:

- the weak filter drops a problem when it is solved at least ``max_solved`` times (LIMO: any success in
  4 tries, ``weak_max_solved: 1``), i.e. it keeps ``successes < max_solved``;
- the strong window keeps a problem when ``lo <= successes / k <= hi`` (LIMO: 1 to 3 of 32).

Both keep a contiguous range of success counts, ``[keep_min, keep_max]`` (computed here with the very
comparisons `curation.stages.difficulty.difficulty_decision` makes, floats included). After ``drawn`` samples
with ``successes`` solved, the final count can still be anything in ``[successes, successes + k - drawn]``;
once that interval lies inside the kept range, or misses it entirely, every completion gives the same
outcome and sampling stops. LIMO's weak filter therefore stops at the first success; its strong window
stops at the 4th success, or once a success is in hand and at most 3 can be reached.

Why the decision equals fixed k's: each (problem, sample index) has its own seed
(`eval.backends.base.row_seed`) and samples are drawn in index order, so the adaptive samples are exactly
the first ``drawn`` samples of the fixed-k sequence; the outcome is decided on that prefix, hence equal to
the outcome on all ``k``. Batched generation stays exact and waste-free when each round asks, per
undecided problem, for `samples_before_decidable` samples: by definition no shorter prefix could decide,
so none of them is drawn in vain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SolveCountFilter:
    """A filter on the number of solved samples out of ``k``: keep iff ``keep_min <= solved <= keep_max``.

    ``keep_min > keep_max`` keeps nothing (every problem is dropped, before any sample is drawn).
    """

    name: str
    k: int
    keep_min: int
    keep_max: int

    def keeps(self, solved: int) -> bool:
        return self.keep_min <= solved <= self.keep_max


def weak_filter(k: int, max_solved: int) -> SolveCountFilter:
    """LIMO's weak filter: drop a problem solved in at least ``max_solved`` of ``k`` tries.

    Raises:
        ValueError: ``k < 1`` or ``max_solved < 1``.
    """
    _check_k(k)
    if max_solved < 1:
        raise ValueError(f"weak filter: max_solved must be >= 1, got {max_solved}")
    return SolveCountFilter(f"weak(solved < {max_solved} of {k})", k, 0, min(max_solved - 1, k))


def pass_rate_window(k: int, lo: float, hi: float) -> SolveCountFilter:
    """LIMO's strong window: keep a problem whose pass rate ``solved / k`` lies in ``[lo, hi]``.

    Raises:
        ValueError: ``k < 1``, or the kept counts are not contiguous (cannot happen for a real window).
    """
    _check_k(k)
    kept = [solved for solved in range(k + 1) if lo <= solved / k <= hi]
    name = f"window({lo} <= solved/{k} <= {hi})"
    if not kept:
        return SolveCountFilter(name, k, k + 1, k)
    if kept != list(range(kept[0], kept[-1] + 1)):
        raise ValueError(f"{name}: kept counts {kept} are not contiguous")
    return SolveCountFilter(name, k, kept[0], kept[-1])


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"a rollout stage needs k >= 1 samples per problem, got {k}")


def decision(rule: SolveCountFilter, drawn: int, solved: int) -> bool | None:
    """Keep (True) or drop (False) once every completion of the ``k`` samples agrees; None while open.

    Raises:
        ValueError: Counts that cannot happen (``solved > drawn`` or ``drawn > k``).
    """
    if not 0 <= solved <= drawn <= rule.k:
        raise ValueError(f"{rule.name}: impossible counts solved={solved}, drawn={drawn}")
    reachable = solved + rule.k - drawn
    if rule.keep_min <= solved and reachable <= rule.keep_max:
        return True
    if reachable < rule.keep_min or solved > rule.keep_max:
        return False
    return None


def samples_before_decidable(rule: SolveCountFilter, drawn: int, solved: int) -> int:
    """How many more samples must be drawn before the outcome can possibly be decided (0: decided now).

    Asking for exactly this many per round never draws a sample the fixed-k decision would not need.
    """
    if decision(rule, drawn, solved) is not None:
        return 0
    for more in range(1, rule.k - drawn + 1):
        if any(decision(rule, drawn + more, solved + extra) is not None for extra in range(more + 1)):
            return more
    raise AssertionError(f"{rule.name}: undecided after all {rule.k} samples")  # decision() rules this out


@dataclass(frozen=True)
class Outcome:
    """One problem's result under a rule: the decision and the samples it took."""

    keep: bool
    drawn: int
    solved: int


def run_adaptive(rule: SolveCountFilter, solved_in_order: Iterable[bool]) -> Outcome:
    """Consume samples in index order until the outcome is decided.

    Raises:
        ValueError: Fewer than needed samples were given.
    """
    drawn = solved = 0
    samples = iter(solved_in_order)
    while (keep := decision(rule, drawn, solved)) is None:
        try:
            solved += bool(next(samples))
        except StopIteration:
            raise ValueError(f"{rule.name}: undecided after {drawn} samples; {rule.k} are needed at most") from None
        drawn += 1
    return Outcome(keep, drawn, solved)


def run_fixed(rule: SolveCountFilter, solved_in_order: Sequence[bool]) -> Outcome:
    """The fixed-k decision on all ``k`` samples (the baseline adaptive sampling must match).

    Raises:
        ValueError: ``solved_in_order`` does not hold exactly ``k`` samples.
    """
    if len(solved_in_order) != rule.k:
        raise ValueError(f"{rule.name}: fixed k needs {rule.k} samples, got {len(solved_in_order)}")
    solved = sum(bool(s) for s in solved_in_order)
    return Outcome(rule.keeps(solved), rule.k, solved)


def expected_draws(rule: SolveCountFilter, pass_rate: float, *, complete_kept: bool = False) -> float:
    """Expected samples drawn adaptively when every sample is solved independently with ``pass_rate``.

    Exact, by dynamic programming over (drawn, solved); used to plan spend before any sample exists. With
    ``complete_kept`` a problem the rule keeps is then sampled to ``k`` (what `curation.rollouts.run` does, so
    that kept problems' pass rates equal fixed k's).
    """
    if not 0.0 <= pass_rate <= 1.0:
        raise ValueError(f"pass_rate must be in [0, 1], got {pass_rate}")
    open_mass = {0: 1.0}  # solved -> probability of being undecided with that count after `drawn` samples
    expected = 0.0
    for drawn in range(rule.k + 1):
        if complete_kept:
            expected += (rule.k - drawn) * sum(m for s, m in open_mass.items() if decision(rule, drawn, s) is True)
        open_mass = {s: m for s, m in open_mass.items() if decision(rule, drawn, s) is None}
        if not open_mass or drawn == rule.k:
            break
        expected += sum(open_mass.values())
        following: dict[int, float] = {}
        for solved, mass in open_mass.items():
            following[solved + 1] = following.get(solved + 1, 0.0) + mass * pass_rate
            following[solved] = following.get(solved, 0.0) + mass * (1.0 - pass_rate)
        open_mass = following
    return expected


def keep_probability(rule: SolveCountFilter, pass_rate: float) -> float:
    """Probability that ``rule`` keeps a problem whose samples are solved independently with ``pass_rate``."""
    if not 0.0 <= pass_rate <= 1.0:
        raise ValueError(f"pass_rate must be in [0, 1], got {pass_rate}")
    kept = range(max(rule.keep_min, 0), min(rule.keep_max, rule.k) + 1)
    return sum(math.comb(rule.k, c) * pass_rate**c * (1 - pass_rate) ** (rule.k - c) for c in kept)
