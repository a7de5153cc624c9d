"""LEMMA's injected errors: a teacher rewrites a correct solution with one error of a given type.

The teacher sees the correct solution as numbered steps, the error type and its description, and replies
with a JSON object ``{"rewritten_solution", "error_step", "error_type", "explanation"}``. We check the
reply strictly, because a malformed record would teach a wrong position:

- the reply holds a JSON object with those fields and types (``explanation`` optional);
- ``error_type`` is the type we asked for;
- ``error_step`` is a step of the rewritten solution, and every step before it is the original's
  (whitespace-insensitive): the error is the first change, so its position is the start of that step;
- the rewritten solution differs from the original and does not reach the gold answer (an "error"
  that changes nothing is no error).

Each failure is a reject with its reason. Error types are assigned per chain from a seeded draw that
cycles through the taxonomy, so the injected set covers every type evenly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from curation.methods.lemma.chain_steps import (
    TeacherOutputError,
    numbered_steps,
    parse_json_object,
    require_field,
    step_spans,
)
from curation.methods.lemma.examples import CorrectChain, WrongChain
from curation.schema import Chain
from eval.backends.base import Backend, GenerationRequest, SamplingParams, row_seed
from eval.grading.grader import grade
from eval.problem import Problem
from eval.records import Reject

STAGE = "error_injection"

INJECTION_PROMPT = """Rewrite the correct solution below so that it contains exactly ONE error of type \
"{error_type}" ({description}). Keep every step before the error unchanged, introduce the error in one step, \
and let the rest of the solution follow from the error, so that the final answer becomes wrong.

Problem:
{problem}

Correct solution (numbered steps):
{steps}

Reply with only a JSON object: {{"rewritten_solution": "<the full rewritten solution, one step per line>", \
"error_step": <number of the step of the rewritten solution where the error is>, "error_type": "{error_type}", \
"explanation": "<one sentence>"}}"""


@dataclass(frozen=True)
class InjectionTask:
    """One request to corrupt ``source`` with an error of ``error_type``."""

    problem: Problem
    source: CorrectChain
    error_type: str
    index: int = 0

    @property
    def request_id(self) -> str:
        return f"{self.source.chain.id}#inject-{self.index}"


def assign_error_types(
    sources: Sequence[tuple[Problem, CorrectChain]], taxonomy: Mapping[str, str], *, per_chain: int, seed: int
) -> list[InjectionTask]:
    """``per_chain`` tasks per source chain; types cycle through a seeded shuffle of the taxonomy."""
    if not taxonomy:
        raise ValueError("error injection: the error taxonomy is empty")
    order = sorted(taxonomy)
    random.Random(seed).shuffle(order)
    tasks, position = [], 0
    for problem, source in sources:
        for index in range(per_chain):
            tasks.append(InjectionTask(problem, source, order[position % len(order)], index))
            position += 1
    return tasks


def injection_request(
    task: InjectionTask, taxonomy: Mapping[str, str], *, sampling: SamplingParams, seed: int
) -> GenerationRequest:
    """The teacher request for one task."""
    prompt = INJECTION_PROMPT.format(
        error_type=task.error_type,
        description=taxonomy[task.error_type],
        problem=task.problem.problem,
        steps=numbered_steps(task.source.chain.text),
    )
    return GenerationRequest(
        id=task.request_id,
        messages=({"role": "user", "content": prompt},),
        sampling=sampling,
        seed=row_seed(seed, task.source.chain.id, task.index),
        meta={
            "problem_id": task.problem.id,
            "sample_index": task.index,
            "task": "inject",
            "error_type": task.error_type,
        },
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def parse_injection(text: str, task: InjectionTask) -> WrongChain:
    """Check a teacher reply and turn it into a located wrong chain.

    Raises:
        TeacherOutputError: The reply breaks one of the rules in the module docstring.
    """
    record = parse_json_object(text)
    rewritten = require_field(record, "rewritten_solution", str)
    step = require_field(record, "error_step", int)
    error_type = require_field(record, "error_type", str)
    if error_type != task.error_type:
        raise TeacherOutputError(f"error_type {error_type!r} is not the requested {task.error_type!r}")
    original = task.source.chain.text
    if _squash(rewritten) == _squash(original):
        raise TeacherOutputError("rewritten solution equals the original")
    new_spans, old_spans = step_spans(rewritten), step_spans(original)
    if not 1 <= step <= len(new_spans):
        raise TeacherOutputError(f"error_step {step} is outside the rewritten solution's {len(new_spans)} steps")
    if step > len(old_spans):
        raise TeacherOutputError(f"error_step {step} is beyond the original solution's {len(old_spans)} steps")
    for i in range(step - 1):
        if _squash(rewritten[slice(*new_spans[i])]) != _squash(original[slice(*old_spans[i])]):
            raise TeacherOutputError(f"step {i + 1} differs from the original although the error is at step {step}")
    verdict = grade(task.problem.answer, rewritten)
    if verdict.correct:
        raise TeacherOutputError("rewritten solution still reaches the gold answer")
    return _wrong_chain(task, rewritten, new_spans[step - 1][0], old_spans[step - 1][0], record)


def _wrong_chain(task: InjectionTask, rewritten: str, offset: int, original_offset: int, record: dict) -> WrongChain:
    source = task.source.chain
    chain = Chain(
        id=f"{source.id}/injected-{task.index}",
        problem_id=task.problem.id,
        text=rewritten,
        final_answer=None,
        generator="teacher",
        prompt_setting=f"inject:{task.error_type}",
        first_wrong_step=offset,
        provenance={"kind": "injected_error", "source_chain_id": source.id, "request_id": task.request_id},
    )
    return WrongChain(
        chain=chain,
        origin="injected",
        first_wrong_step=offset,
        located_by="teacher_record",
        error_type=task.error_type,
        original=source,
        original_offset=original_offset,
        detail={"original_answer": task.source.answer, "teacher_explanation": str(record.get("explanation", ""))},
    )


def inject_errors(
    backend: Backend,
    tasks: Sequence[InjectionTask],
    taxonomy: Mapping[str, str],
    *,
    sampling: SamplingParams,
    seed: int,
) -> tuple[list[WrongChain], list[Reject]]:
    """Run every task through the teacher; returns the accepted wrong chains and one reject per refusal.

    ``len(tasks) == len(wrong) + len(rejects)``.
    """
    requests = [injection_request(t, taxonomy, sampling=sampling, seed=seed) for t in tasks]
    replies = backend.generate(requests) if requests else []
    wrong, rejects = [], []
    for task, reply in zip(tasks, replies, strict=True):
        try:
            item = parse_injection(reply.text, task)
        except TeacherOutputError as exc:
            rejects.append(Reject(STAGE, 0, "teacher_reply", str(exc), STAGE, task.request_id))
            continue
        wrong.append(item)
    return wrong, rejects
