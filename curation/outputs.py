"""The curated set as rows (full provenance) and as the training view (`messages.jsonl`).

The training view has no system turn (training adds the recipe's) and its assistant turn ends with the
final answer in ``\\boxed{}``. CHAMP chains never box their answer (CHAMP asked for a summary sentence
instead), so a chain without ``\\boxed{`` gets one closing line::

    The final answer is $\\boxed{<answer>}$.

where ``<answer>`` is the gold (``select.boxed_answer: gold``, the default: the answer was checked equal
to it) or the answer the grader extracted from the chain (``chain``).
"""

from __future__ import annotations

from typing import Any

from curation.funnel import CurationState
from curation.options import QualityOptions, SelectOptions
from curation.quality import quality_details
from curation.schema import Chain, SFTExample

STAGES_WITH_DECISIONS = ("dedup", "decontam", "suspect_gold", "difficulty")


def assistant_text(chain: Chain, answer: str) -> str:
    """The chain's text, ending with a boxed final answer."""
    if "\\boxed{" in chain.text:
        return chain.text
    return f"{chain.text.rstrip()}\n\nThe final answer is $\\boxed{{{answer}}}$."


def boxed_answer(state: CurationState, chain: Chain, options: SelectOptions) -> str:
    gold = state.problems[chain.problem_id].answer
    if options.boxed_answer == "chain":
        verdict = state.chain_notes.get(chain.id, {}).get("verdict")
        return (verdict.extracted if verdict is not None else None) or gold
    return gold


def selected_chains(state: CurationState) -> list[Chain]:
    """Selected chains by rank (one per problem)."""
    return sorted(
        state.chains.values(), key=lambda c: (state.problem_notes[c.problem_id].get("rank", 0), c.problem_id)
    )


def curated_row(state: CurationState, chain: Chain, quality: QualityOptions) -> dict[str, Any]:
    """One curated row: problem, chain, gold and every score and decision that led to it."""
    problem = state.problems[chain.problem_id]
    pnotes = state.problem_notes.get(problem.id, {})
    cnotes = state.chain_notes.get(chain.id, {})
    decisions = {count.stage: "kept" for count in state.funnel if count.enabled}
    if "suspect_gold" in pnotes:
        decisions["suspect_gold"] = "kept_for_review"
    return {
        "id": problem.id,
        "rank": pnotes.get("rank"),
        "problem": problem.problem,
        "chain": chain.text,
        "gold_answer": problem.answer,
        "chain_final_answer": chain.final_answer,
        "chain_id": chain.id,
        "source": problem.source,
        "subject": problem.subject,
        "generator": chain.generator,
        "prompt_setting": chain.prompt_setting,
        "scores": {
            "combined": cnotes.get("combined"),
            "quality": quality_details(chain, quality) if "quality" in cnotes else None,
        },
        "pass_rates": pnotes.get("difficulty"),
        "verdict": cnotes["verdict"].to_dict() if "verdict" in cnotes else None,
        "flags": {k: pnotes[k] for k in ("suspect_gold",) if k in pnotes},
        "decisions": decisions,
        "chain_provenance": chain.provenance,
    }


def training_example(state: CurationState, chain: Chain, options: SelectOptions) -> SFTExample:
    problem = state.problems[chain.problem_id]
    return SFTExample.single_turn(
        problem.id, problem.problem, assistant_text(chain, boxed_answer(state, chain, options))
    )
