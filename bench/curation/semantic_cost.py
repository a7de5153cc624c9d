"""What decontamination by meaning costs now that it is on by default: the stage with and without it, and per 1M.

Usage: ``python bench/curation/semantic_cost.py [--data-dir ../shared/data] [--repeat 2] [--out
outputs/bench_semantic_cost]``.

- **Stage time.** The decontamination stage (`curation.stages.decontam.decontam`, local executor, one process) over
  the 7,500 MATH-train problems against MATH500, AIME 2024/2025 and AMC 2023 (the pool ``recipe=pool_math``
  curates), with ``semantic.enabled: false`` (n-grams only) and with the defaults (n-grams, then the screen and
  MiniLM on what it passes), each run in a fresh process so no in-process cache carries over. The first default
  run starts with an empty vector cache (``LIMO_CACHE_DIR`` is a new folder: the benchmark items are embedded by
  MiniLM and its weights inflated), the later ones find what it left, as every run after a user's first does.
  CPU seconds of the process are what is compared (the machine is shared: wall seconds are printed too, but other
  jobs move them); runs alternate n-grams only and default ``--repeat`` times.
- **Per 1M problems.** In one more fresh process: the screen's CPU seconds per problem over the 7,500, and the
  model's (MiniLM embedding, retrieval over the items, the rule) per problem it reaches; core-hours per 1M =
  (screen + fraction reaching the model x model) x 1M / 3600, for this pool's fraction and for the worst case (every
  problem reaching the model). Fixed costs (model loads, the items' vectors) are left out: they do not grow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.curation.decontam import BENCHMARKS, specs  # noqa: E402
from curation.options import DecontamOptions, SemanticDecontamOptions, StageOptions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def math_train(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "math_train.jsonl").open(encoding="utf-8")]


def stage_run(data_dir: Path, enabled: bool) -> dict:
    """The decontam stage over MATH-train, semantic ``enabled`` or not: CPU and wall seconds, problems kept, notes."""
    from curation.runner import items_run
    from curation.schema import Chain
    from curation.stages.decontam import decontam
    from eval.problem import Problem

    rows = math_train(data_dir)
    problems = [Problem(r["id"], r["problem"], r["answer"], "math_train") for r in rows]
    chains = [Chain(f"{r['id']}/solution", r["id"], r.get("solution") or "") for r in rows]
    semantic = replace(SemanticDecontamOptions(), enabled=enabled)
    stages = StageOptions(decontam=DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(data_dir), semantic=semantic))
    with items_run(problems, chains, benchmark_specs=specs()) as (state, context):
        cpu, wall = time.process_time(), time.perf_counter()
        decontam(state, stages, context)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        notes = state.funnel[-1].notes
    kept = int(state.problem_alive.sum())
    screen = notes.get("semantic_screen", {})
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "problems": len(rows), "kept": kept, "screen": screen}


def rates(data_dir: Path) -> dict:
    """CPU seconds per problem of the screen (every problem) and of the model (the problems the screen passes)."""
    from curation.meaning.confirm import item_key, number_rarity
    from curation.meaning.contamination import find_semantic_contamination
    from curation.meaning.embedding import item_vectors, load_embedder
    from curation.meaning.index import SemanticIndex
    from curation.meaning.screen import ScreenIndex, screen
    from curation.stages.decontam import load_benchmark_items

    options = SemanticDecontamOptions()
    items, _ = load_benchmark_items(
        BENCHMARKS, specs(), DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(data_dir))
    )
    rows = math_train(data_dir)
    texts, answers = {r["id"]: r["problem"] for r in rows}, {r["id"]: r["answer"] for r in rows}
    index, rarity = ScreenIndex.build(items, options), number_rarity([i.text for i in items])
    started = time.process_time()
    passed = screen(texts, answers, items, index, options, rarity)
    screen_s = (time.process_time() - started) / len(texts)
    semantic_index = SemanticIndex.build([item_key(i) for i in items], item_vectors([i.text for i in items], options))
    load_embedder(options.model, options.precision)([""])  # loaded outside the clock: a fixed cost
    started = time.process_time()
    kept = {p: texts[p] for p in passed}
    find_semantic_contamination(kept, items, options, semantic_index, None, answers, screened=True)
    model_s = (time.process_time() - started) / max(1, len(passed))
    fraction = len(passed) / len(texts)
    return {
        "screen_ms_per_problem": round(screen_s * 1e3, 3),
        "model_ms_per_problem": round(model_s * 1e3, 2),
        "fraction_to_model": round(fraction, 4),
        "core_hours_per_1m": round((screen_s + fraction * model_s) * 1e6 / 3600, 2),
        "core_hours_per_1m_all_to_model": round((screen_s + model_s) * 1e6 / 3600, 2),
    }


def child(args: argparse.Namespace, mode: str, cache: Path) -> dict:
    """``mode`` run in a fresh interpreter with the vector cache at ``cache``; its JSON line."""
    command = [sys.executable, __file__, "--data-dir", str(args.data_dir), "--child", mode]
    env = {**os.environ, "LIMO_CACHE_DIR": str(cache)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"bench/curation/semantic_cost.py: error: {mode} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_semantic_cost")
    parser.add_argument("--repeat", type=int, default=2, help="n-gram-only / default pairs of stage runs")
    parser.add_argument("--child", choices=("ngram", "default", "rates"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (args.data_dir / "math_train.jsonl").is_file():
        sys.exit(f"bench/curation/semantic_cost.py: error: no math_train.jsonl in {args.data_dir} (pass --data-dir)")
    if args.child:
        result = rates(args.data_dir) if args.child == "rates" else stage_run(args.data_dir, args.child == "default")
        print(json.dumps(result))
        return
    print(f"# semantic decontam cost, {platform.machine()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    runs: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="limo-cache-") as cache:
        for repeat in range(args.repeat):
            runs.append(("n-grams only", child(args, "ngram", Path(cache))))
            runs.append(("default" + (", cold cache" if repeat == 0 else ""), child(args, "default", Path(cache))))
        extrapolation = child(args, "rates", Path(cache))
    ngram = [r["cpu_s"] for name, r in runs if name == "n-grams only"]
    warm = [r["cpu_s"] for name, r in runs if name == "default"]
    for name, result in runs:
        print(f"{name:22s} CPU {result['cpu_s']:6.2f} s, wall {result['wall_s']:6.2f} s, kept {result['kept']} of "
              f"{result['problems']}, screen {result['screen']}")  # fmt: skip
    summary = {"runs": runs, "rates": extrapolation, "ngram_cpu_s": min(ngram)}
    if warm:
        summary["default_over_ngram"] = round(min(warm) / min(ngram), 2)
        summary["semantic_over_ngram"] = round((min(warm) - min(ngram)) / min(ngram), 2)
        print(f"default / n-grams only (fastest of each, CPU): x{summary['default_over_ngram']}; the meaning check "
              f"alone: x{summary['semantic_over_ngram']} of the n-gram stage")  # fmt: skip
    print(f"per 1M problems: {extrapolation}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
