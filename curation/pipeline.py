"""The curation pipeline: ingest -> validate -> answer check -> dedup -> decontam -> suspect gold ->
difficulty -> quality -> diversity -> select, then the outputs under ``<output_dir>/curate/``.

Grading runs before dedup so that every unaided attempt counts toward pass rates, including attempts
whose text duplicates another's (CHAMP has such pairs across prompt settings); dedup then drops the
duplicate *chains* as training candidates. Every stage can be switched off and records what
it saw and dropped (`curation.funnel`); the run ends by checking that the accounting reconciles.

Outputs: ``curated.jsonl`` (+ ``.parquet``), ``messages.jsonl``, ``funnel.json``, ``rejects.jsonl``,
``manifest.json``, ``report.md`` and PNG plots. All are written atomically; the same inputs, options
and seed give byte-identical ``curated.jsonl`` and ``messages.jsonl`` (no timestamps in them).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.answer_check import run_answer_check
from curation.decontam import run_decontam
from curation.dedup import run_dedup
from curation.difficulty import run_difficulty
from curation.diversity import run_diversity
from curation.funnel import Attempt, CurationState, Drop
from curation.options import CurateOptions, RolloutOptions
from curation.outputs import curated_row, selected_chains, training_example
from curation.pool import Pool, apply_gold_overrides, load_gold_overrides, load_pool
from curation.quality import run_quality
from curation.report import render_report, write_plots, write_report
from curation.select import run_select
from curation.suspect_gold import run_suspect_gold
from curation.validate import run_validate
from eval.backends.base import Backend
from eval.benchmarks import BenchmarkSpec
from eval.records import sha256_file, write_json, write_jsonl, write_parquet
from eval.report import package_versions

log = logging.getLogger(__name__)
PACKAGES = ("limo", "champ-dataset", "datasketch", "sympy", "latex2sympy2-extended", "numpy", "pyarrow", "matplotlib")
BackendFactory = Callable[[RolloutOptions], Backend]


@dataclass(frozen=True)
class CurationSummary:
    """What a run produced, for the entry point to print."""

    output_dir: str
    read: int
    selected: int
    dropped: int
    seconds: float


def ingest(options: CurateOptions) -> tuple[Pool, list[dict[str, str]], dict[str, str]]:
    """Load the pool and apply gold overrides; returns the pool, overrides applied and input checksums."""
    pool = load_pool(options.ingest)
    applied: list[dict[str, str]] = []
    checksums = {"pool": pool.checksum or "unknown"}
    if options.ingest.gold_overrides:
        path = options.ingest.gold_overrides
        applied = apply_gold_overrides(pool, load_gold_overrides(path), path)
        checksums["gold_overrides"] = sha256_file(path)
    return pool, applied, checksums


def initial_state(pool: Pool) -> CurationState:
    state = CurationState({p.id: p for p in pool.problems}, {c.id: c for c in pool.chains}, read=pool.read)
    count = state.begin("ingest")
    count.chains_in = pool.read
    for reject in pool.rejects:
        state.drops.append(
            Drop("row", reject.id or f"row{reject.row}", None, "ingest", "invalid_row", reject.to_dict())
        )
    state.apply(count)
    if pool.rejects:
        count.chains_dropped["invalid_row"] = len(pool.rejects)
    return state


def _timed(state: CurationState, run: Callable[[], None]) -> None:
    started = time.perf_counter()
    run()
    state.funnel[-1].seconds = round(time.perf_counter() - started, 3)
    last = state.funnel[-1]
    log.info(
        "%-13s chains %6d -> %6d  problems %5d -> %5d",
        last.stage,
        last.chains_in,
        last.chains_out,
        last.problems_in,
        last.problems_out,
    )


def difficulty_attempts(
    state: CurationState, options: CurateOptions, seed: int, out: Path, backend_factory: BackendFactory | None
) -> list[Attempt]:
    """Attempts for pass rates: the pool's graded chains, or fresh rollouts of the alive problems."""
    difficulty = options.difficulty
    if not difficulty.enabled or difficulty.source == "pool":
        return state.attempts
    if difficulty.source != "rollouts":
        raise ValueError(f"difficulty.source must be 'pool' or 'rollouts', got {difficulty.source!r}")
    if backend_factory is None:
        raise ValueError("difficulty.source=rollouts needs a generation backend")
    from curation.rollouts import grade_rollouts, run_rollouts

    problems = list(state.problems.values())
    golds = {p.id: p.answer for p in problems}
    attempts: list[Attempt] = []
    for rollout in (difficulty.weak_rollouts, difficulty.strong_rollouts):
        if rollout is None:
            continue
        rows = run_rollouts(problems, backend_factory(rollout), rollout, seed=seed, cache_dir=out / "rollouts")
        attempts += grade_rollouts(rows, golds, rollout.model or rollout.backend, workers=options.answer_check.workers)
    return attempts


