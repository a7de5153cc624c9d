"""``curate.method: limo`` (the default): LIMO's funnel from a pool of chains to a few hundred training chains.

ingest -> validate -> answer check -> dedup -> decontam -> suspect gold -> difficulty -> quality ->
diversity -> select, all shared stages on the one runner (`curation.stages.run_pool`), then the outputs:
``curated.jsonl`` (+ ``.parquet``), ``messages.jsonl``, and the shared accounting and report
(`curation.outputs.writer`), with LIMO's plots and sections (gold overrides, suspect golds, decontamination hits,
benchmarks checked; the hits summarised, every one in ``decontamination_hits.jsonl`` beside the report). The
same inputs, options and seed give byte-identical ``curated.jsonl`` and ``messages.jsonl`` (no timestamps in
them). LIMO has no options of its own: everything it does is a shared stage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from curation import stages as pool_stages
from curation.funnel import Chart, Survivors
from curation.methods.base import CurationSummary, Method, RunContext
from curation.options import StageOptions
from curation.outputs.report import (
    PoolProblems,
    ProblemLookup,
    counts_inline,
    hits_summary,
    plots_section,
    pool_counts,
    records_table,
    render_report,
    selection_notices,
    write_hits,
    write_plots,
)
from curation.outputs.writer import (
    RunOutputs,
    curated_row,
    selected_chains,
    training_example,
    warn_flagged,
    write_outputs,
)
from curation.pool.store import open_or_ingest
from curation.stages.difficulty import Difficulties
from eval.problem import Problem
from eval.reports.report import package_versions

PACKAGES = ("limo", "champ-dataset", "datasketch", "sympy", "latex2sympy2-extended", "numpy", "pyarrow", "matplotlib")
STAGES = (
    "validate",
    "answer_check",
    "dedup",
    "decontam",
    "suspect_gold",
    "difficulty",
    "quality",
    "diversity",
    "select",
)


@dataclass
class LimoRun:
    """A finished funnel: everything `write_limo` needs.

    Attributes:
        selected: The selected problems and chains with their notes; its funnel is every stage's count.
        totals: The reconciliation (read = selected + dropped).
        facts: Manifest facts: pool, input checksums, gold overrides, benchmarks (and rollouts, execution).
        plots: The charts the stages declared (`curation.funnel.Survivors.charts`).
        flagged: Suspect golds by problem id (every one flagged during the run).
        hits: Decontamination drops (problem id and evidence).
        problems: The pool's problems by id, for the reports' rejected ones (None: the selected ones only).
    """

    selected: Survivors
    totals: dict[str, int]
    facts: dict[str, Any]
    plots: list[Chart]
    flagged: dict[str, dict[str, Any]]
    hits: list[dict[str, Any]]
    problems: ProblemLookup | None = None


def run_limo(stages: StageOptions, options: None, context: RunContext) -> CurationSummary:
    """Run every stage on the run's executor and write ``<output_dir>/curate/``.

    Raises:
        DataError: Unreadable pool, overrides or benchmark files (the message names the file).
    """
    started = time.perf_counter()
    run = run_stages(stages, context)
    write_limo(run, stages, context)
    seconds = round(time.perf_counter() - started, 2)
    totals, funnel = run.totals, run.selected.funnel
    return CurationSummary(
        "limo",
        str(context.out),
        totals["read"],
        totals["selected"],
        "chains",
        run.selected.rejected,
        seconds,
        pool_counts(funnel),
        tuple(selection_notices(funnel)),
    )


def run_stages(stages: StageOptions, context: RunContext) -> LimoRun:
    """Ingest into the pool store, run LIMO's stages (`curation.stages.run_pool`) and read the selection back."""
    runner = context.stage_context()
    store = open_or_ingest(stages, runner.work_dir, runner.executor.shard_rows)
    names = pool_stages.stage_names(STAGES, stages)
    state = pool_stages.run_pool(store, stages, names, runner, context.out / "rejects.jsonl")
    selected = pool_stages.survivors(state, stages)
    facts = store.facts
    rolled = state.output("difficulty", Difficulties)
    state.manifest.update(rollouts=rolled.rollouts) if rolled is not None and rolled.rollouts else None
    facts = pool_facts(
        facts["source"], state.read, facts["provenance"], facts["checksums"], facts["gold_overrides"], state.manifest
    )
    facts["execution"] = pool_stages.execution_facts(state, runner, context.output_dir)
    suspects = state.output("suspect_gold", dict) or {}
    flagged = {state.problem_ids[p]: detail for p, detail in suspects.items()}
    hits = state.output("decontam", list) or []
    problems = PoolProblems(state.problem_ids, store)
    return LimoRun(selected, state.totals, facts, selected.charts, flagged, hits, problems)


