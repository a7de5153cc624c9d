"""LIMO's question on chains a model wrote: from a pool a teacher sampled, does limo's curation pick chains that
teach a student more than chance does, at equal compute? One command builds the pool from nothing and runs every arm.

The pool, built with limo's own commands (each a recipe; nothing in between but this driver):
1. the teacher: ``limo.curate`` + ``limo.train recipe=smol_limo`` (SmolLM2-135M-Instruct fine-tuned by limo on
   smol_limo's 200 curated chains of the authored pool, 50 LoRA steps: the demo's model), evaluated like every arm;
2. its samples: ``limo.evaluate recipe=smol_sample`` — 8 chains per training problem at temperature 0.8, each
   graded against its gold (``eval/arith_train/samples.jsonl``, resumable);
3. the curation: ``limo.curate recipe=smol_selfpool`` — those samples as model-written chains: answer check, dedup,
   difficulty from the teacher's own pass rate over its 8 samples (window 1-6 of 8), LIMO's rule-based quality
   score on the real text, domain quota, N selected.

Arms (the student is SmolLM2-135M-Instruct as shipped; LoRA with smol_selfpool's settings; each evaluated greedily
on all of ``arith_heldout`` and ``arith_unseen``). S, the compute every equal-compute arm gets, is one epoch of all
distinct correct samples (ceil(C / 8) steps of 8 chains):
- ``all_correct``: every distinct correct sample (exact-text dedup per problem), one epoch: S steps;
- ``curated``: the N chains limo selects, repeated to S steps;
- ``rft``: as many distinct correct samples as curation selected, drawn at random (rejection-sampling fine-tuning),
  repeated to S steps;
- ``any``: as many distinct samples as curation selected, drawn at random whatever their verdict, repeated to S steps;
- ``curated_once``: the N curated chains once (N / 8 steps): LIMO's own cost, for reference.
The tables are bench/experiments/arms.py's: per-seed accuracy with 95% Wilson intervals and compute, each set's
dev/tuned and untouched parts, paired comparisons (seeds pooled, exact McNemar), accuracy by number of operations; plus
the pool's own figures (samples, correct, distinct, pass-rate histogram, what curation kept).

Command: python bench/experiments/limo_selfpool.py [--seeds 0 1 2] [--n 200] [--problems P] [--limit L]
             [--arms all_correct curated rft any curated_once] [--out results-selfpool.md]
``--problems P`` makes the pool the first P problems' samples (curation and every arm alike), which sets S and so
the run's cost; ``--limit L`` evaluates on the first L problems of each held-out set.
Finished steps and runs are reused, so a rerun with more seeds only adds.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

from arms import REPO, Run, as_messages, evaluate, load_run, publish, read_jsonl, run, tables, train  # noqa: E402

RECIPE = "smol_selfpool"
ARMS = ("all_correct", "curated", "rft", "any", "curated_once")
PAIRS = (
    ("curated", "rft"),
    ("curated", "any"),
    ("curated", "all_correct"),
    ("rft", "all_correct"),
    ("rft", "any"),
    ("curated", "curated_once"),
    ("curated", "base"),
    ("teacher", "base"),
)


def build_pool(work: Path, n: int, problems: int | None, limit: int | None, *extra: str) -> Path:
    """The teacher, its samples and their curation (each step skipped when its output is there); ``problems``: the
    curation reads the samples of the first that many problems only."""
    teacher, sample, curated = work / "teacher", work / "sample", work / "curated"
    if not (teacher / "train" / "model" / "config.json").exists():
        run("limo.curate", "recipe=smol_limo", f"output_dir={teacher}")
        run("limo.train", "recipe=smol_limo", f"output_dir={teacher}")
    evaluate("smol_limo", teacher, limit, *extra)
    if not (sample / "eval" / "arith_train" / "summary.json").exists():
        first = [f"limit={problems}"] if problems else []  # only the problems the pool will hold are sampled
        run("limo.evaluate", "recipe=smol_sample", f"output_dir={sample}", f"teacher_dir={teacher}", *first, *extra)
    if not (curated / "curate" / "messages.jsonl").exists():
        args = [f"output_dir={curated}", f"sample_dir={sample}", f"curate.stages.select.n={n}"]
        args += [f"curate.stages.ingest.problem_limit={problems}"] if problems else []
        run("limo.curate", f"recipe={RECIPE}", *args)
    return sample / "eval" / "arith_train" / "samples.jsonl"


def distinct(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples with a text not already seen for the same problem, in file order."""
    seen, out = set(), []
    for row in samples:
        key = (row["problem_id"], row["response"])
        if key not in seen:
            seen.add(key)
            out.append({**row, "id": f"{row['problem_id']}#{row['sample_index']}"})
    return out


