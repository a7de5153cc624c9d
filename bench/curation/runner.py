"""The one runner against the two-runner code it replaced, measured in the same run on the same machine.

Usage::

    python bench/curation/runner.py [--baseline b981eac] [--repeats 3] [--sizes 1000000] [--workers 2]

The baseline revision (before the refactor: an in-memory runner beside the sharded one) is unpacked into a
temporary folder with ``git archive`` and run from there. Each measurement is one fresh process, timed as a
whole (wall clock, imports included) while the parent samples the PSS of the process tree every 0.5 s:

- CHAMP (``recipe=champ``, 19,710 chains): the baseline's in-memory runner (the limo method with no executor,
  its default ``answer_check.workers: 2``) against today's ``python -m limo.curate recipe=champ`` (the one
  runner, ``executor=local``), alternated ``--repeats`` times; the minimum and the median of each.
- ``--sizes N``: the synthetic pool of ``bench/curation/sharded.py`` (N chains, gzip JSONL), curated by the baseline's
  in-memory runner (pool read whole, two grading and quality processes) and by the one runner on
  ``executor=local`` with ``--workers`` shard tasks at once; time per chain and peak tree PSS of each.

Decisions are compared too (every rejects row's stage and reason, every selected id: `tests.golden_outputs`); the
bytes may differ where the grader's notes changed since the baseline.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.golden_outputs import decisions  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


@functools.lru_cache(maxsize=1)
def _sharded_bench():
    spec = importlib.util.spec_from_file_location("bench_sharded", REPO / "bench" / "curation" / "sharded.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


BASELINE_CHAMP = """
import sys
from dataclasses import replace
from limo.cli.compose import compose
from limo.setup.curate import build_curation
curation = build_curation(compose("champ", [f"output_dir={sys.argv[1]}", f"data_dir={sys.argv[2]}"]))
curation = replace(curation, context=replace(curation.context, executor=None))  # the in-memory runner
print(curation.run().line())
"""

BASELINE_POOL = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from curation.methods import METHODS, RunContext
from curation.options import StageOptions
from eval.benchmarks.loader import BenchmarkSpec
from eval.options import to_options
from limo.cli.compose import compose
import bench_options
specs = {n: BenchmarkSpec.from_dict(dict(s)) for n, s in compose("champ").benchmark_specs.items()}
options = dict(bench_options.OPTIONS)
options["answer_check"] = {**options["answer_check"], "workers": 2}
options["quality"] = {"workers": 2}
ingest = {"source": sys.argv[1], "field_map": {"generator": "generator"}}
stages = to_options(StageOptions, {**options, "ingest": ingest})
summary = METHODS["limo"].run(stages, None, RunContext(Path(sys.argv[2]), 0, "bench", specs, executor=None))
print(summary.line())
"""


def unpack(revision: str, folder: Path) -> None:
    """The tracked files of ``revision`` under ``folder`` (``git archive``: no checkout is touched)."""
    archive = subprocess.run(["git", "archive", revision], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def timed(command: list[str], tree: Path, out: Path) -> dict:
    """Run ``command`` with ``tree`` first on the import path, ``out`` (its output folder) removed first, so that
    nothing finished by an earlier run is reused; wall seconds and peak tree PSS (MB)."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _pss(process.pid))
        time.sleep(0.5)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"bench/curation/runner.py: {' '.join(command[:4])} failed:\n{process.stderr.read()[-2000:]}")
    return {"wall": wall, "peak_mb": peak / 1024}


def _pss(pid: int) -> int:
    return _sharded_bench().tree_pss_kb(pid)


def champ(baseline: Path, root: Path, repeats: int) -> None:
    data = str(SHARED.resolve())
    runs: dict[str, list[dict]] = {"baseline in-memory runner": [], "one runner": []}
    for attempt in range(repeats):
        out = root / f"champ-base-{attempt}"
        command = [sys.executable, "-c", BASELINE_CHAMP, str(out), data]
        runs["baseline in-memory runner"].append({**timed(command, baseline, out), "out": out})
        out = root / f"champ-new-{attempt}"
        command = [sys.executable, "-m", "limo.curate", "recipe=champ", f"output_dir={out}", f"data_dir={data}"]
        runs["one runner"].append({**timed(command, REPO, out), "out": out})
    same = decisions(runs["one runner"][0]["out"] / "curate") == decisions(
        runs["baseline in-memory runner"][0]["out"] / "curate"
    )
    base = min(r["wall"] for r in runs["baseline in-memory runner"])
    print(f"\n## CHAMP (recipe=champ), {repeats} runs each, alternated; the same decisions: {same}")
    print("| runner | min wall s | median wall s | x baseline (min) | peak tree PSS MB |")
    print("|---|---|---|---|---|")
    for name, found in runs.items():
        walls = [r["wall"] for r in found]
        peak = max(r["peak_mb"] for r in found)
        print(f"| {name} | {min(walls):.1f} | {statistics.median(walls):.1f} | {min(walls) / base:.2f} | {peak:.0f} |")


def pools(baseline: Path, root: Path, sizes: list[int], workers: int) -> None:
    sharded = _sharded_bench()
    (baseline / "bench_options.py").write_text(f"OPTIONS = {sharded.OPTIONS!r}\n")
    print(f"\n## Synthetic pools (bench/curation/sharded.py's), one runner with {workers} shard tasks at once")
    print("| chains | runner | wall s | ms / chain | x baseline time/chain | peak tree PSS MB |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        pool = root / f"pool-{size}.jsonl.gz"
        if not pool.exists():
            sharded.write_pool(size, pool)
        base_out = root / f"base-{size}"
        command = [sys.executable, "-c", BASELINE_POOL, str(pool), str(base_out), "", str(baseline)]
        base = timed(command, baseline, base_out)
        script = str(REPO / "bench" / "curation" / "sharded.py")
        out = root / f"new-{size}"
        new = timed([sys.executable, script, "--run", str(pool), str(out), "local", str(workers)], REPO, out)
        for name, result in (("baseline in-memory", base), ("one runner", new)):
            ratio = result["wall"] / base["wall"]
            print(
                f"| {size:,} | {name} | {result['wall']:.0f} | {1000 * result['wall'] / size:.3f} | {ratio:.2f} | "
                f"{result['peak_mb']:.0f} |",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b981eac", help="the revision before the refactor")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default="outputs/bench_runner")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    print(f"# one runner vs {args.baseline}: {platform.machine()}, Python {platform.python_version()}, ", end="")
    print(f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory(prefix="limo-baseline-") as folder:
        baseline = Path(folder)
        unpack(args.baseline, baseline)
        champ(baseline, root, args.repeats)
        if args.sizes:
            pools(baseline, root, args.sizes, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
