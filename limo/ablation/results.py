"""The tables of an ablation, from its runs' per-sample evaluation files: ``results.json``, ``results.md``,
``report.html``.

A run's verdict on a problem is its first sample's (``sample_index`` 0: one greedy sample per problem, the
protocol the comparison's benchmarks use). Per run: correct / problems with the 95% Wilson interval over its problems
(`eval.reports.metrics.wilson_interval`: one run, so the problems are the items), and its compute — optimizer steps
and the tokens of every batch (TRL's ``num_tokens`` in ``train/log_history.json``).

Across runs, two units (docs/ablation.md, "How the tables test a difference"). An arm's score on a problem at a seed
is its verdict there (the mean over its draws, when it draws at random at that seed), kept as an integer times the
draws' least common multiple so that every count is exact; per arm, the accuracy is the mean over problems of those
scores averaged over seeds, with a 95% interval from a two-level bootstrap (seeds, then problems, calibrated for few
seeds: `eval.reports.metrics.two_level_bootstrap`) — each benchmark whole, by part (``part_field`` /
``part_ranges``) and by the sample fields ``by`` names.

A comparison of arms A and B on a scope (a benchmark, or one of its parts) pairs the seeds both arms ran (the base
model, one untrained run, stands against each of the other arm's seeds), on the problems every paired run was
evaluated on (the others are counted and said). It is decided over *runs*: each paired seed's accuracy, A's runs
against B's by an exact permutation test (`eval.reports.metrics.run_permutation_p`; against the base model, a
sign-flip of each run's difference from it), with the seed-to-seed spread it measured and the difference it could
detect. Beside it, over *problems* (do these runs differ on these problems?): a problem's difference is A's score
minus B's averaged over the seeds, the two-sided sign-flip p (`eval.reports.metrics.sign_flip_p`), the problems where
A's mean is higher / lower, and one exact McNemar p per seed (do the seeds agree?). The 95% two-level bootstrap
interval of the accuracy difference goes with both. ``ablate.primary`` names the comparison the ablation decides:
shown first, its p unadjusted; every other comparison's p values are also shown Holm-adjusted over all of the table's
other comparisons, multi-turn gains included (`holm_family`), and labelled exploratory.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eval.records import write_json, write_text_atomic
from eval.reports.html_page import bar_chart, write_page
from eval.reports.metrics import (
    BOOTSTRAP,
    EXACT_MAX_PROBLEMS,
    EXACT_MAX_RELABELINGS,
    PERMUTATIONS,
    STATS_SEED,
    detectable_shift,
    holm,
    mcnemar_p,
    run_permutation_p,
    runs_against_one,
    sign_flip_p,
    two_level_bootstrap,
    wilson_interval,
)
from limo.ablation.markers import read_marker
from limo.ablation.plan import RunSpec
from limo.ablation.store import read_rows
from limo.setup.ablate import PrimaryOptions

Parts = dict[str, dict[str, set[str]]]  # benchmark -> part -> problem ids
Section = tuple[str, list[str], list[list[Any]]]  # a table: title, columns, rows
Scope = tuple[str, str | None]  # (benchmark, part or None for the whole benchmark)


@dataclass(frozen=True)
class RunResult:
    """One evaluated model: its arm, seed, draw, compute and per-problem verdicts.

    Attributes:
        spec: Which run (arm, seed, draw, folder).
        steps: Optimizer steps (0: untrained).
        tokens: Training tokens TRL counted (0: untrained).
        correct: Benchmark -> problem id -> whether its first sample was right.
        fields: Benchmark -> problem id -> the sample fields (level, subject) for breakdowns.
        made: Where and with what the run was made (`made_with`).
    """

    spec: RunSpec
    steps: int
    tokens: int
    correct: dict[str, dict[str, bool]]
    fields: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    made: str = ""


def load_run(spec: RunSpec, benchmarks: Sequence[str]) -> RunResult:
    """A run's compute and first-sample verdicts, from its folder or its kept copy (``samples.jsonl.gz``,
    `limo.ablation.store`)."""
    steps, tokens = compute_of(Path(spec.folder))
    correct: dict[str, dict[str, bool]] = {}
    fields: dict[str, dict[str, dict[str, Any]]] = {}
    for name in benchmarks:
        rows = [r for r in read_rows(Path(spec.folder) / "eval" / name / "samples.jsonl") if r["sample_index"] == 0]
        correct[name] = {str(r["problem_id"]): bool(r["correct"]) for r in rows}
        fields[name] = {str(r["problem_id"]): {k: r.get(k) for k in ("level", "subject")} for r in rows}
    return RunResult(spec, steps, tokens, correct, fields, made_with(Path(spec.folder), benchmarks))


def made_with(folder: Path, benchmarks: Sequence[str]) -> str:
    """Where and with what a run was made, from its records: the machine of its evaluation (the first benchmark's
    ``summary.json``) and of its training (its marker) where they differ, then torch, transformers and Python as the
    evaluation had them. A run kept before machines were recorded says so: its versions still tell runs apart."""
    summary = folder / "eval" / benchmarks[0] / "summary.json" if benchmarks else None
    env = (json.loads(summary.read_text(encoding="utf-8")) if summary and summary.is_file() else {}).get("environment")
    env = env or {}
    packages = env.get("packages") or {}
    names = {"torch": "torch", "transformers": "transformers", "python": "Python"}
    versions = ", ".join(f"{shown} {packages[name]}" for name, shown in names.items() if name in packages)
    evaluated = env.get("machine")
    trained = (read_marker(folder / ".ablate" / "train.json") or {}).get("machine")
    where = evaluated or "a machine not recorded"
    if trained and trained != evaluated:
        where = f"{trained} (training), {where} (evaluation)"
    return f"{where}; {versions}" if versions else where


def compute_of(folder: Path) -> tuple[int, int]:
    """Optimizer steps and training tokens of a run ((0, 0) for an untrained model)."""
    log = folder / "train" / "log_history.json"
    if not log.exists():
        return 0, 0
    entries = json.loads(log.read_text(encoding="utf-8"))
    steps = max((int(e.get("step", 0)) for e in entries), default=0)
    tokens = max((int(float(e["num_tokens"])) for e in entries if "num_tokens" in e), default=0)
    return steps, tokens


def count(verdicts: Mapping[str, bool], keep: set[str] | None = None) -> tuple[int, int]:
    chosen = [v for k, v in verdicts.items() if keep is None or k in keep]
    return sum(chosen), len(chosen)


def accuracy(correct: int, total: int) -> dict[str, Any]:
    """One run's counts over its problems, with the 95% Wilson interval (n = its problems)."""
    low, high = wilson_interval(correct / total if total else 0.0, total)
    return {"correct": correct, "total": total, "accuracy": correct / total if total else None, "wilson": [low, high]}


