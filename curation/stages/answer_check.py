"""Answer check: grade every chain against its problem's gold with the project grader.

What is graded: a chain's ``final_answer`` when it has one (CHAMP model chains: the one-sentence summary
turn, as CHAMP grades them), else its full text (the grader extracts the last ``\boxed{}`` or answer
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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from curation.executors import ShardJob
from curation.options import AnswerCheckOptions, StageOptions
from curation.pool.golds import problem_reader
from curation.pool.rows import CIRCULAR
from curation.pool.store import Table, column
from curation.runner import (
    DropItem,
    RunState,
    StageContext,
    alive_rows,
    batches,
    options_dict,
    rows_as,
    run_parts,
)
from curation.schema import HUMAN, Chain
from curation.stages.base import Kept, Stage
from eval.grading.grader import Verdict, grade_many
from eval.grading.judge import JudgeItem, build_judge
from eval.grading.policy import apply_policy, grading_summary, write_agreement
from eval.options import to_options


@dataclass(frozen=True)
class NoAnswer:
    """The verdict of a chain with nothing to grade (same fields as `eval.grading.grader.Verdict`)."""

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


def chain_verdict(notes: Mapping[str, Any]) -> Any:
    """The grader's verdict the stage noted on a kept chain (`verdict_notes`; None: not graded)."""
    return notes.get("verdict")


def chain_flags(chain: Chain, notes: dict[str, Any]) -> dict[str, Any]:
    """What a reader of the curated set must know about a chain: not confirmed, circular gold, grader doubts.

    Empty for a model chain the grader confirmed against an independent gold.
    """
    flags: dict[str, Any] = {}
    if "unconfirmed" in notes:
        verdict = chain_verdict(notes)
        flags["unconfirmed"] = {"reason": notes["unconfirmed"], "extracted": getattr(verdict, "extracted", None)}
    if chain.provenance.get("gold") == CIRCULAR:
        flags["gold_circular"] = True
    if notes.get("grader_disagrees"):
        flags["grader_disagrees"] = True
    return flags


# ------------------------------------------------------------------------------------------------ shard tasks


GRADE_BATCH = 4096  # chains held at once by a grading task


class VerdictRow(NamedTuple):
    """What the answer check's task says of one chain: its verdict, why a model chain is not confirmed
    (`unconfirmed`; None for a confirmed or human chain), and the pool's own marks."""

    chain: int
    status: str
    correct: bool
    extracted: str | None
    reason: str
    why: str | None
    circular: bool
    marked_incorrect: bool

    def verdict(self) -> Verdict:
        return Verdict(self.status, self.correct, self.extracted, self.reason)


def answer_check_chains(index: int, item: dict[str, Any]) -> Iterator[VerdictRow]:
    """A `VerdictRow` for every alive chain of one part (distinct (gold, text, problem) triples graded once)."""
    options = to_options(AnswerCheckOptions, item["options"])
    graded: dict[tuple[str, str, str], Any] = {}
    for batch in batches(alive_rows(item), GRADE_BATCH):
        chains = [(position, Chain.from_dict(row)) for position, row in batch]
        problems = _problems(item, [position for position, _ in chains])
        texts = [graded_text(chain) for _, chain in chains]
        triples = [
            (problems[position][0], text, problems[position][1])
            for (position, _), text in zip(chains, texts, strict=True)
            if text is not None
        ]
        new = [triple for triple in dict.fromkeys(triples) if triple not in graded]
        graded.update(zip(new, grade_many(new, workers=1, timeout_s=options.timeout_s, progress=False), strict=True))
        for (position, chain), text in zip(chains, texts, strict=True):
            gold, problem = problems[position]
            verdict = graded[(gold, text, problem)] if text is not None else NO_ANSWER
            why = None if chain.generator == HUMAN else unconfirmed(chain, verdict)
            circular = chain.provenance.get("gold") == CIRCULAR
            marked = chain.provenance.get("pool_correct") is False
            yield VerdictRow(
                position, verdict.status, verdict.correct, verdict.extracted, verdict.reason, why, circular, marked
            )


def _problems(item: Mapping[str, Any], chains: list[int]) -> dict[int, tuple[str, str]]:
    """Each chain's gold answer (the run's, `curation.pool.golds`) and problem text, read once per problem."""
    problem_of = column(item["store"], "chain_problem")
    problems = sorted({int(problem_of[c]) for c in chains})
    with problem_reader(item) as reader:
        rows = list(reader.read_many(problems))
    found = dict(zip(problems, ((row["answer"], row["problem"]) for row in rows), strict=True))
    return {c: found[int(problem_of[c])] for c in chains}


# ------------------------------------------------------------------------------------------------ the stage