def pool_facts(
    source: str,
    read: int,
    provenance: dict[str, Any],
    checksums: dict[str, str],
    applied: list[dict[str, str]],
    stage_facts: dict[str, Any],
) -> dict[str, Any]:
    """The manifest's facts about the pool and what the stages loaded (benchmarks; rollouts and voted golds when
    the run had them)."""
    facts = {
        "pool": {"source": source, "read": read, "provenance": provenance},
        "input_checksums": checksums,
        "gold_overrides": applied,
        "benchmarks": stage_facts.get("benchmarks", {}),
        "difficulty": {**stage_facts.get("difficulty", {}), "selection": stage_facts.get("selection_difficulty")},
    }
    for key in ("rollouts", "golds", "selection"):  # only when the run rolled out / voted golds / chose by terms
        if key in stage_facts:
            facts[key] = stage_facts[key]
    return facts


def write_limo(run: LimoRun, stages: StageOptions, context: RunContext) -> None:
    """``curated.jsonl`` (+ parquet), ``messages.jsonl``, the accounting, the manifest and the report."""
    state = run.selected
    extra: dict[str, Any] = {k: run.facts[k] for k in ("rollouts", "execution") if k in run.facts}
    manifest: dict[str, Any] = {
        "name": context.name,
        "seed": context.seed,
        "config": dict(context.config),
        **{k: v for k, v in run.facts.items() if k not in extra},
        "packages": package_versions(PACKAGES),
        "totals": run.totals,
        **extra,
    }
    chains = selected_chains(state)
    rows = [curated_row(state, c, stages.quality) for c in chains]
    messages = [training_example(state, c, stages.select) for c in chains]
    manifest["flagged"] = warn_flagged(rows)
    report = limo_report(run, stages, manifest, context)
    parquet = rows if stages.report.parquet else []
    data: dict[str, Sequence[Any]] = {"curated.jsonl": rows, "messages.jsonl": messages}
    summary = {"selected": len(chains)}
    outputs = RunOutputs("limo", data, state, run.totals, summary, manifest, report, parquet, run.plots, run.problems)
    write_outputs(context.out, outputs)


def limo_report(run: LimoRun, stages: StageOptions, manifest: dict[str, Any], context: RunContext) -> str | None:
    """report.md (and its plots, written now so the report can show them), or None when reports are off."""
    if not stages.report.enabled:
        return None
    state = run.selected
    context.out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(context.out, state.funnel, run.plots) if stages.report.plots else []
    problems = run.problems({h["problem_id"] for h in run.hits}) if run.problems and run.hits else {}
    write_hits(context.out, run.hits, problems)
    counts = pool_counts(state.funnel) or {}
    rejected = counts.get("rows_rejected", 0)
    intro = (
        f"Pool `{manifest['pool']['source']}`: {state.read} items read: {counts.get('chains')} chains of "
        f"{counts.get('problems')} problems, and {rejected} rows rejected at ingest. {len(state.chains)} chains "
        f"selected ({len(state.problems)} problems). Every other chain and problem is in `rejects.jsonl` with its "
        "stage and reason."
    )
    return render_report(
        f"Curation report: {manifest.get('name', '')}",
        intro,
        state.funnel,
        limo_sections(run, manifest, plots, problems),
    )