# ------------------------------------------------------------------------------------------- problem-level scores


def seed_groups(runs: Sequence[RunResult]) -> dict[int | None, list[RunResult]]:
    """An arm's runs by training seed (the base model's one run under None; a random arm's draws share a seed)."""
    out: dict[int | None, list[RunResult]] = {}
    for run in runs:
        out.setdefault(run.spec.seed, []).append(run)
    return out


def problems_of(runs: Sequence[RunResult], bench: str, keep: set[str] | None) -> list[str]:
    """The problems every one of ``runs`` has a verdict on (within ``keep``), in a fixed order."""
    if not runs:
        return []
    ids = set.intersection(*(set(r.correct[bench]) for r in runs))
    return sorted(ids if keep is None else ids & keep)


def draw_scale(*groups: Mapping[int | None, Sequence[RunResult]]) -> int:
    """The least common multiple of the draws at a seed: every score times it is an integer."""
    return math.lcm(*(len(runs) for g in groups for runs in g.values()))


def score_counts(
    groups: Mapping[int | None, Sequence[RunResult]],
    seeds: Sequence[int | None],
    bench: str,
    ids: Sequence[str],
    scale: int,
) -> np.ndarray:
    """Seeds x problems, in integers: each run's verdict (0/1, or a gain of -1/0/1), averaged over the draws at a
    seed and multiplied by ``scale`` (`draw_scale`), so that a score of a third is exact (a seed an arm lacks: its
    None run, the base model's)."""
    rows = []
    for seed in seeds:
        runs = groups[seed] if seed in groups else groups[None]
        weight = scale // len(runs)
        rows.append([weight * sum(int(r.correct[bench][i]) for r in runs) for i in ids])
    return np.asarray(rows, dtype=np.int64).reshape(len(seeds), len(ids))


def score_table(
    groups: Mapping[int | None, Sequence[RunResult]], seeds: Sequence[int | None], bench: str, ids: Sequence[str]
) -> np.ndarray:
    """`score_counts` as fractions of one (for the bootstrap)."""
    scale = draw_scale(groups)
    return score_counts(groups, seeds, bench, ids, scale) / scale


@dataclass(frozen=True)
class Aligned:
    """Two arms' scores on the same problems at the seeds they are paired on, in integers.

    Attributes:
        seeds: The rows' seeds: those both arms ran, or, against the base model, the other arm's.
        problems: The columns: the problems every paired run has a verdict on.
        counts_a: A's scores times ``scale``, seeds x problems (draws averaged within a seed).
        counts_b: B's, the same shape (the base model's one run repeated on every row).
        scale: What the counts are scores times (the draws' least common multiple).
        fixed: ``a`` or ``b`` when that arm is one run repeated on every row (the base model), else None.
        left_out: Problems in the scope that some paired run has a verdict on and another lacks (the comparison is on
            the problems they all have; 0 when every run saw the same problems).
    """

    seeds: list[int]
    problems: list[str]
    counts_a: np.ndarray
    counts_b: np.ndarray
    scale: int = 1
    fixed: str | None = None
    left_out: int = 0

    @property
    def a(self) -> np.ndarray:
        return self.counts_a / self.scale

    @property
    def b(self) -> np.ndarray:
        return self.counts_b / self.scale


def align(runs_a: Sequence[RunResult], runs_b: Sequence[RunResult], bench: str, keep: set[str] | None) -> Aligned:
    """A's and B's scores problem by problem at their paired seeds (see the module's docstring), on the problems
    every paired run was evaluated on (``left_out`` counts the others)."""
    groups_a, groups_b = seed_groups(runs_a), seed_groups(runs_b)
    fixed = "a" if None in groups_a else "b" if None in groups_b else None
    if fixed:  # the base model: one run, against each seed of the other arm
        seeds = sorted(s for s in {*groups_a, *groups_b} if s is not None)
    else:
        seeds = sorted(set(groups_a) & set(groups_b))
    used = [r for s in seeds for g in (groups_a, groups_b) for r in (g[s] if s in g else g[None])]
    ids = problems_of(used, bench, keep)
    seen = set().union(*(r.correct[bench] for r in used)) if used else set()
    left_out = len(seen if keep is None else seen & keep) - len(ids)
    scale = draw_scale(groups_a, groups_b)
    counts = [score_counts(g, seeds, bench, ids, scale) for g in (groups_a, groups_b)]
    return Aligned(list(seeds), ids, counts[0], counts[1], scale, fixed, left_out)


