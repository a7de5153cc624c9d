"""``curate.method: mammoth2``: MAmmoTH2 instruction mining (Yue et al., 2024) into a curated set.

corpus -> recall -> extract -> refine (`curation.methods.mammoth2.pipeline`), then the shared dedup and decontam
stages on the refined pairs, then the shared outputs: ``curated.jsonl`` (+ ``.parquet``),
``messages.jsonl``, ``funnel.json``, ``rejects.jsonl``, ``manifest.json`` and ``report.md``.

Two accounts reconcile, because the unit changes at extraction: documents (``read = excluded by recall
+ bad input + cut by top_k + extraction rejects + documents that yielded pairs``) and pairs (``extracted =
refine rejects + dedup / decontamination drops + selected``); ``funnel.json``'s ``totals`` holds both.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation import stages as pool_stages
from curation.funnel import Drop, StageCount, Survivors, reason_counts
from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.mammoth2.extract import QAPair
from curation.methods.mammoth2.options import Mammoth2Options
from curation.methods.mammoth2.pipeline import (
    last_boxed,
    pairs_items,
    prepare_inputs,
    recalled_documents,
    run_extract_stage,
    run_recall_stage,
    run_refine_stage,
    stage_generator,
)
from curation.methods.mammoth2.recall import RecallResult, iter_folder, precision_recall
from curation.options import StageOptions
from curation.outputs.report import render_report
from curation.outputs.writer import RunOutputs, run_relative, write_outputs
from curation.pool.store import store_items
from curation.schema import SFTExample
from eval.reports.report import package_versions

STAGES = ("dedup", "decontam")
PACKAGES = ("limo", "datatrove", "fasttext-numpy2-wheel", "champ-dataset", "datasketch")


@dataclass
class Mined:
    """What the mining stages produced before the shared stages run."""

    recall: RecallResult
    classifier: dict[str, Any]
    top_k_rejects: list[dict[str, Any]]
    extract_rejects: list[dict[str, Any]]
    extracted: list[QAPair]
    refined: list[QAPair]
    refine_rejects: list[dict[str, Any]]
    seconds: dict[str, float]

    @property
    def docs_with_pairs(self) -> int:
        return len({p.doc_id for p in self.extracted})


def run_mammoth2(stages: StageOptions, options: Mammoth2Options, context: RunContext) -> CurationSummary:
    """Mine the configured corpus into ``<output_dir>/curate/``."""
    started = time.perf_counter()
    mined, inputs_summary = mine(options, context)
    state, pool_totals, execution = pool_stages_on_pairs(mined, stages, context)
    totals = mining_totals(mined, pool_totals)
    quality = precision_recall(iter_folder(mined.recall.recalled_dir), iter_folder(mined.recall.excluded_dir))
    manifest = {
        "name": context.name,
        "seed": context.seed,
        "method": "mammoth2",
        "config": dict(context.config),
        "corpus": inputs_summary,
        "classifier": mined.classifier,
        "recall_quality": quality,
        "backends": {"extract": options.extract.generator.backend, "refine": options.refine.generator.backend},
        "benchmarks": state.manifest.get("benchmarks", {}),
        "packages": package_versions(PACKAGES),
        "totals": totals,
        "execution": execution,
    }
    chosen = selected_pairs(state, mined.refined)
    rows = [curated_row(p) for p in chosen]
    report = mining_report(context.name, state, totals, mined.classifier, quality, chosen[:3])
    summary = {
        "documents": mined.recall.counts["read"],
        "pairs_extracted": len(mined.extracted),
        "selected": len(chosen),
    }
    data: dict[str, Sequence[Any]] = {
        "curated.jsonl": rows,
        "messages.jsonl": [SFTExample.single_turn(p.id, p.question, p.answer) for p in chosen],
    }
    parquet = rows if stages.report.parquet else []
    report_text = report if stages.report.enabled else None
    write_outputs(context.out, RunOutputs("mammoth2", data, state, totals, summary, manifest, report_text, parquet))
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "mammoth2", str(context.out), mined.recall.counts["read"], len(chosen), "pairs", state.rejected, seconds
    )


def pool_stages_on_pairs(
    mined: Mined, stages: StageOptions, context: RunContext
) -> tuple[Survivors, dict[str, int], dict[str, Any]]:
    """The shared stages (dedup, decontam) on the refined pairs, on the one runner: a pool store of the pairs
    (one problem, one chain each), the stages, the kept pairs read back; the funnel opens with the mining
    stages and the mining rejects follow the pool's drops in ``rejects.jsonl``. Returns the survivors, the
    pairs' reconciliation and the manifest's ``execution`` (the executor the stages, and recall's shards, ran on)."""
    runner = context.stage_context()
    problems, chains = pairs_items(mined.refined)
    store = store_items(runner.work_dir, "mammoth2", problems, chains, runner.executor.shard_rows)
    run = pool_stages.run_pool(store, stages, STAGES, runner, context.out / "rejects.jsonl", ingest_row=False)
    state = pool_stages.survivors(run, stages)
    state.funnel = [*mining_stages(mined), *state.funnel]
    state.method_rejects.extend(mining_rejects(mined, context.output_dir))
    return state, run.totals, pool_stages.execution_facts(run, runner, context.output_dir)


def mine(options: Mammoth2Options, context: RunContext) -> tuple[Mined, dict[str, Any]]:
    """Corpus, recall, extraction and refinement; returns what they produced and the corpus summary."""
    work, seed = context.out / "mammoth2", context.seed
    clock = [time.perf_counter()]
    inputs = prepare_inputs(options, work, seed)
    recall, classifier = run_recall_stage(options, inputs, work, seed, context.stage_context().executor)
    docs, cut = recalled_documents(recall, options.recall.top_k, context.output_dir)
    clock.append(time.perf_counter())
    prompt = {"num_few_shot": options.extract.num_few_shot, "max_doc_chars": options.extract.max_doc_chars}
    extractor = stage_generator("extract", options.extract.generator, work, seed, inputs.transcript, prompt)
    pairs, extract_rejects, _ = run_extract_stage(docs, extractor, options.extract, seed)
    clock.append(time.perf_counter())
    refiner = stage_generator("refine", options.refine.generator, work, seed, inputs.transcript)
    refined, refine_rejects = run_refine_stage(pairs, refiner, options.refine, seed)
    clock.append(time.perf_counter())
    names = ("recall", "extract", "refine")
    seconds = {name: round(end - start, 3) for name, start, end in zip(names, clock[:-1], clock[1:], strict=True)}
    mined = Mined(recall, classifier, cut, extract_rejects, pairs, refined, refine_rejects, seconds)
    return mined, inputs.summary


def mining_stages(mined: Mined) -> list[StageCount]:
    """``funnel.json`` rows of the mining stages (documents, then pairs)."""
    r = mined.recall.counts
    top_k = len(mined.top_k_rejects)
    recall_dropped = {"below_threshold": r["excluded"], "bad_input": r["bad_input"], "top_k": top_k}
    extract_dropped = reason_counts(str(row["code"]) for row in mined.extract_rejects)
    refine_dropped = reason_counts(str(row["code"]) for row in mined.refine_rejects)
    to_extract = r["kept"] - top_k
    seconds = mined.seconds
    return [
        StageCount(
            "recall", "document", True, r["read"], to_extract, dropped=recall_dropped, seconds=seconds["recall"]
        ),
        StageCount(
            "extract",
            "document",
            True,
            to_extract,
            mined.docs_with_pairs,
            dropped=extract_dropped,
            seconds=seconds["extract"],
            notes={"pairs_out": len(mined.extracted)},
        ),
        StageCount(
            "refine",
            "pair",
            True,
            len(mined.extracted),
            len(mined.refined),
            dropped=refine_dropped,
            seconds=seconds["refine"],
        ),
    ]


def mining_rejects(mined: Mined, run_dir: Path) -> list[Drop]:
    """Rejects rows of the mining stages: unreadable input lines (their file relative to ``run_dir`` when the run
    wrote it), documents cut by top_k, extraction and refinement failures (``reason`` is the short code; the
    message and raw outputs are in ``detail``)."""
    bad = []
    for row in iter_folder(mined.recall.out_dir / "bad_input"):
        row = {**row, "source": run_relative(row["source"], run_dir)}
        bad.append(Drop("row", f"{row['source']}#{row['row']}", None, "recall", "bad_input", _detail(row, ("stage",))))
    cut = [Drop("document", row["id"], None, "recall", "top_k", _detail(row, ("id",))) for row in mined.top_k_rejects]
    return (
        bad
        + cut
        + _generation_rejects("document", mined.extract_rejects)
        + _generation_rejects("pair", mined.refine_rejects)
    )


def _generation_rejects(kind: str, rows: Iterable[dict[str, Any]]) -> list[Drop]:
    return [
        Drop(kind, row["id"], None, row["stage"], row["code"], _detail(row, ("id", "stage", "code"))) for row in rows
    ]


def _detail(row: dict[str, Any], leave_out: Sequence[str]) -> dict[str, Any]:
    detail = {k: v for k, v in row.items() if k not in leave_out}
    if "reason" in detail:
        detail["message"] = detail.pop("reason")
    return detail


def mining_totals(mined: Mined, pool: dict[str, int]) -> dict[str, Any]:
    """Both reconciliations (raises AssertionError if either fails: a bug, never bad input)."""
    r = mined.recall.counts
    excluded = r["excluded"] + r["bad_input"] + len(mined.top_k_rejects) + len(mined.extract_rejects)
    documents = {"read": r["read"], "excluded": excluded, "yielded_pairs": mined.docs_with_pairs}
    if documents["read"] != documents["excluded"] + documents["yielded_pairs"]:
        raise AssertionError(f"mammoth2 document funnel does not reconcile: {documents}")
    pairs = {"extracted": len(mined.extracted), "refine_rejected": len(mined.refine_rejects), **pool}
    if pairs["extracted"] != pairs["refine_rejected"] + pairs["read"]:
        raise AssertionError(f"mammoth2 pair funnel does not reconcile: {pairs}")
    return {"documents": documents, "pairs": pairs}


def selected_pairs(state: Survivors, refined: Sequence[QAPair]) -> list[QAPair]:
    alive = {c.problem_id for c in state.chains.values()}
    return [p for p in refined if p.id in alive]


def curated_row(pair: QAPair) -> dict[str, Any]:
    return {
        "id": pair.id,
        "problem": pair.question,
        "solution": pair.answer,
        "answer": last_boxed(pair.answer),
        "source": "mammoth2",
        "doc_id": pair.doc_id,
        "provenance": pair.provenance,
    }


def mining_report(
    name: str,
    state: Survivors,
    totals: dict[str, Any],
    classifier: dict[str, Any],
    quality: dict[str, Any] | None,
    examples: Sequence[QAPair],
) -> str:
    """The run report: funnel, both accounts, the recall classifier, a few mined examples."""
    intro = f"Documents: {totals['documents']}\n\nPairs: {totals['pairs']}"
    trained = (
        f"Trained on {classifier.get('positives', '?')} positive and {classifier.get('negatives', '?')} negative "
        f"seed documents (reused from an earlier run when no counts show); params {classifier['params']}."
    )
    if quality:
        trained += (
            f"\nAgainst the corpus's gold labels: precision {quality['precision']:.3f}, "
            f"recall {quality['recall']:.3f} (TP {quality['true_positive']}, FP {quality['false_positive']}, "
            f"FN {quality['false_negative']}, TN {quality['true_negative']})."
        )
    shown = [f"### {p.id}\n\n**Question.** {p.question}\n\n**Answer.** {p.answer}" for p in examples]
    sections = ["## Recall classifier", trained, "## Examples", *shown]
    return render_report(f"MAmmoTH2 mining report: {name}", intro, state.funnel, sections)


METHOD = Method(
    name="mammoth2",
    run=run_mammoth2,
    options=Mammoth2Options,
    stages=STAGES,
    trainer="sft",
    pool=False,
    summary="MAmmoTH2: recall web pages, extract and refine question-answer pairs (messages.jsonl)",
)