def run_stages(
    state: CurationState,
    options: CurateOptions,
    *,
    seed: int,
    out: Path,
    benchmark_specs: Mapping[str, BenchmarkSpec],
    backend_factory: BackendFactory | None,
) -> None:
    workers = options.quality.workers
    _timed(state, lambda: run_validate(state, options.validate))
    _timed(state, lambda: run_answer_check(state, options.answer_check))
    _timed(state, lambda: run_dedup(state, options.dedup, workers))
    _timed(state, lambda: run_decontam(state, options.decontam, benchmark_specs, workers))
    _timed(state, lambda: run_suspect_gold(state, options.suspect_gold))
    attempts = difficulty_attempts(state, options, seed, out, backend_factory)
    _timed(state, lambda: run_difficulty(state, options.difficulty, attempts))
    _timed(state, lambda: run_quality(state, options.quality))
    _timed(state, lambda: run_diversity(state, options.diversity, options.select, seed))
    _timed(state, lambda: run_select(state, options.select))


def write_outputs(
    state: CurationState,
    options: CurateOptions,
    out: Path,
    manifest: dict[str, Any],
    pool_domains: Counter[str],
    all_quality: list[float],
) -> None:
    """Write every output file under ``out``."""
    chains = selected_chains(state)
    rows = [curated_row(state, c, options.quality) for c in chains]
    write_jsonl(out / "curated.jsonl", rows)
    if options.report.parquet:
        write_parquet(out / "curated.parquet", rows)
    write_jsonl(out / "messages.jsonl", [training_example(state, c, options.select) for c in chains])
    write_json(out / "funnel.json", {"stages": [c.to_dict() for c in state.funnel], "totals": state.reconcile()})
    write_jsonl(out / "rejects.jsonl", state.drops)
    write_json(out / "manifest.json", manifest)
    if options.report.enabled:
        plots = write_plots(state, out, pool_domains, all_quality) if options.report.plots else []
        flagged = {pid: n["suspect_gold"] for pid, n in state.problem_notes.items() if "suspect_gold" in n}
        hits = [
            {"problem_id": d.problem_id, **d.detail}
            for d in state.drops
            if d.kind == "problem" and d.stage == "decontam"
        ]
        write_report(render_report(state, manifest, plots, flagged, hits), out)


def curate(
    options: CurateOptions,
    *,
    output_dir: str | Path,
    seed: int,
    benchmark_specs: Mapping[str, BenchmarkSpec],
    backend_factory: BackendFactory | None = None,
    config: Mapping[str, Any] | None = None,
    name: str = "",
) -> CurationSummary:
    """Run every stage and write ``<output_dir>/curate/``.

    Raises:
        DataError: Unreadable pool, overrides or benchmark files (the message names the file).
    """
    started = time.perf_counter()
    out = Path(output_dir) / "curate"
    out.mkdir(parents=True, exist_ok=True)
    pool, applied, checksums = ingest(options)
    state = initial_state(pool)
    pool_domains = Counter(p.subject or "unknown" for p in pool.problems)
    run_stages(state, options, seed=seed, out=out, benchmark_specs=benchmark_specs, backend_factory=backend_factory)
    all_quality = [n["quality"].score for n in state.chain_notes.values() if "quality" in n]
    totals = state.reconcile()
    manifest = {
        "name": name,
        "seed": seed,
        "config": dict(config) if config is not None else asdict(options),
        "pool": {"source": pool.source, "read": pool.read, "provenance": pool.provenance},
        "input_checksums": checksums,
        "gold_overrides": applied,
        "benchmarks": state.manifest.get("benchmarks", {}),
        "packages": package_versions(PACKAGES),
        "totals": totals,
    }
    write_outputs(state, options, out, manifest, pool_domains, all_quality)
    return CurationSummary(
        str(out), totals["read"], totals["selected"], totals["dropped"], round(time.perf_counter() - started, 2)
    )