def arm_accuracy(runs: Sequence[RunResult], bench: str, keep: set[str] | None) -> dict[str, Any]:
    """An arm's mean accuracy over problems (seeds averaged, draws within a seed) and its 95% two-level bootstrap
    interval."""
    groups = seed_groups(runs)
    seeds = sorted(groups, key=lambda s: -1 if s is None else s)
    ids = problems_of(runs, bench, keep)
    table = score_table(groups, seeds, bench, ids)
    interval = list(two_level_bootstrap(table)) if ids else None
    mean = float(table.mean()) if ids else None
    return {"problems": len(ids), "runs": len(runs), "accuracy": mean, "interval": interval}


EMPTY_ROW = (  # a comparison's values when no seed or no problem is shared: None
    *("accuracy_a", "accuracy_b", "difference", "interval", "p", "p_exact", "p_at_floor"),
    *("p_runs", "p_runs_floor", "runs_test", "seed_sd", "detectable"),
)


def compare(aligned: Aligned) -> dict[str, Any]:
    """The paired statistics of an alignment: means, difference with its interval, the test over runs with the
    seed-to-seed spread and the difference it could detect, the sign-flip p over problems, per-seed McNemar. Every
    count is of integers (`Aligned`), so a difference of zero is 0."""
    n = len(aligned.problems)
    where = {"problems": n, "problems_left_out": aligned.left_out, "seeds": aligned.seeds}
    if not aligned.seeds or not n:  # no seed both arms ran, or no problem every paired run has
        nothing = {"problems_a_higher": 0, "problems_b_higher": 0, "per_seed": []}
        return {**where, **dict.fromkeys(EMPTY_ROW), **nothing}
    differences = aligned.counts_a - aligned.counts_b  # integers: scores times `scale`
    per_problem = differences.sum(axis=0)  # a problem's difference times seeds x scale
    test = sign_flip_p(per_problem.tolist())
    whole = aligned.scale * len(aligned.seeds) * n
    return {
        **where,
        "accuracy_a": int(aligned.counts_a.sum()) / whole,
        "accuracy_b": int(aligned.counts_b.sum()) / whole,
        "difference": int(per_problem.sum()) / whole,
        "interval": list(two_level_bootstrap(differences / aligned.scale)),
        "problems_a_higher": int(np.count_nonzero(per_problem > 0)),
        "problems_b_higher": int(np.count_nonzero(per_problem < 0)),
        **over_runs(aligned),
        "p": test.p,
        "p_exact": test.exact,
        "p_at_floor": test.at_floor,
        "per_seed": [seed_mcnemar(s, aligned.counts_a[k], aligned.counts_b[k]) for k, s in enumerate(aligned.seeds)],
    }


def over_runs(aligned: Aligned) -> dict[str, Any]:
    """The test whose unit is the training run (each paired seed's accuracy on the compared problems; a seed's draws
    averaged), the seed-to-seed spread it measured and the smallest difference it could detect.

    A's runs against B's by every relabeling of the pooled runs (`eval.reports.metrics.run_permutation_p`); against
    the base model, one fixed run, each run's difference from it sign-flipped (`runs_against_one`). The spread is the
    standard deviation of a run's accuracy within an arm, pooled over the arms that trained (None with one seed);
    the detectable difference is the spread times `eval.reports.metrics.detectable_shift` (80% power at p <= 0.05;
    None when these runs cannot reach 0.05)."""
    whole = aligned.scale * len(aligned.problems)
    totals = {"a": run_accuracies(aligned.counts_a, whole), "b": run_accuracies(aligned.counts_b, whole)}
    k = len(aligned.seeds)
    trained = [side for side in ("a", "b") if side != aligned.fixed]
    if aligned.fixed:
        test = runs_against_one(totals[trained[0]], totals[aligned.fixed][0])
        shift = detectable_shift(k, 1)
    else:
        test = run_permutation_p(totals["a"], totals["b"])
        shift = detectable_shift(k, k)
    squares = sum(sum((x - sum(totals[s]) / len(totals[s])) ** 2 for x in totals[s]) for s in trained)
    freedom = sum(len(totals[s]) - 1 for s in trained)
    spread = math.sqrt(squares / freedom) if freedom else None
    return {
        "p_runs": test.p,
        "p_runs_floor": test.floor,
        "runs_test": {
            "method": test.method,
            "runs_a": 1 if aligned.fixed == "a" else k,
            "runs_b": 1 if aligned.fixed == "b" else k,
            "exact": test.exact,
        },
        "seed_sd": spread,
        "detectable": spread * shift if spread is not None and shift is not None else None,
    }


def run_accuracies(counts: np.ndarray, whole: int) -> list[Fraction]:
    """Each row's accuracy over its problems, exactly (``whole``: the problems times the counts' scale)."""
    return [Fraction(int(total), whole) for total in counts.sum(axis=1)]


