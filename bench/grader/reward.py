"""Benchmark: the RL reward's grading throughput on real model completions — our batch path against open-r1's.

Completions: the dev set's full model outputs (``grading_pairs_dev.jsonl`` rows with ``candidate_kind ==
"full_output"``: PRM800K's real reasoning steps ending in an answer template) and a seeded sample of CHAMP's
recorded responses (GPT-3.5 / GPT-4 / GPT-4 Turbo / PaLM 2 solution turns followed by their final summary turn, as
a model writes them; the grader reads the summary), each with its gold and problem text. The dev set is only
timed here (and its labels counted once); nothing is tuned on it.

Graders, one after the other in this one process, each warm before its clock starts: imports done and ``--warmup``
other CHAMP responses (not timed, not in the timed set) graded first, so that one-off starts — a grading worker's
symbolic subprocess, started by its first LaTeX-heavy pair — fall outside the timed pass:
- ``ours, pool of 2``: `eval.grading.pool.GraderPool(workers=2)`, batch by batch of ``--batch`` completions (a GRPO
  step's worth), as `limo.training.rl_rewards.AccuracyReward` calls it;
- ``ours, in process``: `eval.grading.grader.grade` one completion at a time (the grader's own speed, no pool);
- ``open-r1 accuracy_reward``: math-verify's ``parse`` (gold with ``first_match``; completion with the
  ``LatexExtractionConfig`` open-r1 passes: boxed first, no anchor-less extraction) then ``verify``, one completion
  at a time in the trainer's process, as huggingface/open-r1 ``src/open_r1/rewards.py`` does.

Each grader runs ``--repeats`` times, interleaved with the others (the machine is shared: the best run counts for
throughput); reported: pairs/s (best run), the slowest single pair in wall-clock seconds (the smallest and the
largest over the runs: a run's slowest pair also catches the moments the scheduler gave the core to another
process), timeouts and, for the labelled dev rows, how many rewards match the label.
Data: ``$LIMO_SHARED_DATA`` or ``<repo>/../shared/data``.
Command: python bench/grader/reward.py [--champ 2000] [--batch 64] [--warmup 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")

Triple = tuple[str, str, str | None]


def dev_full_outputs() -> list[tuple[Triple, bool]]:
    """The dev set's full model outputs with their labels."""
    from bench.grader.grader_sets import data_dir
    from eval.records import read_jsonl

    rows = read_jsonl(data_dir() / "grading_pairs_dev.jsonl")
    return [
        ((r["gold"], r["candidate"], r.get("problem")), bool(r["label"]))
        for r in rows
        if r.get("candidate_kind") == "full_output"
    ]


def champ_completions(count: int, seed: int = 0, skip: int = 0) -> list[Triple]:
    """A seeded sample of CHAMP's recorded responses (after the first ``skip`` of the shuffled order): the solution
    turn, then the final summary turn."""
    from curation.pool.champ import load_champ_pool

    pool = load_champ_pool()
    problems = {p.id: p for p in pool.problems}
    chains = [c for c in pool.model_chains if c.final_answer]
    random.Random(seed).shuffle(chains)
    return [
        (problems[c.problem_id].answer, f"{c.text}\n\n{c.final_answer}", problems[c.problem_id].problem)
        for c in chains[:count]
    ]


def open_r1_reward() -> Callable[[str, str], float | None]:
    """open-r1's ``accuracy_reward`` for one completion (math-verify parse + verify, its configuration)."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    config = [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(
                nits=False, malformed_operators=False, basic_latex=True, equations=True, boxed="all", units=True
            ),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        )
    ]

    def reward(gold: str, completion: str) -> float | None:
        gold_parsed = parse(gold, extraction_mode="first_match")
        if not gold_parsed:
            return None  # open-r1 skips a gold it cannot parse
        answer = parse(completion, extraction_config=config, extraction_mode="first_match")
        try:
            return float(verify(gold_parsed, answer))
        except Exception:
            return 0.0

    return reward


def timed_serial(
    fn: Callable[[str, str, str | None], float | None], triples: Sequence[Triple], warmup: Sequence[Triple]
) -> dict:
    for gold, completion, problem in warmup:
        fn(gold, completion, problem)
    rewards, worst, started = [], 0.0, time.perf_counter()
    for gold, completion, problem in triples:
        t = time.perf_counter()
        rewards.append(fn(gold, completion, problem))
        worst = max(worst, time.perf_counter() - t)
    seconds = time.perf_counter() - started
    return {"rewards": rewards, "seconds": seconds, "worst": worst, "timeouts": 0}


def timed_pool(triples: Sequence[Triple], batch: int, workers: int, warmup: Sequence[Triple]) -> dict:
    from eval.grading.pool import GraderPool

    rewards: list[float] = []
    seconds = worst = 0.0
    timeouts = 0
    with GraderPool(workers=workers, timeout_s=2.0) as pool:
        for start in range(0, len(warmup), batch):  # every worker up and warm before the clock
            pool.grade_batch(warmup[start : start + batch])
        for start in range(0, len(triples), batch):
            result = pool.grade_batch(triples[start : start + batch])
            rewards += [1.0 if v.correct else 0.0 for v in result.verdicts]
            seconds += result.seconds
            worst = max(worst, result.slowest_s)
            timeouts += result.timeouts
    return {"rewards": rewards, "seconds": seconds, "worst": worst, "timeouts": timeouts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--champ", type=int, default=2000, help="CHAMP responses to sample")
    parser.add_argument("--batch", type=int, default=64, help="completions per reward call (a GRPO step)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200, help="CHAMP responses graded before each clock starts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from eval.grading.grader import grade

    dev = dev_full_outputs()
    warmup = champ_completions(args.warmup)
    triples = [t for t, _ in dev] + champ_completions(args.champ, skip=args.warmup)
    labels = [label for _, label in dev]
    print(
        f"{len(triples)} completions ({len(dev)} dev full outputs + {args.champ} CHAMP responses), "
        f"mean {sum(len(t[1]) for t in triples) / len(triples):,.0f} characters; "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    theirs = open_r1_reward()
    grade("1", "1"), theirs("1", "$1$")  # warm both in-process graders
    graders: dict[str, Callable[[], dict]] = {
        f"ours, pool of {args.workers}": lambda: timed_pool(triples, args.batch, args.workers, warmup),
        "ours, in process": lambda: timed_serial(
            lambda g, c, p: 1.0 if grade(g, c, problem=p).correct else 0.0, triples, warmup
        ),
        "open-r1 accuracy_reward": lambda: timed_serial(lambda g, c, p: theirs(g, c), triples, warmup),
    }
    runs: dict[str, list[dict]] = {name: [] for name in graders}
    for _ in range(args.repeats):
        for name, timed in graders.items():
            runs[name].append(timed())
    print(
        f"{'grader':28s} {'pairs/s':>9s} {'slowest s (min-max)':>20s} {'timeouts':>9s} {'dev right':>10s} "
        f"{'no gold':>8s}"
    )
    for name, repeats in runs.items():
        best = min(repeats, key=lambda r: r["seconds"])
        right = sum((r == 1.0) == label for r, label in zip(best["rewards"][: len(dev)], labels, strict=True))
        worst = sorted(r["worst"] for r in repeats)
        print(
            f"{name:28s} {len(triples) / best['seconds']:9.1f} {worst[0]:9.3f}-{worst[-1]:<9.3f} "
            f"{sum(r['timeouts'] for r in repeats):9d} {right:>5d}/{len(dev):<4d} "
            f"{sum(r is None for r in best['rewards']):8d}"
        )
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
