"""Refinement: a second generation pass rewrites each extracted pair, adding the steps the page left out.

Web answers are often bare ("x = 5") or skip steps; MAmmoTH2 has a model rewrite each pair into a
self-contained question with a step-by-step answer. Ours must also end in a boxed final answer, the
training-view contract (`curate/messages.jsonl`): a rewrite without ``\\boxed{...}`` is malformed and is
retried, like any output that is not one JSON object with a non-empty question and answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from curation.methods.mammoth2.extract import (
    MalformedOutput,
    QAPair,
    check_pair,
    failure_code,
    generate_with_retries,
    parse_json_value,
    reject_row,
)
from eval.backends.base import Backend, GenerationRequest, row_seed
from eval.backends.generation import GenerationOptions

REFINE_INSTRUCTION = (
    "Rewrite the question-answer pair below so that a student can learn from it. Make the question "
    "self-contained. Write the answer as clear numbered steps, adding any step that is missing, and end it "
    'with the final answer in \\boxed{}. Reply with only a JSON object with the keys "question" and "answer".'
    "\n\n"
)


def refine_request_id(pair_identifier: str, attempt: int) -> str:
    """Request id of refinement attempt ``attempt`` for a pair (the key a replay transcript uses)."""
    return f"refine:{pair_identifier}#{attempt}"


def parse_refined(text: str) -> tuple[str, str]:
    """``(question, answer)`` from a refinement reply; the answer must contain ``\\boxed{``."""
    value = parse_json_value(text)
    question, answer = check_pair(value, "refined pair")
    if "\\boxed{" not in answer:
        raise MalformedOutput("refined answer has no \\boxed{} final answer")
    return question, answer


def refine_messages(pair: QAPair) -> tuple[dict[str, str], ...]:
    body = f"Question: {pair.question}\nAnswer: {pair.answer}"
    return ({"role": "user", "content": REFINE_INSTRUCTION + body},)


@dataclass(frozen=True)
class RefineOptions:
    """Refinement (``curate.mammoth2.refine``): the refiner and the attempts per pair before a reject."""

    generator: GenerationOptions = field(default_factory=lambda: GenerationOptions(max_new_tokens=2048, batch_size=64))
    max_attempts: int = 3


def refine_pairs(
    pairs: Sequence[QAPair], backend: Backend, settings: RefineOptions, seed: int
) -> tuple[list[QAPair], list[dict[str, object]]]:
    """Rewrite every pair; returns ``(refined, rejects)`` with each input pair in exactly one of them.

    A refined pair keeps the id and document of its source and records the original in its provenance.
    """

    def request(pair: QAPair, attempt: int) -> GenerationRequest:
        return GenerationRequest(
            id=refine_request_id(pair.id, attempt),
            messages=refine_messages(pair),
            sampling=settings.generator.sampling(),
            seed=row_seed(seed, pair.id, attempt),
            meta={"pair_id": pair.id, "attempt": attempt, "stage": "refine"},
        )

    outcomes = generate_with_retries(
        pairs,
        key=lambda p: p.id,
        request=request,
        parse=parse_refined,
        backend=backend,
        max_attempts=settings.max_attempts,
    )
    refined, rejects = [], []
    for pair, outcome in zip(pairs, outcomes, strict=True):
        if outcome.reason is not None:
            reason = f"malformed refinement after {outcome.attempts} attempts: {outcome.reason}"
            rejects.append(reject_row(pair.id, "refine", failure_code(outcome), reason, outcome))
            continue
        question, answer = outcome.value
        provenance = {
            **pair.provenance,
            "refine_attempts": outcome.attempts,
            "extracted": {"question": pair.question, "answer": pair.answer},
        }
        refined.append(QAPair(pair.id, pair.doc_id, question, answer, provenance))
    return refined, rejects
