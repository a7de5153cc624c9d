"""Comparing two runs: per-benchmark deltas of mean pass@1 with a paired bootstrap confidence interval,
and the problems whose outcome flipped.

Pairing is by problem id over the problems both runs graded: the bootstrap resamples problems (with
replacement, a seeded `random.Random`), recomputing the mean per-problem accuracy difference, and reports
the 2.5 / 97.5 percentiles. A problem "flipped" when its per-problem accuracy crosses 0.5 (solved by the
majority of samples in one run, not in the other).

Before any number, each benchmark's two ``run.json`` files and ``samples.jsonl`` problem sets are
compared: a difference in the problems graded (a ``limit``, a run cut short), the data checksum, the
prompt, or the sampling protocol (samples per problem, temperature, top_p, max_new_tokens) makes the
delta meaningless, so `compare_runs` refuses with every difference named, unless ``allow_mismatch`` is
set — then the comparison is written with the differences marked in ``summary.json`` and ``report.md``.
The model and backend are what a comparison is for, and the seed only picks samples from the same
distribution: both are reported, neither refuses. `default_output_dir` puts the result beside the runs.
A benchmark only one run has, or whose folder holds no samples, is not compared: `skipped_benchmarks`
names each with the reason, and the report and ``summary.json`` list them, so a missing row is explained.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eval.records import DataError, read_jsonl, write_json, write_text_atomic
from eval.reports.metrics import group_by_problem, mcnemar_p, wilson_interval
from eval.run.regrade import benchmark_dirs
from eval.run.runner import MANIFEST_FILE, SAMPLES_FILE

SAMPLING_KEYS = ("samples", "temperature", "top_p", "max_new_tokens")


class NotComparableError(DataError):
    """Two runs graded different problems, or with a different prompt, data or sampling protocol."""


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
    differences: tuple[str, ...] = ()
    runs: tuple[str, str] = ("", "")  # what produced each side: model, backend, seed

    @property
    def interval_a(self) -> tuple[float, float]:
        """95% Wilson interval of run A's pass@1 over the shared problems."""
        return wilson_interval(self.pass1_a, self.problems)

    @property
    def interval_b(self) -> tuple[float, float]:
        return wilson_interval(self.pass1_b, self.problems)

    @property
    def mcnemar_p(self) -> float:
        """Exact McNemar p-value of the flips (problems gained against problems lost)."""
        return mcnemar_p(len(self.gained), len(self.lost))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "interval_a": list(self.interval_a),
            "interval_b": list(self.interval_b),
            "mcnemar_p": self.mcnemar_p,
            "gained": list(self.gained),
            "lost": list(self.lost),
            "differences": list(self.differences),
            "comparable": not self.differences,
            "runs": list(self.runs),
        }


@dataclass(frozen=True)
class Skipped:
    """A benchmark left out of a comparison, and why."""

    benchmark: str
    reason: str


def skipped_benchmarks(run_a: str | Path, run_b: str | Path) -> list[Skipped]:
    """Benchmarks in either run that `compare_runs` does not compare: present in one run only, or a folder
    under ``eval/`` without ``samples.jsonl`` (a run stopped before its first batch)."""
    found = {side: _result_names(run) for side, run in (("A", run_a), ("B", run_b))}
    skipped = []
    for name in sorted(found["A"][0] | found["B"][0] | found["A"][1] | found["B"][1]):
        sides = [s for s in ("A", "B") if name in found[s][0]]
        empty = [s for s in ("A", "B") if name in found[s][1]]
        if len(sides) == 2:
            continue
        if empty:
            reason = f"no {SAMPLES_FILE} in {' and '.join(empty)} (stopped before its first batch?)"
        else:
            other = "B" if sides == ["A"] else "A"
            reason = f"only in {sides[0]}: {other} has no results for it"
        skipped.append(Skipped(name, reason))
    return skipped


def _result_names(run: str | Path) -> tuple[set[str], set[str]]:
    """Benchmark names with samples, and ``eval/`` folders without them."""
    with_samples = {p.name for p in benchmark_dirs(run)}
    folder = Path(run) / "eval"
    empty = (
        {p.name for p in folder.iterdir() if p.is_dir() and not (p / SAMPLES_FILE).exists()}
        if folder.is_dir()
        else set()
    )
    return with_samples, empty - with_samples


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


def compare_runs(
    run_a: str | Path, run_b: str | Path, *, seed: int = 0, allow_mismatch: bool = False
) -> list[BenchmarkComparison]:
    """Compare every benchmark present in both runs, after checking that the runs are comparable.

    Raises:
        DataError: A run folder without results, or no benchmark in common.
        NotComparableError: The runs differ in problems, data, prompt or sampling and ``allow_mismatch`` is
            not set (the message names every difference).
    """
    dirs_a = {p.name: p for p in benchmark_dirs(run_a)}
    dirs_b = {p.name: p for p in benchmark_dirs(run_b)}
    common = sorted(set(dirs_a) & set(dirs_b))
    if not common:
        raise DataError(f"{run_a} and {run_b} have no benchmark in common ({sorted(dirs_a)} vs {sorted(dirs_b)})")
    results = [_compare_folders(name, dirs_a[name], dirs_b[name], seed) for name in common]
    mismatched = [f"{r.benchmark}: {'; '.join(r.differences)}" for r in results if r.differences]
    if mismatched and not allow_mismatch:
        raise NotComparableError(
            f"{run_a} and {run_b} are not comparable ({' | '.join(mismatched)}); pass allow_mismatch=true to "
            "compare them anyway, with the differences marked in the report"
        )
    return results


