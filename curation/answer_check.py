"""Answer check: grade every chain against its problem's gold with the project grader.

What is graded: a chain's ``final_answer`` when it has one (CHAMP model chains: the one-sentence summary
turn, as CHAMP grades them), else its full text (the grader extracts the last ``\\boxed{}`` or answer
marker). A truncated chain without a final answer is ``no_answer`` without grading.

Trust nothing: a model chain stays only when the grader confirms its answer against the gold (reason
``answer_<status>`` otherwise), and a chain the pool itself marks incorrect goes too
(``answer_pool_marked_incorrect``). Only chains the recipe declares ``human`` (verified references: CHAMP's
solutions, a pool with ``ingest.generator: human``) skip that rule; they are still graded, and when the
grader disagrees the chain is kept with ``grader_disagrees`` so the report can show the grader's blind spots
instead of silently losing reference solutions. ``keep_incorrect`` keeps unconfirmed chains with the reason
noted (``unconfirmed``): `chain_flags` then flags every one that reaches ``curated.jsonl`` and
``messages.jsonl``, and the run warns once. A gold read from the chain's own text (``gold: circular``)
confirms nothing: such chains are flagged ``gold_circular``.

Every graded model chain also becomes an *attempt* (problem, generator, correct) for pass rates and the
suspect-gold check, whether or not the chain itself stays a candidate. Distinct (gold, text) pairs are
graded once (verdicts are deterministic), which matters for pools that repeat short final answers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from curation.funnel import Attempt, CurationState
from curation.options import AnswerCheckOptions
from curation.pool_rows import CIRCULAR
from curation.schema import HUMAN, Chain
from eval.grader import grade_many


@dataclass(frozen=True)
class NoAnswer:
    """The verdict of a chain with nothing to grade (same fields as `eval.grader.Verdict`)."""

    status: str = "no_answer"
    correct: bool = False
    extracted: str | None = None
    reason: str = "truncated with no final answer"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_ANSWER = NoAnswer()
POOL_MARKED_INCORRECT = "answer_pool_marked_incorrect"


def graded_text(chain: Chain) -> str | None:
    """The text the grader sees for ``chain``; None when there is nothing to grade."""
    if chain.final_answer and chain.final_answer.strip():
        return chain.final_answer
    if chain.truncated:
        return None
    return chain.text


def run_answer_check(state: CurationState, options: AnswerCheckOptions) -> None:
    """Grade chains, record verdicts and attempts, drop every model chain the grader does not confirm."""
    count = state.begin("answer_check", options.enabled)
    if not options.enabled:
        state.apply(count)
        return
    chains = list(state.chains.values())
    verdicts = grade_chains(state, chains, options)
    drops: dict[str, tuple[str, dict[str, Any]]] = {}
    statuses: Counter[str] = Counter()
    for chain, verdict in zip(chains, verdicts, strict=True):
        statuses[verdict.status] += 1
        reason = verdict_notes(state.chain_notes[chain.id], chain, verdict, options)
        if chain.generator != HUMAN:
            attempt = Attempt(chain.problem_id, chain.id, chain.generator, verdict.correct, verdict.extracted)
            state.attempts.append(attempt)
        if reason is not None:
            drops[chain.id] = (reason, {"reason": verdict.reason, "extracted": verdict.extracted})
    count.notes = answer_notes(chains, statuses, options)
    state.apply(count, chains=drops)


def verdict_notes(notes: dict[str, Any], chain: Chain, verdict: Any, options: AnswerCheckOptions) -> str | None:
    """Note a chain's verdict and what it means for the chain; returns the drop reason, or None when it stays.

    A human chain stays (``grader_disagrees`` when the grader says no); a model chain the grader does not
    confirm is dropped, or kept with ``unconfirmed`` noted under ``keep_incorrect``.
    """
    notes["verdict"] = verdict  # shared object: one per distinct pair
    if chain.generator == HUMAN:
        if not verdict.correct:
            notes["grader_disagrees"] = True
        return None
    reason = unconfirmed(chain, verdict)
    if reason is not None and options.keep_incorrect:
        notes["unconfirmed"] = reason
        return None
    return reason


def grade_chains(state: CurationState, chains: list[Chain], options: AnswerCheckOptions) -> list[Any]:
    """One verdict per chain (`NO_ANSWER` when there is nothing to grade); each distinct pair graded once."""
    texts = [graded_text(c) for c in chains]
    problems = [state.problems[c.problem_id] for c in chains]  # the problem text lets yes/no statements be judged
    pairs = [(p.answer, t, p.problem) for p, t in zip(problems, texts, strict=True) if t is not None]
    unique = list(dict.fromkeys(pairs))  # the grader is deterministic: each distinct pair is graded once
    graded = dict(zip(unique, grade_many(unique, workers=options.workers, timeout_s=options.timeout_s), strict=True))
    found = iter(graded[pair] for pair in pairs)
    return [next(found) if text is not None else NO_ANSWER for text in texts]


def unconfirmed(chain: Chain, verdict: Any) -> str | None:
    """Why a model chain is not confirmed correct (the drop reason), or None when it is.

    The grader must confirm the answer; a pool that marks the chain incorrect itself (OpenR1's
    ``correctness_math_verify``) is believed when it says no, never instead of grading when it says yes.
    """
    if not verdict.correct:
        return f"answer_{verdict.status}"
    if chain.provenance.get("pool_correct") is False:
        return POOL_MARKED_INCORRECT
    return None


def answer_notes(chains: list[Chain], statuses: Counter[str], options: AnswerCheckOptions) -> dict[str, Any]:
    """The stage's notes: verdicts, verified references, golds that are the chains' own, keep_incorrect."""
    return {
        "statuses": dict(sorted(statuses.items())),
        "human_references": sum(1 for c in chains if c.generator == HUMAN),
        "gold_circular": sum(1 for c in chains if c.provenance.get("gold") == CIRCULAR),
        "pool_marked_incorrect": sum(1 for c in chains if c.provenance.get("pool_correct") is False),
        "keep_incorrect": options.keep_incorrect,
    }


def chain_flags(chain: Chain, notes: dict[str, Any]) -> dict[str, Any]:
    """What a reader of the curated set must know about a chain: not confirmed, circular gold, grader doubts.

    Empty for a model chain the grader confirmed against an independent gold.
    """
    flags: dict[str, Any] = {}
    if "unconfirmed" in notes:
        verdict = notes.get("verdict")
        flags["unconfirmed"] = {"reason": notes["unconfirmed"], "extracted": getattr(verdict, "extracted", None)}
    if chain.provenance.get("gold") == CIRCULAR:
        flags["gold_circular"] = True
    if notes.get("grader_disagrees"):
        flags["grader_disagrees"] = True
    return flags
