"""Majority-vote golds: a pool without golds gets, per problem, the answer most of its chains agree on.

Real pools mined from forums have problems and model solutions but no answer key. With
``curate.stages.majority_gold.enabled`` ingest keeps such rows (empty gold) and this stage, first after
``problem_limit``, votes each problem's gold from its chains' final answers (`eval.grading.majority.vote`: clusters by
the grader's equivalence, the largest wins; a chain with no answer counts against agreement). The voters are
the alive chains of ``models`` (empty: all), less the chains validation would drop (`curation.stages.validate`
runs next and would not let a hint-setting or empty chain count). A gold-less problem with fewer than
``min_votes`` voters (``majority_too_few_votes``), no answer at all (``majority_no_answer``), an agreement
below ``min_agreement`` (``majority_below_threshold``) or a majority given by fewer than ``min_generators``
distinct generators (``majority_too_few_generators``) is dropped, its agreement and cluster sizes in the
reject. A problem that has a gold keeps it; its vote is recorded (the share of votes equal to the gold, and
whether the majority agrees) for the report.

A voted gold is only as good as its voters: one model's attempts can repeat one mistake, unanimously. So every
gold records how many distinct generators (``field_map.generator``: the model that wrote each chain) gave it
(``generators``), the stage counts the kept golds that rest on a single generator, and the outputs say how much
of the selection rests on them (`curation.outputs.writer.gold_trust`). Versions of one model repeat one another's
mistakes too, so ``count_generators: family`` counts model families instead of names (`generator_family`), and
the funnel notes list which names fell in which family.

The decided golds go into the run's golds file (`curation.pool.golds`), which every later stage and the
outputs read instead of the store's empty gold: the answer check then grades each chain against the voted
gold, so chains outside the majority are dropped as incorrect. Voting is one shard task per part of the
problems table (each reads its problems' chains by offset), so it runs on every executor.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from curation.options import MajorityGoldOptions, StageOptions
from curation.pool.golds import load_golds
from curation.pool.store import Table, column
from curation.runner import (
    DropItem,
    RunState,
    StageContext,
    alive_rows,
    load_mask,
    mask_file,
    rows_as,
    run_parts,
)
from curation.schema import MODEL, Chain
from curation.stages.answer_check import graded_text
from curation.stages.base import StepStage
from curation.stages.suspect_gold import equivalent
from curation.stages.validate import chain_reason_codes
from eval.answers.extract import extract_answer
from eval.grading.majority import vote
from eval.records import atomic_writer, json_line

TOO_FEW_VOTES = "majority_too_few_votes"
NO_ANSWER = "majority_no_answer"
BELOW_THRESHOLD = "majority_below_threshold"
TOO_FEW_GENERATORS = "majority_too_few_generators"
MAJORITY, GIVEN = "majority", "given"


class VoteRow(NamedTuple):
    """One problem's vote: the stored gold (empty: none), the majority and who voted.

    ``given_agreement`` and ``agrees`` are None for a problem without a gold. ``generators``: distinct named
    generators among the voters whose answer equals the problem's gold (its own, else the majority's);
    ``voter_generators``: among all voters. A chain whose writer the pool does not name (generator ``model``)
    counts for none: 0 means "unknown", not "independent".
    """

    problem: int
    gold: str
    answer: str | None
    agreement: float
    cluster_sizes: list[int]
    votes: int
    answered: int
    given_agreement: float | None
    agrees: bool | None
    generators: int = 0
    voter_generators: int = 0


def chain_answer(chain: Chain, problem: str) -> str | None:
    """The answer a chain votes for: its final answer, else its text's (the answer check grades the same text)."""
    text = graded_text(chain)
    return extract_answer(text, problem=problem) if text is not None else None


