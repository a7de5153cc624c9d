"""Adaptive vs fixed-k rollouts on the `limo` recipe's filters, over real per-problem pass rates from CHAMP.

Usage: ``python bench/adaptive.py [--replications 200] [--seed 0]``.

Pass rates: CHAMP's recorded conversations, unaided settings only (0-Shot, 5-Shot, No C w/o H), graded
by the project grader exactly as curation's answer check grades them (the final summary turn; the
recipe's gold overrides applied). Per problem, the weak pass rate pools GPT-3.5 and PaLM 2 Medium
(6 attempts), the strong one GPT-4 and GPT-4 Turbo (6 attempts).

Filters: read from ``recipes/recipe/limo.yaml`` (weak: ``weak_max_solved`` of ``weak_rollouts.k``; strong:
``strong_pass_rate`` of ``strong_rollouts.k``). Each replication draws every (stage, problem, sample)
outcome as ``uniform(row_seed(seed, stage/problem, index)) < pass rate``: the same per-sample seeds
the rollouts use, so the adaptive samples are a prefix of the fixed-k ones. The strong stage runs on the
problems the weak filter keeps (LIMO's order). Baselines, counted in the same run:

- fixed k, staged: k_weak for every problem, then k_strong for every weak survivor;
- fixed k as `curation.pipeline` runs it today: both stages on every problem.

Asserted for every replication: the problems each stage keeps, hence the final selection, are identical
to fixed k's (exit status 1 otherwise). Also reported: the exact expectation (`expected_draws`) and the
rounds a batched run needs (each round asks every open problem for `samples_before_decidable` samples).
Results are shown for all problems and separately for the `champ_heldout` split and the rest.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.adaptive import (  # noqa: E402
    SolveCountFilter,
    expected_draws,
    keep_probability,
    pass_rate_window,
    run_adaptive,
    run_fixed,
    samples_before_decidable,
    weak_filter,
)
from curation.answer_check import graded_text  # noqa: E402
from curation.champ import STRONG_MODELS, UNAIDED_SETTINGS, WEAK_MODELS, load_champ_pool  # noqa: E402
from curation.pool import load_gold_overrides  # noqa: E402
from eval.backends.base import row_seed  # noqa: E402
from eval.champ import champ_heldout_ids  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "recipe" / "limo.yaml"
OVERRIDES = REPO / "recipes" / "data" / "champ_gold_overrides.yaml"
MIN_ROUND = 4  # the alternative schedule reported: at least this many samples per open problem per round


@dataclass
class Tally:
    """Generations and decisions of one run of both stages over a set of problems (per-stage counts by name)."""

    fixed: Counter[str] = field(default_factory=Counter)
    adaptive: Counter[str] = field(default_factory=Counter)
    rounds: Counter[str] = field(default_factory=Counter)  # the most rounds any problem needed, waste-free
    fixed_all: int = 0
    expected_adaptive: float = 0.0
    chunked: int = 0
    rounds_chunked: int = 0
    selected: int = 0
    mismatches: int = 0

    @property
    def fixed_staged(self) -> int:
        return sum(self.fixed.values())

    @property
    def adaptive_total(self) -> int:
        return sum(self.adaptive.values())


def limo_filters() -> tuple[SolveCountFilter, SolveCountFilter]:
    import yaml

    curate = yaml.safe_load(RECIPE.read_text())["curate"]
    difficulty = curate.get("stages", curate).get("difficulty") or curate["difficulty"]
    weak = weak_filter(difficulty["weak_rollouts"]["k"], difficulty["weak_max_solved"])
    lo, hi = difficulty["strong_pass_rate"]
    return weak, pass_rate_window(difficulty["strong_rollouts"]["k"], lo, hi)


def champ_pass_rates() -> dict[str, tuple[float, float]]:
    """``{problem_id: (weak pass rate, strong pass rate)}`` from CHAMP's graded unaided attempts."""
    from eval.grader import grade_many

    pool = load_champ_pool()
    golds = {p.id: p.answer for p in pool.problems}
    texts_of = {p.id: p.problem for p in pool.problems}  # the grader reads yes/no statements against the question
    for override in load_gold_overrides(OVERRIDES):
        if golds.get(override.problem_id) == override.was:
            golds[override.problem_id] = override.answer
    chains = [c for c in pool.model_chains if c.prompt_setting in UNAIDED_SETTINGS]
    texts = [graded_text(c) for c in chains]
    pairs = [
        (golds[c.problem_id], t, texts_of[c.problem_id]) for c, t in zip(chains, texts, strict=True) if t is not None
    ]
    verdicts = iter(grade_many(pairs, workers=2, progress=False))
    counts: dict[str, dict[str, list[int]]] = {p: {"weak": [0, 0], "strong": [0, 0]} for p in golds}
    for chain, text in zip(chains, texts, strict=True):
        correct = next(verdicts).correct if text is not None else False
        group = "weak" if chain.generator in WEAK_MODELS else "strong" if chain.generator in STRONG_MODELS else None
        if group:
            counts[chain.problem_id][group][0] += int(correct)
            counts[chain.problem_id][group][1] += 1
    return {p: (c["weak"][0] / c["weak"][1], c["strong"][0] / c["strong"][1]) for p, c in counts.items()}


def samples(seed: int, stage: str, problem_id: str, pass_rate: float, k: int) -> list[bool]:
    return [row_seed(seed, f"{stage}/{problem_id}", i) / 2**31 < pass_rate for i in range(k)]