def arm_rows(arm: str, seed: int, pool: list[dict[str, Any]], curated: list[dict], n: int) -> list[dict]:
    """An arm's training rows (messages layout)."""
    rng = random.Random(seed)
    correct = [r for r in pool if r["correct"]]
    if arm in ("curated", "curated_once"):
        return curated
    if arm == "all_correct":
        return as_messages(correct, chain="response")
    if arm == "rft":
        return as_messages(rng.sample(correct, min(n, len(correct))), chain="response")
    if arm == "any":
        return as_messages(rng.sample(pool, min(n, len(pool))), chain="response")
    raise SystemExit(f"limo_selfpool: unknown arm {arm!r} (known: {', '.join(ARMS)})")


def pool_figures(samples: list[dict[str, Any]], pool: list[dict[str, Any]], curated: list[dict]) -> str:
    """The model-written pool in numbers: what the teacher wrote, how often it was right, and what was kept."""
    by_problem: dict[str, list[bool]] = {}
    for r in samples:
        by_problem.setdefault(r["problem_id"], []).append(bool(r["correct"]))
    histogram = Counter(sum(v) for v in by_problem.values())
    boxed = sum("\\boxed" in r["response"] for r in samples)
    truncated = sum(r["finish_reason"] == "length" for r in samples)
    lines = [
        f"The pool: {len(samples)} samples of {len(by_problem)} problems ({boxed} boxed, {truncated} cut at the token "
        f"limit); {sum(r['correct'] for r in samples)} correct; {len(pool)} distinct texts, "
        f"{sum(r['correct'] for r in pool)} of them correct; curation selected {len(curated)}.",
        "",
        "| correct of 8 | " + " | ".join(str(k) for k in range(9)) + " |",
        "|---|" + "---|" * 9,
        "| problems | " + " | ".join(str(histogram.get(k, 0)) for k in range(9)) + " |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--n",
        type=int,
        default=200,
        help="curation selects at most N chains (rft and any draw as many as it selected)",
    )
    parser.add_argument("--problems", type=int, default=None, help="the pool: the first P problems' samples")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each held-out set")
    parser.add_argument("--backend", default=None, help="evaluate.backend of every evaluation (default: the recipe's)")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "limo_selfpool")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.time()
    extra = [f"evaluate.backend={args.backend}"] if args.backend else []
    samples_path = build_pool(args.work, args.n, args.problems, args.limit, *extra)
    samples = read_jsonl(samples_path)
    if args.problems:
        first = list(dict.fromkeys(r["problem_id"] for r in samples))[: args.problems]
        samples = [r for r in samples if r["problem_id"] in set(first)]
    pool = distinct(samples)
    curated = read_jsonl(args.work / "curated" / "curate" / "messages.jsonl")
    equal = math.ceil(sum(r["correct"] for r in pool) / 8)
    evaluate(RECIPE, args.work / "base", args.limit, "evaluate.model_path=null", *extra)
    arms: dict[str, list[Run]] = {
        "base": [load_run("base", None, args.work / "base")],
        "teacher": [load_run("teacher", None, args.work / "teacher")],
    }
    for arm in args.arms:
        for seed in args.seeds:
            rows = arm_rows(arm, seed, pool, curated, len(curated))
            steps = math.ceil(len(rows) / 8) if arm == "curated_once" else equal
            run_dir = train(RECIPE, args.work / f"{arm}-seed{seed}", rows, seed, steps)
            evaluate(RECIPE, run_dir, args.limit, *extra)
            arms.setdefault(arm, []).append(load_run(arm, seed, run_dir))
            print(f"[limo_selfpool] {arm} seed {seed} done", flush=True)
    header = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {time.time() - started:.0f} s; "
        f"N = {args.n}; pool: {'the first ' + str(args.problems) if args.problems else 'all'} training problems' "
        f"samples; equal compute S = {equal} LoRA steps of 8 chains; held-out sets: "
        f"{'the first ' + str(args.limit) + ' of each' if args.limit else 'all'}; greedy, "
        f"backend {args.backend or 'the recipe'}'s.\n\n"
    )
    publish(header + pool_figures(samples, pool, curated) + "\n\n" + tables(arms, PAIRS), arms, args.out)


if __name__ == "__main__":
    main()
