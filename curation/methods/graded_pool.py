"""The graded pool that LEMMA, preference pairs and RISE start from, built with the shared stages.

Ingest (with gold overrides), ``problem_limit`` when set, validate, answer check (keeping incorrect chains:
they are the material), dedup, decontam and quality, on one `CurationState` whose funnel and drops the
method's own stages then extend. Before the stages run, first-wrong-step annotations are copied onto
text-identical chains of the same problem (`share_annotations`): CHAMP's annotated ``No C w/o H``
conversations repeat the ``0-Shot`` text, and dedup keeps the first copy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Any

from curation.funnel import CurationState
from curation.lemma import CorrectChain
from curation.methods.base import RunContext
from curation.options import StageOptions
from curation.schema import HUMAN, Chain
from curation.stages import ingest, initial_state, run_stages, stage_names
from eval.grader import Verdict
from eval.problem import Problem
from eval.report import package_versions

STAGES = ("validate", "answer_check", "dedup", "decontam", "quality")


@dataclass
class GradedPool:
    """Model chains, human solutions, verdicts and quality scores of the chains the pool stages kept."""

    problems: dict[str, Problem]
    chains: list[Chain]
    human: dict[str, Chain]
    verdicts: dict[str, Verdict]
    quality: dict[str, float]
    state: CurationState


def load_graded_pool(stages: StageOptions, context: RunContext) -> tuple[GradedPool, dict[str, Any]]:
    """Run the pool stages; returns the graded pool and the facts the manifest records about it."""
    stages = replace(stages, answer_check=replace(stages.answer_check, keep_incorrect=True))
    pool, applied, checksums = ingest(stages)
    state = initial_state(pool)
    run_stages(state, stage_names((), stages), stages, context.stage_context())
    facts: dict[str, Any] = {"annotations_shared": share_annotations(state)}
    run_stages(state, STAGES, stages, context.stage_context())
    facts.update(
        pool={"source": pool.source, "read": pool.read, "provenance": pool.provenance},
        input_checksums=checksums,
        gold_overrides=applied,
        benchmarks=state.manifest.get("benchmarks", {}),
    )
    graded = graded_pool(state)
    state.record(
        "graded_pool",
        unit="chain",
        items_in=len(state.chains),
        items_out=len(state.chains),
        problems=(len(graded.problems), len(graded.problems)),
        model_chains=len(graded.chains),
        human_chains=len(graded.human),
        verdicts=dict(Counter(v.status for v in graded.verdicts.values())),
    )
    return graded, facts


def share_annotations(state: CurationState) -> int:
    """Copy first-wrong-step annotations onto text-identical chains of the same problem.

    Without this the annotation would leave with the duplicate dedup drops. Returns how many chains
    received one (provenance names the source chain).
    """
    annotated = {(c.problem_id, c.text): c for c in state.chains.values() if c.first_wrong_step is not None}
    shared = 0
    for chain_id, chain in list(state.chains.items()):
        source = annotated.get((chain.problem_id, chain.text))
        if chain.first_wrong_step is None and source is not None:
            provenance = {**chain.provenance, "first_wrong_step_from": source.id}
            state.chains[chain_id] = replace(chain, first_wrong_step=source.first_wrong_step, provenance=provenance)
            shared += 1
    return shared


def graded_pool(state: CurationState) -> GradedPool:
    """Model chains, human solutions, verdicts and quality scores of the chains still alive."""
    notes = state.chain_notes
    chains = [c for c in state.chains.values() if c.generator != HUMAN]
    human = {c.problem_id: c for c in state.chains.values() if c.generator == HUMAN}
    verdicts = {cid: notes[cid]["verdict"] for cid in state.chains if "verdict" in notes[cid]}
    quality = {cid: float(notes[cid]["quality"].score) for cid in state.chains if "quality" in notes[cid]}
    return GradedPool(dict(state.problems), chains, human, verdicts, quality, state)


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
    return {"pool": pool.state.reconcile()}


def method_manifest(context: RunContext, facts: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a graded-pool method: config, pool facts, summary, output checksums, packages."""
    return {
        "name": context.name,
        "seed": context.seed,
        "config": dict(context.config),
        "facts": facts,
        "summary": summary,
        "outputs_sha256": None,
        "packages": package_versions(),
    }
