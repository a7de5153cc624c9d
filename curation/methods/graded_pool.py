"""The graded pool that LEMMA, preference pairs and RISE start from, built by the shared stages on the one runner.

Ingest (with gold overrides), ``problem_limit`` when set, validate, answer check (keeping incorrect chains:
they are the material), dedup, decontam and quality run on the run's executor (`curation.stages.run_pool`);
every chain they keep is then read back with its verdict and quality, and the method's own stages extend the
funnel from there. Before validate, first-wrong-step annotations are shared with text-identical chains of the
same problem (`share_annotations`): CHAMP's annotated ``No C w/o H`` conversations repeat the ``0-Shot`` text,
and dedup keeps the first copy.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from curation import stages as pool_stages
from curation.funnel import Survivors
from curation.methods.base import RunContext
from curation.methods.lemma.examples import CorrectChain
from curation.options import StageOptions
from curation.outputs.report import PoolProblems, ProblemLookup
from curation.pool.store import open_or_ingest, read_chains
from curation.runner import RunState, StageContext, alive_rows, rows_of, run_parts
from curation.schema import HUMAN, Chain
from eval.grading.grader import Verdict
from eval.problem import Problem
from eval.reports.report import package_versions

STAGES = ("validate", "answer_check", "dedup", "decontam", "quality")


@dataclass
class GradedPool:
    """Model chains, human solutions, verdicts and quality scores of the chains the pool stages kept; with
    ``problem_lookup``, every problem of the pool by id (for the rejected ones report.html shows)."""

    problems: dict[str, Problem]
    chains: list[Chain]
    human: dict[str, Chain]
    verdicts: dict[str, Verdict]
    quality: dict[str, float]
    state: Survivors
    totals: dict[str, int]
    problem_lookup: ProblemLookup | None = None


def load_graded_pool(stages: StageOptions, context: RunContext) -> tuple[GradedPool, dict[str, Any]]:
    """Run the pool stages; returns the graded pool and the facts the manifest records about it."""
    stages = replace(stages, answer_check=replace(stages.answer_check, keep_incorrect=True))
    runner = context.stage_context()
    store = open_or_ingest(stages, runner.work_dir, runner.executor.shard_rows)
    shared: dict[int, int] = {}
    names = pool_stages.stage_names(STAGES, stages)
    before = lambda state: shared.update(share_annotations(state, runner))  # noqa: E731 - one call, after problem_limit
    state = pool_stages.run_pool(store, stages, names, runner, context.out / "rejects.jsonl", before=before)
    kept = pool_stages.survivors(state, stages)
    apply_shared(kept, state, shared)
    facts: dict[str, Any] = {"annotations_shared": len(shared)}
    facts.update(
        pool={"source": store.facts["source"], "read": state.read, "provenance": store.facts["provenance"]},
        input_checksums=store.facts["checksums"],
        gold_overrides=store.facts["gold_overrides"],
        benchmarks=state.manifest.get("benchmarks", {}),
    )
    if "golds" in state.manifest:  # the run voted golds (`curation.stages.majority_gold`)
        facts["golds"] = state.manifest["golds"]
    facts["execution"] = pool_stages.execution_facts(state, runner, context.output_dir)
    graded = graded_pool(kept, state.totals)
    graded.problem_lookup = PoolProblems(state.problem_ids, store)  # report.html: rejected problems beside evidence
    kept.record(
        "graded_pool",
        unit="chain",
        items_in=len(kept.chains),
        items_out=len(kept.chains),
        problems=(len(graded.problems), len(graded.problems)),
        model_chains=len(graded.chains),
        human_chains=len(graded.human),
        verdicts=dict(Counter(v.status for v in graded.verdicts.values())),
    )
    return graded, facts


def share_annotations(state: RunState, context: StageContext) -> dict[int, int]:
    """Which alive chains take a first-wrong-step annotation from a text-identical chain of the same problem.

    Without this the annotation would leave with the duplicate dedup drops. A shard job gives each alive
    chain's text digest and whether it is annotated; the last annotated chain of a (problem, text) wins, as a
    dict built in pool order keeps it. Returns ``{chain: source chain}``.
    """
    job = run_parts(state, context, "share-annotations", annotation_keys, {})
    annotated: dict[tuple[int, str], int] = {}
    plain: list[tuple[int, tuple[int, str]]] = []
    for chain, digest, has_annotation in rows_of(job):
        key = (int(state.chain_problem[chain]), digest)
        if has_annotation:
            annotated[key] = chain
        else:
            plain.append((chain, key))
    return {chain: annotated[key] for chain, key in plain if key in annotated}


def annotation_keys(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[chain, digest of its text, annotated]`` per alive chain of one part (`share_annotations`'s task)."""
    for position, row in alive_rows(item):
        digest = hashlib.blake2b(row["text"].encode("utf-8"), digest_size=16).hexdigest()
        yield [position, digest, row.get("first_wrong_step") is not None]


