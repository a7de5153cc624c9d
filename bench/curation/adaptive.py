"""Adaptive vs fixed-k rollouts on the `limo` recipe's filters, over real per-problem pass rates from CHAMP.

Usage: ``python bench/curation/adaptive.py [--replications 200] [--seed 0] [--real-path outputs/bench_adaptive]``.

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
to fixed k's (exit status 1 otherwise).

The real rollout path (``--real-path``, default on): replication 0's outcomes become recorded replies (one
replay file per stage, sample i of a problem right iff the simulation says so), and the limo method curates
CHAMP with them through `curation.rollouts.run` on ``executor=local`` twice — adaptive (rounds of
`samples_before_decidable`, ``round_samples`` from the recipe, kept problems completed to k) and fixed k on
every problem — asserting byte-identical ``curated.jsonl`` and reporting the generations each run's manifest
records. Also reported: the exact expectation (`expected_draws`) and the
rounds a batched run needs (each round asks every open problem for `samples_before_decidable` samples).
Results are shown for all problems and separately for the `champ_heldout` split and the rest.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.pool.champ import STRONG_MODELS, UNAIDED_SETTINGS, WEAK_MODELS, load_champ_pool  # noqa: E402
from curation.pool.ingest import load_gold_overrides  # noqa: E402
from curation.rollouts.adaptive import (  # noqa: E402
    SolveCountFilter,
    expected_draws,
    keep_probability,
    pass_rate_window,
    run_adaptive,
    run_fixed,
    samples_before_decidable,
    weak_filter,
)
from curation.stages.answer_check import graded_text  # noqa: E402
from eval.backends.base import row_seed  # noqa: E402
from eval.benchmarks.champ import champ_heldout_ids  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
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


@functools.lru_cache(maxsize=1)
def graded_attempts() -> tuple[tuple[str, str, str | None, bool], ...]:
    """CHAMP's unaided attempts as ``(problem id, generator, graded text, correct)``, graded as curation grades."""
    from eval.grading.grader import grade_many

    golds = _golds()
    texts_of = {
        p.id: p.problem for p in load_champ_pool().problems
    }  # the grader reads yes/no statements against the question
    chains = [c for c in load_champ_pool().model_chains if c.prompt_setting in UNAIDED_SETTINGS]
    texts = [graded_text(c) for c in chains]
    pairs = [
        (golds[c.problem_id], t, texts_of[c.problem_id]) for c, t in zip(chains, texts, strict=True) if t is not None
    ]
    verdicts = iter(grade_many(pairs, workers=2, progress=False))
    return tuple(
        (c.problem_id, c.generator, t, next(verdicts).correct if t is not None else False)
        for c, t in zip(chains, texts, strict=True)
    )


def champ_pass_rates() -> dict[str, tuple[float, float]]:
    """``{problem_id: (weak pass rate, strong pass rate)}`` from CHAMP's graded unaided attempts."""
    counts: dict[str, dict[str, list[int]]] = {p: {"weak": [0, 0], "strong": [0, 0]} for p in _golds()}
    for problem_id, generator, _, correct in graded_attempts():
        group = "weak" if generator in WEAK_MODELS else "strong" if generator in STRONG_MODELS else None
        if group:
            counts[problem_id][group][0] += int(correct)
            counts[problem_id][group][1] += 1
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


