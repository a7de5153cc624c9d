"""MAmmoTH2's own stages, in order: corpus -> recall -> extract -> refine; the method
(`curation.methods.mammoth2.method`)
runs them, then the shared dedup and decontam stages on the refined pairs.

Everything a stage produces lands under ``<output_dir>/curate/mammoth2/`` and is reused on a rerun: the
classifier is kept, the run's executor skips finished recall shards, and extraction and refinement go through the one
generation cache (`eval.backends.generation.CachedGenerator`, ``mammoth2/extract-<hash>.jsonl`` and
``refine-<hash>.jsonl``), so a killed run resumes without asking the extractor or refiner again.

Recall-excluded documents are listed (id, score, reason) in ``mammoth2/recall/excluded/`` rather than in
``rejects.jsonl``: on a web dump they are nearly all of it. Dedup and decontamination are curation's own
stages, run on the one runner with a pool whose problems are the refined questions and whose chains are the refined
answers (`pairs_state`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from curation.executors import ExecutorOptions
from curation.methods.mammoth2.corpus import (
    CorpusFiles,
    CorpusSpec,
    build_embedded_corpus,
    model_attempts,
    selected_distributions,
)
from curation.methods.mammoth2.extract import ExtractOptions, QAPair, extract_documents
from curation.methods.mammoth2.options import EMBEDDED, Mammoth2Options
from curation.methods.mammoth2.recall import RecallResult, iter_folder, run_recall, top_k, train_classifier
from curation.methods.mammoth2.refine import RefineOptions, refine_pairs
from curation.outputs.writer import run_relative
from curation.pool.champ import load_champ_pool
from curation.runner import batches
from curation.schema import Chain
from eval.backends.base import Backend
from eval.backends.generation import GenerationOptions, cached_generator
from eval.problem import Problem
from eval.records import sha256_file, write_json

log = logging.getLogger(__name__)
GENERATOR = "mammoth2-refine"
_BOXED = re.compile(r"\\boxed\{")


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
    chosen = selected_distributions(c.distributions) if c.distributions else None
    return build_embedded_corpus(out, spec, pool.problems, attempts, chosen)


# ------------------------------------------------------------------------------------------------- recall


def run_recall_stage(
    options: Mammoth2Options, inputs: MiningInputs, work: Path, seed: int, executor: ExecutorOptions
) -> tuple[RecallResult, dict[str, Any]]:
    """Train (or reuse) the classifier, then score the dump on ``executor`` (the run's, as its pool stages);
    returns the result and classifier facts.

    The training counts are kept beside the model (``trained.json``), so a run that reuses it (a resumed run)
    states the same facts as the run that trained it: its manifest does not depend on which run came first."""
    params = options.classifier if options.classifier.seed is not None else replace(options.classifier, seed=seed)
    model = work / "classifier" / "recall.bin"
    counts = model.parent / "trained.json"
    negatives = options.corpus.negatives_per_positive
    facts: dict[str, Any] = {"params": asdict(params), "negatives_per_positive": negatives}
    if not model.exists() or not counts.exists():
        trained = train_classifier(
            inputs.seed_positive,
            inputs.seed_negative,
            model.parent,
            params,
            negatives_per_positive=negatives,
            text_key=options.recall.text_key,
        )
        write_json(counts, {"positives": trained.positives, "negatives": trained.negatives})
    facts.update(json.loads(counts.read_text(encoding="utf-8")))
    facts["sha256"] = sha256_file(model)
    return run_recall(inputs.web, model, work / "recall", options.recall, executor), facts


def recalled_documents(
    result: RecallResult, k: int | None, run_dir: Path | None = None
) -> tuple[Iterable[dict[str, Any]], list[dict[str, Any]]]:
    """The documents to extract from (all kept, or the ``k`` best) and the top-k reject rows; each document's
    ``file_path`` (the corpus file, which pairs carry in their provenance) relative to ``run_dir`` when the run
    wrote it (`curation.outputs.writer.run_relative`)."""
    documents = iter_folder(result.recalled_dir)
    if run_dir is not None:
        documents = (_relative_file(doc, run_dir) for doc in documents)
    if k is None:
        return documents, []
    kept, cut = top_k(documents, k)
    return kept, [{**row, "stage": "recall", "code": "top_k"} for row in cut]


def _relative_file(document: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    if "file_path" not in document:
        return document
    return {**document, "file_path": run_relative(document["file_path"], run_dir)}


# ------------------------------------------------------------------------------------------------- generation


def stage_generator(
    stage: str, generator: GenerationOptions, work: Path, seed: int, transcript: Path | None, context: Any = None
) -> Backend:
    """A stage's generator behind its cache; ``replay`` without a path replays the embedded transcript."""
    if generator.backend == "replay" and not generator.backend_args.get("path"):
        if transcript is None:
            raise ValueError(
                f"curate.mammoth2.{stage}.generator: backend 'replay' needs backend_args.path for a user corpus"
            )
        generator = replace(generator, backend_args={**generator.backend_args, "path": str(transcript)})
    return cached_generator(generator, work, stage, {"seed": seed, "prompt": context})


def run_extract_stage(
    docs: Iterable[dict[str, Any]], backend: Backend, options: ExtractOptions, seed: int
) -> tuple[list[QAPair], list[dict[str, Any]], int]:
    """Extract pairs batch by batch (the generator's cache skips what a killed run already asked).

    Returns:
        The pairs, one reject row per document that yielded none, and how many documents were read.
    """
    pairs: list[QAPair] = []
    rejects: list[dict[str, Any]] = []
    read = 0
    for batch in batches(docs, options.generator.batch_size):
        found, failed = extract_documents(batch, backend, options, seed)
        pairs += found
        rejects += failed
        read += len(batch)
    return pairs, rejects, read


def run_refine_stage(
    pairs: Sequence[QAPair], backend: Backend, options: RefineOptions, seed: int
) -> tuple[list[QAPair], list[dict[str, Any]]]:
    """Refine pairs batch by batch, through the same cache as extraction."""
    refined: list[QAPair] = []
    rejects: list[dict[str, Any]] = []
    for batch in batches(pairs, options.generator.batch_size):
        done, failed = refine_pairs(batch, backend, options, seed)
        refined += done
        rejects += failed
    return refined, rejects


# ------------------------------------------------------------------------------------------------- shared stages


def last_boxed(text: str) -> str | None:
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


def pairs_items(pairs: Sequence[QAPair]) -> tuple[list[Problem], list[Chain]]:
    """One problem (the question) and one chain (the answer) per refined pair, for the shared stages."""
    problems = [
        Problem(
            id=p.id,
            problem=p.question,
            answer=last_boxed(p.answer) or "",
            source="mammoth2",
            extra={"doc_id": p.doc_id},
        )
        for p in pairs
    ]
    chains = [
        Chain(
            id=f"{p.id}/refined",
            problem_id=p.id,
            text=p.answer,
            final_answer=last_boxed(p.answer),
            generator=GENERATOR,
            provenance=p.provenance,
        )
        for p in pairs
    ]
    return problems, chains
