"""The question LIMO asks, in miniature: do a few curated chains teach a model more than as many chains taken at
random, or than the whole pool? SmolLM2-135M-Instruct on the arithmetic pool of recipe ``smol_limo``.

Arms (each trains LoRA with the recipe's settings, at the same number of steps and seed, then is evaluated
greedily on the same held-out problems):
- ``curated``: the 200 chains `limo.curate recipe=smol_limo` selects (verified, elaborated, one per problem),
  ranking problems by their declared level (the number of operations);
- ``likelihood``: the same curation ranking problems by the student's own likelihood of their careful chain
  (``curate.stages.difficulty.source=likelihood``: the least likely, for this model the hardest, first);
- ``random``: 200 chains drawn from the whole pool (any generator: careful, terse, careless, rambling, unsure);
- ``all``: every chain of the pool, one epoch (``--all-steps``, 250 by default: ten times the others' cost);
- ``long`` / ``short`` / ``mixed``: 200 problems' careful (tutor) chains, terse (quick) chains, or half of each,
  all verified: what chain length does at this size;
- ``sft_rl``: the curated arm's SFT model of the same seed, then GRPO (recipe ``smol_rlvr``) for ``--rl-steps``
  steps.
The base model is evaluated once. Each run's accuracy carries its 95% Wilson interval; per arm, the mean over
seeds and every seed's value; then the tuned-on and untouched parts of the held-out set, and accuracy by number of
operations (pooled over seeds). The tables are printed and written to ``--out`` (markdown) and ``.json`` beside it.

Command: python bench/limo_small.py [--arms curated likelihood random long short mixed] [--seeds 0 1 2] [--limit 129]
             [--steps 25] [--out docs/results-limo-small.md]
An arm may name its own seeds: ``--arms curated random long:0 sft_rl:0`` runs long and sft_rl on seed 0 only.
Finished runs are reused (a trained model, a finished evaluation), so a rerun with more arms or seeds only adds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

from eval.metrics import wilson_interval  # noqa: E402

POOL = REPO / "recipes" / "data" / "arithmetic" / "pool.jsonl.gz"
RECIPE = "smol_limo"
BENCHMARK = "arith_heldout"
N = 200
TUNED = 64  # the demo's problems, on which the chain format was chosen (docs/results.md)


def pool_rows() -> list[dict[str, Any]]:
    with gzip.open(POOL, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def as_messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": r["id"],
            "messages": [{"role": "user", "content": r["problem"]}, {"role": "assistant", "content": r["chain"]}],
        }
        for r in rows
    ]


CURATIONS = {"curated": (), "likelihood": ("curate.stages.difficulty.source=likelihood",)}


def curated_rows(work: Path, curation: str) -> list[dict[str, Any]]:
    """The chains a curation of the pool selects (run once into ``<work>/<curation>-run``)."""
    out = work / f"{curation}-run"
    run("limo.curate", f"recipe={RECIPE}", f"output_dir={out}", *CURATIONS[curation])
    text = (out / "curate" / "messages.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def arm_rows(arm: str, seed: int, curated: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The training rows of an arm (the curated arms' come from their curation runs)."""
    rng, rows = random.Random(seed), pool_rows()
    if arm in ("curated", "likelihood"):
        return curated["likelihood" if arm == "likelihood" else "curated"]
    if arm == "random":
        return as_messages(rng.sample(rows, N))
    if arm == "all":
        return as_messages(rows)
    problems = sorted({r["problem_id"] for r in rows})
    chosen = rng.sample(problems, N)
    by_key = {(r["problem_id"], r["generator"]): r for r in rows}
    kinds = {"long": ["tutor"] * N, "short": ["quick"] * N, "mixed": ["tutor", "quick"] * (N // 2)}[arm]
    return as_messages([by_key[(p, k)] for p, k in zip(chosen, kinds, strict=True)])


def run(module: str, *args: str) -> None:
    command = [sys.executable, "-m", module, *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def accuracy(run_dir: Path) -> tuple[int, int]:
    rows = [json.loads(line) for line in (run_dir / "eval" / BENCHMARK / "samples.jsonl").read_text().splitlines()]
    return sum(bool(r["correct"]) for r in rows), len(rows)


def split_accuracy(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Correct / problems on the held-out set's first `TUNED` problems (the chain format was tuned looking at
    them: the demo evaluates on them) and on the rest, which nothing was tuned on."""
    rows = [json.loads(line) for line in (run_dir / "eval" / BENCHMARK / "samples.jsonl").read_text().splitlines()]
    order = {pid: i for i, pid in enumerate(heldout_ids())}
    parts: dict[str, list[bool]] = {"tuned": [], "untouched": []}
    for r in rows:
        parts["tuned" if order[r["problem_id"]] < TUNED else "untouched"].append(bool(r["correct"]))
    return {name: (sum(v), len(v)) for name, v in parts.items()}


def level_accuracy(run_dir: Path) -> dict[int, tuple[int, int]]:
    """Correct / problems by the held-out problem's number of operations (its ``level``)."""
    text = (REPO / "recipes" / "data" / "arithmetic" / "heldout.jsonl").read_text(encoding="utf-8")
    level = {row["id"]: row["level"] for row in map(json.loads, text.splitlines())}
    rows = [json.loads(line) for line in (run_dir / "eval" / BENCHMARK / "samples.jsonl").read_text().splitlines()]
    out: dict[int, list[int]] = {}
    for r in rows:
        cell = out.setdefault(level[r["problem_id"]], [0, 0])
        cell[0] += bool(r["correct"])
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def level_table(levels: dict[str, list[dict[int, tuple[int, int]]]], base: dict[int, tuple[int, int]]) -> str:
    """Each arm's correct / problems by number of operations, summed over seeds."""
    names = sorted(base)
    lines = [
        "| arm | " + " | ".join(f"{n} operation{'s' * (n > 1)}" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    lines.append("| base | " + " | ".join(_cell(*base[n]) for n in names) + " |")
    for arm, runs in levels.items():
        cells = [_cell(sum(r[n][0] for r in runs), sum(r[n][1] for r in runs)) for n in names]
        lines.append(f"| {_pooled(arm, len(runs))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heldout_ids() -> list[str]:
    text = (REPO / "recipes" / "data" / "arithmetic" / "heldout.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["id"] for line in text.splitlines()]


def evaluate(run_dir: Path, limit: int, *extra: str) -> tuple[int, int]:
    if not (run_dir / "eval" / BENCHMARK / "summary.json").exists():
        run("limo.evaluate", f"recipe={RECIPE}", f"output_dir={run_dir}", f"limit={limit}", *extra)
    return accuracy(run_dir)


def train_arm(
    arm: str, seed: int, work: Path, curated: dict[str, list[dict[str, Any]]], args: argparse.Namespace
) -> Path:
    """The run folder holding the arm's trained model (trained unless it is there already)."""
    if arm == "sft_rl":  # GRPO from the curated arm's model of the same seed: the same SFT run, not a second one
        sft_dir = train_arm("curated", seed, work, curated, args)
        rl_dir = work / f"sft_rl-seed{seed}"
        if not (rl_dir / "train" / "model" / "config.json").exists():
            run("limo.curate", "recipe=smol_rlvr", f"output_dir={rl_dir}")
            rl = [f"model.path={sft_dir}", f"seed={seed}", f"train.args.max_steps={args.rl_steps}"]
            run("limo.train", "recipe=smol_rlvr", f"output_dir={rl_dir}", *rl)
        return rl_dir
    run_dir = work / f"{arm}-seed{seed}"
    if (run_dir / "train" / "model" / "config.json").exists():
        return run_dir
    data = run_dir / "data.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in arm_rows(arm, seed, curated)), encoding="utf-8")
    steps = args.all_steps if arm == "all" else args.steps
    common = [f"seed={seed}", f"train.args.max_steps={steps}"]
    run("limo.train", f"recipe={RECIPE}", f"output_dir={run_dir}", f"train.data={data}", *common)
    return run_dir


def table(results: dict[str, list[tuple[int, int, int]]], base: tuple[int, int]) -> str:
    lines = [
        "| arm | seeds | mean accuracy | each seed: correct / problems [95% Wilson] |",
        "|---|---|---|---|",
        f"| base (no training) | - | {base[0] / base[1]:.1%} | {_cell(*base)} |",
    ]
    for arm, runs in results.items():
        mean = sum(c / n for _, c, n in runs) / len(runs)
        cells = "; ".join(f"seed {s}: {_cell(c, n)}" for s, c, n in runs)
        lines.append(f"| {arm} | {len(runs)} | {mean:.1%} | {cells} |")
    return "\n".join(lines)


def split_table(splits: dict[str, list[dict[str, tuple[int, int]]]], base: dict[str, tuple[int, int]]) -> str:
    """Each arm's correct / problems summed over seeds, on the tuned-on part and on the untouched part."""
    lines = [
        f"| arm | first {TUNED} (chain format tuned on them) | the rest (untouched) |",
        "|---|---|---|",
        f"| base | {_cell(*base['tuned'])} | {_cell(*base['untouched'])} |" if base["untouched"][1] else "",
    ]
    for arm, runs in splits.items():
        cells = [_cell(sum(r[p][0] for r in runs), sum(r[p][1] for r in runs)) for p in ("tuned", "untouched")]
        lines.append(f"| {_pooled(arm, len(runs))} | {cells[0]} | {cells[1]} |")
    return "\n".join(line for line in lines if line)


def _pooled(arm: str, seeds: int) -> str:
    return f"{arm} ({seeds} seed{'s' * (seeds > 1)} pooled)" if seeds > 1 else f"{arm} (1 seed)"


def _cell(correct: int, total: int) -> str:
    if not total:
        return "-"
    low, high = wilson_interval(correct / total, total)
    return f"{correct}/{total} [{low:.1%}, {high:.1%}]"


def arm_seeds(arms: list[str], seeds: list[int]) -> list[tuple[str, list[int]]]:
    """``curated`` -> (curated, ``seeds``); ``long:0,1`` -> (long, [0, 1]): an arm may run on fewer seeds."""
    out = []
    for spec in arms:
        name, _, own = spec.partition(":")
        out.append((name, [int(s) for s in own.split(",")] if own else list(seeds)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=["curated", "likelihood", "random", "long", "short", "mixed"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--limit", type=int, default=129)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--all-steps", type=int, default=250)
    parser.add_argument("--rl-steps", type=int, default=8)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "limo_small")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.time()
    wanted = {"likelihood" if arm == "likelihood" else "curated" for arm, _ in arm_seeds(args.arms, args.seeds)}
    curated = {name: curated_rows(args.work, name) for name in sorted(wanted)}
    base = evaluate(args.work / "base", args.limit, "evaluate.model_path=null")
    results: dict[str, list[tuple[int, int, int]]] = {}
    splits: dict[str, list[dict[str, tuple[int, int]]]] = {}
    levels: dict[str, list[dict[int, tuple[int, int]]]] = {}
    for arm, seeds in arm_seeds(args.arms, args.seeds):
        for seed in seeds:
            run_dir = train_arm(arm, seed, args.work, curated, args)
            correct, total = evaluate(run_dir, args.limit)
            results.setdefault(arm, []).append((seed, correct, total))
            splits.setdefault(arm, []).append(split_accuracy(run_dir))
            levels.setdefault(arm, []).append(level_accuracy(run_dir))
            print(f"[limo_small] {arm} seed {seed}: {_cell(correct, total)}", flush=True)
    text = table(results, base) + "\n\n" + split_table(splits, split_accuracy(args.work / "base"))
    text += "\n\n" + level_table(levels, level_accuracy(args.work / "base"))
    header = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {time.time() - started:.0f} s; "
        f"{args.steps} LoRA steps of 8 chains per arm ({args.all_steps} for all), {args.limit} held-out problems, "
        "greedy.\n\n"
    )
    print(header + text)
    if args.out:
        args.out.write_text(header + text + "\n", encoding="utf-8")
        payload = {
            "base": base,
            "results": results,
            "splits": splits,
            "levels": levels,
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
