"""`python -m limo.discover recipe=discover [output_dir=...] [discover.generations=N]`: DiscoPOP's loop.

An LLM (any generation backend; ``replay`` in the CPU demo) proposes preference losses as code; each is
parsed and checked against the loss language's allowlist (never executed), validated and scored in a
confined worker (a short DPO run on curated correct-vs-incorrect pairs, scored on held-out pairs), and the
fitness goes back to the proposer. Writes ``<output_dir>/discover/{archive.jsonl,report.md,fitness.png}``
(CONTRACTS.md); rerunning after a kill resumes without re-training finished candidates.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

from eval.backends.openai import BackendUnavailableError
from eval.records import DataError, sha256_file
from limo.discovery import archive as archive_io
from limo.discovery import build
from limo.discovery.loop import (
    LoopState,
    WorkerError,
    check_manifest,
    fingerprint,
    load_seed_archive,
    load_state,
    locked,
    run_generations,
    score_seeds,
)
from limo.discovery.report import write_report
from limo.discovery.sandbox import SandboxUnavailable, resolve_confinement
from limo.discovery.settings import DiscoverPaths, parse_discover_section

log = logging.getLogger("limo.discover")
EXPECTED_ERRORS = (DataError, ValueError, FileNotFoundError, SandboxUnavailable, WorkerError, OSError, ImportError,
                   BackendUnavailableError)  # fmt: skip


def discover(cfg: DictConfig) -> LoopState:
    """Run (or resume) the loop for a composed config; returns the final state."""
    from limo.config import resolve_path
    from limo.training.build import ensure_model

    section = parse_discover_section(cfg)
    section.seed_archive = str(resolve_path(section.seed_archive))
    paths = DiscoverPaths(str(cfg.output_dir))
    with locked(paths):
        seeds = load_seed_archive(section.seed_archive)
        splits = build.prepare_pairs(cfg, section, paths)
        job = build.build_job(cfg, section, splits, ensure_model(cfg.model))
        job["benchmark"] = build.prepare_benchmark(cfg, section, paths)
        benchmark = {name: sha256_file(path) for name, path in (job["benchmark"] or {}).items()}
        check_manifest(paths, fingerprint(section, {"job": job, "pairs": splits.summary, "benchmark": benchmark}))
        confinement = resolve_confinement(section.sandbox.confinement)
        runner = build.build_runner(paths, job, section, confinement)
        state = load_state(paths)
        log.info("[discover] %d finished candidates in %s; workers confined by %s", len(state.rows), paths.root,
                 confinement)  # fmt: skip

        def on_row(row: dict) -> None:
            archive_io.append_row(paths.archive, row)
            state.rows.append(row)
            log.info("[discover] g%d %s: %s %s", row["generation"], row["name"] or "-", row["status"],
                     row["fitness"] if row["status"] == "valid" else row["reason"])  # fmt: skip
            write_report(paths.root, state.rows, build.run_context(cfg, section, job, splits, confinement, None))

        proposer = build.build_proposer(section.proposer)  # before any work: a bad proposer config fails fast
        section.generations = build.generation_count(section, proposer)
        score_seeds(runner, seeds, state, on_row)
        run_generations(runner, proposer, build.build_prompt_texts(section), section, state, on_row)
        context = build.run_context(cfg, section, job, splits, confinement, state.stopped_early)
        report = write_report(paths.root, state.rows, context)
    counts = archive_io.status_counts([r for r in state.rows if r["generation"] > 0])
    print(f"[discover] {sum(counts.values())} proposals: {counts}; archive {paths.archive}; report {report}")
    return state


@hydra.main(config_path="../recipes", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    logging.getLogger("limo").setLevel(logging.INFO)
    try:
        discover(cfg)
    except EXPECTED_ERRORS as err:
        if os.environ.get("LIMO_DEBUG") == "1":
            raise
        sys.exit("limo.discover: error: " + "; ".join(line.strip() for line in str(err).splitlines()))


if __name__ == "__main__":
    main()