def batched(rule: SolveCountFilter, outcomes: Sequence[bool], min_round: int) -> tuple[int, int]:
    """(samples drawn, rounds) when each round asks for at least ``min_round`` samples (1: waste-free)."""
    drawn = count = 0
    while more := samples_before_decidable(rule, drawn, sum(outcomes[:drawn])):
        drawn = min(rule.k, drawn + max(more, min_round))
        count += 1
    return drawn, count


def run_stage(tally: Tally, stage: str, rule: SolveCountFilter, outcomes: Sequence[bool]) -> bool:
    """Count one problem's stage under fixed k, adaptive and rounds of >= MIN_ROUND; return fixed k's keep."""
    fixed, adaptive = run_fixed(rule, outcomes), run_adaptive(rule, outcomes)
    tally.fixed[stage] += rule.k
    tally.adaptive[stage] += adaptive.drawn
    tally.rounds[stage] = max(tally.rounds[stage], batched(rule, outcomes, 1)[1])
    drawn, count = batched(rule, outcomes, MIN_ROUND)
    tally.chunked += drawn
    tally.rounds_chunked = max(tally.rounds_chunked, count)
    tally.mismatches += fixed.keep != adaptive.keep
    return fixed.keep


def run_problem(tally: Tally, rules: tuple[SolveCountFilter, SolveCountFilter], rates, seed: int, pid: str) -> None:
    weak, strong = rules
    tally.fixed_all += weak.k + strong.k
    if run_stage(tally, "weak", weak, samples(seed, "weak", pid, rates[0], weak.k)):
        tally.selected += run_stage(tally, "strong", strong, samples(seed, "strong", pid, rates[1], strong.k))


def expected(rules: tuple[SolveCountFilter, SolveCountFilter], rates: tuple[float, float]) -> float:
    """Exact expected adaptive generations for one problem (strong stage weighted by P(weak keeps))."""
    weak, strong = rules
    return expected_draws(weak, rates[0]) + keep_probability(weak, rates[0]) * expected_draws(strong, rates[1])


def simulate(rules, pass_rates: dict[str, tuple[float, float]], ids: Sequence[str], replications: int, seed: int):
    tally = Tally()
    for replication in range(replications):
        for pid in ids:
            run_problem(tally, rules, pass_rates[pid], seed * 1_000_003 + replication, pid)
    tally.expected_adaptive = replications * sum(expected(rules, pass_rates[pid]) for pid in ids)
    return tally


def report_row(name: str, tally: Tally, problems: int, replications: int) -> str:
    per = problems * replications
    return (
        f"| {name} | {problems} | {tally.fixed_all / per:.2f} | {tally.fixed_staged / per:.2f} | "
        f"{tally.adaptive_total / per:.2f} | {tally.expected_adaptive / per:.2f} | "
        f"**{tally.fixed_staged / tally.adaptive_total:.2f}x** | {tally.fixed_all / tally.adaptive_total:.2f}x | "
        f"{_ratio(tally, 'weak')} | {_ratio(tally, 'strong')} | "
        f"{tally.rounds['weak']} / {tally.rounds['strong']} | {tally.fixed_all / tally.chunked:.2f}x, "
        f"{tally.rounds_chunked} | {tally.selected / replications:.1f} | {tally.mismatches} |"
    )


def _ratio(tally: Tally, stage: str) -> str:
    return f"{tally.fixed[stage] / tally.adaptive[stage]:.2f}x" if tally.adaptive[stage] else "-"


def distribution(pass_rates: dict[str, tuple[float, float]]) -> str:
    """Mean and histogram (problems per pass rate, rates to 4 decimals) of both stages' pass rates."""
    lines = []
    for stage, rates in (
        ("weak", [w for w, _ in pass_rates.values()]),
        ("strong", [s for _, s in pass_rates.values()]),
    ):
        histogram = dict(sorted(Counter(round(r, 4) for r in rates).items()))
        lines.append(f"{stage} pass rate: mean {sum(rates) / len(rates):.3f}, problems per rate {histogram}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    rules = limo_filters()
    pass_rates = champ_pass_rates()
    heldout = champ_heldout_ids()
    splits = {
        "all CHAMP problems": sorted(pass_rates),
        "champ_heldout": sorted(p for p in pass_rates if p in heldout),
        "the rest": sorted(p for p in pass_rates if p not in heldout),
    }
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"filters (recipes/recipe/limo.yaml): {rules[0].name}, then {rules[1].name}")
    print(distribution(pass_rates))
    print(f"replications: {args.replications}, seed {args.seed}\n")
    print(
        "| problems | n | fixed k, both stages on all (per problem) | fixed k, staged | adaptive | adaptive, exact "
        "expectation | saved vs staged | saved vs both-on-all | weak stage | strong stage | max rounds weak / strong "
        f"| rounds of >= {MIN_ROUND}: saved vs both-on-all, max rounds | selected per run | decisions differing |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    mismatches = 0
    for name, ids in splits.items():
        tally = simulate(rules, pass_rates, ids, args.replications, args.seed)
        mismatches += tally.mismatches
        print(report_row(name, tally, len(ids), args.replications))
    print(f"\n{time.perf_counter() - started:.1f} s")
    if mismatches:
        print(f"bench/adaptive.py: {mismatches} adaptive decisions differ from fixed k", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
