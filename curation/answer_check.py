"""Answer check: grade every chain against its problem's gold with the project grader.

What is graded: a chain's ``final_answer`` when it has one (CHAMP model chains: the one-sentence summary
turn, as CHAMP grades them), else its full text (the grader extracts the last ``\\boxed{}`` or answer
marker). A truncated chain without a final answer is ``no_answer`` without grading.

Human chains are correct by construction (their final answer is the gold) but are still graded: when
the grader disagrees, the chain is kept and the verdict is recorded as ``grader_disagrees`` so the report
can show the grader's blind spots instead of silently losing reference solutions.

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


def graded_text(chain: Chain) -> str | None:
    """The text the grader sees for ``chain``; None when there is nothing to grade."""
    if chain.final_answer and chain.final_answer.strip():
        return chain.final_answer
    if chain.truncated:
        return None
    return chain.text


def run_answer_check(state: CurationState, options: AnswerCheckOptions) -> None:
    """Grade chains, record verdicts and attempts, drop chains that are not correct."""
    count = state.begin("answer_check", options.enabled)
    if not options.enabled:
        state.apply(count)
        return

    chains = list(state.chains.values())
    texts = [graded_text(c) for c in chains]
    problems = [state.problems[c.problem_id] for c in chains]  # the problem text lets yes/no statements be judged
    pairs = [(p.answer, t, p.problem) for p, t in zip(problems, texts, strict=True) if t is not None]
    unique = list(dict.fromkeys(pairs))  # the grader is deterministic: each distinct pair is graded once
    graded = dict(zip(unique, grade_many(unique, workers=options.workers, timeout_s=options.timeout_s), strict=True))
    verdicts = (graded[pair] for pair in pairs)
    drops: dict[str, tuple[str, dict[str, Any]]] = {}
    statuses: Counter[str] = Counter()
    for chain, text in zip(chains, texts, strict=True):
        verdict = next(verdicts) if text is not None else NO_ANSWER
        statuses[verdict.status] += 1
        state.chain_notes[chain.id]["verdict"] = verdict  # shared object: one per distinct pair
        if chain.generator == HUMAN:
            if not verdict.correct:
                state.chain_notes[chain.id]["grader_disagrees"] = True
            continue
        state.attempts.append(Attempt(chain.problem_id, chain.id, chain.generator, verdict.correct, verdict.extracted))
        if not verdict.correct and not options.keep_incorrect:
            drops[chain.id] = (f"answer_{verdict.status}", {"reason": verdict.reason, "extracted": verdict.extracted})
    count.notes = {"statuses": dict(sorted(statuses.items()))}
    state.apply(count, chains=drops)
