"""`python -m limo.ablate recipe=<r> [--jobs N] [executor=ray|slurm] [key=value ...]`: does curation beat chance?

The recipe's ``ablate:`` section (`limo.setup.ablate`) names the arms — curations (the recipe's ``curate:`` with
overrides) and chance baselines (``random``, ``random_correct``, ``all``, ``all_correct``) — the seeds, the draws of
the random baselines, the compute every arm gets and the benchmarks. Every arm is curated with ``limo.curate``, and
every arm x seed (x draw) trained with ``limo.train`` and evaluated with ``limo.evaluate``, each a process as a user
would start it (`limo.ablation.plan`), through the curation executor (`limo.ablation.study`); the same command resumes
a killed run without redoing what finished (`limo.ablation.steps`). The tables — per-run accuracy with Wilson
intervals, compute per arm, paired exact McNemar pooled over seeds and draws, per-part rows
(`limo.ablation.results`) — go to ``<output_dir>/ablate/``: ``results.md``, ``results.json``, ``report.html``,
made from the runs kept in ``results/<name>/`` (`limo.ablation.store`): ``--report-only`` makes them from there alone,
``--deadline 2h`` / ``--until 14:30`` stop in time (exit status 75, `UNFINISHED`, with the line that says how many
runs are done and the command that goes on), and ``--write-docs`` rewrites docs/results.md's ablation blocks
(`limo.ablation.docs`).
Other ``key=value`` arguments go to the entries (``model.path=``, ``evaluate.backend=``, and
``benchmark_specs.<name>=...``, which adds a benchmark to every run's evaluation). Errors end with one line
(`limo.cli.entry`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from limo.ablation.docs import write_docs as rewrite_blocks
from limo.ablation.study import Unfinished
from limo.ablation.study import main as ablate
from limo.cli.entry import reported_errors
from limo.cli.usage import exit_if_help

UNFINISHED = 75  # EX_TEMPFAIL: stopped with runs left (a deadline, SIGTERM); the same command goes on


def main(argv: list[str]) -> None:
    exit_if_help("ablate", argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if argv == ["--write-docs"]:
        write_docs()
        return
    with reported_errors("ablate"):
        try:
            folder, results = ablate(argv)
        except KeyboardInterrupt:
            sys.exit("limo.ablate: stopped: finished runs are kept; run the same command to resume")
        except Unfinished as stop:
            print(stop, flush=True)
            sys.exit(UNFINISHED)
    print(f"[ablate] {len(results['runs'])} runs; tables: {folder}/results.md, results.json, report.html")


def write_docs() -> None:
    """docs/results.md's ablation blocks from results/ (`limo.ablation.docs`), in the current folder."""
    with reported_errors("ablate"):
        changed = rewrite_blocks(Path("docs/results.md"), Path("results"))
    print(f"[ablate] docs/results.md: {len(changed)} ablation blocks changed" + "".join(f"; {n}" for n in changed))


if __name__ == "__main__":
    main(sys.argv[1:])