def replay_file(path: Path, stage: str, rates: dict[str, float], right: dict[str, str], k: int, seed: int) -> None:
    """Recorded replies for one stage: sample i of a problem is right iff the simulation's outcome says so. A
    right reply is a final answer CHAMP's models gave and the grader accepted for that problem (the gold itself
    is not always accepted in its CHAMP wording); a wrong one is a number no gold is."""
    rows = []
    for pid, rate in sorted(rates.items()):
        for index, solved in enumerate(samples(seed, stage, pid, rate, k)):
            text = right[pid] if solved else "So the answer is \\boxed{-987654321}."
            rows.append({"request_id": f"{pid}#{index}", "text": text})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def real_path(pass_rates: dict[str, tuple[float, float]], seed: int, root: Path) -> dict[str, Any]:
    """The limo method on CHAMP with its real rollout path (`curation.rollouts.run` on executor=local), adaptive and
    fixed k, the rollouts replayed from the simulation's outcomes of replication 0; asserts the same selection."""
    from curation.executors import ExecutorOptions
    from curation.methods import METHODS, RunContext
    from curation.options import StageOptions
    from eval.options import to_options

    right = {pid: text for pid, _, text, correct in reversed(graded_attempts()) if correct and text}
    outcome_seed = seed * 1_000_003
    difficulty = dict(_recipe_difficulty())
    for stage, column in (("weak", 0), ("strong", 1)):
        rates = {pid: r[column] for pid, r in pass_rates.items()}
        k = difficulty[f"{stage}_rollouts"]["k"]
        replay_file(root / f"{stage}.jsonl", stage, rates, right, k, outcome_seed)
        rollout = dict(difficulty[f"{stage}_rollouts"])
        generator = {
            "backend": "replay",
            "model": rollout["generator"]["model"],
            "backend_args": {"path": str(root / f"{stage}.jsonl")},
        }
        difficulty[f"{stage}_rollouts"] = {k2: v for k2, v in rollout.items() if k2 in ("k", "round_samples")} | {
            "generator": generator
        }
    results = {}
    for adaptive in (True, False):
        stages = to_options(StageOptions, _pipeline_stages({**difficulty, "adaptive": adaptive}))
        out = root / ("adaptive" if adaptive else "fixed")
        METHODS["limo"].run(stages, None, RunContext(out, seed, "bench", executor=ExecutorOptions(kind="local")))
        manifest = json.loads((out / "curate" / "manifest.json").read_text())
        results[adaptive] = (manifest["rollouts"], (out / "curate" / "curated.jsonl").read_bytes())
    (adaptive_run, adaptive_curated), (fixed_run, fixed_curated) = results[True], results[False]
    return {
        "adaptive": adaptive_run["generations"],
        "fixed_every_problem": fixed_run["generations"],
        "fixed_staged": adaptive_run["fixed_k_staged"],
        "identical": adaptive_curated == fixed_curated,
        "selected": adaptive_curated.count(b"\n"),
        "rounds": {s["stage"]: s["rounds"] for s in adaptive_run["stages"]},
    }


def _golds() -> dict[str, str]:
    golds = {p.id: p.answer for p in load_champ_pool().problems}
    for override in load_gold_overrides(OVERRIDES):
        if golds.get(override.problem_id) == override.was:
            golds[override.problem_id] = override.answer
    return golds


def _recipe_difficulty() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(RECIPE.read_text())["curate"]["stages"]["difficulty"]


def _pipeline_stages(difficulty: dict[str, Any]) -> dict[str, Any]:
    """CHAMP with every problem reaching the difficulty stage, the limo recipe's filters on rollouts."""
    return {
        "ingest": {"source": "champ", "gold_overrides": str(OVERRIDES)},
        "validate": {"allowed_settings": list(UNAIDED_SETTINGS)},
        "answer_check": {"keep_incorrect": True, "timeout_s": 60.0},
        "dedup": {"enabled": False},
        "decontam": {"enabled": False},
        "suspect_gold": {"enabled": False},
        "difficulty": {
            key: difficulty[key]
            for key in (
                "source",
                "weak_models",
                "weak_max_solved",
                "weak_rollouts",
                "strong_models",
                "strong_pass_rate",
                "strong_rollouts",
                "adaptive",
            )
        },
        "diversity": {"enabled": False},
        "select": {"n": 800},
        "report": {"plots": False},
    }


def report_real_path(rules, pass_rates: dict[str, tuple[float, float]], seed: int, root: Path) -> int:
    """Run and print the real-path comparison (replication 0); returns 1 when the selections differ."""
    root.mkdir(parents=True, exist_ok=True)
    real = real_path(pass_rates, seed, root)
    simulated = simulate(rules, pass_rates, sorted(pass_rates), 1, seed)
    print(
        f"\nreal rollout path (limo method, executor=local, replication 0): fixed k {real['fixed_every_problem']} "
        f"generations (both stages on every problem), staged fixed k {real['fixed_staged']}, adaptive "
        f"{real['adaptive']} -> {real['fixed_every_problem'] / real['adaptive']:.2f}x / "
        f"{real['fixed_staged'] / real['adaptive']:.2f}x fewer; rounds {real['rounds']}; "
        f"{real['selected']} chains selected, identical to fixed k: {real['identical']}"
    )
    print(
        f"simulation of the same replication: staged fixed k {simulated.fixed_staged}, adaptive "
        f"{simulated.adaptive_total} with 1 sample per round and kept problems not completed, {simulated.chunked} "
        f"generations in rounds of >= {MIN_ROUND} on both stages"
    )
    return 0 if real["identical"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real-path", default="outputs/bench_adaptive", help="folder for the real-path runs ('' skips them)"
    )
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
    if args.real_path:
        mismatches += report_real_path(rules, pass_rates, args.seed, Path(args.real_path))
    print(f"\n{time.perf_counter() - started:.1f} s")
    if mismatches:
        print(f"bench/curation/adaptive.py: {mismatches} adaptive decisions differ from fixed k", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