def _compare_folders(name: str, folder_a: Path, folder_b: Path, seed: int) -> BenchmarkComparison:
    rows_a = read_jsonl(folder_a / SAMPLES_FILE, tolerate_torn_tail=True)
    rows_b = read_jsonl(folder_b / SAMPLES_FILE, tolerate_torn_tail=True)
    manifest_a, manifest_b = run_manifest(folder_a), run_manifest(folder_b)
    found = run_differences(manifest_a, manifest_b, _problem_ids(rows_a), _problem_ids(rows_b))
    runs = (describe_run(manifest_a), describe_run(manifest_b))
    return replace(compare_benchmark(name, rows_a, rows_b, seed=seed), differences=tuple(found), runs=runs)


def _problem_ids(rows: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(row["problem_id"]) for row in rows}


def run_manifest(folder: Path) -> dict[str, Any] | None:
    """The ``run.json`` of a benchmark folder (None when absent: an older or hand-made run)."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def run_differences(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, problems_a: set[str], problems_b: set[str]
) -> list[str]:
    """Every difference that makes two runs' pass@1 incomparable, as short phrases (A first)."""
    found = []
    if problems_a != problems_b:
        found.append(
            f"problems {len(problems_a)} vs {len(problems_b)} ({len(problems_a - problems_b)} only in A, "
            f"{len(problems_b - problems_a)} only in B)"
        )
    if a is None or b is None:
        missing = " and ".join(side for side, m in (("A", a), ("B", b)) if m is None)
        return [*found, f"{MANIFEST_FILE} missing in {missing}: protocol unknown"]
    if a.get("data_checksum") != b.get("data_checksum"):
        found.append("data checksum differs")
    if a.get("prompt") != b.get("prompt"):
        found.append("prompt differs")
    if a.get("choices") != b.get("choices"):
        found.append("multiple-choice shuffling differs")
    protocol_a, protocol_b = a.get("protocol") or {}, b.get("protocol") or {}
    found += [
        f"{key} {protocol_a.get(key)} vs {protocol_b.get(key)}"
        for key in SAMPLING_KEYS
        if protocol_a.get(key) != protocol_b.get(key)
    ]
    return found


def describe_run(manifest: Mapping[str, Any] | None) -> str:
    if manifest is None:
        return f"unknown (no {MANIFEST_FILE})"
    seed = (manifest.get("protocol") or {}).get("seed")
    return f"model {manifest.get('model')}, backend {manifest.get('backend')}, seed {seed}"


def default_output_dir(runs: Sequence[str | Path]) -> Path:
    """Beside the runs: ``<their common parent>/compare-<A>-vs-<B>`` (names relative to that parent)."""
    paths = [Path(r).resolve() for r in runs]
    parent = Path(os.path.commonpath(paths))
    if parent in paths:  # one run inside the other: put it beside the outer one
        parent = parent.parent
    names = ["_".join(p.relative_to(parent).parts) for p in paths]
    return parent / f"compare-{names[0]}-vs-{names[1]}"


def write_comparison(
    out_dir: str | Path,
    results: Sequence[BenchmarkComparison],
    runs: Sequence[str],
    skipped: Sequence[Skipped] = (),
) -> str:
    """Write ``summary.json`` and ``report.md`` of a comparison; returns the report text."""
    text = render_comparison(results, str(runs[0]), str(runs[1]), skipped)
    summary = {
        "runs": [str(r) for r in runs],
        "comparable": not any(r.differences for r in results),
        "benchmarks": [r.to_dict() for r in results],
        "skipped": [{"benchmark": s.benchmark, "reason": s.reason} for s in skipped],
    }
    write_json(Path(out_dir) / "summary.json", summary)
    write_text_atomic(Path(out_dir) / "report.md", text)
    return text


def render_comparison(
    results: Sequence[BenchmarkComparison], run_a: str, run_b: str, skipped: Sequence[Skipped] = ()
) -> str:
    """Markdown table of deltas with confidence intervals, the benchmarks skipped and why, the flipped problems."""
    lines = [f"A = {run_a}\nB = {run_b}\n"]
    for r in results:
        lines.append(f"{r.benchmark}: A = {r.runs[0]}; B = {r.runs[1]}")
    for r in results:
        if r.differences:
            lines.append(f"**NOT COMPARABLE as run ({r.benchmark}): {'; '.join(r.differences)}**")
    lines += [
        "",
        "| benchmark | problems | pass@1 A [95% CI] | pass@1 B [95% CI] | delta (B-A) | 95% CI (paired bootstrap) "
        "| McNemar p (exact) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.benchmark} | {r.problems} | {_with_interval(r.pass1_a, r.interval_a)} | "
            f"{_with_interval(r.pass1_b, r.interval_b)} | {r.delta:+.4f} | [{r.ci_low:+.4f}, {r.ci_high:+.4f}] | "
            f"{r.mcnemar_p:.2g} |"
        )
    lines += [f"\nskipped {s.benchmark}: {s.reason}" for s in skipped]
    for r in results:
        lines.append(f"\n{r.benchmark}: gained {len(r.gained)} {list(r.gained)}; lost {len(r.lost)} {list(r.lost)}")
    return "\n".join(lines) + "\n"


def _with_interval(value: float, interval: tuple[float, float]) -> str:
    return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"


def headline(result: BenchmarkComparison) -> str:
    """One line for a console: both pass@1 with their intervals, the flips and the paired test."""
    low_a, high_a = result.interval_a
    low_b, high_b = result.interval_b
    return (
        f"{result.benchmark} ({result.problems} problems): A {result.pass1_a:.1%} [{low_a:.1%}, {high_a:.1%}] -> "
        f"B {result.pass1_b:.1%} [{low_b:.1%}, {high_b:.1%}]; {len(result.gained)} gained, {len(result.lost)} lost, "
        f"McNemar p = {result.mcnemar_p:.2g}"
    )
