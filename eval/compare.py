"""Comparing two runs: per-benchmark deltas of mean pass@1 with a paired bootstrap confidence interval,
and the problems whose outcome flipped.

Pairing is by problem id over the problems both runs graded: the bootstrap resamples problems (with
replacement, a seeded `random.Random`), recomputing the mean per-problem accuracy difference, and reports
the 2.5 / 97.5 percentiles. A problem "flipped" when its per-problem accuracy crosses 0.5 (solved by the
majority of samples in one run, not in the other).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.metrics import group_by_problem
from eval.records import DataError, read_jsonl, write_json, write_text_atomic
from eval.regrade import benchmark_dirs
from eval.runner import SAMPLES_FILE


@dataclass(frozen=True)
class BenchmarkComparison:
    """Run B minus run A on one benchmark."""

    benchmark: str
    problems: int
    pass1_a: float
    pass1_b: float
    delta: float
    ci_low: float
    ci_high: float
    gained: tuple[str, ...]
    lost: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "gained": list(self.gained), "lost": list(self.lost)}


def per_problem_accuracy(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``{problem_id: fraction of samples correct}``."""
    return {pid: sum(bool(r["correct"]) for r in s) / len(s) for pid, s in group_by_problem(rows).items()}


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% interval of ``mean(b) - mean(a)`` under resampling of paired items."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs two non-empty sequences of equal length")
    rng = random.Random(seed)
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * (resamples - 1))], means[int(0.975 * (resamples - 1))]


def compare_benchmark(
    name: str, rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]], *, seed: int = 0
) -> BenchmarkComparison:
    """Compare one benchmark's rows from two runs on their shared problems."""
    acc_a, acc_b = per_problem_accuracy(rows_a), per_problem_accuracy(rows_b)
    shared = [pid for pid in acc_a if pid in acc_b]
    if not shared:
        raise DataError(f"benchmark {name}: the two runs share no problem")
    a, b = [acc_a[p] for p in shared], [acc_b[p] for p in shared]
    low, high = paired_bootstrap(a, b, seed=seed)
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    gained = tuple(p for p in shared if acc_a[p] < 0.5 <= acc_b[p])
    lost = tuple(p for p in shared if acc_b[p] < 0.5 <= acc_a[p])
    return BenchmarkComparison(name, len(shared), mean_a, mean_b, mean_b - mean_a, low, high, gained, lost)


def compare_runs(run_a: str | Path, run_b: str | Path, *, seed: int = 0) -> list[BenchmarkComparison]:
    """Compare every benchmark present in both runs.

    Raises:
        DataError: A run folder without results, or no benchmark in common.
    """
    dirs_a = {p.name: p for p in benchmark_dirs(run_a)}
    dirs_b = {p.name: p for p in benchmark_dirs(run_b)}
    common = sorted(set(dirs_a) & set(dirs_b))
    if not common:
        raise DataError(f"{run_a} and {run_b} have no benchmark in common ({sorted(dirs_a)} vs {sorted(dirs_b)})")
    return [
        compare_benchmark(
            name,
            read_jsonl(dirs_a[name] / SAMPLES_FILE, tolerate_torn_tail=True),
            read_jsonl(dirs_b[name] / SAMPLES_FILE, tolerate_torn_tail=True),
            seed=seed,
        )
        for name in common
    ]


def write_comparison(out_dir: str | Path, results: Sequence[BenchmarkComparison], runs: Sequence[str]) -> str:
    """Write ``summary.json`` and ``report.md`` of a comparison; returns the report text."""
    text = render_comparison(results, str(runs[0]), str(runs[1]))
    write_json(Path(out_dir) / "summary.json", {"runs": list(runs), "benchmarks": [r.to_dict() for r in results]})
    write_text_atomic(Path(out_dir) / "report.md", text)
    return text


def render_comparison(results: Sequence[BenchmarkComparison], run_a: str, run_b: str) -> str:
    """Markdown table of deltas with confidence intervals, then the flipped problems."""
    lines = [
        f"A = {run_a}\nB = {run_b}\n",
        "| benchmark | problems | pass@1 A | pass@1 B | delta (B-A) | 95% CI (paired bootstrap) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.benchmark} | {r.problems} | {r.pass1_a:.4f} | {r.pass1_b:.4f} | {r.delta:+.4f} | "
            f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] |"
        )
    for r in results:
        lines.append(f"\n{r.benchmark}: gained {len(r.gained)} {list(r.gained)}; lost {len(r.lost)} {list(r.lost)}")
    return "\n".join(lines) + "\n"
