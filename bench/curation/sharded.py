"""Sharded curation at scale: peak memory of the process tree and wall time at 250k, 1M (and 10M) chains.

Usage::

    python bench/curation/sharded.py [--sizes 250000 1000000] [--shapes champ few_golds deep] [--workers 1]
                            [--ray 1000000] [--keep]

Pools are written as JSONL (gzip) from CHAMP, streamed to disk and never held: about 13 chains per problem
(CHAMP's 3,240 unaided model chains and 270 human solutions), copy *v* of a chain with a seeded word-level
perturbation, copy *v* of a problem with its words and numbers shuffled (seeded) and a variant tag, and one
problem in 50 planted as a near-copy of the problem's previous variant. (``bench/curation/scale.py`` only swaps the
numbers, which leaves the copies of a problem near-duplicate *candidates* of each other: their pairs grow with
the square of the copies per problem, which a pool of distinct problems does not do, and dedup's candidate
count, not the pool size, becomes what is measured.) Each size is curated by ``limo.curate``'s code path —
the limo method, sharded on ``executor=local`` — in a fresh process: ingest, validate, answer check, dedup
(exact + MinHash LSH, exact chains), decontam (champ_heldout), suspect gold, difficulty (pool attempts),
quality, diversity, select (n = 800), with incorrect chains kept as candidates so every stage sees the whole
pool. The parent samples the PSS of that process and all its descendants (``/proc/<pid>/smaps_rollup``)
every 0.5 s; the smallest size of each shape is the baseline its other sizes are compared with in the same
run (memory ratio, time per chain).

``--shapes`` (memory must stay flat on more than one kind of pool):

- ``champ`` (the default): as above; every variant of a problem keeps its CHAMP gold, so about 270 groups
  of problems share a gold.
- ``few_golds``: golds and final answers mapped onto seven values (``answer -> sha256 % 7``, the same map
  for both, so a chain right before is right after), so problems of different CHAMP sources share golds and
  dedup's same-gold threshold applies across the whole pool, not within one source's variants.
- ``deep``: five perturbed copies of every chain per problem variant (about 65 chains per problem, like a
  pool of rollouts), so the pool has a fifth of the problems for the same number of chains.
- ``rollouts``: a fixed set of problems (CHAMP's 270, 14 variants each: 3,780) whose chains per problem grow
  with the pool (about 66 at 250k, 264 at 1M, 2,640 at 10M), as in a rollout pool sampled more and more times.
  Copy *c* of a chain is perturbed afresh, so short chains sometimes repeat a text (ingest rejects those). This
  shape also votes golds (``majority_gold``, every chain voting; the pool's golds stay and the vote is recorded),
  as a rollout pool without an answer key would.
- ``duplicates``: the ``champ`` pool with every chain three times in a row: as it is, again verbatim (ingest
  rejects the repeated chain id) and with doubled spaces (the same normalised text: dedup drops it as a
  ``duplicate_chain``), as in a pool where sampling often returns the same chain.
- ``math_train``: the 7,500 MATH-train problems of ``--data-dir`` (``../shared/data``), each with one chain in
  every pass over them, so chains per problem grow with the pool (about 33 at 250k, 133 at 1M, 1,333 at 10M),
  as in a rollout pool of a real problem set sampled more and more times. A chain is the problem's reference
  solution (or, for the 3,819 without one, the problem restated and its gold boxed), perturbed afresh
  (`perturb_words`) and headed by its attempt number, so every chain is distinct; the authors cycle through
  CHAMP's four model names. Its final answer is the problem's gold, except that the two weak models answer one
  more than the gold on two problems in three (so that difficulty keeps those for the later stages; two problems
  have an empty gold: ingest rejects their chains).
- ``generators``: the ``champ`` pool with the model chains of odd variants spread over 128 names per model
  (``GPT-4-17``), so the pool has about 500 generators, as in a pool merged from many models or sampling
  configurations; the even variants keep CHAMP's names, which the stages' model lists match.

``--ray N`` curates the N-chain pool again on ``executor=ray`` (a local Ray instance with 2 CPUs, started by
the driver) and checks that curated.jsonl, messages.jsonl and rejects.jsonl are byte-identical to the
local run's; it reports the wall-time ratio.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

_NUMBER = re.compile(r"\d+")


def _curation_bench():
    """bench/curation/scale.py (the in-memory bench) as a module: its stage options and chain perturbation."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_curation", REPO / "bench" / "curation" / "scale.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


