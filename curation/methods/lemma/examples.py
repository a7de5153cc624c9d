"""LEMMA (learning from errors): wrong chains cut at their first wrong step, a reflection, then the way out.

Pipeline pieces, each a plain function over values:

1. Wrong chains. *Harvested*: pool chains (or fresh student rollouts) that the grader marks ``incorrect``.
   Chains without a final answer (truncated) or graded ``no_answer`` / ``unparseable`` are not counted as
   wrong: we only learn from a mistake we can see. *Injected*: `curation.methods.lemma.injection`.
2. First wrong step, a character offset into the chain, from (in order) a human annotation (CHAMP's
   first-wrong-step labels), the teacher's own record for injected errors, or the recipe's locator: a teacher
   judge that names the step (`judge_requests` / `apply_judgements`) or, for arithmetic stories, the step
   verifier (`curation.methods.lemma.locators`). A harvested chain annotated "no mistake" yet graded incorrect
   is rejected: the two labels disagree and we do not guess which is wrong.
3. Connection (`connect_wrong_chains`), assigned in the configured mixture's exact proportions (seeded order):
   ``fix_and_continue`` keeps the solution up to the error (``show_wrong_step``: up to and including the wrong
   step), adds a reflection phrase, then the fixed step and a correct continuation; ``fresh_restart`` adds a
   reflection and a different correct solution. A reflection may quote the locator's finding (``{finding}``:
   "80 - 20 - 7 is 53, not 40 - 7"). Without a live teacher the fix comes from a correct reference: for injected
   errors, the original solution from the corrupted step on (the teacher changed only that step and what
   follows); for chains the arithmetic locator read, the story's reference solution from the wrong step's
   sentence on; for other harvested chains, the human solution from the step that best matches the wrong step
   (word overlap, falling back to the same relative position). Fresh restarts use a correct chain by another
   generator (highest quality first), the reference solution, or the human solution. Every response ends with
   the answer in ``\\boxed{}``.
4. Verification (`verify_examples`): only examples whose final answer the grader confirms are kept.
5. Mixing (`plain_examples`): plain correct chains, ``plain_ratio`` of them per error-correction example.

Every decision lands in the example's provenance; every dropped item becomes a `Reject` with its reason.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from curation.methods.lemma.chain_steps import (
    TeacherOutputError,
    numbered_steps,
    parse_json_object,
    require_field,
    step_spans,
)
from curation.schema import HUMAN, Chain, ErrorCorrectionExample, SFTExample
from eval.backends.base import Backend, GenerationRequest, SamplingParams, row_seed
from eval.grading.grader import Verdict, grade_many
from eval.problem import Problem
from eval.records import Reject

CONNECTIONS = ("fix_and_continue", "fresh_restart")
STAGE = "lemma"
_WORD = re.compile(r"[A-Za-z]{3,}|\d+")


@dataclass(frozen=True)
class WrongChain:
    """A wrong solution and where it first goes wrong.

    Attributes:
        chain: The wrong chain.
        origin: ``harvested`` or ``injected``.
        first_wrong_step: Character offset in ``chain.text``; None until located.
        located_by: ``annotation``, ``teacher_record``, ``judge`` or ``arithmetic``.
        error_type: Taxonomy name when known (injected errors, the judge's or the step verifier's classification).
        original: The correct solution the chain departs from: for injected errors the chain that was corrupted,
            for the arithmetic locator the story's reference solution.
        original_offset: Where ``original.text`` goes on from the wrong step (the corrupted step; the reference line
            of the wrong step's sentence).
        detail: Extra provenance (verdict, teacher explanation, the locator's finding, ...).
    """

    chain: Chain
    origin: str
    first_wrong_step: int | None = None
    located_by: str | None = None
    error_type: str | None = None
    original: Chain | None = None
    original_offset: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {
            "wrong_chain_id": self.chain.id,
            "wrong_chain_generator": self.chain.generator,
            "wrong_chain_setting": self.chain.prompt_setting,
            "wrong_chain_source": self.chain.provenance,
            "origin": self.origin,
            "located_by": self.located_by,
            **({"original_chain_id": self.original.id} if self.original else {}),
            **self.detail,
        }


@dataclass(frozen=True)
class ConnectionOptions:
    """How wrong prefixes connect to a way out.

    Attributes:
        mixture: ``{connection: weight}`` over ``fix_and_continue`` / ``fresh_restart``.
        reflections: Reflection phrases; one is drawn per example.
        restart_sources: Where fresh restarts come from, in order of preference: ``model`` (a correct
            chain by another generator), ``reference`` (the story's reference solution the arithmetic locator read),
            ``human`` (the human solution).
        min_prefix_chars: Reject wrong chains whose error starts before this many characters (nothing
            to reflect on).
        show_wrong_step: Show the wrong step before the reflection (the prefix runs up to its end), as LEMMA's
            examples do; false: the prefix stops where the wrong step starts.
        restart_reflections: Reflections for fresh restarts (empty: ``reflections``). A phrase holding
            ``{finding}`` quotes the locator's finding and is drawn only for chains that have one.
    """

    mixture: dict[str, float] = field(default_factory=lambda: {"fix_and_continue": 0.5, "fresh_restart": 0.5})
    reflections: tuple[str, ...] = ()
    restart_sources: tuple[str, ...] = ("model", "human")
    min_prefix_chars: int = 1
    show_wrong_step: bool = False
    restart_reflections: tuple[str, ...] = ()


def _reject(item_id: str, problem_id: str | None, reason: str, field_name: str = "chain") -> Reject:
    return Reject(source=STAGE, row=0, field=field_name, reason=reason, stage=STAGE, id=item_id)


def grade_chains(
    problems: Mapping[str, Problem], chains: Sequence[Chain], *, workers: int = 1, timeout_s: float = 2.0
) -> dict[str, Verdict]:
    """Grade each chain's final answer (or its text when it has none) against its problem's gold."""
    jobs = [(problems[c.problem_id].answer, c.final_answer or c.text) for c in chains]
    verdicts = grade_many(jobs, workers=workers, timeout_s=timeout_s, progress=False)
    return {c.id: v for c, v in zip(chains, verdicts, strict=True)}


def harvest_wrong_chains(
    chains: Sequence[Chain],
    verdicts: Mapping[str, Verdict],
    *,
    settings: Sequence[str] = (),
    generators: Sequence[str] = (),
    max_per_problem: int | None = None,
) -> tuple[list[WrongChain], list[Reject], Counter[str]]:
    """Chains the grader marks incorrect, with their annotated first wrong step when there is one.

    Args:
        chains: Candidate chains (human chains are skipped: they are the reference).
        verdicts: Verdict per chain id (`grade_chains`).
        settings: Prompt settings that count (empty: all); CHAMP recipes list the unaided ones.
        generators: Generators that count (empty: all).
        max_per_problem: Keep at most this many wrong chains per problem (annotated ones first).

    Returns:
        ``(wrong_chains, rejects, counts)``; ``counts`` says why each other chain was not harvested, so
        that ``len(chains) == len(wrong) + len(rejects) + sum(counts.values())``.
    """
    wrong: list[WrongChain] = []
    rejects: list[Reject] = []
    skipped: Counter[str] = Counter()
    for chain in chains:
        reason = _not_harvested(chain, verdicts.get(chain.id), settings, generators)
        if reason is not None:
            skipped[reason] += 1
        elif chain.first_wrong_step == -1:
            rejects.append(_reject(chain.id, chain.problem_id, "annotated 'no mistake' but graded incorrect"))
        else:
            wrong.append(_harvested(chain, verdicts[chain.id]))
    kept, capped = _cap_per_problem(wrong, max_per_problem)
    rejects.extend(_reject(w.chain.id, w.chain.problem_id, "over max_per_problem") for w in capped)
    return kept, rejects, skipped


def _not_harvested(
    chain: Chain, verdict: Verdict | None, settings: Sequence[str], generators: Sequence[str]
) -> str | None:
    if chain.generator == HUMAN:
        return "human_reference"
    if settings and chain.prompt_setting not in settings:
        return "prompt_setting_not_used"
    if generators and chain.generator not in generators:
        return "generator_not_used"
    if chain.truncated or verdict is None:
        return "truncated_or_ungraded"
    if verdict.status != "incorrect":
        return f"graded_{verdict.status}"
    return None


def _harvested(chain: Chain, verdict: Verdict) -> WrongChain:
    annotated = chain.first_wrong_step is not None and chain.first_wrong_step >= 0
    return WrongChain(
        chain=chain,
        origin="harvested",
        first_wrong_step=chain.first_wrong_step if annotated else None,
        located_by="annotation" if annotated else None,
        detail={"wrong_answer": verdict.extracted, "verdict_reason": verdict.reason},
    )


def _cap_per_problem(wrong: list[WrongChain], cap: int | None) -> tuple[list[WrongChain], list[WrongChain]]:
    if cap is None:
        return wrong, []
    by_problem: dict[str, list[WrongChain]] = defaultdict(list)
    for item in wrong:
        by_problem[item.chain.problem_id].append(item)
    kept_ids: set[str] = set()
    for items in by_problem.values():
        ranked = sorted(items, key=lambda w: (w.first_wrong_step is None, w.chain.id))
        kept_ids.update(w.chain.id for w in ranked[:cap])
    return [w for w in wrong if w.chain.id in kept_ids], [w for w in wrong if w.chain.id not in kept_ids]


# --- Locating the first wrong step with a teacher judge -------------------------------------------------

JUDGE_PROMPT = """You are checking a student's solution to a math problem. Find the FIRST step that contains \
a mistake, and classify the mistake with one of these error types:
{taxonomy}

Problem:
{problem}

Student solution (numbered steps):
{steps}

Reply with only a JSON object: {{"first_wrong_step": <step number>, "error_type": "<type>", \
"explanation": "<one sentence>"}}"""


def format_taxonomy(taxonomy: Mapping[str, str]) -> str:
    """The taxonomy as ``- name: description`` lines, the form prompts show."""
    return "\n".join(f"- {name}: {description}" for name, description in taxonomy.items())


def judge_requests(
    wrong: Sequence[WrongChain],
    problems: Mapping[str, Problem],
    taxonomy: Mapping[str, str],
    *,
    sampling: SamplingParams,
    seed: int,
) -> list[GenerationRequest]:
    """One judge request per wrong chain that has no first wrong step yet."""
    requests = []
    for item in wrong:
        if item.first_wrong_step is not None:
            continue
        problem = problems[item.chain.problem_id]
        prompt = JUDGE_PROMPT.format(
            taxonomy=format_taxonomy(taxonomy), problem=problem.problem, steps=numbered_steps(item.chain.text)
        )
        requests.append(
            GenerationRequest(
                id=f"{item.chain.id}#judge",
                messages=({"role": "user", "content": prompt},),
                sampling=sampling,
                seed=row_seed(seed, item.chain.id, 0),
                meta={"problem_id": problem.id, "sample_index": 0, "chain_id": item.chain.id, "task": "judge"},
            )
        )
    return requests


def parse_judgement(text: str, chain_text: str, taxonomy: Mapping[str, str]) -> tuple[int, str | None, str]:
    """``(char offset, error type, explanation)`` from a judge reply.

    Raises:
        TeacherOutputError: Malformed JSON, a step number outside the chain, or an unknown error type.
    """
    record = parse_json_object(text)
    step = require_field(record, "first_wrong_step", int)
    spans = step_spans(chain_text)
    if not 1 <= step <= len(spans):
        raise TeacherOutputError(f"first_wrong_step {step} is outside the chain's {len(spans)} steps")
    error_type = record.get("error_type")
    if error_type is not None and (not isinstance(error_type, str) or error_type not in taxonomy):
        raise TeacherOutputError(f"error_type {error_type!r} is not in the taxonomy")
    return spans[step - 1][0], error_type, str(record.get("explanation", ""))


def locate_with_judge(
    backend: Backend,
    wrong: Sequence[WrongChain],
    problems: Mapping[str, Problem],
    taxonomy: Mapping[str, str],
    *,
    sampling: SamplingParams,
    seed: int,
) -> tuple[list[WrongChain], list[Reject]]:
    """Ask the teacher for the first wrong step of every chain that lacks one; malformed replies are rejected."""
    requests = judge_requests(wrong, problems, taxonomy, sampling=sampling, seed=seed)
    replies = {g.request_id: g for g in backend.generate(requests)} if requests else {}
    located, rejects = [], []
    for item in wrong:
        reply = replies.get(f"{item.chain.id}#judge")
        if reply is None:
            located.append(item)
            continue
        try:
            offset, error_type, explanation = parse_judgement(reply.text, item.chain.text, taxonomy)
        except TeacherOutputError as exc:
            rejects.append(_reject(item.chain.id, item.chain.problem_id, f"judge: {exc}", "first_wrong_step"))
            continue
        detail = {**item.detail, "judge_explanation": explanation, "judge_backend": backend.name}
        located.append(
            replace(item, first_wrong_step=offset, located_by="judge", error_type=error_type, detail=detail)
        )
    return located, rejects


# --- Connections ---------------------------------------------------------------------------------------


def boxed_response(text: str, answer: str) -> str:
    """The chain text followed by its final answer in ``\\boxed{}`` (the training-view convention); a text whose
    last line already boxes that answer (a reference solution's ``The answer is \\boxed{28}.``) is kept as it is."""
    last = text.rstrip().rsplit("\n", 1)[-1]
    if f"\\boxed{{{answer}}}" in last:
        return text.rstrip()
    return f"{text.rstrip()}\n\nThe final answer is $\\boxed{{{answer}}}$."


@dataclass(frozen=True)
class CorrectChain:
    """A correct chain usable as a way out, with the answer it reaches and its quality score."""

    chain: Chain
    answer: str
    quality: float = 0.0


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def match_reference_step(wrong_text: str, offset: int, reference: str) -> tuple[int, str]:
    """Index of the reference step that corresponds to the wrong step starting at ``offset``.

    Returns:
        ``(step index, method)``: the step with the highest word overlap with the wrong step
        (``overlap``), ties broken by closeness to the same relative position; or that relative
        position when no step shares a word (``position``).
    """
    spans = step_spans(reference)
    if not spans:
        return 0, "position"
    wrong_steps = step_spans(wrong_text[offset:])
    wrong_words = _words(wrong_text[offset : offset + wrong_steps[0][1]] if wrong_steps else wrong_text[offset:])
    relative = min(len(spans) - 1, int(len(spans) * offset / max(1, len(wrong_text))))
    scores = [_overlap(wrong_words, _words(reference[s:e])) for s, e in spans]
    best = max(scores)
    if best <= 0:
        return relative, "position"
    index = min((i for i, s in enumerate(scores) if s == best), key=lambda i: abs(i - relative))
    return index, "overlap"


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def fix_and_continue(item: WrongChain, human: CorrectChain | None) -> tuple[str, dict[str, Any]]:
    """The fixed step and a correct continuation, and where it came from.

    Raises:
        LookupError: No reference to continue from.
    """
    if item.original is not None and item.original_offset is not None:
        answer = item.detail.get("original_answer") or item.original.final_answer or ""
        text = boxed_response(item.original.text[item.original_offset :], answer)
        source = "reference_solution" if item.located_by == "arithmetic" else "original_solution"
        return text, {"continuation_source": source, "continuation_chain_id": item.original.id}
    if human is None or not human.chain.text.strip():
        raise LookupError("no human solution to continue from")
    assert item.first_wrong_step is not None
    index, method = match_reference_step(item.chain.text, item.first_wrong_step, human.chain.text)
    start = step_spans(human.chain.text)[index][0]
    text = boxed_response(human.chain.text[start:], human.answer)
    provenance = {
        "continuation_source": "human_solution_from_step",
        "continuation_chain_id": human.chain.id,
        "human_step_index": index,
        "step_match": method,
    }
    return text, provenance


def fresh_restart(
    item: WrongChain, correct: Sequence[CorrectChain], human: CorrectChain | None, sources: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    """A different correct solution, from the first source in ``sources`` that has one.

    Raises:
        LookupError: No source has a correct chain for this problem.
    """
    for source in sources:
        pick = _restart_pick(item, correct, human, source)
        if pick is not None:
            text = boxed_response(pick.chain.text, pick.answer)
            return text, {"continuation_source": f"{source}_chain", "continuation_chain_id": pick.chain.id}
    raise LookupError(f"no correct chain for a fresh restart (sources: {', '.join(sources)})")


def _restart_pick(
    item: WrongChain, correct: Sequence[CorrectChain], human: CorrectChain | None, source: str
) -> CorrectChain | None:
    if source == "human":
        return human if human is not None and human.chain.text.strip() else None
    if source == "reference":
        original = item.original
        if original is None or item.located_by != "arithmetic":
            return None
        return CorrectChain(original, str(item.detail.get("original_answer") or original.final_answer or ""))
    if source != "model":
        raise ValueError(f"restart source {source!r}: expected 'model', 'reference' or 'human'")
    excluded = {item.chain.generator, HUMAN} | ({item.original.id} if item.original else set())
    candidates = [c for c in correct if c.chain.generator not in excluded and c.chain.id not in excluded]
    return max(candidates, key=lambda c: (c.quality, c.chain.id), default=None)


def assign_connections(chain_ids: Sequence[str], mixture: Mapping[str, float], seed: int) -> dict[str, str]:
    """A connection per chain id, in the mixture's proportions exactly (largest remainder), not by chance.

    Chains are ordered by their per-chain seed, then the first share gets the first connection and so on,
    so the assignment does not depend on pool order.
    """
    unknown = set(mixture) - set(CONNECTIONS)
    if unknown or not any(w > 0 for w in mixture.values()) or any(w < 0 for w in mixture.values()):
        raise ValueError(f"connection mixture {dict(mixture)}: use weights >= 0 over {CONNECTIONS}, one positive")
    names = [n for n in CONNECTIONS if mixture.get(n, 0) > 0]
    total = sum(mixture[n] for n in names)
    exact = {n: len(chain_ids) * mixture[n] / total for n in names}
    counts = {n: int(exact[n]) for n in names}
    shortfall = len(chain_ids) - sum(counts.values())
    for name in sorted(names, key=lambda n: exact[n] - counts[n], reverse=True)[:shortfall]:
        counts[name] += 1
    ordered = sorted(chain_ids, key=lambda cid: (row_seed(seed, cid, 1), cid))
    slots = [n for n in names for _ in range(counts[n])]
    return dict(zip(ordered, slots, strict=True))


def connect_wrong_chains(
    wrong: Sequence[WrongChain],
    problems: Mapping[str, Problem],
    correct: Mapping[str, Sequence[CorrectChain]],
    human: Mapping[str, CorrectChain],
    options: ConnectionOptions,
    *,
    seed: int,
) -> tuple[list[ErrorCorrectionExample], list[Reject]]:
    """One error-correction example per located wrong chain.

    Args:
        wrong: Wrong chains (those without a first wrong step are rejected).
        problems: Problems by id.
        correct: Correct model chains per problem id (for fresh restarts).
        human: The human solution per problem id, with its answer.
        options: Mixture, reflection phrases, restart sources.
        seed: Run seed; connections follow the mixture exactly (`assign_connections`), reflections are drawn
            per chain from ``row_seed(seed, chain id)``.

    Returns:
        ``(examples, rejects)``.
    """
    if not options.reflections:
        raise ValueError("lemma: connections.reflections is empty; the recipe must list reflection phrases")
    located = [w.chain.id for w in wrong if w.first_wrong_step is not None]
    connections = assign_connections(located, options.mixture, seed)
    examples, rejects = [], []
    for item in wrong:
        try:
            connection = connections.get(item.chain.id, "")
            examples.append(_connect(item, problems[item.chain.problem_id], correct, human, options, connection, seed))
        except (LookupError, ValueError) as exc:
            rejects.append(_reject(item.chain.id, item.chain.problem_id, f"connection: {exc}"))
    return examples, rejects


def _connect(
    item: WrongChain,
    problem: Problem,
    correct: Mapping[str, Sequence[CorrectChain]],
    human: Mapping[str, CorrectChain],
    options: ConnectionOptions,
    connection: str,
    seed: int,
) -> ErrorCorrectionExample:
    if item.first_wrong_step is None:
        raise LookupError("first wrong step not located (no annotation, no teacher record, no judge)")
    if len(item.chain.text[: item.first_wrong_step].strip()) < options.min_prefix_chars:
        raise ValueError(f"error starts within the first {options.min_prefix_chars} characters: nothing to reflect on")
    phrases = options.reflections
    if connection == "fresh_restart" and options.restart_reflections:
        phrases = options.restart_reflections
    reflection, phrase_index = draw_reflection(phrases, item.detail.get("finding"), row_seed(seed, item.chain.id, 0))
    if connection == "fix_and_continue":
        continuation, source = fix_and_continue(item, human.get(problem.id))
    else:
        restart = correct.get(problem.id, ())
        continuation, source = fresh_restart(item, restart, human.get(problem.id), options.restart_sources)
    return ErrorCorrectionExample(
        id=f"{item.chain.id}#{connection}",
        problem_id=problem.id,
        prompt=problem.problem,
        wrong_chain=item.chain.text,
        first_wrong_step=item.first_wrong_step,
        reflection=reflection,
        continuation=continuation,
        connection=connection,  # type: ignore[arg-type]
        error_type=item.error_type,
        provenance={**item.provenance(), **source, "reflection_index": phrase_index},
        prefix_end=_wrong_step_end(item) if options.show_wrong_step else None,
    )


FINDING = "{finding}"


def draw_reflection(phrases: Sequence[str], finding: str | None, seed: int) -> tuple[str, int]:
    """A reflection phrase drawn with ``seed``, ``{finding}`` filled in; phrases that quote a finding are drawn only
    when there is one.

    Returns:
        ``(phrase, index of the phrase drawn)``.

    Raises:
        ValueError: Every phrase quotes a finding and the chain has none.
    """
    usable = [i for i, p in enumerate(phrases) if finding or FINDING not in p]
    if not usable:
        raise ValueError("every reflection phrase quotes {finding} and the locator gave this chain none")
    index = random.Random(seed).choice(usable)
    return phrases[index].replace(FINDING, finding or ""), index


def _wrong_step_end(item: WrongChain) -> int:
    """Where the wrong step ends: the locator's record, else the end of the step that starts at the error."""
    assert item.first_wrong_step is not None
    recorded = item.detail.get("wrong_step_end")
    if isinstance(recorded, int):
        return recorded
    ends = [e for s, e in step_spans(item.chain.text) if s <= item.first_wrong_step < e]
    return ends[0] if ends else item.first_wrong_step


# --- Verification, mixing, reporting -------------------------------------------------------------------


def verify_examples(
    examples: Sequence[ErrorCorrectionExample],
    problems: Mapping[str, Problem],
    *,
    grade: Callable[[Sequence[tuple[str, str]]], list[Verdict]] | None = None,
) -> tuple[list[ErrorCorrectionExample], list[Reject]]:
    """Keep the examples whose full response the grader confirms against the gold answer.

    Args:
        examples: Candidate examples.
        problems: Problems by id (gold answers).
        grade: ``pairs -> verdicts``; defaults to `eval.grading.grader.grade_many` in this process.
    """
    grade = grade or (lambda pairs: grade_many(pairs, workers=1, progress=False))
    verdicts = grade([(problems[e.problem_id].answer, e.response()) for e in examples])
    kept, rejects = [], []
    for example, verdict in zip(examples, verdicts, strict=True):
        if verdict.correct:
            provenance = {**example.provenance, "final_verdict": verdict.to_dict()}
            kept.append(replace(example, provenance=provenance))
        else:
            reason = f"final answer not confirmed: {verdict.status} ({verdict.reason})"
            rejects.append(_reject(example.id, example.problem_id, reason, "response"))
    return kept, rejects


def plain_examples(
    correct: Mapping[str, Sequence[CorrectChain]],
    problems: Mapping[str, Problem],
    count: int,
) -> list[SFTExample]:
    """Up to ``count`` plain correct chains: the best-scored chain of each problem, best problems first
    (one per problem, so the mix spreads over problems)."""
    best = sorted(
        ((pid, max(chains, key=lambda c: (c.quality, c.chain.id))) for pid, chains in correct.items() if chains),
        key=lambda item: (-item[1].quality, item[0]),
    )
    rows = []
    for problem_id, pick in best[: max(0, count)]:
        provenance = {
            "kind": "plain_correct",
            "chain_id": pick.chain.id,
            "generator": pick.chain.generator,
            "quality": pick.quality,
            "chain_source": pick.chain.provenance,
        }
        response = boxed_response(pick.chain.text, pick.answer)
        rows.append(
            SFTExample.single_turn(
                f"{pick.chain.id}#plain", problems[problem_id].problem, response, provenance=provenance
            )
        )
    return rows


def error_type_counts(examples: Sequence[ErrorCorrectionExample]) -> dict[str, int]:
    """Examples per error type (``unlabelled`` when neither annotation, injection nor judge named one)."""
    return dict(Counter(e.error_type or "unlabelled" for e in examples).most_common())


def connection_counts(examples: Sequence[ErrorCorrectionExample]) -> dict[str, int]:
    return dict(Counter(e.connection for e in examples).most_common())