def vote_row(
    problem: int, gold: str, answers: Sequence[str | None], generators: Sequence[str] | None = None
) -> VoteRow:
    """A problem's `VoteRow` from its voters' answers (in pool order) and who wrote each voting chain."""
    majority = vote(answers, equivalent=equivalent) if answers else None
    answer, agreement, sizes = (
        (None, 0.0, []) if majority is None else (majority.answer, majority.agreement, list(majority.cluster_sizes))
    )
    answered = sum(1 for a in answers if a is not None and a.strip())
    writers = [g if g != MODEL else None for g in generators] if generators is not None else [None] * len(answers)
    counts = {"generators": _backing(gold or answer, answers, writers), "voter_generators": len(set(writers) - {None})}
    if not gold:
        return VoteRow(problem, gold, answer, agreement, sizes, len(answers), answered, None, None, **counts)
    matching = sum(1 for a in answers if a is not None and a.strip() and equivalent(gold, a))
    given = matching / len(answers) if answers else 0.0
    agrees = answer is not None and equivalent(gold, answer)
    return VoteRow(problem, gold, answer, agreement, sizes, len(answers), answered, given, agrees, **counts)


def _backing(gold: str | None, answers: Sequence[str | None], writers: Sequence[str | None]) -> int:
    """Distinct named generators among the voters whose answer equals ``gold`` (0: no gold, or none named)."""
    if not gold:
        return 0
    agreeing = (
        w for a, w in zip(answers, writers, strict=True) if a is not None and a.strip() and equivalent(gold, a)
    )
    return len(set(agreeing) - {None})


# ------------------------------------------------------------------------------------------------ shard task


VOTERS_AT_ONCE = 100_000  # the most answers a vote task holds (all of one problem's, whatever their number)


_FAMILY = re.compile(r"[a-z]+")


def generator_family(name: str) -> str:
    """A generator's model family: the leading letters of its name after any ``org/`` prefix, lower-cased
    (``gpt-4o-mini`` -> ``gpt``, ``Qwen/Qwen2.5-Math-7B`` -> ``qwen``, ``claude-3-opus`` -> ``claude``,
    ``o1-mini`` -> ``o``); a name that starts with no letter is its own family. The unnamed writer stays
    unnamed."""
    if name == MODEL:
        return name
    base = name.rsplit("/", 1)[-1].strip().lower()
    found = _FAMILY.match(base)
    return found.group(0) if found else base


def generator_families(names: Iterable[str]) -> dict[str, list[str]]:
    """Each family of ``names`` (the unnamed writer left out) and the names in it, for the funnel notes."""
    families: dict[str, list[str]] = {}
    for name in sorted(set(names) - {MODEL}):
        families.setdefault(generator_family(name), []).append(name)
    return dict(sorted(families.items()))


def vote_problems(index: int, item: dict[str, Any]) -> Iterator[VoteRow]:
    """A `VoteRow` for every alive problem of one part of the problems table (``item['voters']``: the mask of
    the chains that vote), the problems taken in runs of at most `VOTERS_AT_ONCE` voters: a pool of few
    problems with many chains each (rollouts) would otherwise hold every chain's answer in one task. With
    ``item['count_generators'] == 'family'`` each voter's writer is its model family (`generator_family`)."""
    writer = generator_family if item.get("count_generators") == "family" else str
    problems = {position: (row["answer"], row["problem"]) for position, row in alive_rows(item)}
    for run in _runs(item, list(problems)):
        answers: dict[int, list[str | None]] = {position: [] for position in run}
        writers: dict[int, list[str]] = {position: [] for position in run}
        for position, chain in _voters(item, run[0], run[-1]):
            answers[position].append(chain_answer(chain, problems[position][1]))
            writers[position].append(writer(chain.generator))
        for position in run:
            yield vote_row(position, problems[position][0], answers[position], writers[position])


