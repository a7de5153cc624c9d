"""Where a wrong chain first goes wrong: LEMMA's locators, chosen by ``curate.lemma.locator``.

- ``judge`` (the default): a teacher model reads the numbered steps and names the first wrong one
  (`curation.methods.lemma.examples.locate_with_judge`; ``curate.lemma.judge`` configures it, none: no location).
- ``arithmetic``: no teacher. For arithmetic word problems every step states a computation on numbers of the story,
  so the step verifier (`eval.benchmarks.arithmetic_steps`) recomputes each stated operation and checks each value
  against the story's reference solution; the first step that breaks is the first wrong step, typed in LEMMA's
  taxonomy. The reference solution it read becomes the way out: a fix continues with it from the wrong step's
  sentence on (``WrongChain.original`` / ``original_offset``), a fresh restart can take it whole
  (``restart_sources: [reference]``). A chain it cannot decide is rejected with its reason.

Either way a chain that already has a first wrong step (an annotation, an injected error) keeps it, and every located
chain records ``located_by`` and the locator's reason in its provenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from curation.methods.lemma.chain_steps import step_spans
from curation.methods.lemma.examples import STAGE, WrongChain
from curation.schema import Chain
from eval.benchmarks.arithmetic_steps import ArithmeticReference, StepCheck, first_wrong_step
from eval.problem import Problem
from eval.records import Reject

LOCATORS = ("judge", "arithmetic")
REFERENCE = "reference"  # the generator name of a story's reference solution (`reference_chain`)


def reference_chain(problem: Problem, reference: ArithmeticReference) -> Chain:
    """The story's reference solution as a correct chain (generator ``reference``)."""
    return Chain(
        id=f"{problem.id}/{REFERENCE}",
        problem_id=problem.id,
        text=reference.solution(),
        final_answer=str(reference.answer),
        generator=REFERENCE,
        provenance={"kind": "arithmetic_reference", "source": "eval.benchmarks.arithmetic_steps"},
    )


def locate_by_arithmetic(
    wrong: Sequence[WrongChain], problems: Mapping[str, Problem]
) -> tuple[list[WrongChain], list[Reject]]:
    """First wrong steps from the arithmetic step verifier for the chains that lack one.

    Returns:
        ``(located, rejects)``: every chain that had a first wrong step or got one, and a reject (with the
        verifier's reason) for each chain it could not decide; ``len(wrong) == len(located) + len(rejects)``.
    """
    located, rejects = [], []
    for item in wrong:
        if item.first_wrong_step is not None:
            located.append(item)
            continue
        problem = problems[item.chain.problem_id]
        check = first_wrong_step(problem.problem, item.chain.text)
        if not check.located:
            reason = f"arithmetic locator: {check.reason_code}: {check.reason}"
            rejects.append(
                Reject(source=STAGE, row=0, field="first_wrong_step", reason=reason, stage=STAGE, id=item.chain.id)
            )
            continue
        located.append(_located(item, problem, check))
    return located, rejects


def _located(item: WrongChain, problem: Problem, check: StepCheck) -> WrongChain:
    assert check.span is not None and check.reference is not None and check.event is not None
    reference = reference_chain(problem, check.reference)
    line = check.reference.solution_line(check.event)
    detail = {
        **item.detail,
        "locator": "arithmetic",
        "locator_reason": check.reason,
        "finding": check.finding,
        "first_wrong_step_number": check.step,
        "wrong_step_end": check.span[1],
        "reference_line": line,
        "original_answer": reference.final_answer,
    }
    return replace(
        item,
        first_wrong_step=check.span[0],
        located_by="arithmetic",
        error_type=check.error_type,
        original=reference,
        original_offset=step_spans(reference.text)[line][0],
        detail=detail,
    )
