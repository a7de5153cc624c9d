"""`python -m limo.curate recipe=<name> [executor=local|ray|slurm] [output_dir=...] [data_dir=...] [dry_run=true]`.

A short lookup: the recipe's ``curate.method`` names a registered method (`curation.methods.METHODS`:
``limo``, ``lemma``, ``pairs``, ``rise``, ``mammoth2``), `limo.setup.curate` turns the section into its
plain options, and the method writes ``<output_dir>/curate/`` (see docs/curation.md). The ``executor``
group says where sharded work runs (LIMO's pool stages and every method's fresh rollouts): the same recipe
selects the same chains, byte for byte, on each. ``dry_run=true`` prints the rollout stages' spend plan
and generates nothing; ``dry_run_problems=N`` plans for N problems without reading the pool (a hub pool
offline). The last line printed is the path of ``report.html``, the run's page to read. A data or config
error, and a run that selects nothing, end with one line (`limo.cli.entry`); so does a stop (SIGTERM, Ctrl-C),
after which the same command resumes. Missing inputs (a pool file, a benchmark decontamination needs) fail
before any work starts, and a failed run leaves no empty folder behind.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from omegaconf import DictConfig

from limo.cli.entry import hydra_entry, reported_errors
from limo.config.sweeps import job_config


@hydra_entry("curate")
def main(cfg: DictConfig) -> None:
    from limo.setup.curate import (  # deferred: --help and the option parser need no method, grader or sympy
        build_curation,
        check_benchmarks_load,
        check_selected,
        spend_plan,
    )

    with reported_errors("curate", cfg):
        curation = build_curation(job_config(cfg))
        if cfg.get("dry_run"):
            print(spend_plan(curation, str(cfg.gpu_type), cfg.get("dry_run_problems")))
            return
        check_benchmarks_load(curation)  # a forgotten data_dir fails before any work
        with stops_gracefully(), no_empty_folders(curation.context.out / "work"):
            summary = curation.run()
        check_selected(summary)
        print(summary.line())
        for notice in summary.notices:  # what the user would not expect: a short selection, golds of one model
            print(f"[curate] {notice}")
        if (page := Path(summary.output_dir) / "report.html").exists():  # none with curate.stages.report.enabled=false
            print(f"[curate] report: {page}")


@contextmanager
def no_empty_folders(folder: Path) -> Iterator[None]:
    """A failed run removes ``folder`` and the parents it created when they are left empty (a pool that fails
    to read leaves no empty ``curate/work/``); anything written stays, for the resume."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # innermost first: a parent empties once its child is gone
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        raise


@contextmanager
def stops_gracefully() -> Iterator[None]:
    """SIGTERM (a scheduler's stop, ``kill``) and Ctrl-C end the run with one line instead of a traceback.

    Nothing is lost either way: finished shards carry completion markers and every finished batch of
    generations is already on disk, so the same command resumes. SIGTERM is turned into KeyboardInterrupt
    so that clean-up runs (a Ray instance this process started is shut down).
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt as stop:
        sys.exit(f"limo.curate: stopped ({stop or 'SIGINT'}): finished work is kept; run the same command to resume")
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