def _runs(item: dict[str, Any], problems: list[int]) -> Iterator[list[int]]:
    """``problems`` (ascending) cut into runs whose voters number at most `VOTERS_AT_ONCE` (or one problem)."""
    problem_of = column(item["store"], "chain_problem")
    votes = np.bincount(problem_of[load_mask(item["voters"])], minlength=problems[-1] + 1 if problems else 0)
    run: list[int] = []
    held = 0
    for problem, voters in zip(problems, votes[problems].tolist(), strict=True):
        if run and held + voters > VOTERS_AT_ONCE:
            yield run
            run, held = [], 0
        run.append(problem)
        held += voters
    if run:
        yield run


def _voters(item: dict[str, Any], low: int, high: int) -> Iterator[tuple[int, Chain]]:
    """``(problem, chain)`` for the voting chains of problems ``low`` to ``high`` (included), in pool order
    (read by offset)."""
    problem_of = column(item["store"], "chain_problem")
    chains = np.flatnonzero(load_mask(item["voters"]) & (problem_of >= low) & (problem_of <= high)).tolist()
    for position, row in zip(chains, Table.open(Path(item["store"]), "chains").read_many(chains), strict=True):
        yield int(problem_of[position]), Chain.from_dict(row)


# ------------------------------------------------------------------------------------------------ the stage


def decide(row: VoteRow, options: MajorityGoldOptions) -> tuple[dict[str, Any] | None, DropItem | None]:
    """A problem's golds-file entry (None: dropped), or its drop with the reason and the vote."""
    note = {"agreement": round(row.agreement, 4), "cluster_sizes": row.cluster_sizes, "votes": row.votes}
    note.update(answered=row.answered, generators=row.generators)
    if row.gold:
        entry = {"problem": row.problem, "answer": row.gold, "source": GIVEN, **note, "majority": row.answer}
        entry.update(agreement=round(row.given_agreement or 0.0, 4), agrees=row.agrees)
        return entry, None
    reason = None
    if row.votes < options.min_votes:
        reason = TOO_FEW_VOTES
    elif row.answer is None:
        reason = NO_ANSWER
    elif row.agreement < options.min_agreement:
        reason = BELOW_THRESHOLD
    elif options.min_generators > 1 and row.generators < options.min_generators:  # 1: no requirement (0: unnamed)
        reason = TOO_FEW_GENERATORS
    if reason is not None:
        detail = {**note, "answer": row.answer, "min_agreement": options.min_agreement, "min_votes": options.min_votes}
        if options.min_generators > 1:
            detail["min_generators"] = options.min_generators
        return None, (row.problem, reason, detail)
    return {"problem": row.problem, "answer": row.answer, "source": MAJORITY, **note}, None


def agreement_histogram(agreements: Sequence[float]) -> dict[str, int]:
    """Problems by agreement, in tenths (``"0.6"``: [0.6, 0.7); ``"1.0"``: unanimous)."""
    bins = Counter(f"{min(int(a * 10 + 1e-9), 10) / 10:.1f}" for a in agreements)
    return dict(sorted(bins.items()))


def summary(rows: Sequence[VoteRow], drops: Sequence[DropItem], options: MajorityGoldOptions) -> dict[str, Any]:
    """What the funnel, the manifest and the report say of the vote."""
    voted = [r for r in rows if not r.gold]
    given = [r for r in rows if r.gold]
    dropped = {d[0] for d in drops}
    kept = [r.agreement for r in voted if r.problem not in dropped]
    return {
        "voted": len(voted),
        "kept": len(kept),
        "kept_single_generator": sum(1 for r in voted if r.problem not in dropped and r.generators == 1),
        "kept_unnamed_generators": sum(1 for r in voted if r.problem not in dropped and r.generators == 0),
        "dropped": dict(sorted(Counter(d[1] for d in drops).items())),
        "agreement": agreement_histogram([r.agreement for r in voted]),
        "mean_agreement": round(sum(kept) / len(kept), 4) if kept else None,
        "given": {
            "problems": len(given),
            "vote_agrees": sum(1 for r in given if r.agrees),
            "vote_disagrees": sum(1 for r in given if r.answer is not None and not r.agrees),
            "no_vote": sum(1 for r in given if r.answer is None),
        },
        "min_agreement": options.min_agreement,
        "min_votes": options.min_votes,
        "min_generators": options.min_generators,
        "models": list(options.models),
    }


