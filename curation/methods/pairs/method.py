"""``curate.method: pairs``: preference pairs for DPO / DiscoPOP from a graded pool.

The graded pool (`curation.methods.graded_pool`), then `curation.preference.build_pairs`: a correct chain
(highest quality first; human solutions too when ``include_human``) against an incorrect chain of the same
problem, length-matched to limit DPO's length bias. With ``rollouts`` the candidates include a generator's own
samples of every problem (a policy's: preference training on its own answers), and with ``pool_chains: false``
only those. Outputs: ``pairs.jsonl`` (``prompt``, ``chosen``, ``rejected``, ``id``, provenance), ``correct.jsonl``
(every distinct correct candidate after its problem, one SFT row each: rejection-sampling fine-tuning's data from the
same samples) and the shared accounting and report, with the length statistics before and after the controls.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.graded_pool import STAGES as POOL_STAGES
from curation.methods.graded_pool import (
    GradedPool,
    human_references,
    load_graded_pool,
    method_manifest,
    pool_totals,
)
from curation.methods.lemma.examples import CorrectChain
from curation.methods.pairs.pairs import PairOptions, ScoredChain, build_pairs, response_text
from curation.methods.rise.method import check_model_exists
from curation.options import RolloutOptions, StageOptions
from curation.outputs.report import count_table, pool_counts, render_report
from curation.outputs.writer import RunOutputs, write_outputs
from curation.rollouts.run import rollouts_as_chains
from curation.schema import Chain, Message, SFTExample
from eval.grading.grader import Verdict, grade_many
from eval.problem import Problem


def run_pairs(stages: StageOptions, options: PairOptions, context: RunContext) -> CurationSummary:
    """Chosen (correct, best quality) vs rejected (incorrect) chains, length-matched."""
    started = time.perf_counter()
    if options.rollouts is not None:  # before the pool stages' work
        check_model_exists(options.rollouts.generator, "curate.pairs.rollouts.generator.model")
    pool, facts = load_graded_pool(stages, context)
    scored = []
    if options.pool_chains:
        scored += [
            ScoredChain(c, pool.verdicts[c.id], pool.quality.get(c.id, 0.0)) for c in pool.chains if not c.truncated
        ]
    if options.include_human:
        scored += [ScoredChain(c.chain, human_verdict(c), c.quality) for c in human_references(pool).values()]
    if options.rollouts is not None:
        scored += sampled_chains(options.rollouts, pool, context, facts)
    pairs, rejects, length_bias = build_pairs(pool.problems, scored, options, seed=context.seed)
    pool.state.record(
        "pairs",
        unit="chain",
        items_in=len(scored),
        items_out=len(pairs),
        rejects=rejects,
        problems=(len(pool.problems), len({p.provenance["problem_id"] for p in pairs})),
    )
    facts["length_bias"] = length_bias
    correct = correct_rows(pool.problems, scored, options)
    summary = {
        "pairs": len(pairs),
        "problems": len({p.provenance["problem_id"] for p in pairs}),
        "correct_answers": len(correct),
        "length_bias": length_bias,
        "rejected": len(pool.state.method_rejects),
    }
    manifest = method_manifest(context, facts, summary)
    intro = (
        f"{summary['pairs']} pairs over {summary['problems']} problems; correct.jsonl: {len(correct)} distinct "
        "correct candidates, one SFT row each."
    )
    report = render_report(f"Preference pairs: {context.name}", intro, pool.state.funnel, _sections(length_bias))
    data = {"pairs.jsonl": [p.to_dict() for p in pairs], "correct.jsonl": [e.to_dict() for e in correct]}
    write_outputs(
        context.out,
        RunOutputs(
            "pairs", data, pool.state, pool_totals(pool), summary, manifest, report, problems=pool.problem_lookup
        ),
    )
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "pairs",
        str(context.out),
        pool.state.read,
        len(pairs),
        "pairs",
        pool.state.rejected,
        seconds,
        pool_counts(pool.state.funnel),
    )


def sampled_chains(
    options: RolloutOptions, pool: GradedPool, context: RunContext, facts: dict[str, Any]
) -> list[ScoredChain]:
    """``k`` fresh samples of every problem of the pool, graded against its gold; those cut at the length limit are
    counted and left out (no final answer to compare)."""
    fresh = rollout_chains(options, list(pool.problems.values()), context)
    problems = pool.problems
    verdicts = grade_many(
        [(problems[c.problem_id].answer, c.text, problems[c.problem_id].problem) for c in fresh],
        workers=1,
        progress=False,
    )
    usable = [ScoredChain(c, v) for c, v in zip(fresh, verdicts, strict=True) if not c.truncated]
    statuses = dict(Counter(s.verdict.status for s in usable))
    notes: dict[str, Any] = {"model": options.generator_name, "k": options.k, "truncated": len(fresh) - len(usable)}
    notes.update(statuses)
    pool.state.record("rollouts", unit="sample", items_in=len(fresh), items_out=len(usable), **notes)
    facts["rollouts"] = notes
    return usable


def rollout_chains(options: RolloutOptions, problems: Sequence[Problem], context: RunContext) -> list[Chain]:
    """``k`` samples per problem as chains (generator ``rollout:<model>``), through the rollout cache under
    ``curate/rollouts/`` (a rerun generates only what it lacks; `curation.rollouts.run`)."""
    return rollouts_as_chains(options, problems, context.out / "rollouts", context.seed)


def correct_rows(
    problems: Mapping[str, Problem], scored: Sequence[ScoredChain], options: PairOptions
) -> list[SFTExample]:
    """Every distinct correct candidate (``min_quality`` as for chosen chains) after its problem alone, in candidate
    order: the correct samples a rejection-sampling fine-tune trains on."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for item in scored:
        chain = item.chain
        if not item.verdict.correct or item.quality < options.min_quality or (chain.problem_id, chain.text) in seen:
            continue
        seen.add((chain.problem_id, chain.text))
        messages = (
            Message("user", problems[chain.problem_id].problem),
            Message("assistant", response_text(item, options.boxed_answer)),
        )
        rows.append(
            SFTExample(
                id=chain.id,
                messages=messages,
                provenance={"problem_id": chain.problem_id, "generator": chain.generator},
            )
        )
    return rows


def human_verdict(reference: CorrectChain) -> Verdict:
    """The human solution derives the gold; it is correct by construction (gold overrides aside)."""
    return Verdict("correct", True, reference.answer, "human reference solution")


def _sections(bias: dict[str, Any]) -> list[str]:
    return [
        "## Length bias (characters)",
        count_table("Before length controls", bias.get("before_controls", {})),
        count_table("After length controls", bias.get("after_controls", {})),
        f"Candidate pairs refused by the length gap: {bias.get('refused_by_length_gap', 0)}; "
        f"dropped to balance chosen-longer pairs: {bias.get('dropped_by_balance', 0)}.",
    ]


METHOD = Method(
    name="pairs",
    run=run_pairs,
    options=PairOptions,
    stages=POOL_STAGES,
    trainer="dpo",
    summary="preference pairs: a correct chain against an incorrect one, length-matched (pairs.jsonl)",
)
