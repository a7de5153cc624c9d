"""Benchmark: one discovery candidate's worker, reading the run's reference log-probs against recomputing them.

Usage: ``python bench/training/discover.py [--out outputs/bench_discover] [--repeats 3]``. The data are the CPU demo's
own: the ``discover`` recipe's pairs, curated from CHAMP by the ``pairs`` method when ``<out>/curate`` lacks
them, split as the loop splits them; the candidate is the archive seed's DPO program; the model the tiny one.

Each variant is the whole worker process as the loop starts it (``python -m limo.discovery.worker
job.json``: imports, validation, tokenizer and model, TRL's dataset preparation, 8 DPO steps, scoring both
held-out splits), without the sandbox (its cost is the same for both):

- baseline (what every candidate did before): TRL's own ``precompute_ref_log_probs`` in each candidate;
- reused: the run's reference job computed them once (`limo.discovery.fitness.compute_reference`, timed
  too: it is paid once per run), and the candidate reads them.

Variants alternate (baseline, reused, baseline, ...) so drift on the shared machine hits both pairs alike;
the ratio is taken pair by pair and its median over ``--repeats`` pairs counts. The scores of both variants
must be identical, or the benchmark stops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def prepare(out: Path) -> dict:
    """The demo's candidate job (seed DPO code) and its reference job, as the loop builds them."""
    from limo.cli.compose import compose
    from limo.discovery import build
    from limo.discovery.loop import load_seed_archive
    from limo.discovery.options import DiscoverPaths, build_discover_options

    cfg = compose("discover", [f"output_dir={out}"])
    options = build_discover_options(cfg)
    paths = DiscoverPaths(str(out))
    splits = build.prepare_pairs(cfg, options, paths)
    job = build.build_job(build.build_training(cfg), options, splits)
    dpo = next(seed for seed in load_seed_archive(options.seed_archive) if seed.name == "dpo")
    print(f"pairs: {splits.summary['pairs']} (of {splits.summary['read']} curated)", flush=True)
    return {**job, "code": dpo.code}


def run_worker(job: dict, folder: Path) -> tuple[float, dict]:
    """Seconds of one worker process for ``job`` in ``folder``, and its result."""
    folder.mkdir(parents=True, exist_ok=True)
    job = {**job, "output_dir": str(folder), "job_sha256": "bench"}
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (folder / "result.json").unlink(missing_ok=True)
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    with open(folder / "worker.log", "w") as log:
        command = [sys.executable, "-m", "limo.discovery.worker", str(folder / "job.json")]
        subprocess.run(command, cwd=folder, env=env, stdout=log, stderr=log, check=True)
    seconds = time.perf_counter() - started
    return seconds, json.loads((folder / "result.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_discover")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load {os.getloadavg()[0]:.1f}; {date.today()}",
        flush=True,
    )
    job = prepare(args.out)
    reference = args.out / "bench" / "reference"
    reference_seconds, _ = run_worker({**job, "kind": "reference"}, reference)
    variants = {
        "baseline: TRL recomputes them": job,
        "reused: read from the reference job": {**job, "reference": str(reference / "reference.json")},
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    scores: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for index, (name, variant) in enumerate(variants.items()):
            took, result = run_worker(variant, args.out / "bench" / f"v{index}-r{repeat}")
            seconds[name].append(took)
            scores[name] = result["scores"]
            print(f"  {name}: {took:.1f} s", flush=True)
    if len({json.dumps(s, sort_keys=True) for s in scores.values()}) != 1:
        raise SystemExit(f"the variants' scores differ: {scores}")
    report(seconds, reference_seconds)


def report(seconds: dict[str, list[float]], reference_seconds: float) -> None:
    (baseline_name, baseline), (_, reused) = seconds.items()
    ratios = [b / r for b, r in zip(baseline, reused, strict=True)]
    print("\n| variant | worker seconds (median) | runs |\n|---|---|---|")
    for name, values in seconds.items():
        print(f"| {name} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    print(
        f"\n{baseline_name} / reused, pair by pair: median {statistics.median(ratios):.2f}x "
        f"({', '.join(f'{r:.2f}' for r in ratios)})"
    )
    saved = statistics.median(b - r for b, r in zip(baseline, reused, strict=True))
    print(f"reference job, once per run: {reference_seconds:.1f} s; scores identical in both variants.")
    print(
        f"saved per candidate (median of pairs): {saved:.1f} s; breaks even after {reference_seconds / saved:.1f} "
        "candidates."
    )


if __name__ == "__main__":
    main()
