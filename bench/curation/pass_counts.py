"""The difficulty stage's per-problem pass-count lookups (`curation.runner.PassCounts.of`) at 10M-chain scale.

Usage::

    python bench/curation/pass_counts.py [--base a218104] [--problems 770000] [--generators 4] [--sample 20000]

A `PassCounts` of the size the difficulty stage builds at 10M chains of ``bench/curation/sharded.py``'s champ pool
(about 770k problems, each tried by CHAMP's four models: about 3M (problem, generator) pairs, seeded) is built in a
fresh process for the working tree and for ``--base`` (its tracked files unpacked with ``git archive``, no checkout
touched); each process times ``of`` over ``--sample`` problems spread evenly over the pool (the stage calls it once
per alive problem) and hashes what it returned, so the two trees are shown to give the same counts. Reports
microseconds a call, the stage's loop extrapolated to every problem, and the ratio base / tree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child(problems: int, generators: int, sample: int) -> dict:
    """Build the counts and time the lookups with the `curation.runner` of the current directory's tree."""
    import numpy as np

    from curation.runner import PassCounts

    rng = np.random.default_rng(0)
    names = [f"model-{g}" for g in range(generators)]
    parts = []
    for code in range(generators):
        tries = rng.integers(0, 4, size=problems)  # about one pair in four untried, as where a model skipped
        right = np.minimum(tries, rng.integers(0, 4, size=problems))
        parts.append((np.arange(problems), np.full(problems, code), right, tries))
    counts = PassCounts.of_pairs(names, parts)
    picked = np.linspace(0, problems - 1, sample).astype(int).tolist()
    digest = hashlib.sha256()
    started = time.perf_counter()
    for problem in picked:
        found = counts.of(problem)
        digest.update(repr(found).encode())
    seconds = time.perf_counter() - started
    source = sys.modules[PassCounts.__module__].__file__
    return {"pairs": len(counts.problem), "seconds": seconds, "sha256": digest.hexdigest(), "source": source}


def run_tree(tree: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(args.problems), str(args.generators),
               str(args.sample)]  # fmt: skip
    done = subprocess.run(command, cwd=tree, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="a218104", help="the revision compared with (git archive)")
    parser.add_argument("--problems", type=int, default=770_000)
    parser.add_argument("--generators", type=int, default=4)
    parser.add_argument("--sample", type=int, default=20_000, help="problems looked up (evenly spread)")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(Path.cwd()))
        print(json.dumps(child(*args.child)))
        return 0
    sys.path.insert(0, str(REPO))
    from bench.curation.runner import unpack  # noqa: PLC0415

    print(f"# PassCounts.of, {platform.machine()} Python {platform.python_version()}, {args.problems:,} problems x "
          f"{args.generators} generators, {args.sample:,} lookups")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        unpack(args.base, base)
        results = {args.base: run_tree(base, args), "tree": run_tree(REPO, args)}
    print("| tree | pairs | us / call | all problems, s | sha256 of the counts |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        per_call = result["seconds"] / args.sample
        print(f"| {name} | {result['pairs']:,} | {per_call * 1e6:.1f} | {per_call * args.problems:.1f} | "
              f"{result['sha256'][:16]} |")  # fmt: skip
    for name, result in results.items():
        print(f"  {name}: curation.runner from {result['source']}")
    base_result, tree_result = results[args.base], results["tree"]
    same = base_result["sha256"] == tree_result["sha256"]
    print(f"ratio {args.base} / tree: x{base_result['seconds'] / tree_result['seconds']:.0f}; same counts: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