def write_golds(folder: Path, entries: Iterable[dict[str, Any]]) -> str:
    """The golds file, named from its content: later stages' job folders are keyed by that name, so other golds
    (another ``min_agreement`` over the same votes) never reuse their shards."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = folder / f"golds.{os.getpid()}.partial"
    with atomic_writer(partial) as handle:
        for entry in entries:
            line = json_line(entry) + "\n"
            digest.update(line.encode("utf-8"))
            handle.write(line)
    path = folder / f"golds-{digest.hexdigest()[:16]}.jsonl"
    partial.replace(path)
    return str(path)


def disagreements(rows: Sequence[VoteRow], problem_ids: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
    """The first ``limit`` problems whose own gold the majority contradicts (kept; listed for review)."""
    found = [r for r in rows if r.gold and r.answer is not None and not r.agrees][:limit]
    return [_disagreement(problem_ids[r.problem], r) for r in found]


def _disagreement(problem_id: str, row: VoteRow) -> dict[str, Any]:
    return {"problem_id": problem_id, "gold": row.gold, "majority": row.answer, "agreement": round(row.agreement, 4)}


def selection_trust(golds: str, problems: Sequence[int]) -> dict[str, int]:
    """How many of the selected ``problems`` (one chain each) have a voted gold, and how many of those rest on a
    single named generator, or on none named (`VoteRow.generators`)."""
    entries = [load_golds(golds).get(int(p)) for p in problems]
    voted = [e for e in entries if e is not None and e["source"] == MAJORITY]
    return {
        "selected": len(entries),
        "voted": len(voted),
        "single_generator": sum(1 for e in voted if e.get("generators") == 1),
        "unnamed_generators": sum(1 for e in voted if not e.get("generators")),
    }


def voters(state: RunState, options: StageOptions) -> np.ndarray:
    """The chains that vote: alive, written by one of ``majority_gold.models`` (empty: any), and not dropped by
    validation, which runs next (`curation.stages.validate.chain_reason_codes`: a hint setting, an empty chain)."""
    columns = state.store.columns
    mask = state.chain_alive.copy()
    models = options.majority_gold.models
    if models:
        mask &= np.isin(columns.chain_generator, [i for i, g in enumerate(columns.generators) if g in models])
    if options.validate.enabled:
        alive = np.flatnonzero(mask)
        mask[alive[chain_reason_codes(columns, options.validate, alive) != 0]] = False
    return mask


def majority_gold(state: RunState, options: StageOptions, context: StageContext) -> None:
    """Vote every alive problem's gold, write the run's golds file and drop what the vote cannot decide."""
    settings = options.majority_gold
    count = state.begin("majority_gold", settings.enabled)
    params: dict[str, Any] = {"voters": mask_file(context.work_dir, voters(state, options))}  # thresholds apply here
    if settings.count_generators != "name":  # (absent for names: the same job folders as before the option)
        params["count_generators"] = settings.count_generators
    job = run_parts(state, context, "majority-gold", vote_problems, params, table="problems")
    rows = sorted(rows_as(job, VoteRow), key=lambda r: r.problem)
    decided = [decide(row, settings) for row in rows]
    drops = [drop for _, drop in decided if drop is not None]
    state.golds = write_golds(job.folder, (entry for entry, _ in decided if entry is not None))
    count.notes = summary(rows, drops, settings)
    if settings.count_generators == "family":  # which names counted as one (absent when names count)
        count.notes["generator_families"] = generator_families(state.store.columns.generators)
    count.notes["given_disagreements"] = disagreements(rows, state.problem_ids)
    state.manifest["golds"] = {"source": MAJORITY, **count.notes}
    state.apply(count, problems=drops)


STAGE = StepStage("majority_gold", majority_gold, MajorityGoldOptions)
