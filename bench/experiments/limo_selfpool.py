"""LIMO's question on chains a model wrote, at equal compute: builds the model-written pool with limo's own commands,
then runs recipe ``smol_ablate_selfpool`` with ``limo.ablate`` (docs/ablation.md), which curates, trains, evaluates
and tabulates every arm.

The pool (each step skipped when its output is there):
1. the teacher: ``limo.curate`` + ``limo.train recipe=smol_limo`` (the demo's model) into ``<work>/teacher``;
2. its samples: ``limo.evaluate recipe=smol_sample`` — 8 chains per training problem at temperature 0.8, each
   graded against its gold (``<work>/sample/eval/arith_train/samples.jsonl``, resumable).
Then ``limo.ablate recipe=smol_ablate_selfpool sample_dir=<work>/sample``: all_correct, curated, random_correct,
random and curated_once at S (one epoch of all distinct correct samples), the base model beside them; tables in
``<work>/ablate/``. The pool's own figures (samples, correct, the pass-rate histogram) are printed, and written with
the tables to ``--out``. The teacher's own scores:
``python -m limo.evaluate recipe=smol_limo output_dir=<work>/teacher``.

With ``--mix`` the pool has two teachers of different families (recipe ``smol_ablate_selfpool_mix``): the same
steps for Gemma 3 270M (``gemma_limo`` into ``<work>/gemma_teacher``, ``gemma_sample`` into ``<work>/gemma_sample``),
the two samples files concatenated into ``<work>/pool.jsonl`` (each row names its writer: ``model``).

Command: python bench/experiments/limo_selfpool.py [--mix] [--arms curated random_correct] [--seeds 0 1 2] [--n 200]
             [--problems P] [--limit L] [--backend llamacpp] [--smol-teacher RUN] [--gemma-teacher RUN] [--jobs 1]
             [--out results-selfpool.md]
``--problems P`` makes the pool the first P problems' samples (curation and every arm alike), which sets S and so
the run's cost; ``--limit L`` evaluates on the first L problems of each held-out set; ``--smol-teacher RUN`` /
``--gemma-teacher RUN`` take a teacher already trained (a run folder with ``train/model``) instead of training one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = "smol_ablate_selfpool"


def run(module: str, *args: str) -> None:
    """One limo entry point in its own process, as a user types it."""
    command = [sys.executable, "-m", module, *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


TEACHERS = {  # folder names under --work: (the teacher's recipe, its run, its sampling recipe, its samples)
    "smol": ("smol_limo", "teacher", "smol_sample", "sample"),
    "gemma": ("gemma_limo", "gemma_teacher", "gemma_sample", "gemma_sample"),
}


def trained(run: Path) -> bool:
    """Whether a run folder holds a trained model (``train/model/config.json``)."""
    return (run / "train" / "model" / "config.json").exists()


def teacher_dir(args: argparse.Namespace, name: str) -> Path:
    """A teacher run folder: the one given (``--smol-teacher``, ``--gemma-teacher``), else ``<work>/<folder>``."""
    given = getattr(args, f"{name}_teacher", None)
    if given and not trained(Path(given)):
        raise SystemExit(f"limo_selfpool: --{name}-teacher {given}: no trained model in it (train/model/config.json)")
    return Path(given) if given else args.work / TEACHERS[name][1]


def build_pool(args: argparse.Namespace, extra: list[str], teacher_name: str = "smol") -> Path:
    """A teacher (trained here unless its run folder holds a model) and its samples; returns the samples file."""
    recipe, _, sampler, sample_dir = TEACHERS[teacher_name]
    work, problems = args.work, args.problems
    teacher, sample = teacher_dir(args, teacher_name), work / sample_dir
    if not trained(teacher):
        run("limo.curate", f"recipe={recipe}", f"output_dir={teacher}")
        run("limo.train", f"recipe={recipe}", f"output_dir={teacher}")
    if not (sample / "eval" / "arith_train" / "summary.json").exists():
        first = [f"limit={problems}"] if problems else []  # only the problems the pool will hold are sampled
        run("limo.evaluate", f"recipe={sampler}", f"output_dir={sample}", f"teacher_dir={teacher}", *first, *extra)
    return sample / "eval" / "arith_train" / "samples.jsonl"


def build_mix(args: argparse.Namespace, extra: list[str]) -> Path:
    """Both teachers' samples, concatenated as they stand into ``<work>/pool.jsonl`` (written whole, then renamed)."""
    files = [build_pool(args, extra, name) for name in TEACHERS]
    pool = args.work / "pool.jsonl"
    partial = pool.with_suffix(".jsonl.partial")
    partial.write_text("".join(f.read_text(encoding="utf-8") for f in files), encoding="utf-8")
    partial.replace(pool)
    return pool


