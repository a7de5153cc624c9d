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

import functools
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
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


Exact = int | Fraction | float  # a score or difference, taken at its exact value (a float at its binary value)


def as_integers(values: Sequence[Exact]) -> list[int]:
    """``values`` on one integer scale: each times the least common multiple of their denominators (a float is
    taken at its exact binary value), so that sums and comparisons are exact: a difference that is zero is 0, never
    a rounding residue such as 1e-17. Any common factor is divided out."""
    fractions = [Fraction(v) for v in values]
    scale = math.lcm(*(f.denominator for f in fractions)) if fractions else 1
    integers = [int(f * scale) for f in fractions]
    common = math.gcd(*integers)
    return [i // common for i in integers] if common > 1 else integers


def integer_array(values: Sequence[int]) -> np.ndarray:
    """Integers as int64 when every sum of them fits, else as Python integers (object array: exact, slower)."""
    fits = sum(abs(v) for v in values) < 2**62
    return np.asarray(values, dtype=np.int64 if fits else object)


def sign_flip_p(
    differences: Sequence[Exact],
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
    by one factor leaves p unchanged (a sum over three identical seeds gives one seed's p). The arithmetic is exact
    (`as_integers`): give fractions (``fractions.Fraction(1, 3)``) where a difference is a third, since a float
    third is not one.

    Args:
        differences: One value per item (a problem): A's score minus B's.
        exact_max: The most non-zero differences enumerated exactly.
        resamples: Monte Carlo sign patterns beyond ``exact_max``.
        seed: Seed of the Monte Carlo generator.

    Returns:
        The p-value and how it was computed (`SignFlip`).
    """
    values = integer_array([d for d in as_integers(differences) if d != 0])
    m = len(values)
    if m == 0:
        return SignFlip(1.0, 0, True)
    observed = abs(values.sum())
    if m <= exact_max:
        sums = np.zeros(1, dtype=values.dtype)
        for value in values:
            sums = np.concatenate([sums + value, sums - value])
        return SignFlip(float(np.mean(np.abs(sums) >= observed)), m, True)
    rng = np.random.default_rng(seed)
    total, extreme, chunk = values.sum(), 0, max(1, (1 << 22) // m)
    for start in range(0, resamples, chunk):
        bits = rng.integers(0, 2, size=(min(chunk, resamples - start), m), dtype=np.int8).astype(values.dtype)
        flipped = 2 * (bits @ values) - total  # the sum with each kept value (+) and each flipped one (-)
        extreme += int(np.count_nonzero(np.abs(flipped) >= observed))
    return SignFlip((1 + extreme) / (1 + resamples), m, False, resamples, seed, at_floor=extreme == 0)


EXACT_MAX_RELABELINGS = 200_000  # pooled runs relabeled exactly up to this many ways (10 v 10 runs: 184,756)


@dataclass(frozen=True)
class RunTest:
    """A test over training runs: its p-value and the smallest p its runs allow.

    Attributes:
        p: The two-sided p-value.
        method: ``permutation`` (A's runs against B's, every relabeling of the pooled runs) or ``sign_flip`` (each
            run against one fixed run, the base model's).
        runs_a: A's runs (a seed's draws count as one run, averaged).
        runs_b: B's runs (1: a fixed run).
        floor: The smallest p these numbers of runs can give (3 v 3 runs: 0.1; 5 v 5: 2/252).
        exact: Whether every relabeling (sign pattern) was enumerated; else ``resamples`` from ``seed``.
        resamples: Monte Carlo relabelings drawn (None when exact).
        seed: The Monte Carlo generator's seed (None when exact).
    """

    p: float
    method: str
    runs_a: int
    runs_b: int
    floor: float
    exact: bool = True
    resamples: int | None = None
    seed: int | None = None


def relabelings(n: int, k: int, *, limit: int, resamples: int, seed: int) -> tuple[np.ndarray, bool]:
    """Which ``k`` of ``n`` pooled runs each relabeling calls A's, as rows of a 0/1 matrix, the observed one (the
    first ``k``) first: all ``C(n, k)`` when at most ``limit``, else the observed one and ``resamples`` drawn from
    ``default_rng(seed)``. Returns the matrix and whether it is every relabeling."""
    if math.comb(n, k) <= limit:
        chosen = np.asarray(list(itertools.combinations(range(n), k)), dtype=np.intp).reshape(-1, k)
        exact = True
    else:
        rng = np.random.default_rng(seed)
        drawn = np.argsort(rng.random((resamples, n)), axis=1)[:, :k]
        chosen, exact = np.vstack([np.arange(k)[None, :], drawn]), False
    matrix = np.zeros((len(chosen), n), dtype=np.int8)
    np.put_along_axis(matrix, chosen, 1, axis=1)
    return matrix, exact


def run_permutation_p(
    runs_a: Sequence[Exact],
    runs_b: Sequence[Exact],
    *,
    exact_max: int = EXACT_MAX_RELABELINGS,
    resamples: int = PERMUTATIONS,
    seed: int = STATS_SEED,
) -> RunTest:
    """Two-sided permutation test of A's runs against B's: each run's accuracy (on the same problems), the statistic
    the difference of the arms' mean accuracies, and under the null (the arm does not change what a run scores) every
    relabeling of the pooled runs as likely as the observed one.

    Exact (every one of ``C(n_a + n_b, n_a)`` relabelings) up to ``exact_max`` relabelings; beyond, ``resamples``
    drawn from ``default_rng(seed)`` and p = (1 + as extreme) / (1 + resamples). The arithmetic is exact
    (`as_integers`). With ``n`` runs a side the smallest p is ``2 / C(2n, n)``: 0.33 at 2 v 2, 0.1 at 3 v 3, 0.029 at
    4 v 4, 0.0079 at 5 v 5.

    Args:
        runs_a: One accuracy (or correct count: only differences matter) per run of A.
        runs_b: The same for B, on the same problems.
        exact_max: The most relabelings enumerated exactly.
        resamples: Monte Carlo relabelings beyond ``exact_max``.
        seed: Seed of the Monte Carlo generator.

    Returns:
        The p-value, its floor and how it was computed (`RunTest`).
    """
    k, n = len(runs_a), len(runs_a) + len(runs_b)
    floor = (2 if k == n - k else 1) / math.comb(n, k) if k and n - k else 1.0
    if not k or n == k:
        return RunTest(1.0, "permutation", k, n - k, 1.0)
    pooled = integer_array(as_integers([*runs_a, *runs_b]))
    matrix, exact = relabelings(n, k, limit=exact_max, resamples=resamples, seed=seed)
    # n * (A's sum) - k * (the total) is n_a * n_b times the difference of means: its size ranks the relabelings
    statistic = np.abs(n * (matrix.astype(pooled.dtype) @ pooled) - k * pooled.sum())
    extreme = int(np.count_nonzero(statistic >= statistic[0]))
    if exact:
        return RunTest(extreme / len(matrix), "permutation", k, n - k, floor)
    return RunTest(extreme / len(matrix), "permutation", k, n - k, floor, False, resamples, seed)


def runs_against_one(runs: Sequence[Exact], fixed: Exact) -> RunTest:
    """Two-sided sign-flip test of several runs against one fixed run (the base model: untrained, one evaluation):
    each run's accuracy minus the fixed one's, as likely to have either sign under the null. With ``n`` runs the
    smallest p is ``2 / 2**n`` (0.25 at 3 runs, 0.0625 at 5)."""
    test = sign_flip_p([Fraction(r) - Fraction(fixed) for r in runs], exact_max=max(EXACT_MAX_PROBLEMS, len(runs)))
    floor = 2 / 2 ** len(runs) if runs else 1.0
    return RunTest(min(1.0, test.p), "sign_flip", len(runs), 1, min(1.0, floor))


DETECT_DATASETS = 2_000  # simulated datasets per power estimate
DETECT_RELABELINGS = 2_000  # relabelings (sign patterns) per simulated dataset beyond exact enumeration


@functools.lru_cache(maxsize=64)
def detectable_shift(
    runs_a: int, runs_b: int, *, alpha: float = 0.05, power: float = 0.8, seed: int = STATS_SEED
) -> float | None:
    """The smallest true difference between two arms' mean run accuracy, in units of the run-to-run standard
    deviation, that the run-level test (`run_permutation_p`; ``runs_b == 1``: `runs_against_one`) finds at p <=
    ``alpha`` in a share ``power`` of datasets.

    By simulation: run accuracies normal with standard deviation 1 (the fixed run: none), A's shifted by the
    difference; the same ``DETECT_DATASETS`` datasets from ``default_rng(seed)`` at every difference (so power rises
    with it), each tested over every relabeling (at most ``DETECT_RELABELINGS``, else that many drawn); the
    difference found by bisection to 0.01. Both tests are unchanged by scaling, so multiplying by the measured spread
    gives the difference in accuracy. None when the runs cannot reach ``alpha`` at all (3 v 3 runs: p >= 0.1).
    """
    one = runs_b == 1
    n = runs_a if one else runs_a + runs_b
    floor = 2 / 2**runs_a if one else (2 if runs_a == runs_b else 1) / math.comb(n, runs_a)
    if runs_a < 1 or floor > alpha:
        return None
    rng = np.random.default_rng([seed, runs_a, runs_b])
    noise = rng.standard_normal((DETECT_DATASETS, n))
    if one:  # sign patterns of each run's difference from the fixed run, the observed one (all +1) first
        if 2**n <= DETECT_RELABELINGS:
            signs = np.asarray(list(itertools.product((1, -1), repeat=n)))
        else:
            signs = np.vstack([np.ones(n), rng.choice((1, -1), size=(DETECT_RELABELINGS, n))])
        shift, matrix = np.ones(n), signs.astype(np.float64)
    else:
        labels, _ = relabelings(n, runs_a, limit=DETECT_RELABELINGS, resamples=DETECT_RELABELINGS, seed=seed)
        shift, matrix = np.r_[np.ones(runs_a), np.zeros(runs_b)], labels.astype(np.float64)

    def power_at(delta: float) -> float:
        values = noise + delta * shift
        if one:
            statistic = np.abs(values @ matrix.T)
        else:
            statistic = np.abs(n * (values @ matrix.T) - runs_a * values.sum(axis=1, keepdims=True))
        p = np.mean(statistic >= statistic[:, :1] - 1e-9, axis=1)
        return float(np.mean(p <= alpha))

    low, high = 0.0, 1.0
    while power_at(high) < power:
        low, high = high, 2 * high
    while high - low > 0.01:
        middle = (low + high) / 2
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return high


def two_level_bootstrap(
    table: Sequence[Sequence[float]],
    *,
    resamples: int = BOOTSTRAP,
    seed: int = STATS_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the mean of a seeds x problems table, resampling seeds, then problems, calibrated for
    few seeds.

    Each resample draws the seeds (rows) with replacement, then the problems (columns) with replacement, and takes
    the mean of the table they pick; the interval is the middle ``level`` of those means. Seeds and problems are
    drawn from two generators (``default_rng([seed, 0])`` and ``default_rng([seed, 1])``), so a table whose rows
    are all the same gives the interval of one row exactly: seeds that agree add no width, seeds that disagree do.

    A plain bootstrap of three seeds holds far less than its level when the seeds differ (the mean of k resampled
    values varies (k - 1) / k as much as the mean of k new ones, and its percentiles are normal ones where Student's
    t with about k - 1 degrees of freedom is due): in a simulated null with run-to-run shifts, a 95% interval left
    out zero in 11-14% of datasets. So (`small_sample_widening`) each seed's deviation from the mean is scaled by
    sqrt(k / (k - 1)) before resampling, and both halves of the interval, from the mean, are widened by t(ν) / z at
    the level's quantile, ν the Satterthwaite degrees of freedom of the seeds' and the problems' parts of the mean's
    variance (seeds that agree: ν = problems - 1, a widening of about 1%); the ends stay within the table's range.

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
    centre = float(values.mean())
    row_means = values.mean(axis=1, keepdims=True)
    if (
        seeds > 1 and np.ptp(row_means) > 0
    ):  # unbiased seed-level spread (rows that agree are left exactly as they are)
        values = values + (row_means - row_means.mean()) * (math.sqrt(seeds / (seeds - 1)) - 1)
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
    original = np.asarray(table, dtype=np.float64)
    widen = small_sample_widening(original, 1 - tail)
    # no mean of these values lies outside their range (an accuracy's interval stays within 0-100%)
    bottom, top = float(original.min()), float(original.max())
    return max(bottom, centre - widen * (centre - float(low))), min(top, centre + widen * (float(high) - centre))


def small_sample_widening(values: np.ndarray, quantile: float) -> float:
    """Student's t over the normal quantile at ``quantile``, for the Satterthwaite degrees of freedom of a seeds x
    problems table's mean: its variance's seed part (the row means' variance over k) with k - 1 degrees and its
    problem part (the column means' variance over n) with n - 1; 1 when neither varies."""
    seeds, problems = values.shape
    seed_part = float(values.mean(axis=1).var(ddof=1)) / seeds if seeds > 1 else 0.0
    problem_part = float(values.mean(axis=0).var(ddof=1)) / problems if problems > 1 else 0.0
    denominator = (seed_part**2 / (seeds - 1) if seeds > 1 else 0.0) + (
        problem_part**2 / (problems - 1) if problems > 1 else 0.0
    )
    if denominator <= 0:
        return 1.0
    freedom = (seed_part + problem_part) ** 2 / denominator
    return student_t_quantile(quantile, round(freedom, 2)) / NormalDist().inv_cdf(quantile)


@functools.lru_cache(maxsize=256)
def student_t_quantile(quantile: float, freedom: float) -> float:
    """The ``quantile`` (above 1/2) of Student's t with ``freedom`` degrees of freedom (any positive real): its
    density integrated by the trapezoid rule on 4,001 points, inverted by bisection to 1e-9."""
    if freedom > 1e5:
        return NormalDist().inv_cdf(quantile)
    constant = math.exp(math.lgamma((freedom + 1) / 2) - math.lgamma(freedom / 2)) / math.sqrt(freedom * math.pi)

    def cdf(x: float) -> float:
        grid = np.linspace(0.0, x, 4001)
        return 0.5 + float(np.trapezoid(constant * (1 + grid * grid / freedom) ** (-(freedom + 1) / 2), grid))

    low, high = 0.0, 1.0
    while cdf(high) < quantile:
        low, high = high, 2 * high
    while high - low > 1e-9:
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < quantile else (low, middle)
    return high


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