def trust_section(manifest: dict[str, Any]) -> str:
    """Who wrote the chains, where the golds came from, and the selected chains that are not confirmed."""
    ingest = manifest["pool"].get("provenance", {}).get("ingest")
    flagged = manifest.get("flagged") or {}
    lines = [f"- selected chains flagged: {', '.join(f'{k}: {v}' for k, v in flagged.items()) or 'none'}"]
    if ingest:
        gold = ingest["gold"]
        unused = ingest.get("unused_signals") or {}
        identity = ingest.get("identity") or {}
        grouped = grouped_line(identity)
        lines = [
            *(f"- **declared but unused**: `field_map.{k}`: {v}" for k, v in unused.items()),
            *([f"- read as the `{ingest['layout']}` layout"] if ingest.get("layout") else []),
            grouped,
            f"- chains by generator: {counts_inline(ingest['generators'])} (only `human` chains skip the answer "
            "check)",
            f"- rows by gold origin: {counts_inline(gold['from_rows'])}; chains whose gold is read from their own "
            f"text (circular): {gold['circular_chains']}",
            *lines,
        ]
    return "\n".join(lines)


def grouped_line(identity: dict[str, Any]) -> str:
    """How rows became problems, as ingest did it (`curation.pool.identity.identity_facts`)."""
    by = identity.get("problems_by", "id")
    if identity.get("why"):
        return f"- problems grouped by: {by} ({identity['why']}; each chain's id is its row's id)"
    if by == "text" and not identity.get("id_column"):
        return "- problems grouped by: text (no row has an id column: each problem is its text)"
    column = f" (column `{identity['id_column']}`)" if by == "id" and identity.get("id_column") else ""
    return f"- problems grouped by: {by}{column}"


def limo_sections(
    run: LimoRun, manifest: dict[str, Any], plots: list[str], problems: Mapping[str, Problem] | None = None
) -> list[str]:
    """Trust, gold overrides, suspect golds, decontamination hits (``problems``: their problems by id), benchmarks
    checked, plots."""
    flagged, hits, state = run.flagged, run.hits, run.selected
    overrides = "\n".join(
        f"- `{o['problem_id']}`: `{o['was']}` -> `{o['answer']}`. {o['justification']}"
        for o in manifest["gold_overrides"]
    )
    suspects = "\n".join(
        f"- `{pid}`: gold `{d['gold']}`, strong models agree on `{d['agreed_answer']}` "
        f"({d['agreeing']} of {d['attempts']} attempts; {d['correct']} match the gold)"
        for pid, d in sorted(flagged.items())
    )
    notes = next((c.notes for c in state.funnel if c.stage == "decontam"), {})
    near = "\n".join(
        f"- `{m['problem_id']}` vs `{m['benchmark']}` item `{m['item_id']}`: similarity {m['similarity']}, "
        f"content {m['content']} (kept)"
        for m in notes.get("near_misses", [])[:10]
    )
    boilerplate = ", ".join(f"'{b['ngram']}' ({b['documents']})" for b in notes.get("boilerplate_ngrams", [])[:10])
    return [
        "## What the pool was trusted with",
        trust_section(manifest),
        "## Gold overrides applied",
        overrides or "none",
        "## Suspect golds",
        suspects or "none",
        "## Decontamination hits",
        hits_summary(hits, problems or {}),
        "## Decontamination: closest candidates kept",
        (near or "none")
        + (f"\n\nMost frequent (down-weighted) n-grams, by documents: {boilerplate}" if boilerplate else ""),
        "## Benchmarks checked",
        records_table("benchmark", manifest.get("benchmarks", {})),
        "## Plots",
        plots_section(run.plots, plots),
    ]


METHOD = Method(
    name="limo",
    run=run_limo,
    options=None,
    stages=STAGES,
    trainer="sft",
    summary="LIMO's funnel: the best chain of each hard, clean, diverse problem (messages.jsonl)",
)
