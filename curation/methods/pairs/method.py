"""``curate.method: pairs``: preference pairs for DPO / DiscoPOP from a graded pool.

The graded pool (`curation.methods.graded_pool`), then `curation.preference.build_pairs`: a correct chain
(highest quality first; human solutions too when ``include_human``) against an incorrect chain of the same
problem, length-matched to limit DPO's length bias. Outputs: ``pairs.jsonl`` (``prompt``, ``chosen``,
``rejected``, ``id``, provenance) and the shared accounting and report, with the length statistics before
and after the controls.
"""

from __future__ import annotations

import time
from typing import Any

from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.graded_pool import STAGES as POOL_STAGES
from curation.methods.graded_pool import human_references, load_graded_pool, method_manifest, pool_totals
from curation.methods.lemma.examples import CorrectChain
from curation.methods.pairs.pairs import PairOptions, ScoredChain, build_pairs
from curation.options import StageOptions
from curation.outputs.report import count_table, pool_counts, render_report
from curation.outputs.writer import RunOutputs, write_outputs
from eval.grading.grader import Verdict


def run_pairs(stages: StageOptions, options: PairOptions, context: RunContext) -> CurationSummary:
    """Chosen (correct, best quality) vs rejected (incorrect) chains, length-matched."""
    started = time.perf_counter()
    pool, facts = load_graded_pool(stages, context)
    scored = [ScoredChain(c, pool.verdicts[c.id], pool.quality.get(c.id, 0.0)) for c in pool.chains if not c.truncated]
    if options.include_human:
        scored += [ScoredChain(c.chain, human_verdict(c), c.quality) for c in human_references(pool).values()]
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
    summary = {
        "pairs": len(pairs),
        "problems": len({p.provenance["problem_id"] for p in pairs}),
        "length_bias": length_bias,
        "rejected": len(pool.state.method_rejects),
    }
    manifest = method_manifest(context, facts, summary)
    intro = f"{summary['pairs']} pairs over {summary['problems']} problems."
    report = render_report(f"Preference pairs: {context.name}", intro, pool.state.funnel, _sections(length_bias))
    data = {"pairs.jsonl": [p.to_dict() for p in pairs]}
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