_IN_MEMORY = _curation_bench()
perturb_words = _IN_MEMORY.perturb_words
# the in-memory bench's stages; no plots or parquet (they time matplotlib and pyarrow, not curation)
OPTIONS = {**_IN_MEMORY.OPTIONS, "report": {"plots": False, "parquet": False}}
# a rollout pool is where golds are voted: every chain votes (the pool's golds stay; the vote is recorded)
SHAPE_OPTIONS = {"rollouts": {"majority_gold": {"enabled": True}}}


def variant_text(text: str, problem_id: str, variant: int) -> str:
    """Variant 0 is CHAMP's text; variant v > 0 shuffles its words and numbers (seeded by problem and v), so
    variants are distinct problems rather than near-copies of each other, except that one in 50 is planted as
    a near-copy (one word changed) of variant v - 1."""
    if variant == 0:
        return text
    rng = random.Random(f"{problem_id}~{variant}")
    if rng.random() < 0.02:
        words = variant_text(text, problem_id, variant - 1).split()
        words[rng.randrange(len(words))] = "planted"
        return " ".join(words)
    words = _NUMBER.sub(lambda m: str(rng.randrange(2, 999)), text).split()
    rng.shuffle(words)
    return " ".join(words) + f" [variant {variant}]"


SHAPES = ("champ", "few_golds", "deep", "rollouts", "duplicates", "generators", "math_train")
DATA_DIR = REPO.parent / "shared" / "data"  # the ``math_train`` shape's problems (``--data-dir``)
MATH_GENERATORS = ("GPT-3.5", "PaLM 2 Medium", "GPT-4", "GPT-4 Turbo")  # weak first (`OPTIONS`' difficulty)
BOXED = "\\boxed{"
ROLLOUT_VARIANTS = 14  # the ``rollouts`` shape's variants per CHAMP problem: 3,780 problems at any size
SPREAD_GENERATORS = 128  # the ``generators`` shape's names per model


def placement(shape: str, index: int, chains: int) -> tuple[int, int, int]:
    """Row ``index`` of a pool of ``shape`` as (CHAMP chain, problem variant, copy of the chain in that variant),
    and for ``duplicates`` which of the three writings (0: as it is, 1: verbatim again, 2: doubled spaces)."""
    repeat = 0
    if shape == "duplicates":
        index, repeat = divmod(index, 3)
    block = index // chains
    if shape == "deep":
        variant, copy = divmod(block, 5)
    elif shape == "rollouts":
        copy, variant = divmod(block, ROLLOUT_VARIANTS)
    else:
        variant, copy = block, 0
    return index % chains, variant, copy * 3 + repeat if shape == "duplicates" else copy


def few_golds(answer: str | None) -> str | None:
    """The ``few_golds`` shape's map onto seven values (the same for golds and final answers)."""
    if answer is None:
        return None
    return str(int.from_bytes(hashlib.sha256(answer.encode("utf-8")).digest()[:8], "little") % 7)


def generator_name(shape: str, generator: str, variant: int, index: int) -> str:
    """The ``generators`` shape's name for a chain: odd variants' model chains spread over `SPREAD_GENERATORS`."""
    if shape != "generators" or generator == "human" or variant % 2 == 0:
        return generator
    return f"{generator}-{index % SPREAD_GENERATORS}"


