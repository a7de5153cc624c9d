"""Metrics over graded samples — plain arithmetic (numpy for the resampling tests), cheap to test and identical
everywhere.

- pass@k: the unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)`` per problem, averaged,
  for every k from 1 to n. With one sample it is plain accuracy; with n samples "Acc" is *mean pass@1*,
  never pass@n (the confusion that makes published numbers incomparable).
- mean pass@1 comes with its standard error over problems (the sample standard deviation of the
  per-problem pass@1 divided by sqrt(#problems)).
- maj@k: the answer given most often among the first k samples wins; answers count as the same when the
  grader's ``equivalent`` says so (``verify``), so "1/2" and "0.5" vote together. Ties go to the answer
  seen first. The majority is correct when the grader judged its first sample correct.
- Per-level and per-subject breakdowns (MATH500), response length, truncation rate
  (``finish_reason == "length"``) and no-answer rate (no extractable final answer).
- ``corrections``: how often a response writes a correction, how often one ends right, and the error types of the
  wrong answers (`eval.reports.corrections`).

A sample row is a mapping with ``problem_id``, ``sample_index``, ``correct``, ``status``, ``extracted``,
``num_tokens``, ``finish_reason`` and optionally ``level`` and ``subject``.

Comparing two models on the same problems (docs/ablation.md, "How the tables test a difference"), with the problem
as the unit: a problem's verdicts at several training seeds are correlated (an easy problem is solved at every seed),
so they are one observation, never several.

- `sign_flip_p`: the two-sided paired permutation test of per-problem differences — under "no difference" each
  problem's difference is as likely to have either sign; exact enumeration up to `EXACT_MAX_PROBLEMS` non-zero
  differences, Monte Carlo (`PERMUTATIONS` resamples from a stated seed) beyond. On 0/1 differences it is the
  exact McNemar test (`mcnemar_p`).
- `two_level_bootstrap`: a percentile interval of a mean over a seeds x problems table, resampling seeds, then
  problems (Bouthillier et al. 2021; Miller 2024, arXiv 2411.00640): training seeds are a second level of variance.
- `holm`: Holm's step-down adjustment of a family of p-values.

These use numpy and are deterministic: every resample comes from a generator seeded by the caller (seed 0 by default).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.reports.corrections import correction_report

Equivalent = Callable[[str, str], bool]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples of which ``c`` are correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # Product form of 1 - C(n-c, k) / C(n, k): exact enough and never overflows.
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (0 when fewer than two values)."""
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def group_by_problem(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows per problem id, each list sorted by sample index, problems in first-seen order."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[str(row["problem_id"])].append(row)
    return {pid: sorted(samples, key=lambda r: int(r["sample_index"])) for pid, samples in grouped.items()}


def pass_at_ks(grouped: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[int, float]:
    """Mean pass@k for every k up to the smallest per-problem sample count."""
    if not grouped:
        return {}
    n_min = min(len(samples) for samples in grouped.values())
    result = {}
    for k in range(1, n_min + 1):
        values = [pass_at_k(len(s), sum(bool(r["correct"]) for r in s), k) for s in grouped.values()]
        result[k] = sum(values) / len(values)
    return result


def majority_vote(answers: Sequence[str | None], equivalent: Equivalent) -> int | None:
    """Index of the first sample of the largest answer cluster (None when no sample has an answer)."""
    clusters: list[list[int]] = []
    for index, answer in enumerate(answers):
        if answer is None or answer == "":
            continue
        home = next((c for c in clusters if _same(answers[c[0]], answer, equivalent)), None)
        if home is None:
            clusters.append([index])
        else:
            home.append(index)
    if not clusters:
        return None
    best = max(clusters, key=lambda c: (len(c), -c[0]))
    return best[0]


def _same(a: str | None, b: str, equivalent: Equivalent) -> bool:
    return a == b or (a is not None and equivalent(a, b))


def maj_at_ks(grouped: Mapping[str, Sequence[Mapping[str, Any]]], equivalent: Equivalent) -> dict[int, float]:
    """maj@k for k in 1, 2, 4, ... and n (the first k samples of each problem vote)."""
    if not grouped:
        return {}
    n_min = min(len(s) for s in grouped.values())
    ks = sorted({2**i for i in range(n_min.bit_length()) if 2**i <= n_min} | {n_min})
    result = {}
    for k in ks:
        hits = 0
        for samples in grouped.values():
            winner = majority_vote([s.get("extracted") for s in samples[:k]], equivalent)
            hits += int(winner is not None and bool(samples[winner]["correct"]))
        result[k] = hits / len(grouped)
    return result


def rates(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Response length (tokens), truncation, no-answer and server-error rates over all samples.

    A server error (``finish_reason == "error"``) is a reply that carried no text although the server
    spent tokens on it (see `eval.backends.openai`): it is graded as no answer and also counted here.
    """
    if not rows:
        return {"mean_tokens": 0.0, "max_tokens": 0, "truncation_rate": 0.0, "no_answer_rate": 0.0, "error_rate": 0.0}
    tokens = [int(r.get("num_tokens") or 0) for r in rows]
    return {
        "mean_tokens": sum(tokens) / len(tokens),
        "max_tokens": max(tokens),
        "truncation_rate": sum(r.get("finish_reason") == "length" for r in rows) / len(rows),
        "no_answer_rate": sum(r.get("status") == "no_answer" for r in rows) / len(rows),
        "error_rate": sum(r.get("finish_reason") == "error" for r in rows) / len(rows),
    }


def status_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many samples got each verdict status."""
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[str(row.get("status"))] += 1
    return dict(sorted(counts.items()))


def breakdown(grouped: Mapping[str, Sequence[Mapping[str, Any]]], field: str) -> dict[str, dict[str, float]]:
    """Mean pass@1 (with standard error and problem count) per value of ``field`` (``level``, ``subject``)."""
    buckets: dict[str, list[float]] = defaultdict(list)
    for samples in grouped.values():
        value = samples[0].get(field)
        if value is None:
            continue
        buckets[str(value)].append(sum(bool(r["correct"]) for r in samples) / len(samples))
    out = {}
    for value in sorted(buckets, key=_natural):
        mean, stderr = mean_and_stderr(buckets[value])
        out[value] = {"pass@1": mean, "stderr": stderr, "problems": len(buckets[value])}
    return out


def _natural(value: str) -> tuple[int, Any]:
    return (0, int(value)) if value.isdigit() else (1, value)


UNGRADABLE = ("unparseable", "timeout")


def summarize(rows: Sequence[Mapping[str, Any]], equivalent: Equivalent) -> dict[str, Any]:
    """Every metric for one benchmark's graded samples."""
    grouped = group_by_problem(rows)
    per_problem = [sum(bool(r["correct"]) for r in s) / len(s) for s in grouped.values()]
    mean, stderr = mean_and_stderr(per_problem)
    counts = sorted({len(s) for s in grouped.values()})
    summary: dict[str, Any] = {
        "problems": len(grouped),
        "samples": len(rows),
        "samples_per_problem": counts[0] if len(counts) == 1 else counts,
        "mean_pass@1": mean,
        "pass@1_stderr": stderr,
        "pass@k": {str(k): v for k, v in pass_at_ks(grouped).items()},
        "maj@k": {str(k): v for k, v in maj_at_ks(grouped, equivalent).items()},
        "status_counts": status_counts(rows),
        # what the symbolic grader could not decide (a judge takes these where one is configured)
        "ungradable": sum(r.get("status") in UNGRADABLE for r in rows),
        **rates(rows),
    }
    for field in ("level", "subject"):
        table = breakdown(grouped, field)
        if table:
            summary[f"by_{field}"] = table
    # how often a correction is written and ends right, and the error types of wrong answers (eval.reports.corrections)
    summary["corrections"] = correction_report(rows)
    return summary


def wilson_interval(mean: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``mean`` over ``n`` items (an exact 0 or 1 keeps a width, unlike
    the normal approximation); ``(0, 1)`` for no items."""
    if n <= 0:
        return 0.0, 1.0
    centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_p(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: the chance of a split of the ``gained + lost`` discordant problems at
    least this uneven if each were a fair coin."""
    n, k = gained + lost, min(gained, lost)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


EXACT_MAX_PROBLEMS = 20  # up to 2**20 sign patterns: enumerated exactly, beyond: Monte Carlo
PERMUTATIONS = 100_000  # Monte Carlo sign flips (the smallest p it can give is 1 / (PERMUTATIONS + 1))
BOOTSTRAP = 10_000  # bootstrap resamples of an interval
STATS_SEED = 0  # the seed of every resample unless the caller names another


@dataclass(frozen=True)
class SignFlip:
    """A sign-flip permutation test's result.

    Attributes:
        p: The two-sided p-value.
        nonzero: Problems whose difference is not zero (the others cannot change the statistic).
        exact: Whether every sign pattern was enumerated; else ``resamples`` random ones from ``seed``.
        resamples: Monte Carlo sign patterns drawn (None when exact).
        seed: The Monte Carlo generator's seed (None when exact).
        at_floor: Monte Carlo and no drawn pattern was as extreme as the data: ``p`` is the smallest the draw can give
            (read it as "at most").
    """

    p: float
    nonzero: int
    exact: bool
    resamples: int | None = None
    seed: int | None = None
    at_floor: bool = False


def sign_flip_p(
    differences: Sequence[float],
    *,
    exact_max: int = EXACT_MAX_PROBLEMS,
    resamples: int = PERMUTATIONS,
    seed: int = STATS_SEED,
) -> SignFlip:
    """Two-sided paired permutation (sign-flip) test that the per-item differences centre on zero.

    The statistic is ``|sum(differences)|``; under the null each item's difference keeps its size and takes either
    sign with probability 1/2. With ``m`` non-zero differences, ``m <= exact_max`` enumerates all ``2**m`` patterns
    (five differences of +1: p = 2/32); otherwise ``resamples`` patterns are drawn from ``numpy.random.default_rng(
    seed)`` and p = (1 + patterns at least as extreme) / (1 + resamples), which is never 0. Scaling every difference
    by one factor leaves p unchanged (a sum over three identical seeds gives one seed's p).

    Args:
        differences: One value per item (a problem): A's score minus B's.
        exact_max: The most non-zero differences enumerated exactly.
        resamples: Monte Carlo sign patterns beyond ``exact_max``.
        seed: Seed of the Monte Carlo generator.

    Returns:
        The p-value and how it was computed (`SignFlip`).
    """
    values = np.asarray([d for d in differences if d != 0], dtype=np.float64)
    m = len(values)
    if m == 0:
        return SignFlip(1.0, 0, True)
    observed = abs(values.sum())
    tolerance = 1e-9 * float(np.abs(values).sum())  # sums of thirds and halves: equal up to rounding counts as equal
    if m <= exact_max:
        sums = np.zeros(1)
        for value in values:
            sums = np.concatenate([sums + value, sums - value])
        return SignFlip(float(np.mean(np.abs(sums) >= observed - tolerance)), m, True)
    rng = np.random.default_rng(seed)
    total, extreme, chunk = float(values.sum()), 0, max(1, (1 << 22) // m)
    for start in range(0, resamples, chunk):
        bits = rng.integers(0, 2, size=(min(chunk, resamples - start), m), dtype=np.int8)
        flipped = 2.0 * (bits @ values) - total  # the sum with each kept value (+) and each flipped one (-)
        extreme += int(np.count_nonzero(np.abs(flipped) >= observed - tolerance))
    return SignFlip((1 + extreme) / (1 + resamples), m, False, resamples, seed, at_floor=extreme == 0)


def two_level_bootstrap(
    table: Sequence[Sequence[float]],
    *,
    resamples: int = BOOTSTRAP,
    seed: int = STATS_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the mean of a seeds x problems table, resampling seeds, then problems.

    Each resample draws the seeds (rows) with replacement, then the problems (columns) with replacement, and takes
    the mean of the table they pick; the interval is the middle ``level`` of those means. Seeds and problems are
    drawn from two generators (``default_rng([seed, 0])`` and ``default_rng([seed, 1])``), so a table whose rows
    are all the same gives the interval of one row exactly: seeds that agree add no width, seeds that disagree do.

    Args:
        table: One row per seed, one column per problem (the same problems in every row), e.g. A's score minus B's.
        resamples: Bootstrap resamples.
        seed: Seed of both generators.
        level: The interval's coverage.

    Returns:
        ``(low, high)``; ``(nan, nan)`` for an empty table.
    """
    values = np.asarray(table, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        return math.nan, math.nan
    seeds, problems = values.shape
    rows_rng, columns_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    means = np.empty(resamples)
    chunk = max(1, (1 << 21) // (seeds * problems))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        rows = rows_rng.integers(0, seeds, size=(size, seeds))
        columns = columns_rng.integers(0, problems, size=(size, problems))
        by_problem = values[rows].mean(axis=1)  # each resample's seeds, averaged: size x problems
        means[start : start + size] = np.take_along_axis(by_problem, columns, axis=1).mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest of m p-values times (m - k + 1), kept non-decreasing in that
    order and capped at 1; controls the chance of any false rejection in the family at the nominal level.

    Args:
        p_values: The family's raw p-values, in any order.

    Returns:
        The adjusted p-values, in the input's order.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