def judged(
    rows: list[VerdictRow], state: RunState, settings: AnswerCheckOptions, context: StageContext
) -> tuple[list[VerdictRow], dict[str, Any]]:
    """The symbolic verdicts under the answer check's grading policy (`eval.grading.policy`), on the driver:
    the judge (cached in the work folder, so a resumed run asks nothing twice) is asked about the chains the
    policy sends it; under ``both`` the agreement table and the disagreement rows are written beside the
    curated files (``curate/answer_check/``). Returns the rows to apply and the notes for the funnel."""
    folder = str(state.store.folder)
    positions = sorted(r.chain for r in rows)
    chains = dict(zip(positions, Table.open(Path(folder), "chains").read_many(positions), strict=True))
    problems = _problems(state.task_store(), positions)
    graded = [r for r in rows if graded_text(Chain.from_dict(chains[r.chain])) is not None]
    items = []
    for row in graded:
        chain = Chain.from_dict(chains[row.chain])
        gold, problem = problems[row.chain]
        items.append(JudgeItem(problem, gold, graded_text(chain) or "", chain.id, 0))  # replay keys: chain id
    judge = build_judge(settings.judge, context.work_dir, "answer-check-judge")
    decided = apply_policy(settings.policy, items, [r.verdict() for r in graded], judge)
    by_chain = {row.chain: fields for row, fields in zip(graded, decided, strict=True)}
    out = [_with_fields(row, by_chain.get(row.chain), Chain.from_dict(chains[row.chain])) for row in rows]
    audit = [{"chain_id": chains[c]["id"], "problem_id": chains[c]["problem_id"], **f} for c, f in by_chain.items()]
    table = write_agreement(context.work_dir.parent / "answer_check", audit)
    return out, grading_summary(settings.policy, judge, audit) | {"agreement": table}


def _with_fields(row: VerdictRow, fields: dict[str, Any] | None, chain: Chain) -> VerdictRow:
    """``row`` with the deciding verdict; a model chain's drop reason follows it."""
    if fields is None or fields["decided_by"] == "symbolic":
        return row
    verdict = Verdict(fields["status"], fields["correct"], fields["extracted"], fields["reason"])
    why = None if chain.generator == HUMAN else unconfirmed(chain, verdict)
    return row._replace(status=verdict.status, correct=verdict.correct, reason=verdict.reason, why=why)


@dataclass
class Checked:
    """What the answer check hands on: its finished job (verdict rows) and, per chain, graded as a model attempt
    and correct."""

    job: ShardJob
    attempt: np.ndarray
    correct: np.ndarray


def answer_check(state: RunState, options: StageOptions, context: StageContext) -> Checked | None:
    """Grade every alive chain; model chains stay only when the grader (or, by policy, the judge) confirms them."""
    settings = options.answer_check
    count = state.opened("answer_check", settings.enabled)
    if count is None:
        return None
    job = run_parts(state, context, "answer-check", answer_check_chains, {"options": options_dict(settings)})
    verdicts: Iterable[VerdictRow] = rows_as(job, VerdictRow)
    rows: Iterable[VerdictRow]
    if settings.policy == "symbolic":  # streamed: a list of every chain's row was most of the driver's peak at 1M
        rows, grading = verdicts, {"policy": "symbolic"}
    else:
        rows, grading = judged(list(verdicts), state, settings, context)
    human = state.store.columns.chain_human
    results = Checked(job, np.zeros(len(state.chain_alive), dtype=bool), np.zeros(len(state.chain_alive), dtype=bool))
    statuses: Counter[str] = Counter()
    flags: Counter[str] = Counter()

    def drops() -> Iterator[DropItem]:
        for row in rows:
            statuses[row.status] += 1
            marks = {"gold_circular": row.circular, "pool_marked_incorrect": row.marked_incorrect}
            flags.update(human_references=bool(human[row.chain]), **marks)
            if human[row.chain]:
                continue
            results.attempt[row.chain], results.correct[row.chain] = True, row.correct
            if row.why is not None and not settings.keep_incorrect:
                yield row.chain, row.why, {"reason": row.reason, "extracted": row.extracted}

    state.apply(count, chains=drops())
    count.notes = {
        "statuses": dict(sorted(statuses.items())),
        **{k: flags[k] for k in ("human_references", "gold_circular", "pool_marked_incorrect")},
        "keep_incorrect": settings.keep_incorrect,
        "grading": grading,
    }
    return results


class AnswerCheck(Stage):
    """The answer check as a stage: its verdicts become each kept chain's notes (`verdict_notes`)."""

    name, options_type = "answer_check", AnswerCheckOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Checked | None:
        return answer_check(state, options, context)

    def chain_notes(self, output: Checked, kept: Kept) -> None:
        found = kept.survivors
        for chain_id, verdict in kept.chain_rows(output.job, VerdictRow, VerdictRow.verdict):
            verdict_notes(found.chain_notes[chain_id], found.chains[chain_id], verdict, kept.options.answer_check)


STAGE = AnswerCheck()