def apply_shared(kept: Survivors, state: RunState, shared: dict[int, int]) -> None:
    """Give each kept chain in ``shared`` its source's annotation (provenance names the source chain)."""
    index_of = {chain_id: int(i) for chain_id, i in zip(kept.chains, np.flatnonzero(state.chain_alive), strict=True)}
    targets = {chain_id: shared[i] for chain_id, i in index_of.items() if i in shared}
    sources = dict(zip(targets.values(), read_chains(state.store, list(targets.values())), strict=True))
    for chain_id, source_index in targets.items():
        source = sources[source_index]
        chain = kept.chains[chain_id]
        provenance = {**chain.provenance, "first_wrong_step_from": source.id}
        kept.chains[chain_id] = replace(chain, first_wrong_step=source.first_wrong_step, provenance=provenance)


def graded_pool(state: Survivors, totals: dict[str, int]) -> GradedPool:
    """Model chains, human solutions, verdicts and quality scores of the kept chains."""
    notes = state.chain_notes
    chains = [c for c in state.chains.values() if c.generator != HUMAN]
    human = {c.problem_id: c for c in state.chains.values() if c.generator == HUMAN}
    verdicts = {cid: notes[cid]["verdict"] for cid in state.chains if "verdict" in notes[cid]}
    quality = {cid: float(notes[cid]["quality"].score) for cid in state.chains if "quality" in notes[cid]}
    return GradedPool(dict(state.problems), chains, human, verdicts, quality, state, totals)


def correct_chains(pool: GradedPool) -> dict[str, list[CorrectChain]]:
    """Correct model chains per problem, with the answer they reach and their quality."""
    out: dict[str, list[CorrectChain]] = defaultdict(list)
    for chain in pool.chains:
        verdict = pool.verdicts[chain.id]
        if verdict.correct and not chain.truncated and verdict.extracted:
            out[chain.problem_id].append(CorrectChain(chain, verdict.extracted, pool.quality.get(chain.id, 0.0)))
    return out


def human_references(pool: GradedPool) -> dict[str, CorrectChain]:
    """Each problem's human solution as a correct chain reaching its final answer (else the gold)."""
    return {
        pid: CorrectChain(c, c.final_answer or pool.problems[pid].answer, pool.quality.get(c.id, 0.0))
        for pid, c in pool.human.items()
        if c.text.strip()
    }


def pool_totals(pool: GradedPool) -> dict[str, Any]:
    """``funnel.json`` totals of a graded-pool method: the pool's reconciliation (read = kept + dropped)."""
    return {"pool": pool.totals}


def method_manifest(context: RunContext, facts: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a graded-pool method: config, pool facts, summary, output checksums, packages, and (as
    every method's) ``execution``: the executor the pool stages ran on."""
    return {
        "name": context.name,
        "seed": context.seed,
        "config": dict(context.config),
        "facts": {k: v for k, v in facts.items() if k != "execution"},
        "summary": summary,
        "outputs_sha256": None,
        "packages": package_versions(),
        "execution": facts["execution"],
    }
