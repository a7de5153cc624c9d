"""``curate.method: limo`` (the default): LIMO's funnel from a pool of chains to a few hundred training chains.

ingest -> validate -> answer check -> dedup -> decontam -> suspect gold -> difficulty -> quality ->
diversity -> select, all shared stages (`curation.stages`), then the outputs: ``curated.jsonl`` (+
``.parquet``), ``messages.jsonl``, and the shared accounting and report (`curation.outputs`), with LIMO's
plots and sections (gold overrides, suspect golds, decontamination hits, benchmarks checked). The same
inputs, options and seed give byte-identical ``curated.jsonl`` and ``messages.jsonl`` (no timestamps in
them). LIMO has no options of its own: everything it does is a shared stage.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from curation.funnel import CurationState
from curation.methods.base import CurationSummary, Method, RunContext
from curation.options import StageOptions
from curation.outputs import RunOutputs, curated_row, selected_chains, training_example, warn_flagged, write_outputs
from curation.report import render_report, write_plots
from curation.stages import ingest, initial_state, run_stages, stage_names
from eval.report import package_versions

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


def run_limo(stages: StageOptions, options: None, context: RunContext) -> CurationSummary:
    """Run every stage and write ``<output_dir>/curate/``.

    Raises:
        DataError: Unreadable pool, overrides or benchmark files (the message names the file).
    """
    started = time.perf_counter()
    pool, applied, checksums = ingest(stages)
    state = initial_state(pool)
    pool_domains = Counter(p.subject or "unknown" for p in pool.problems)
    run_stages(state, stage_names(STAGES, stages), stages, context.stage_context())
    all_quality = [n["quality"].score for n in state.chain_notes.values() if "quality" in n]
    totals = state.reconcile()
    manifest = {
        "name": context.name,
        "seed": context.seed,
        "config": dict(context.config),
        "pool": {"source": pool.source, "read": pool.read, "provenance": pool.provenance},
        "input_checksums": checksums,
        "gold_overrides": applied,
        "benchmarks": state.manifest.get("benchmarks", {}),
        "difficulty": {
            **state.manifest.get("difficulty", {}),
            "selection": state.manifest.get("selection_difficulty"),
        },
        "packages": package_versions(PACKAGES),
        "totals": totals,
    }
    chains = selected_chains(state)
    rows = [curated_row(state, c, stages.quality) for c in chains]
    messages = [training_example(state, c, stages.select) for c in chains]
    manifest["flagged"] = warn_flagged(rows)
    report = limo_report(state, stages, manifest, pool_domains, all_quality, context)
    parquet = rows if stages.report.parquet else []
    data: dict[str, Sequence[Any]] = {"curated.jsonl": rows, "messages.jsonl": messages}
    summary = {"selected": len(chains)}
    write_outputs(context.out, RunOutputs("limo", data, state, totals, summary, manifest, report, parquet))
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "limo", str(context.out), totals["read"], totals["selected"], "chains", totals["dropped"], seconds
    )


def limo_report(
    state: CurationState,
    stages: StageOptions,
    manifest: dict[str, Any],
    pool_domains: Counter[str],
    all_quality: list[float],
    context: RunContext,
) -> str | None:
    """report.md (and its plots, written now so the report can show them), or None when reports are off."""
    if not stages.report.enabled:
        return None
    context.out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(state, context.out, pool_domains, all_quality) if stages.report.plots else []
    intro = (
        f"Pool `{manifest['pool']['source']}`: {state.read} items read; {len(state.chains)} chains selected "
        f"({len(state.problems)} problems). Every other item is in `rejects.jsonl` with its stage and reason."
    )
    return render_report(
        f"Curation report: {manifest.get('name', '')}", intro, state.funnel, limo_sections(state, manifest, plots)
    )


def trust_section(manifest: dict[str, Any]) -> str:
    """Who wrote the chains, where the golds came from, and the selected chains that are not confirmed."""
    ingest = manifest["pool"].get("provenance", {}).get("ingest")
    flagged = manifest.get("flagged") or {}
    lines = [f"- selected chains flagged: {', '.join(f'{k}: {v}' for k, v in flagged.items()) or 'none'}"]
    if ingest:
        gold = ingest["gold"]
        lines = [
            f"- chains by generator: {ingest['generators']} (only `human` chains skip the answer check)",
            f"- rows by gold origin: {gold['from_rows']}; chains whose gold is read from their own text (circular): "
            f"{gold['circular_chains']}",
            *lines,
        ]
    return "\n".join(lines)


def limo_sections(state: CurationState, manifest: dict[str, Any], plots: list[str]) -> list[str]:
    """Trust, gold overrides, suspect golds, decontamination hits, benchmarks checked, plots."""
    flagged = {pid: n["suspect_gold"] for pid, n in state.problem_notes.items() if "suspect_gold" in n}
    hits = [
        {"problem_id": d.problem_id, **d.detail} for d in state.drops if d.kind == "problem" and d.stage == "decontam"
    ]
    overrides = "\n".join(
        f"- `{o['problem_id']}`: `{o['was']}` -> `{o['answer']}`. {o['justification']}"
        for o in manifest["gold_overrides"]
    )
    suspects = "\n".join(
        f"- `{pid}`: gold `{d['gold']}`, strong models agree on `{d['agreed_answer']}` "
        f"({d['agreeing']} of {d['attempts']} attempts; {d['correct']} match the gold)"
        for pid, d in sorted(flagged.items())
    )
    contaminated = "\n".join(
        f"- `{h['problem_id']}` matched `{h['benchmark']}` item `{h['item_id']}` ({h['method']}, similarity "
        f"{h['similarity']}, content {h['content']}; shared: {', '.join(repr(g) for g in h['ngrams'])})"
        for h in hits
    )
    notes = next((c.notes for c in state.funnel if c.stage == "decontam"), {})
    near = "\n".join(
        f"- `{m['problem_id']}` vs `{m['benchmark']}` item `{m['item_id']}`: similarity {m['similarity']}, "
        f"content {m['content']} (kept)"
        for m in notes.get("near_misses", [])[:10]
    )
    boilerplate = ", ".join(f"'{b['ngram']}' ({b['documents']})" for b in notes.get("boilerplate_ngrams", [])[:10])
    checked = "\n".join(f"- {name}: {info}" for name, info in manifest.get("benchmarks", {}).items())
    return [
        "## What the pool was trusted with",
        trust_section(manifest),
        "## Gold overrides applied",
        overrides or "none",
        "## Suspect golds",
        suspects or "none",
        "## Decontamination hits",
        contaminated or "none",
        "## Decontamination: closest candidates kept",
        (near or "none")
        + (f"\n\nMost frequent (down-weighted) n-grams, by documents: {boilerplate}" if boilerplate else ""),
        "## Benchmarks checked",
        checked or "none",
        "## Plots",
        *[f"![{p}]({p})" for p in plots],
    ]


METHOD = Method(
    name="limo",
    run=run_limo,
    options=None,
    stages=STAGES,
    trainer="sft",
    summary="LIMO's funnel: the best chain of each hard, clean, diverse problem (messages.jsonl)",
)
