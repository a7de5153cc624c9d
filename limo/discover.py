"""`python -m limo.discover recipe=discover [output_dir=...] [discover.generations=N]`: DiscoPOP's loop.

An LLM (any generation backend; ``replay`` in the CPU demo) proposes preference losses as code; each is
parsed and checked against the loss language's allowlist (never executed), validated and scored in a
confined worker (a short DPO run on curated correct-vs-incorrect pairs, scored on held-out pairs), and the
fitness goes back to the proposer. Writes ``<output_dir>/discover/{archive.jsonl,report.md,fitness.png}``
(docs/architecture.md, "Run directory"); rerunning after a kill resumes without re-training finished
candidates. A data or config error ends with one line (`limo.cli.entry`).
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from eval.records import sha256_file
from limo.cli.entry import hydra_entry, reported_errors
from limo.config.files import check_files
from limo.discovery import build
from limo.discovery.loop import (
    LoopState,
    check_manifest,
    fingerprint,
    load_seed_archive,
    load_state,
    locked,
    reference_log_probs,
    run_generations,
    score_seeds,
)
from limo.discovery.options import DiscoverPaths, build_discover_options
from limo.discovery.report import write_report
from limo.discovery.sandbox import resolve_confinement
from limo.training import loss_archive as archive_io

log = logging.getLogger("limo.discover")


def discover(cfg: DictConfig) -> LoopState:
    """Run (or resume) the loop for a composed config; returns the final state."""
    options = build_discover_options(cfg)
    check_files(options, "discover")  # a missing seed archive, replay or pairs file fails before the run folder
    paths = DiscoverPaths(str(cfg.output_dir))
    with locked(paths):
        seeds = load_seed_archive(options.seed_archive)
        proposer = build.build_proposer(options.proposer, paths, int(cfg.seed))  # a bad proposer fails before work
        generations = build.generation_count(options, proposer)
        training = build.build_training(cfg)
        splits = build.prepare_pairs(cfg, options, paths)
        job = build.build_job(training, options, splits)
        job["benchmark"] = build.prepare_benchmark(cfg, options, paths)
        benchmark = {name: sha256_file(path) for name, path in (job["benchmark"] or {}).items()}
        check_manifest(paths, fingerprint(options, {"job": job, "pairs": splits.summary, "benchmark": benchmark}))
        confinement = resolve_confinement(options.sandbox.confinement)
        runner = reference_log_probs(build.build_runner(paths, job, options, confinement))
        state = load_state(paths, proposer)
        log.info(
            "[discover] %d finished candidates in %s; workers confined by %s", len(state.rows), paths.root, confinement
        )

        def report(stopped: str | None = None) -> Any:
            context = build.run_context(cfg, options, job, splits, confinement, stopped)
            return write_report(paths.root, state.rows, context)

        def on_row(row: dict) -> None:
            archive_io.append_row(paths.archive, row)
            state.rows.append(row)
            log.info(
                "[discover] g%d %s: %s %s",
                row["generation"],
                row["name"] or "-",
                row["status"],
                row["fitness"] if row["status"] == "valid" else row["reason"],
            )
            report()

        score_seeds(runner, seeds, state, on_row)
        run_generations(runner, proposer, build.build_prompt_texts(options), options, generations, state, on_row)
        written = report(state.stopped_early)
    counts = archive_io.status_counts([r for r in state.rows if r["generation"] > 0])
    print(f"[discover] {sum(counts.values())} proposals: {counts}; archive {paths.archive}; report {written}")
    return state


@hydra_entry("discover")
def main(cfg: DictConfig) -> None:
    with reported_errors("discover", cfg):
        discover(cfg)


if __name__ == "__main__":
    main()