def math_rows(size: int, data_dir: Path, seed: int = 0) -> Iterator[dict]:
    """The ``math_train`` shape: row ``index`` is attempt ``index // 7,500`` at problem ``index % 7,500``."""
    problems = [json.loads(line) for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    for index in range(size):
        attempt, position = divmod(index, len(problems))
        source = problems[position]
        # 3,819 problems have no reference solution: their chain restates the problem and boxes the gold
        solution = source["solution"] or (
            f"We restate the problem: {source['problem'][:400]} Working it through step by step, the answer is "
            f"$\\boxed{{{source['answer']}}}$."
        )
        generator = MATH_GENERATORS[attempt % len(MATH_GENERATORS)]
        # the weak models miss two problems in three, so difficulty keeps those and quality, diversity and select
        # see them (a pool the weak models all solve would end at difficulty)
        wrong = generator in MATH_GENERATORS[:2] and position % 3 != 0
        text = perturb_words(solution, rng)
        yield {
            "id": source["id"],
            "problem": source["problem"],
            "answer": source["answer"],
            "chain": f"Attempt {attempt + 1}. {text.replace(BOXED, BOXED + '1 + ') if wrong else text}",
            "subject": source["subject"],
            "generator": generator,
            "final_answer": f"1 + {source['answer']}" if wrong else source["answer"],
            "prompt_setting": "0-Shot",
        }


def champ_rows(size: int, shape: str, seed: int = 0) -> Iterator[dict]:
    """Every shape but ``math_train``: CHAMP's chains placed by `placement` (see `variant_text` and ``SHAPES``)."""
    from curation.pool.champ import UNAIDED_SETTINGS, load_champ_pool

    champ = load_champ_pool()
    base = champ.human_chains + [c for c in champ.model_chains if c.prompt_setting in UNAIDED_SETTINGS]
    problems = {p.id: p for p in champ.problems}
    rng = random.Random(seed)
    text = ""
    for index in range(size):
        position, variant, copy = placement(shape, index, len(base))
        chain = base[position]
        source = problems[chain.problem_id]
        answer, final = (
            (few_golds(source.answer), few_golds(chain.final_answer))
            if shape == "few_golds"
            else (
                source.answer,
                chain.final_answer,
            )
        )
        if shape != "duplicates" or copy % 3 == 0:  # a duplicate repeats the text just written
            text = perturb_words(chain.text, rng) if variant or copy else chain.text
        yield {
            "id": f"{chain.problem_id}~{variant}",
            "problem": variant_text(source.problem, source.id, variant),
            "answer": answer,
            "chain": text.replace(" ", "  ") if shape == "duplicates" and copy % 3 == 2 else text,
            "subject": source.subject,
            "generator": generator_name(shape, chain.generator, variant, index),
            "final_answer": final,
            "prompt_setting": chain.prompt_setting,
        }


def write_pool(size: int, path: Path, seed: int = 0, shape: str = "champ", data_dir: Path = DATA_DIR) -> None:
    """``size`` chain rows (our field names) of ``shape`` streamed to a gzip JSONL file, renamed into place whole."""
    rows = math_rows(size, data_dir, seed) if shape == "math_train" else champ_rows(size, shape, seed)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.rename(path)


class _PhaseEnds(logging.Handler):
    """Prints ``phase <stage> <time>`` when a stage ends (`curation.stages.log_stage`), so that the parent can
    say in which stage each memory sample was taken."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.args:
            print(f"phase {record.args[0]} {time.time()}", flush=True)


def run_one(pool: str, out: str, executor: str, workers: int, shape: str = "champ") -> None:
    """The driver (a fresh process): the limo method sharded on ``executor`` over ``pool``."""
    from curation.executors import ExecutorOptions
    from curation.methods import METHODS, RunContext
    from curation.options import StageOptions
    from eval.benchmarks.loader import BenchmarkSpec
    from eval.options import to_options
    from limo.cli.compose import compose

    specs = {n: BenchmarkSpec.from_dict(dict(s)) for n, s in compose("champ").benchmark_specs.items()}
    ingest = {"source": pool, "field_map": {"generator": "generator"}}  # the pool names each chain's author
    stages = to_options(StageOptions, {**OPTIONS, **SHAPE_OPTIONS.get(shape, {}), "ingest": ingest})
    options = ExecutorOptions(kind=executor, workers=workers, mem_per_cpu_gb=1.0)
    if executor == "ray":
        import ray

        ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    logging.getLogger("curation.stages").addHandler(_PhaseEnds())
    logging.getLogger("curation.stages").setLevel(logging.INFO)
    started = time.perf_counter()
    summary = METHODS["limo"].run(stages, None, RunContext(Path(out), 0, "bench", specs, executor=options))
    funnel = json.loads((Path(out) / "curate" / "funnel.json").read_text())
    stage_seconds = {s["stage"]: s["seconds"] for s in funnel["stages"]}
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "selected": summary.selected, "stages": stage_seconds}))


def tree_pss_kb(root: int) -> int:
    """PSS of ``root`` and every descendant, in kB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def measure(pool: Path, out: Path, executor: str, workers: int, shape: str) -> dict:
    command = [sys.executable, __file__, "--run", str(pool), str(out), executor, str(workers), shape]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: nobody reads it while the run goes on
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.DEVNULL, env=env, text=True)
        samples = []
        while process.poll() is None:
            samples.append((time.time(), tree_pss_kb(process.pid)))
            time.sleep(0.5)
        log.seek(0)
        lines = log.read().strip().splitlines()
    if process.returncode != 0:
        raise SystemExit(
            f"bench/curation/sharded.py: the {executor} run over {pool} failed (exit {process.returncode})"
        )
    result = json.loads(lines[-1])
    ends = [(float(at), stage) for _, stage, at in (line.split() for line in lines if line.startswith("phase "))]
    peak = max(kb for _, kb in samples)
    return {
        **result,
        "wall": time.perf_counter() - started,
        "peak_mb": peak / 1024,
        "phases": phase_peaks(samples, ends),
    }


