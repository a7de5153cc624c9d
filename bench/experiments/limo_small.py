"""LIMO's question in miniature on the authored pool, at equal compute: recipe ``smol_ablate_authored``, run by
``limo.ablate`` (docs/ablation.md). This script only keeps the bench's command line and hands it on:

    python bench/experiments/limo_small.py [--arms curated random_correct] [--seeds 0 1 2] [--limit 64]
        [--backend llamacpp] [--set KEY=VALUE ...] [--jobs 1] [--out results.md]
    == python -m limo.ablate recipe=smol_ablate_authored ablate.only=[curated,random_correct] ablate.seeds=[0,1,2]
        ablate.limit=64 evaluate.backend=llamacpp KEY=VALUE ... --jobs 1

The arms (curated 200, random and random correct 200, the whole pool, the demo's 50 steps, 100 steps, every
problem's chain), the compute (one epoch of the whole pool), the benchmarks, their parts and the pairs are the
recipe's; the runs and the tables (``outputs/smol_ablate_authored/ablate/results.md``, ``.json``, ``report.html``)
are limo.ablate's, which reuses every finished run. ``--arms`` runs some of the recipe's arms (the demo's setting over
seeds: ``--arms curated_50``). ``--out`` copies the tables there (and the JSON beside them). On a GPU:
``--set train.args.use_cpu=false --set evaluate.batch_size=128 --jobs 8``. GRPO after SFT (the former ``sft_rl``
arm) is not an arm: ``limo.curate`` / ``limo.train recipe=smol_rlvr model.path=<a run folder>`` from a curated run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = "smol_ablate_authored"


def ablate_command(args: argparse.Namespace) -> list[str]:
    """The limo.ablate command line these flags stand for."""
    command = [sys.executable, "-m", "limo.ablate", f"recipe={RECIPE}", f"output_dir={args.work}"]
    command += [f"ablate.only=[{','.join(args.arms)}]"] if args.arms else []
    command += [f"ablate.seeds=[{','.join(map(str, args.seeds))}]"] if args.seeds else []
    command += [f"ablate.limit={args.limit}"] if args.limit else []
    command += [f"evaluate.backend={args.backend}"] if args.backend else []
    return [*command, *args.set, "--jobs", str(args.jobs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", default=None, help="some of the recipe's arms (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the recipe's (0 1 2)")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each set (default: all)")
    parser.add_argument("--backend", default=None, help="evaluate.backend of every evaluation (default: the recipe's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every entry")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (a GPU; on a CPU keep 1)")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / RECIPE)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    command = ablate_command(args)
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)
    if args.out:
        tables = args.work / "ablate"
        shutil.copyfile(tables / "results.md", args.out)
        shutil.copyfile(tables / "results.json", args.out.with_suffix(".json"))


if __name__ == "__main__":
    main()
