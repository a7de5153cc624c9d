"""Outputs of the learning-from-errors curation: training view, curated rows, rejects, funnel, manifest, report.

Every file is written atomically. The funnel lists each stage's counts; the manifest records the
recipe section as resolved, the pool's provenance, the output checksums and the summary counts (error
types, connections, length bias) that the report renders as tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from curation.lemma import connection_counts, error_type_counts
from curation.schema import ErrorCorrectionExample, PreferencePair, SFTExample
from eval.records import sha256_file, write_json, write_jsonl, write_text_atomic


def _reject_row(reject: Any) -> dict[str, Any]:
    return {"kind": reject.field, "id": reject.id, "problem_id": None, "stage": reject.stage, "reason": reject.reason,
            "detail": {}}  # fmt: skip


def _common(out: Path, cfg: DictConfig, section: Any, ledger: Any, summary: dict[str, Any]) -> dict[str, Any]:
    state = ledger.state
    drops = [d.to_dict() for d in state.drops] if state is not None else []
    write_jsonl(out / "rejects.jsonl", drops + [_reject_row(r) for r in ledger.rejects])
    pipeline = [c.to_dict() for c in state.funnel] if state is not None else []
    totals = state.reconcile() if state is not None else {}
    write_json(out / "funnel.json", {"pipeline": pipeline, "pipeline_totals": totals, "stages": ledger.stages,
                                     "summary": summary})  # fmt: skip
    outputs = {p.name: sha256_file(p) for p in sorted(out.glob("*.jsonl")) if p.name != "rejects.jsonl"}
    manifest = {"name": str(cfg.get("name")), "seed": int(cfg.seed), "config": asdict(section),
                "facts": ledger.facts, "summary": summary, "outputs_sha256": outputs,
                "packages": _packages()}  # fmt: skip
    write_json(out / "manifest.json", manifest)
    return manifest


def _packages() -> dict[str, str]:
    from curation.pipeline import package_versions

    return package_versions()


def write_lemma_outputs(
    out: Path,
    cfg: DictConfig,
    section: Any,
    examples: Sequence[ErrorCorrectionExample],
    plain: Sequence[SFTExample],
    ledger: Any,
) -> dict[str, Any]:
    """``messages.jsonl`` (error-correction then plain examples), ``curated.jsonl`` and the accounting."""
    out.mkdir(parents=True, exist_ok=True)
    messages = [e.to_sft().to_dict() for e in examples] + [p.to_dict() for p in plain]
    write_jsonl(out / "messages.jsonl", messages)
    curated = [{"kind": "error_correction", **e.to_dict()} for e in examples]
    curated += [{"kind": "plain_correct", **p.to_dict()} for p in plain]
    write_jsonl(out / "curated.jsonl", curated)
    summary = {
        "examples": len(messages),
        "error_correction": len(examples),
        "plain": len(plain),
        "connections": connection_counts(examples),
        "error_types": error_type_counts(examples),
        "origins": _count(e.provenance.get("origin") for e in examples),
        "located_by": _count(e.provenance.get("located_by") for e in examples),
        "continuation_sources": _count(e.provenance.get("continuation_source") for e in examples),
        "rejected": len(ledger.rejects),
    }
    manifest = _common(out, cfg, section, ledger, summary)
    write_text_atomic(out / "report.md", render_lemma_report(manifest, ledger.stages, _pipeline(ledger.state)))
    return summary


def write_pair_outputs(
    out: Path, cfg: DictConfig, section: Any, pairs: Sequence[PreferencePair], ledger: Any
) -> dict[str, Any]:
    """``pairs.jsonl`` (prompt, chosen, rejected, id, provenance) and the accounting."""
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "pairs.jsonl", [p.to_dict() for p in pairs])
    summary = {"pairs": len(pairs), "problems": len({p.provenance["problem_id"] for p in pairs}),
               "length_bias": ledger.facts.get("length_bias", {}), "rejected": len(ledger.rejects)}  # fmt: skip
    manifest = _common(out, cfg, section, ledger, summary)
    write_text_atomic(out / "report.md", render_pair_report(manifest, ledger.stages, _pipeline(ledger.state)))
    return summary


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _table(title: str, counts: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| (none) | 0 |"
    return f"### {title}\n\n| value | count |\n|---|---|\n{rows}\n"


def _pipeline(state: Any) -> str:
    if state is None:
        return ""
    lines = ["| pool stage | chains in -> out | problems in -> out | dropped |", "|---|---|---|---|"]
    for c in state.funnel:
        lines.append(f"| {c.stage} | {c.chains_in} -> {c.chains_out} | {c.problems_in} -> {c.problems_out} | "
                     f"{c.chains_dropped or ''} {c.problems_dropped or ''} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _funnel(stages: Sequence[dict[str, Any]]) -> str:
    lines = ["| stage | counts | rejected |", "|---|---|---|"]
    for stage in stages:
        counts = ", ".join(
            f"{k}={v}" for k, v in stage.items() if k not in ("stage", "rejected", "rejected_by_reason")
        )
        lines.append(f"| {stage['stage']} | {counts} | {stage['rejected']} {stage['rejected_by_reason'] or ''} |")
    return "\n".join(lines) + "\n"


def render_lemma_report(manifest: dict[str, Any], stages: Sequence[dict[str, Any]], pipeline: str = "") -> str:
    """Markdown report: funnel, then the final set by connection, error type, origin and source."""
    summary = manifest["summary"]
    parts = [
        f"# LEMMA curation: {manifest['name']}\n",
        f"{summary['examples']} examples: {summary['error_correction']} error-correction, {summary['plain']} plain "
        f"correct chains; {summary['rejected']} items rejected (rejects.jsonl).\n",
        "## Funnel\n",
        pipeline,
        _funnel(stages),
        "## Final set\n",
        _table("Connections", summary["connections"]),
        _table("Error types", summary["error_types"]),
        _table("Origin of the wrong chain", summary["origins"]),
        _table("First wrong step located by", summary["located_by"]),
        _table("Continuation source", summary["continuation_sources"]),
    ]
    return "\n".join(parts)


def render_pair_report(manifest: dict[str, Any], stages: Sequence[dict[str, Any]], pipeline: str = "") -> str:
    """Markdown report: funnel and the length-bias statistics before and after the controls."""
    bias = manifest["summary"]["length_bias"]
    parts = [
        f"# Preference pairs: {manifest['name']}\n",
        f"{manifest['summary']['pairs']} pairs over {manifest['summary']['problems']} problems.\n",
        "## Funnel\n",
        pipeline,
        _funnel(stages),
        "## Length bias (characters)\n",
        _table("Before length controls", bias.get("before_controls", {})),
        _table("After length controls", bias.get("after_controls", {})),
        f"Candidate pairs refused by the length gap: {bias.get('refused_by_length_gap', 0)}; "
        f"dropped to balance chosen-longer pairs: {bias.get('dropped_by_balance', 0)}.\n",
    ]
    return "\n".join(parts)