def pool_figures(samples_path: Path, problems: int | None) -> str:
    """What each teacher wrote, how often it was right, and its pass-rate histogram."""
    samples = [json.loads(line) for line in samples_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = []
    for model in dict.fromkeys(str(row.get("model")) for row in samples):
        by_problem: dict[str, list[bool]] = {}
        for row in (r for r in samples if str(r.get("model")) == model):
            by_problem.setdefault(row["problem_id"], []).append(bool(row["correct"]))
        kept = list(by_problem)[:problems] if problems else list(by_problem)
        k = max(len(by_problem[p]) for p in kept)
        histogram = Counter(sum(by_problem[p]) for p in kept)
        total = sum(len(by_problem[p]) for p in kept)
        correct = sum(sum(by_problem[p]) for p in kept)
        lines += [
            f"{model}: {total} samples of {len(kept)} problems; {correct} correct.",
            "",
            f"| correct of {k} | " + " | ".join(str(c) for c in range(k + 1)) + " |",
            "|---|" + "---|" * (k + 1),
            "| problems | " + " | ".join(str(histogram.get(c, 0)) for c in range(k + 1)) + " |",
            "",
        ]
    return "\n".join(lines).rstrip()


def ablate_args(args: argparse.Namespace, samples: Path) -> list[str]:
    """limo.ablate's arguments: the bench's flags as the recipe's keys, and (``--mix``) the teachers' run folders,
    whose models' paths name the pool's writers, and the concatenated pool."""
    backend = [f"evaluate.backend={args.backend}"] if args.backend else []
    if args.mix:
        teachers = [f"smol_teacher_dir={teacher_dir(args, 'smol')}", f"gemma_teacher_dir={teacher_dir(args, 'gemma')}"]
        ablate = [f"recipe={RECIPE}_mix", f"output_dir={args.work}", f"pool_file={samples}", *teachers, *backend]
    else:
        ablate = [f"recipe={RECIPE}", f"output_dir={args.work}", f"sample_dir={args.work / 'sample'}", *backend]
    ablate += [f"ablate.only=[{','.join(args.arms)}]"] if args.arms else []
    ablate += [f"ablate.seeds=[{','.join(map(str, args.seeds))}]"] if args.seeds else []
    ablate += [f"ablate.limit={args.limit}"] if args.limit else []
    ablate += [f"curate.stages.select.n={args.n}"] if args.n else []
    ablate += [f"curate.stages.ingest.problem_limit={args.problems}"] if args.problems else []
    return ablate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=None, help="some of the recipe's arms (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the recipe's (0 1 2)")
    parser.add_argument(
        "--n", type=int, default=None, help="curation selects at most N chains (default: the recipe's)"
    )
    parser.add_argument(
        "--mix", action="store_true", help="two teachers (SmolLM2 and Gemma): smol_ablate_selfpool_mix"
    )
    parser.add_argument("--problems", type=int, default=None, help="the pool: the first P problems' samples")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each held-out set")
    parser.add_argument("--backend", default=None, help="evaluate.backend of every evaluation (default: the recipe's)")
    parser.add_argument("--smol-teacher", default=None, help="a trained SmolLM2 teacher run folder (default: train)")
    parser.add_argument("--gemma-teacher", default=None, help="a trained Gemma teacher's run folder (with --mix)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "limo_selfpool")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    backend = [f"evaluate.backend={args.backend}"] if args.backend else []
    samples = build_mix(args, backend) if args.mix else build_pool(args, backend)
    run("limo.ablate", *ablate_args(args, samples), "--jobs", str(args.jobs))
    figures = pool_figures(samples, args.problems)
    print(figures)
    if args.out:
        tables = (args.work / "ablate" / "results.md").read_text(encoding="utf-8")
        args.out.write_text(figures + "\n\n" + tables, encoding="utf-8")


if __name__ == "__main__":
    main()
