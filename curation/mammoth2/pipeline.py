"""The MAmmoTH2 pipeline: corpus -> recall -> extract -> refine -> dedup -> decontaminate -> curated set.

Everything a stage produces lands under ``<output_dir>/curate/mammoth2/`` and is reused on a rerun: the
classifier is kept, datatrove skips finished recall tasks, and extraction / refinement append one line per
finished batch (`append_jsonl`) and skip what is already there, so a killed run resumes without redoing
work. The final files follow the curated-set layout (``curated.jsonl``, ``messages.jsonl``, ``funnel.json``,
``rejects.jsonl``, ``manifest.json``, ``report.md``).

Two accounts reconcile, because the unit changes at extraction: documents (``read = excluded by recall
+ bad input + cut by top_k + extraction rejects + documents that yielded pairs``) and pairs (``extracted =
refine rejects + dedup / decontamination drops + selected``). Recall-excluded documents are listed (id,
score, reason) in ``mammoth2/recall/excluded/`` rather than in ``rejects.jsonl``: on a web dump they are
nearly all of it. Dedup and decontamination are curation's own stages, run on a `CurationState` whose
problems are the refined questions and whose chains are the refined answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from curation.funnel import CurationState
from curation.mammoth2.corpus import CorpusFiles, CorpusSpec
from curation.mammoth2.extract import ExtractSettings, QAPair, extract_documents
from curation.mammoth2.options import EMBEDDED, GenerationOptions, Mammoth2CurateOptions, Mammoth2Options
from curation.mammoth2.recall import (
    FastTextParams,
    RecallResult,
    RecallSettings,
    iter_folder,
    precision_recall,
    run_recall,
    top_k,
    train_classifier,
)
from curation.mammoth2.refine import RefineSettings, refine_pairs
from curation.schema import Chain, SFTExample
from eval.backends.base import Backend, SamplingParams
from eval.problem import Problem
from eval.records import append_jsonl, read_jsonl, sha256_file, write_json, write_jsonl, write_text_atomic
from eval.report import package_versions

log = logging.getLogger(__name__)
GENERATOR = "mammoth2-refine"
_BOXED = re.compile(r"\\boxed\{")
BackendFactory = Callable[[str, GenerationOptions, Path | None], Backend]


@dataclass(frozen=True)
class MiningSummary:
    output_dir: str
    documents_read: int
    pairs_extracted: int
    selected: int
    seconds: float


# ------------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class MiningInputs:
    """Documents to mine, seeds to train on, and (embedded corpus only) the teacher transcript."""

    web: Path
    seed_positive: Path
    seed_negative: Path
    transcript: Path | None
    summary: dict[str, Any]


def prepare_inputs(options: Mammoth2Options, work: Path, seed: int) -> MiningInputs:
    """Build the embedded corpus, or check the paths of the user's dump and seeds.

    Raises:
        FileNotFoundError: A configured path does not exist.
        ValueError: A user dump without seed files.
    """
    corpus = options.corpus
    if corpus.source == EMBEDDED:
        files = build_embedded(options, work / "corpus", seed)
        return MiningInputs(
            files.web, files.seed_positive, files.seed_negative, files.teacher_transcript, files.summary
        )
    if not corpus.seed_positive or not corpus.seed_negative:
        raise ValueError(
            "curate.mammoth2.corpus: a source other than 'embedded' needs seed_positive and seed_negative"
        )
    paths = [Path(p) for p in (corpus.source, corpus.seed_positive, corpus.seed_negative)]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"curate.mammoth2.corpus: {path}: no such file or folder")
    seeds = {p.name: sha256_file(p) for p in paths[1:]}
    return MiningInputs(paths[0], paths[1], paths[2], None, {"source": str(paths[0]), "seed_sha256": seeds})


def build_embedded(options: Mammoth2Options, out: Path, seed: int) -> CorpusFiles:
    """The embedded corpus from CHAMP and installed packages (deterministic in ``seed``)."""
    from curation.champ import load_champ_pool
    from curation.mammoth2.corpus import build_embedded_corpus, model_attempts

    c = options.corpus
    pool = load_champ_pool()
    attempts = model_attempts(
        pool.model_chains, models=c.attempt_models, settings=c.attempt_settings, per_problem=c.forum_pages_per_problem
    )
    spec = CorpusSpec(
        seed_categories=tuple(c.seed_categories),
        web_categories=tuple(c.web_categories),
        forum_pages_per_problem=c.forum_pages_per_problem,
        seed_package_fraction=c.seed_package_fraction,
        max_pages_per_package=c.max_pages_per_package,
        malformed_every=c.malformed_every,
        never_valid_every=c.never_valid_every,
        max_attempts=max(options.extract.max_attempts, options.refine.max_attempts),
        seed=seed,
    )
    return build_embedded_corpus(out, spec, pool.problems, attempts)


# ------------------------------------------------------------------------------------------------- recall


def run_recall_stage(
    options: Mammoth2Options, inputs: MiningInputs, work: Path, seed: int
) -> tuple[RecallResult, dict]:
    """Train (or reuse) the classifier, then score the dump; returns the result and classifier facts."""
    c = options.classifier
    model = work / "classifier" / "recall.bin"
    params = FastTextParams(
        dim=c.dim, lr=c.lr, word_ngrams=c.word_ngrams, min_count=c.min_count, epoch=c.epoch, bucket=c.bucket, seed=seed
    )
    facts: dict[str, Any] = {"params": asdict(params), "negatives_per_positive": c.negatives_per_positive}
    if not model.exists():
        trained = train_classifier(
            inputs.seed_positive, inputs.seed_negative, model.parent, params,
            negatives_per_positive=c.negatives_per_positive, text_key=options.corpus.text_key,
        )  # fmt: skip
        facts.update(positives=trained.positives, negatives=trained.negatives)
    facts["sha256"] = sha256_file(model)
    r, corpus = options.recall, options.corpus
    settings = RecallSettings(
        threshold=r.threshold, input_format=corpus.format, glob_pattern=corpus.glob_pattern, text_key=corpus.text_key,
        id_key=corpus.id_key, tasks=r.tasks, workers=r.workers, batch_size=r.batch_size,
    )  # fmt: skip
    return run_recall(inputs.web, model, work / "recall", settings), facts


def recalled_documents(result: RecallResult, k: int | None) -> tuple[Iterable[dict[str, Any]], list[dict[str, Any]]]:
    """The documents to extract from (all kept, or the ``k`` best) and the top-k reject rows."""
    if k is None:
        return iter_folder(result.recalled_dir), []
    kept, cut = top_k(iter_folder(result.recalled_dir), k)
    return kept, [{**row, "stage": "recall", "code": "top_k"} for row in cut]


# ------------------------------------------------------------------------------------------------- generation


def sampling(options: GenerationOptions) -> SamplingParams:
    return SamplingParams(temperature=options.temperature, max_new_tokens=options.max_new_tokens)


def batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def resumable_rows(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []


def run_extract_stage(
    docs: Iterable[dict[str, Any]], backend: Backend, options: GenerationOptions, path: Path, seed: int
) -> tuple[list[QAPair], list[dict[str, Any]]]:
    """Extract pairs batch by batch, appending each finished batch to ``path`` and skipping finished documents."""
    settings = ExtractSettings(
        sampling=sampling(options), max_attempts=options.max_attempts, num_few_shot=options.num_few_shot,
        max_doc_chars=options.max_doc_chars, seed=seed,
    )  # fmt: skip
    done = {row["doc_id"] for row in resumable_rows(path)}
    todo = (doc for doc in docs if doc["id"] not in done)
    for batch in batches(todo, options.batch_size):
        pairs, rejects = extract_documents(batch, backend, settings)
        by_doc: dict[str, list[dict[str, Any]]] = {}
        for pair in pairs:
            by_doc.setdefault(pair.doc_id, []).append(pair.to_dict())
        failed = {r["id"]: r for r in rejects}
        append_jsonl(
            path, [{"doc_id": d["id"], "pairs": by_doc.get(d["id"], []), "reject": failed.get(d["id"])} for d in batch]
        )
    rows = resumable_rows(path)
    return [QAPair.from_dict(p) for row in rows for p in row["pairs"]], [
        row["reject"] for row in rows if row["reject"]
    ]


def run_refine_stage(
    pairs: Sequence[QAPair], backend: Backend, options: GenerationOptions, path: Path, seed: int
) -> tuple[list[QAPair], list[dict[str, Any]]]:
    """Refine pairs batch by batch with the same resume rule as extraction."""
    settings = RefineSettings(sampling=sampling(options), max_attempts=options.max_attempts, seed=seed)
    done = {row["pair_id"] for row in resumable_rows(path)}
    for batch in batches((p for p in pairs if p.id not in done), options.batch_size):
        refined, rejects = refine_pairs(batch, backend, settings)
        ok = {p.id: p.to_dict() for p in refined}
        failed = {r["id"]: r for r in rejects}
        append_jsonl(path, [{"pair_id": p.id, "refined": ok.get(p.id), "reject": failed.get(p.id)} for p in batch])
    rows = resumable_rows(path)
    return [QAPair.from_dict(r["refined"]) for r in rows if r["refined"]], [r["reject"] for r in rows if r["reject"]]


# ------------------------------------------------------------------------------------------------- shared stages


def boxed_answer(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    depth, start = 1, starts[-1]
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    return None


def pairs_state(pairs: Sequence[QAPair]) -> CurationState:
    """A curation state with one problem (the question) and one chain (the answer) per refined pair."""
    problems = {
        p.id: Problem(id=p.id, problem=p.question, answer=boxed_answer(p.answer) or "", source="mammoth2",
                      extra={"doc_id": p.doc_id})
        for p in pairs
    }  # fmt: skip
    chains = {
        f"{p.id}/refined": Chain(id=f"{p.id}/refined", problem_id=p.id, text=p.answer,
                                 final_answer=boxed_answer(p.answer), generator=GENERATOR, provenance=p.provenance)
        for p in pairs
    }  # fmt: skip
    return CurationState(problems=problems, chains=chains, read=len(chains))


def run_shared_stages(state: CurationState, options: Mammoth2CurateOptions, specs: Mapping[str, Any]) -> None:
    from curation.decontam import run_decontam
    from curation.dedup import run_dedup

    run_dedup(state, options.dedup)
    run_decontam(state, options.decontam, specs)


# ------------------------------------------------------------------------------------------------- accounting


def reason_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(r.get("code") or r.get("reason")) for r in rows).items()))


@dataclass
class Ledger:
    """Everything the pipeline counts, for the funnel, the rejects file and the report."""

    recall: dict[str, int]
    classifier: dict[str, Any]
    quality: dict[str, Any] | None
    top_k_rejects: list[dict[str, Any]]
    bad_input: list[dict[str, Any]]
    extract_rejects: list[dict[str, Any]]
    docs_with_pairs: int
    extracted: list[QAPair]
    refine_rejects: list[dict[str, Any]]
    state: CurationState

    def funnel(self) -> dict[str, Any]:
        """Stage counts and both reconciliations (raises AssertionError if either fails)."""
        r = self.recall
        to_extract = r["kept"] - len(self.top_k_rejects)
        recall_drops = {
            "below_threshold": r["excluded"],
            "bad_input": r["bad_input"],
            "top_k": len(self.top_k_rejects),
        }
        refined = len(self.extracted) - len(self.refine_rejects)
        stages = [
            {"stage": "recall", "unit": "document", "in": r["read"], "out": to_extract, "dropped": recall_drops},
            {"stage": "extract", "unit": "document", "in": to_extract, "out": self.docs_with_pairs,
             "pairs_out": len(self.extracted), "dropped": reason_counts(self.extract_rejects)},
            {"stage": "refine", "unit": "pair", "in": len(self.extracted), "out": refined,
             "dropped": reason_counts(self.refine_rejects)},
            *({"unit": "pair", **count.to_dict()} for count in self.state.funnel),
        ]  # fmt: skip
        documents = {
            "read": r["read"],
            "excluded": r["excluded"] + r["bad_input"] + len(self.top_k_rejects) + len(self.extract_rejects),
            "yielded_pairs": self.docs_with_pairs,
        }
        if documents["read"] != documents["excluded"] + documents["yielded_pairs"]:
            raise AssertionError(f"mammoth2 document funnel does not reconcile: {documents}")
        pair_totals = self.state.reconcile()
        pairs = {"extracted": len(self.extracted), "refine_rejected": len(self.refine_rejects), **pair_totals}
        if pairs["extracted"] != pairs["refine_rejected"] + pairs["read"]:
            raise AssertionError(f"mammoth2 pair funnel does not reconcile: {pairs}")
        return {"stages": stages, "totals": {"documents": documents, "pairs": pairs}}

    def rejects(self) -> list[dict[str, Any]]:
        drops = [
            {"id": d.id, "stage": d.stage, "code": d.reason, "reason": d.reason, "kind": d.kind, "detail": d.detail}
            for d in self.state.drops
            if d.kind == "chain"  # a dropped problem is its one pair's chain again
        ]
        return [*self.bad_input, *self.top_k_rejects, *self.extract_rejects, *self.refine_rejects, *drops]


# ------------------------------------------------------------------------------------------------- outputs


def selected_pairs(state: CurationState, refined: Sequence[QAPair]) -> list[QAPair]:
    alive = {c.problem_id for c in state.chains.values()}
    return [p for p in refined if p.id in alive]


def curated_row(pair: QAPair) -> dict[str, Any]:
    return {
        "id": pair.id,
        "problem": pair.question,
        "solution": pair.answer,
        "answer": boxed_answer(pair.answer),
        "source": "mammoth2",
        "doc_id": pair.doc_id,
        "provenance": pair.provenance,
    }


def render_report(name: str, ledger: Ledger, funnel: dict[str, Any], examples: Sequence[QAPair]) -> str:
    """The human-readable run report (markdown)."""
    lines = [f"# MAmmoTH2 mining report: {name}", "", "## Funnel", "", "| stage | unit | in | out | dropped |",
             "|---|---|---|---|---|"]  # fmt: skip
    for stage in funnel["stages"]:
        into = stage.get("in", stage.get("chains_in"))
        out = stage.get("out", stage.get("chains_out"))
        dropped = stage.get("dropped", stage.get("chains_dropped")) or {}
        shown = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "-"
        lines.append(f"| {stage['stage']} | {stage['unit']} | {into} | {out} | {shown} |")
    totals = funnel["totals"]
    lines += ["", f"Documents: {totals['documents']}", f"Pairs: {totals['pairs']}", "", "## Recall classifier", ""]
    c = ledger.classifier
    lines.append(
        f"Trained on {c.get('positives', '?')} positive and {c.get('negatives', '?')} negative seed documents "
        f"(reused from an earlier run when no counts show); params {c['params']}."
    )
    if ledger.quality:
        q = ledger.quality
        lines.append(
            f"Against the corpus's gold labels: precision {q['precision']:.3f}, recall {q['recall']:.3f} "
            f"(TP {q['true_positive']}, FP {q['false_positive']}, FN {q['false_negative']}, TN {q['true_negative']})."
        )
    lines += ["", "## Examples", ""]
    for pair in examples:
        lines += [f"### {pair.id}", "", f"**Question.** {pair.question}", "", f"**Answer.** {pair.answer}", ""]
    return "\n".join(lines) + "\n"


def write_outputs(
    out: Path, ledger: Ledger, refined: Sequence[QAPair], manifest: dict[str, Any], options: Mammoth2CurateOptions
) -> int:
    """Write the curated-set files under ``out``; returns the number of selected pairs."""
    from eval.records import write_parquet

    chosen = selected_pairs(ledger.state, refined)
    funnel = ledger.funnel()
    rows = [curated_row(p) for p in chosen]
    write_jsonl(out / "curated.jsonl", rows)
    if options.report.parquet and rows:
        write_parquet(out / "curated.parquet", rows)
    write_jsonl(out / "messages.jsonl", [SFTExample.single_turn(p.id, p.question, p.answer) for p in chosen])
    write_json(out / "funnel.json", funnel)
    write_jsonl(out / "rejects.jsonl", ledger.rejects())
    write_json(out / "manifest.json", {**manifest, "totals": funnel["totals"]})
    if options.report.enabled:
        write_text_atomic(out / "report.md", render_report(manifest.get("name", ""), ledger, funnel, chosen[:3]))
    return len(chosen)


# ------------------------------------------------------------------------------------------------- driver


def default_backend(stage: str, options: GenerationOptions, transcript: Path | None) -> Backend:
    """Build a stage's backend from the registry; ``replay`` without a path replays the embedded transcript."""
    from eval.backends.registry import build_backend

    args = dict(options.backend_args)
    if options.backend == "replay" and not args.get("path"):
        if transcript is None:
            raise ValueError(f"curate.mammoth2.{stage}: backend 'replay' needs backend_args.path for a user corpus")
        args["path"] = str(transcript)
    return build_backend(options.backend, **args)