def phase_peaks(samples: list[tuple[float, int]], ends: list[tuple[float, str]]) -> dict[str, int]:
    """The peak PSS (MB) sampled in each phase: a funnel stage (``ingest`` includes writing the pool store) or,
    after the last, ``outputs`` (reading the selection back and writing the curated files)."""
    peaks: dict[str, int] = {}
    for at, kb in samples:
        phase = next((stage for end, stage in ends if at <= end), "outputs")
        peaks[phase] = max(peaks.get(phase, 0), round(kb / 1024))
    return peaks


def same_outputs(first: Path, second: Path) -> bool:
    names = ("curated.jsonl", "messages.jsonl", "rejects.jsonl")
    return all((first / "curate" / n).read_bytes() == (second / "curate" / n).read_bytes() for n in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=["champ"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ray", type=int, default=None, help="also curate this size on executor=ray and compare")
    parser.add_argument("--root", default="outputs/bench_sharded")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="math_train.jsonl (the math_train shape)")
    parser.add_argument("--keep", action="store_true", help="keep the pools and work folders")
    args = parser.parse_args()
    if "math_train" in args.shapes and not (args.data_dir / "math_train.jsonl").is_file():
        parser.error(f"no math_train.jsonl in {args.data_dir} (the math_train shape; pass --data-dir)")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    print(f"# sharded curation bench, {platform.machine()} Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(
        "| shape | chains | executor | wall s | s / 1k chains | x base time/chain | peak tree PSS MB | x base memory |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        run_shape(shape, args, root)
    return 0


def run_shape(shape: str, args: argparse.Namespace, root: Path) -> None:
    """Every size of one pool shape, the smallest first as the baseline (and ``--ray``'s size again on Ray)."""
    baseline = None
    runs = {}
    for size in args.sizes + ([args.ray] if args.ray else []):
        executor = "ray" if args.ray and size == args.ray and size in runs else "local"
        name = f"{size}" if shape == "champ" else f"{shape}-{size}"  # champ keeps the files earlier runs wrote
        pool = root / f"pool-{name}.jsonl.gz"
        if not pool.exists():
            write_pool(size, pool, shape=shape, data_dir=args.data_dir)
        out = root / f"run-{name}-{executor}"
        shutil.rmtree(out, ignore_errors=True)
        result = measure(pool, out, executor, args.workers, shape)
        runs[size] = out if executor == "local" else runs[size]
        baseline = baseline or (size, result)
        per_chain = result["wall"] / size
        ratio_time = per_chain / (baseline[1]["wall"] / baseline[0])
        ratio_memory = result["peak_mb"] / baseline[1]["peak_mb"]
        print(
            f"| {shape} | {size:,} | {executor} | {result['wall']:.0f} | {1000 * per_chain:.3f} | {ratio_time:.2f} | "
            f"{result['peak_mb']:.0f} | {ratio_memory:.2f} |",
            flush=True,
        )
        print(f"  stages (s): {result['stages']}", flush=True)
        print(f"  peak tree PSS by phase (MB): {result['phases']}", flush=True)
        if executor == "ray":
            print(f"  ray vs local at {size:,}: identical outputs: {same_outputs(runs[size], out)}", flush=True)
        if not args.keep:
            shutil.rmtree(out / "curate" / "work", ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--run":
        run_one(*sys.argv[2:5], int(sys.argv[5]), *sys.argv[6:7])
    else:
        sys.exit(main())