def seed_mcnemar(seed: int, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """One seed's exact McNemar test: problems A got right and B wrong, and the reverse (with draws at that seed: A's
    mean over them above B's, and the reverse; ``a`` and ``b`` on one integer scale, so equal means compare equal)."""
    a_higher, b_higher = int(np.count_nonzero(a > b)), int(np.count_nonzero(a < b))
    return {"seed": seed, "a_higher": a_higher, "b_higher": b_higher, "p": mcnemar_p(a_higher, b_higher)}


# ------------------------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Tables:
    """Everything the outputs show, computed once.

    Attributes:
        arms: Arm -> its runs (the base model: ``base`` -> its one run).
        parts: Benchmark -> part -> problem ids (every benchmark, ``{}`` without parts).
        by: Benchmark -> the sample fields its accuracy is broken down by.
        pairs: The comparisons (A, B), the primary's first when declared (`limo.setup.ablate.pairs_of`).
        facts: ``results.json``'s header (`facts`).
        primary: ``ablate.primary``, or None: every comparison is exploratory.
    """

    arms: dict[str, list[RunResult]]
    parts: Parts
    by: dict[str, tuple[str, ...]]
    pairs: tuple[tuple[str, str], ...]
    facts: dict[str, Any]
    primary: PrimaryOptions | None = None

    @property
    def benchmarks(self) -> list[str]:
        return list(self.parts)

    def scopes(self) -> list[Scope]:
        """(benchmark, part) for every benchmark whole, then its parts."""
        return [(b, p) for b in self.parts for p in (None, *self.parts[b])]

    def keep(self, bench: str, part: str | None) -> set[str] | None:
        return None if part is None else self.parts[bench][part]

    def is_primary(self, a: str, b: str, bench: str, part: str | None, turns: str | None = None) -> bool:
        """Whether this comparison is the primary one (``turns``: a multi-turn variant's turn gain,
        `limo.ablation.turns`; None: the single-turn accuracy)."""
        p = self.primary
        return p is not None and (a, b, bench, part, turns) == (*p.pair, p.benchmark, p.part, p.turns)


def statistics_facts() -> dict[str, Any]:
    """How every comparison was computed (``results.json``'s ``statistics``)."""
    return {
        "unit": "problem",
        "difference": "A's score minus B's per problem, averaged over the seeds both arms ran (draws averaged within "
        "a seed; the base model's one run against each seed of the other arm)",
        "test": "two-sided sign-flip permutation test over problems (these runs, these problems)",
        "runs_test": "two-sided permutation test over training runs: each paired seed's accuracy on the compared "
        "problems (draws averaged), exact over every relabeling of the pooled runs; against the base model's one run, "
        "each run's difference from it sign-flipped",
        "detectable": "the difference in accuracy the test over runs finds at p <= 0.05 with 80% power: the pooled "
        "seed-to-seed standard deviation times a simulated factor for these numbers of runs (normal run accuracies)",
        "exact_max_problems": EXACT_MAX_PROBLEMS,
        "exact_max_relabelings": EXACT_MAX_RELABELINGS,
        "monte_carlo": {"resamples": PERMUTATIONS, "seed": STATS_SEED},
        "interval": {"method": "two-level bootstrap: seeds, then problems", "level": 0.95},
        "bootstrap": {"resamples": BOOTSTRAP, "seed": STATS_SEED},
        "per_seed": "exact McNemar per seed (secondary, unadjusted)",
        "adjustment": "holm",
    }


def pair_rows(tables: Tables) -> list[dict[str, Any]]:
    """Every comparison, the primary first; each non-primary p Holm-adjusted over all of them."""
    rows = []
    for a, b in tables.pairs:
        for bench, part in tables.scopes():
            aligned = align(tables.arms[a], tables.arms[b], bench, tables.keep(bench, part))
            primary = tables.is_primary(a, b, bench, part)
            rows.append({"a": a, "b": b, "benchmark": bench, "part": part, "primary": primary, **compare(aligned)})
    return primary_first_holm(rows)


def primary_first_holm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with the primary comparison first, the others Holm-adjusted as one family (`holm_family`)."""
    rows.sort(key=lambda r: not r["primary"])
    holm_family(rows)
    return rows


HOLM_KEYS = (("p", "p_holm"), ("p_runs", "p_runs_holm"))  # each p and its adjusted value


def holm_family(rows: Sequence[dict[str, Any]]) -> int:
    """Holm-adjust every exploratory (non-primary) row of ``rows`` as one family, in place, for each test (``p``:
    over problems, ``p_runs``: over runs); the primary's adjusted values are None (its p stands unadjusted). Returns
    the family's size."""
    family = [r for r in rows if not r["primary"] and r["p"] is not None]
    for key, adjusted_key in HOLM_KEYS:
        for row in rows:
            row[adjusted_key] = None
        for row, adjusted in zip(family, holm([r[key] for r in family]), strict=True):
            row[adjusted_key] = adjusted
    return len(family)


def primary_facts(tables: Tables, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    if tables.primary is None:
        return None
    p = tables.primary
    found = any(r["primary"] for r in rows)  # a turn-gain primary is found by the multi-turn tables (`Extension`)
    return {"pair": list(p.pair), "benchmark": p.benchmark, "part": p.part, "turns": p.turns, "in_table": found}


def to_json(tables: Tables) -> dict[str, Any]:
    """``results.json``: per run accuracy and compute, per arm accuracy, the comparisons, breakdowns."""
    runs = []
    for arm_runs in tables.arms.values():
        for run in arm_runs:
            cells = {}
            for bench in tables.benchmarks:
                cell = accuracy(*count(run.correct[bench]))
                cell["parts"] = {
                    p: accuracy(*count(run.correct[bench], ids)) for p, ids in tables.parts[bench].items()
                }
                cells[bench] = cell
            spec = run.spec
            row = {"arm": spec.arm, "seed": spec.seed, "draw": spec.draw, "folder": spec.folder}
            runs.append({**row, "steps": run.steps, "tokens": run.tokens, "made": run.made, "accuracy": cells})
    per_arm = [
        {"arm": arm, "benchmark": b, "part": p, **arm_accuracy(rs, b, tables.keep(b, p))}
        for arm, rs in tables.arms.items()
        for b, p in tables.scopes()
    ]
    pairs = pair_rows(tables)
    statistics = {**statistics_facts(), "holm_family": sum(1 for r in pairs if r["p_holm"] is not None)}
    return {
        **tables.facts,
        "made": made_groups(tables),
        "statistics": statistics,
        "primary": primary_facts(tables, pairs),
        "runs": runs,
        "arm_accuracy": per_arm,
        "pairs": pairs,
        "breakdowns": breakdowns(tables),
    }


def breakdowns(tables: Tables) -> list[dict[str, Any]]:
    rows = []
    for bench, fields in tables.by.items():
        for name in fields:
            for arm, runs in tables.arms.items():
                for value, ids in sorted(values_of(runs, bench, name).items()):
                    row = {"arm": arm, "benchmark": bench, "field": name, "value": value}
                    rows.append({**row, **arm_accuracy(runs, bench, ids)})
    return rows


def values_of(runs: Sequence[RunResult], bench: str, name: str) -> dict[str, set[str]]:
    """Problem ids by their value of a sample field (from the arm's first run; every run saw the same problems)."""
    out: dict[str, set[str]] = {}
    for problem, values in runs[0].fields[bench].items():
        out.setdefault(str(values.get(name)), set()).add(problem)
    return out


# ------------------------------------------------------------------------------------------- rendering


def cell(counts: Mapping[str, Any]) -> str:
    if not counts["total"]:
        return "-"
    low, high = counts["wilson"]
    return f"{counts['correct']}/{counts['total']} [{low:.1%}, {high:.1%}]"


def mean_cell(row: Mapping[str, Any]) -> str:
    """An arm's mean accuracy over problems with its bootstrap interval."""
    if row["accuracy"] is None:
        return "-"
    low, high = row["interval"]
    return f"{row['accuracy']:.1%} [{low:.1%}, {high:.1%}]"


def points(x: float) -> str:
    return f"{100 * x:+.1f}"


def p_text(p: float | None, at_floor: bool = False) -> str:
    """A p-value to three significant figures (0.0496 and 0.0504 read apart); ``≤`` when it is a draw's floor."""
    if p is None:
        return "-"
    return f"≤ {p:.3g}" if at_floor else f"{p:.3g}"


SEEDS_WANTED = 5  # runs a side a primary pair wants: 5 v 5 can give p = 0.0079, 3 v 3 no less than 0.1


def runs_cell(r: Mapping[str, Any], holm_shown: bool = False) -> str:
    """The p over runs, Holm-adjusted beside it for an exploratory row (``holm_shown``), and how many runs each
    side had; with fewer than `SEEDS_WANTED` a side, the smallest p those runs can give."""
    shown = p_text(r["p_runs"]) + (f" / {p_text(r['p_runs_holm'])}" if holm_shown else "")
    runs = r["runs_test"]
    counted = f"{runs['runs_a']} v {runs['runs_b']} runs"
    if max(runs["runs_a"], runs["runs_b"]) < SEEDS_WANTED:
        counted += f": the smallest p possible is {p_text(r['p_runs_floor'])}"
    return f"{shown} ({counted})"


def spread_cell(r: Mapping[str, Any]) -> str:
    """The seed-to-seed standard deviation of a run's accuracy, in points."""
    return "- (one seed)" if r["seed_sd"] is None else f"{100 * r['seed_sd']:.1f}"


def detectable_cell(r: Mapping[str, Any]) -> str:
    """The difference the test over runs finds 80% of the time at p <= 0.05, in points (or why there is none)."""
    if r["detectable"] is not None:
        return f"{100 * r['detectable']:.1f}"
    if r["p_runs_floor"] is not None and r["p_runs_floor"] > 0.05:
        return "none: p cannot reach 0.05"
    return "- (one seed)"


def run_cells(r: Mapping[str, Any], holm_shown: bool = False) -> list[str]:
    """The columns of the test over runs: its p, the measured spread, the detectable difference."""
    return [runs_cell(r, holm_shown), spread_cell(r), detectable_cell(r)]


RUN_COLUMNS = ["p over runs", "seed SD, points", "detectable at 80%, points"]


def problems_cell(r: Mapping[str, Any]) -> str:
    """How many problems a comparison counts, and how many it leaves out (not evaluated in every paired run)."""
    left = r.get("problems_left_out") or 0
    return f"{r['problems']} ({left} left out: not in every run)" if left else str(r["problems"])


def runs_sentence(r: Mapping[str, Any]) -> str:
    """What the primary's test over runs could and could not find, in a sentence."""
    runs = r["runs_test"]
    k = max(runs["runs_a"], runs["runs_b"])
    text = f"Decided over runs ({runs['runs_a']} v {runs['runs_b']}): p = {p_text(r['p_runs'])}"
    if k < SEEDS_WANTED:
        text += (
            f"; with so few runs the smallest p possible is {p_text(r['p_runs_floor'])} (a primary pair wants "
            f"{SEEDS_WANTED} seeds or more)"
        )
    if r["detectable"] is None and r["p_runs_floor"] is not None and r["p_runs_floor"] > 0.05:
        text += ", so no difference of any size can reach p ≤ 0.05 here"
    if r["seed_sd"] is not None:
        text += f". Seed-to-seed spread: {spread_cell(r)} points (SD of a run's accuracy within an arm, pooled)"
    if r["detectable"] is not None:
        text += (
            f"; with these runs and problems a true difference of {detectable_cell(r)} points is found at p ≤ 0.05 "
            "80% of the time, so a larger p rules out little below that"
        )
    return text + "."


def method_note(payload: Mapping[str, Any]) -> str:
    """The line under every comparison table: the units, the tests, the interval, with their resamples and seeds."""
    s = payload["statistics"]
    mc, boot = s["monte_carlo"], s["bootstrap"]
    return (
        "p over runs (the decision: does this arm train a better model?): two-sided permutation test of A's runs "
        "against B's, each paired seed's accuracy on the compared problems (draws averaged), exact over every "
        "relabeling of the pooled runs (against the base model's one run: each run's difference from it "
        "sign-flipped); seed SD: the standard deviation of a run's accuracy within an arm, pooled; detectable: the "
        "difference that test finds at p ≤ 0.05 80% of the time with these runs (simulated, normal run accuracies "
        "with that SD). p over problems (do these runs differ on these problems?): a problem's difference is A's "
        "score minus B's averaged over the seeds both arms ran (draws averaged within a seed; the base model's one "
        "run against each seed of the other arm); two-sided sign-flip permutation test over problems, exact when at "
        f"most {s['exact_max_problems']} problems differ, else Monte Carlo with {mc['resamples']:,} sign patterns, "
        f"seed {mc['seed']} (≤: no pattern as extreme, the smallest p it can give). Interval: 95% two-level "
        f"bootstrap (seeds, then problems), {boot['resamples']:,} resamples, seed {boot['seed']}. A > B / A < B: "
        "problems whose mean over seeds is higher for A / for B. Per seed: exact McNemar of that seed's runs (A "
        "right and B wrong / the reverse, p), unadjusted, to show whether the seeds agree."
    )


def markdown(
    tables: Tables, payload: Mapping[str, Any], lead: Sequence[Section] = (), decided: Sequence[Mapping[str, Any]] = ()
) -> str:
    """``results.md``: the header, the primary comparison (``lead``: an extension's, a turn gain, whose row is among
    ``decided``), compute, accuracy per run, per arm by part, every comparison, breakdowns."""
    primary = f"## {primary_title(payload)}\n\n{primary_sentence(payload)}"
    if any(r["primary"] for r in payload["pairs"]):
        primary += "\n\n" + md_table(*pairs_table(payload, primary=True)) + "\n\n" + method_note(payload)
    primary += "".join(f"\n\n{md_table(columns, rows)}" for _, columns, rows in lead)
    chosen = [r for r in (*payload["pairs"], *decided) if r["primary"] and r["p"] is not None]
    primary += "".join(f"\n\n{runs_sentence(r)}" for r in chosen[:1])
    sections = [
        f"# Ablation: {payload['recipe']}",
        header_line(payload),
        primary,
        "## Compute\n\n" + md_table(*compute_table(tables, payload)),
        f"## {RUN_TITLE}\n\n" + md_table(*accuracy_table(tables, payload)),
        f"## {ARM_TITLE}\n\n" + md_table(*arm_table(tables, payload)),
        f"## {pairs_title(payload)}\n\n" + md_table(*pairs_table(payload)) + "\n\n" + method_note(payload),
    ]
    sections += [
        f"## {title}\n\n{md_table(columns, rows)}" for title, columns, rows in breakdown_tables(tables, payload)
    ]
    return "\n\n".join(sections) + "\n"


RUN_TITLE = "Accuracy, every run [95% Wilson over its problems]"
ARM_TITLE = "Per arm, by part: mean accuracy over problems, seeds averaged [95% bootstrap: seeds, then problems]"


def pairs_title(payload: Mapping[str, Any]) -> str:
    family = payload["statistics"]["holm_family"]
    return f"Paired comparisons, exploratory: p raw and Holm-adjusted over {family} comparisons"


def primary_what(declared: Mapping[str, Any]) -> str:
    a, b = declared["pair"]
    gain = (
        f" (the gain from turn 1 to the last turn, {declared['turns'].replace('_', ' ')})"
        if declared.get("turns")
        else ""
    )
    return f"{a} vs {b}{gain} on {scope_name(declared['benchmark'], declared['part'])}"


def primary_title(payload: Mapping[str, Any]) -> str:
    declared = payload["primary"]
    if declared is None or not declared["in_table"]:
        return "Primary comparison"
    return f"Primary comparison: {primary_what(declared)}"


def primary_sentence(payload: Mapping[str, Any]) -> str:
    """What the primary comparison is (declared in ``ablate.primary``), or why there is none here."""
    family = payload["statistics"]["holm_family"]
    holm_note = f"exploratory, its p Holm-adjusted over those {family} comparisons"
    declared = payload["primary"]
    if declared is None:
        return f"No primary comparison declared (ablate.primary): every comparison is {holm_note}."
    if not declared["in_table"]:
        return (
            f"The recipe's primary comparison, {primary_what(declared)}, is not in this table (an arm it names did "
            f"not run here: a screen of some arms or seeds): every comparison is {holm_note}."
        )
    planned = payload.get("primary_plan")
    if planned is None:  # tables made without a kept plan (a library caller): nothing says when it was declared
        return (
            f"Primary: {primary_what(declared)}, declared in the recipe (ablate.primary), with no kept plan to say "
            f"whether before the runs; its p is not adjusted, and every other comparison is {holm_note}."
        )
    if not planned.get("unchanged"):  # the plan (`limo.ablation.store`) recorded another primary, or none
        recorded = planned.get("recorded")
        before = primary_what(recorded) if recorded else "none"
        return (
            f"Primary: {primary_what(declared)}, from the recipe (ablate.primary) as it is now; the plan recorded "
            f"{before} before its first run, so this primary was not declared before the runs. Its p is not "
            f"adjusted, and every other comparison is {holm_note}."
        )
    return (
        f"Primary: {primary_what(declared)}, declared in the recipe (ablate.primary) before the runs; its p is not "
        f"adjusted, and every other comparison is {holm_note}."
    )


def header_line(payload: Mapping[str, Any]) -> str:
    return (
        f"Command: `{payload['command']}`. Tables written on {payload['machine']}, {payload['written']}. "
        f"{made_sentence(payload.get('made') or [])} Seeds {payload['seeds']}, draws {payload['draws']}; a run's "
        "verdict is its first sample's; every comparison takes the problem as its unit (one observation per problem, "
        "whatever the number of seeds and draws)."
    )


def made_groups(tables: Tables) -> list[dict[str, Any]]:
    """The runs grouped by how they were made (`made_with`): each group's description and its arms' seeds."""
    groups: dict[str, dict[str, list[Any]]] = {}
    for arm, runs in tables.arms.items():
        for run in runs:
            seeds = groups.setdefault(run.made, {}).setdefault(arm, [])
            if run.spec.seed not in seeds:
                seeds.append(run.spec.seed)
    return [{"with": made, "runs": runs} for made, runs in groups.items()]


def made_sentence(groups: Sequence[Mapping[str, Any]]) -> str:
    """Where the runs were made: one machine for all, or each group's arms and seeds, so that a table whose arms were
    made on different machines (a GPU's and a CPU's) says so beside its numbers."""
    if len(groups) == 1:
        return f"Every run made on {groups[0]['with']}."
    parts = []
    for group in groups:
        arms = ", ".join(
            arm if seeds == [None] else f"{arm} seeds {sorted(seeds)}" for arm, seeds in group["runs"].items()
        )
        parts.append(f"{group['with']} ({arms})")
    return "Runs made on more than one machine or software stack: " + "; ".join(parts) + "."


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def arm_kind(payload: Mapping[str, Any], arm: str) -> dict[str, Any]:
    return next(a for a in payload["arms"] if a["name"] == arm)


def compute_table(tables: Tables, payload: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = ["arm", "kind", "rows", "runs", "steps", "tokens per run (mean)"]
    rows = []
    for arm, runs in tables.arms.items():
        info = arm_kind(payload, arm)
        steps = "/".join(str(s) for s in sorted({r.steps for r in runs}))
        tokens = sum(r.tokens for r in runs) // len(runs)
        rows.append(
            [arm, info["kind"], info.get("rows") or "-", len(runs), steps or "-", f"{tokens:,}" if tokens else "-"]
        )
    return columns, rows


def run_name(run: RunResult) -> str:
    spec = run.spec
    if spec.seed is None:
        return spec.arm
    return f"s{spec.seed}" + (f"d{spec.draw}" if spec.draw is not None else "")


def accuracy_table(tables: Tables, payload: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = ["arm", *(f"{b}: mean; each run" for b in tables.benchmarks)]
    rows = []
    for arm, runs in tables.arms.items():
        cells = []
        for bench in tables.benchmarks:
            each = [accuracy(*count(r.correct[bench])) for r in runs]
            mean = sum(e["accuracy"] or 0.0 for e in each) / len(each)
            shown = "; ".join(
                f"{run_name(r)}: {cell(e)}" if r.spec.seed is not None else cell(e)
                for r, e in zip(runs, each, strict=True)
            )
            cells.append(f"{mean:.1%}; {shown}")
        rows.append([arm, *cells])
    return columns, rows


def scope_name(bench: str, part: str | None) -> str:
    return bench if part is None else f"{bench} {part}"


def arm_table(tables: Tables, payload: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    scopes = tables.scopes()
    found = {(r["arm"], r["benchmark"], r["part"]): r for r in payload["arm_accuracy"]}
    first = next(iter(tables.arms), None)
    sizes = {(b, p): found[(first, b, p)]["problems"] if first else 0 for b, p in scopes}
    columns = ["arm (runs)", *(f"{scope_name(b, p)} ({sizes[(b, p)]} problems)" for b, p in scopes)]
    rows = [
        [f"{arm} ({len(runs)})", *(mean_cell(found[(arm, b, p)]) for b, p in scopes)]
        for arm, runs in tables.arms.items()
    ]
    return columns, rows


PAIR_COLUMNS = ["A vs B", "scope", "problems", "seeds", "A", "B", "A − B, points [95% CI]", "problems A > B / A < B"]


def pairs_table(payload: Mapping[str, Any], primary: bool = False) -> tuple[list[str], list[list[Any]]]:
    """The primary comparison alone (``primary``), or every other comparison with its raw and Holm-adjusted p."""
    chosen = [r for r in payload["pairs"] if r["primary"] == primary]
    if primary:
        p_columns = [*RUN_COLUMNS, "p over problems (these runs, these problems)"]
    else:
        p_columns = ["p over runs: raw / Holm", *RUN_COLUMNS[1:], "p over problems: raw / Holm"]
    columns = [*PAIR_COLUMNS, *p_columns, "per seed: A only / B only, McNemar p"]
    return columns, [pair_cells(r, primary) for r in chosen]


def pair_cells(r: Mapping[str, Any], primary: bool) -> list[str]:
    first = [f"{r['a']} vs {r['b']}", scope_name(r["benchmark"], r["part"]), problems_cell(r)]
    seeds = ", ".join(str(s) for s in r["seeds"]) or "none shared"
    if r["p"] is None:
        return [*first, seeds, *["-"] * 9]
    low, high = r["interval"]
    over_problems = p_text(r["p"], r["p_at_floor"])
    if not primary:
        over_problems += f" / {p_text(r['p_holm'], r['p_at_floor'])}"
    per_seed = "; ".join(f"s{s['seed']}: {s['a_higher']}/{s['b_higher']}, {p_text(s['p'])}" for s in r["per_seed"])
    return [
        *first,
        seeds,
        f"{r['accuracy_a']:.1%}",
        f"{r['accuracy_b']:.1%}",
        f"{points(r['difference'])} [{points(low)}, {points(high)}]",
        f"{r['problems_a_higher']} / {r['problems_b_higher']}",
        *run_cells(r, holm_shown=not primary),
        over_problems,
        per_seed,
    ]


def breakdown_tables(tables: Tables, payload: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    out = []
    for bench, fields in tables.by.items():
        for name in fields:
            rows = [r for r in payload["breakdowns"] if r["benchmark"] == bench and r["field"] == name]
            values = list(dict.fromkeys(r["value"] for r in rows))
            by_arm = {(r["arm"], r["value"]): r for r in rows}
            body = [
                [arm, *(mean_cell(by_arm[(arm, v)]) if (arm, v) in by_arm else "-" for v in values)]
                for arm in tables.arms
            ]
            title = f"{bench} by {name}: mean accuracy over problems, seeds averaged [95% bootstrap]"
            out.append((title, ["arm", *(f"{name} {v}" for v in values)], body))
    return out


def html_section(tables: Tables, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ablation as a report section: its tables and a chart of each arm's mean accuracy (the page payload's
    ``tables`` and ``charts``, `eval.reports.html_page`)."""
    primary = (primary_title(payload), *pairs_table(payload, primary=True))
    named = [
        *([primary] if primary[2] else []),
        ("Compute", *compute_table(tables, payload)),
        (RUN_TITLE, *accuracy_table(tables, payload)),
        (ARM_TITLE, *arm_table(tables, payload)),
        (pairs_title(payload), *pairs_table(payload)),
        *breakdown_tables(tables, payload),
    ]
    scopes = tables.scopes()
    found = {(r["arm"], r["benchmark"], r["part"]): r["accuracy"] or 0.0 for r in payload["arm_accuracy"]}
    series = {arm: [found[(arm, b, p)] for b, p in scopes] for arm in tables.arms}
    chart = bar_chart("Mean accuracy, seeds averaged", [scope_name(b, p) for b, p in scopes], series, percent=True)
    return {
        "tables": [{"title": t, "columns": c, "rows": [[str(x) for x in row] for row in r]} for t, c, r in named],
        "charts": [chart],
    }


class Extension(Protocol):
    """More tables from the same runs, after the ablation's own (`limo.ablation.turns.TurnTables`: multi-turn), the
    primary comparison when it is one of theirs (``primary``: shown under the primary heading), and their comparison
    rows in ``payload`` (``comparisons``: Holm-adjusted in one family with the ablation's)."""

    def to_json(self, tables: Tables, payload: Mapping[str, Any]) -> dict[str, Any]: ...

    def sections(self, tables: Tables, payload: Mapping[str, Any]) -> list[Section]: ...

    def primary(self, tables: Tables, payload: Mapping[str, Any]) -> list[Section]: ...

    def comparisons(self, payload: dict[str, Any]) -> list[dict[str, Any]]: ...


def write_results(root: Path, tables: Tables, extensions: Sequence[Extension] = ()) -> dict[str, Any]:
    """``results.json``, ``results.md`` and ``report.html`` under ``root`` (each atomically); returns the JSON."""
    payload = to_json(tables)
    for extension in extensions:
        payload.update(extension.to_json(tables, payload))
    # one family: every exploratory comparison of the table, the extensions' (multi-turn gains) with the ablation's
    theirs = [r for extension in extensions for r in extension.comparisons(payload)]
    payload["statistics"]["holm_family"] = holm_family([*payload["pairs"], *theirs])
    more = [s for extension in extensions for s in extension.sections(tables, payload)]
    lead = [s for extension in extensions for s in extension.primary(tables, payload)]
    write_json(root / "results.json", payload)
    text = markdown(tables, payload, lead, theirs) + "".join(f"\n## {t}\n\n{md_table(c, r)}\n" for t, c, r in more)
    write_text_atomic(root / "results.md", text)
    section = html_section(tables, payload)
    shown = [{"title": t, "columns": c, "rows": [[str(x) for x in row] for row in r]} for t, c, r in (*lead, *more)]
    section["tables"] = shown[: len(lead)] + section["tables"] + shown[len(lead) :]
    page = {
        "title": f"Ablation: {payload['recipe']}",
        "intro": " ".join([header_line(payload), primary_sentence(payload), method_note(payload)]),
        "headline": [[f"{a['name']} ({a['kind']})", f"{a.get('steps') or '-'} steps"] for a in payload["arms"]],
        **section,
    }
    write_page(root / "report.html", page)
    return payload


def facts(
    recipe: str, command: str, arms: Sequence[dict[str, Any]], benchmarks: Mapping[str, Any], seeds: Any, draws: int
) -> dict[str, Any]:
    """The header of ``results.json``: what ran, where, when."""
    return {
        "recipe": recipe,
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seeds": list(seeds),
        "draws": draws,
        "arms": list(arms),
        "benchmarks": dict(benchmarks),
    }