MINING_PACKAGES = ("limo", "datatrove", "fasttext-numpy2-wheel", "champ-dataset", "datasketch")


def mine(
    options: Mammoth2CurateOptions,
    *,
    output_dir: str | Path,
    seed: int,
    benchmark_specs: Mapping[str, Any],
    backend_factory: BackendFactory = default_backend,
    config: Mapping[str, Any] | None = None,
    name: str = "",
) -> MiningSummary:
    """Run every stage and write ``<output_dir>/curate/``.

    Args:
        options: The recipe's ``curate:`` section as values.
        output_dir: Run root.
        seed: Run seed (corpus, classifier, per-row generation seeds).
        benchmark_specs: Benchmarks by name, for decontamination.
        backend_factory: ``(stage, options, transcript) -> Backend`` (default: the registry).
        config: The section as written, for the manifest.
        name: Recipe name.

    Returns:
        Counts and the output folder.
    """
    started = time.perf_counter()
    out = Path(output_dir) / "curate"
    work = out / "mammoth2"
    m = options.mammoth2
    inputs = prepare_inputs(m, work, seed)
    recall, classifier = run_recall_stage(m, inputs, work, seed)
    docs, cut = recalled_documents(recall, m.recall.top_k)
    extractor = backend_factory("extract", m.extract, inputs.transcript)
    pairs, extract_rejects = run_extract_stage(docs, extractor, m.extract, work / "extract.jsonl", seed)
    refiner = backend_factory("refine", m.refine, inputs.transcript)
    refined, refine_rejects = run_refine_stage(pairs, refiner, m.refine, work / "refine.jsonl", seed)
    state = pairs_state(refined)
    run_shared_stages(state, options, benchmark_specs)
    ledger = Ledger(
        recall=recall.counts, classifier=classifier,
        quality=precision_recall(iter_folder(recall.recalled_dir), iter_folder(recall.excluded_dir)),
        top_k_rejects=cut, bad_input=list(iter_folder(recall.out_dir / "bad_input")),
        extract_rejects=extract_rejects, docs_with_pairs=len({p.doc_id for p in pairs}), extracted=pairs,
        refine_rejects=refine_rejects, state=state,
    )  # fmt: skip
    manifest = {
        "name": name, "seed": seed, "pipeline": "mammoth2",
        "config": dict(config) if config is not None else asdict(options),
        "corpus": inputs.summary, "classifier": classifier, "recall_quality": ledger.quality,
        "backends": {"extract": m.extract.backend, "refine": m.refine.backend},
        "benchmarks": state.manifest.get("benchmarks", {}), "packages": package_versions(MINING_PACKAGES),
    }  # fmt: skip
    selected = write_outputs(out, ledger, refined, manifest, options)
    seconds = round(time.perf_counter() - started, 2)
    return MiningSummary(str(out), recall.counts["read"], len(pairs), selected, seconds)


def with_overrides(options: Mammoth2CurateOptions, **mammoth2: Any) -> Mammoth2CurateOptions:
    """A copy with some `Mammoth2Options` fields replaced (tests and notebooks)."""
    return replace(options, mammoth2=replace(options.mammoth2, **mammoth2))
