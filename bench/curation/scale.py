"""Curation at scale: every CPU stage on pools of 10k / 100k (/ 1M) chains built by perturbing CHAMP.

Usage: ``python bench/curation/scale.py [--sizes 10000 100000] [--workers 2]``. The pool takes CHAMP's unaided
model chains and human solutions and copies them into problem *variants*: variant v of a problem swaps
its numbers for seeded random ones and inserts a variant tag, and its chains get a seeded word-level
perturbation, so dedup, decontamination and grading see distinct texts. Each size runs ingest -> validate
-> answer check -> dedup -> decontam (champ_heldout) -> suspect gold -> difficulty (pool) -> quality ->
diversity -> select on the one runner (`curation.stages.curate_items`: the pool written to a store, every stage's
shard tasks on the local executor with ``--workers`` at once), reporting chains/s per stage, the time per chain
relative to the smallest size (the baseline measured in the same run: linear growth keeps it near 1.0) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.executors import ExecutorOptions  # noqa: E402
from curation.methods.limo.method import STAGES  # noqa: E402
from curation.options import StageOptions  # noqa: E402
from curation.pool.champ import UNAIDED_SETTINGS, load_champ_pool  # noqa: E402
from curation.stages import curate_items  # noqa: E402
from eval.benchmarks.loader import BenchmarkSpec  # noqa: E402
from eval.options import to_options  # noqa: E402
from limo.cli.compose import compose  # noqa: E402

_NUMBER = re.compile(r"\d+")
OPTIONS = {
    "validate": {"allowed_settings": list(UNAIDED_SETTINGS)},
    # Incorrect chains stay candidates here so that every later stage sees the whole pool (a throughput
    # measurement); attempts and pass rates are recorded exactly as in a normal run.
    "answer_check": {"keep_incorrect": True},
    "decontam": {"benchmarks": ["champ_heldout"]},
    "suspect_gold": {"models": ["GPT-4", "GPT-4 Turbo"]},
    "difficulty": {
        "weak_models": ["GPT-3.5", "PaLM 2 Medium"],
        "weak_max_solved": 3,
        "strong_models": ["GPT-4", "GPT-4 Turbo"],
    },
    "diversity": {"max_fraction": 0.3},
    "select": {"n": 800},
}


def perturb_words(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // 50)):
        index = rng.randrange(len(words))
        words[index] = words[index] + rng.choice(("", " indeed", " then", " now"))
    return " ".join(words)


def build_pool(size: int, seed: int = 0):
    champ = load_champ_pool()
    base = champ.human_chains + [c for c in champ.model_chains if c.prompt_setting in UNAIDED_SETTINGS]
    by_id = {p.id: p for p in champ.problems}
    rng = random.Random(seed)
    problems, chains = {}, {}
    for index in range(size):
        chain = base[index % len(base)]
        variant = index // len(base)
        pid = f"{chain.problem_id}~{variant}"
        if pid not in problems:
            source = by_id[chain.problem_id]
            text = _NUMBER.sub(lambda m: str(rng.randrange(2, 999)), source.problem) if variant else source.problem
            problems[pid] = replace(source, id=pid, problem=f"{text} [variant {variant}]" if variant else text)
        text = perturb_words(chain.text, rng) if variant else chain.text
        chains[f"{chain.id}~{variant}"] = replace(chain, id=f"{chain.id}~{variant}", problem_id=pid, text=text)
    return problems, chains


def run_size(size: int, workers: int, specs: dict[str, BenchmarkSpec], out: Path) -> dict:
    started = time.perf_counter()
    problems, chains = build_pool(size)
    build_seconds = time.perf_counter() - started
    options = to_options(StageOptions, OPTIONS)
    num_problems = len(problems)
    executor = ExecutorOptions(workers=workers)
    state, _ = curate_items(
        list(problems.values()), list(chains.values()), options, STAGES, out, benchmark_specs=specs, executor=executor
    )
    stages = {
        c.stage: {"in": c.items_in, "seconds": c.seconds, "chains_per_s": round(c.items_in / max(c.seconds, 1e-6))}
        for c in state.funnel[1:]
    }
    total = sum(s["seconds"] for s in stages.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "problems": num_problems,
        "build_s": round(build_seconds, 1),
        "stages_s": round(total, 1),
        "peak_rss_mb": round(peak_mb),
        "stages": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="outputs/bench_curation")
    args = parser.parse_args()
    specs = {n: BenchmarkSpec.from_dict(dict(s)) for n, s in compose("champ").benchmark_specs.items()}
    print(f"# curation bench, {platform.machine()} {platform.python_version()}, workers={args.workers}", flush=True)
    results = []
    for size in args.sizes:  # one line per size as soon as it is done, so a long 1M run leaves the others
        results.append(run_size(size, args.workers, specs, Path(args.out)))
        report(results[-1], results[0])
    print(json.dumps(results))


def report(result: dict, baseline: dict) -> None:
    ratio = (result["stages_s"] / result["size"]) / (baseline["stages_s"] / baseline["size"])
    print(
        f"{result['size']:>9} chains {result['problems']:>7} problems: {result['stages_s']:7.1f}s stages "
        f"(+{result['build_s']:.0f}s building the pool), time/chain x{ratio:.2f} vs {baseline['size']}, "
        f"peak RSS {result['peak_rss_mb']} MB",
        flush=True,
    )
    print("   " + ", ".join(f"{k} {v['chains_per_s']}/s" for k, v in result["stages"].items()), flush=True)


if __name__ == "__main__":
    main()
