"""Difficulty from pass rates, and LIMO's two filters.

Attempts come from the pool (CHAMP: 4 models x 3 unaided settings = 12 per problem; validate already
removed hinted settings) or from fresh rollouts (`curation.rollouts.run`). Per problem we count, for every
generator, correct attempts out of tries. Filters (each off when unset):

- weak filter: drop a problem when any weak model solves it in at least ``weak_max_solved`` of its tries
  (LIMO: Qwen2.5-Math-7B-Instruct, any success in 4 tries -> ``weak_max_solved: 1``);
- strong window: keep a problem only when the strong models' pooled pass rate lies in ``[lo, hi]``
  (LIMO: DeepSeek-R1-Distill-Qwen-32B solving 1 to 3 of 32 -> ``[0.03125, 0.09375]``).

The strong pass rate is also the problem's difficulty score used by selection (``score = 1 - pass_rate``).

With ``pass_rate_of: student`` the student's own pass rate ``p`` scores instead (the student is ``curate.student``,
which the stage gets in its context; its rollouts are a third rollout stage, after the weak and strong ones, or pool
generators named as the student's): ``paced`` ``4 p (1 - p)`` (PACED) or ``hardness`` ``1 - p``, with an optional
window ``curate.student.pass_rate.window``. Where the student solves almost nothing (``pass_rate.fallback:
likelihood``, below ``min_solved``), its likelihood of each problem's verified chains scores the problems instead,
said in the log, the funnel notes and the manifest (`student_fallback`). ``source: likelihood`` scores every problem
by that likelihood (``curate.student.likelihood``).

Without rollouts, ``source: metadata`` reads a declared column (``ingest.field_map.difficulty``): a value
named in ``levels`` takes that score (NuminaMath's ``source``: ``olympiads`` harder than ``gsm8k``), any
other value is read as a number (``Level 4`` -> 4, ``3.5``) and scaled from ``scale`` ``[easiest, hardest]``
onto [0, 1]. A value that is neither (``n/a``, ``0.5/1``: a number must be the whole value), or an empty
cell, leaves the difficulty unknown (``missing: unknown``, the default; selection then gives the problem the
neutral term, never the easiest rank), drops the problem (``missing: drop``, reason ``no_difficulty``) or
stops the run (``missing: error``); how many were empty or unparseable is printed and noted in the funnel
(`metadata_summary`). ``min_difficulty`` drops easier problems (``below_min_difficulty``). The run's
manifest records the signal (`difficulty_signal`).
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from curation.funnel import HISTOGRAM, Chart, Survivors
from curation.options import (
    DifficultyOptions,
    StageOptions,
    StudentOptions,
)
from curation.pool.store import read_chains
from curation.rollouts.run import RolloutStage, rollout_stages, run_rollout_stages, student_stage
from curation.runner import PassCounts, RunState, StageContext
from curation.stages.answer_check import Checked
from curation.stages.base import Kept, Stage
from eval.problem import Problem
from eval.records import DataError
from eval.run.likelihood import Scored, score_answers

log = logging.getLogger(__name__)
SOURCES = ("pool", "rollouts", "metadata", "likelihood")
MISSING = ("unknown", "keep", "drop", "error")  # keep: the old name of unknown
_WHOLE_NUMBER = re.compile(r"(?:level\s*)?(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def pooled_rate(counts: dict[str, list[int]], models: Sequence[str]) -> float | None:
    """Pass rate over ``models`` together (None when they made no attempt)."""
    correct = sum(counts[m][0] for m in models if m in counts)
    tries = sum(counts[m][1] for m in models if m in counts)
    return correct / tries if tries else None


def rating_student(options: DifficultyOptions, student: StudentOptions | None) -> StudentOptions | None:
    """The student whose pass rate scores the problems (``pass_rate_of: student``; the run's ``curate.student``), else
    None.

    Raises:
        ValueError: ``pass_rate_of: student`` without a student.
    """
    if options.pass_rate_of != "student":
        return None
    if student is None:
        raise ValueError("curate.stages.difficulty.pass_rate_of: student needs the student (curate.student)")
    return student


def difficulty_decision(
    counts: dict[str, list[int]],
    options: DifficultyOptions,
    student: StudentOptions | None = None,
    *,
    student_window: bool = True,
) -> str | None:
    """The drop reason for one problem's counts, or None to keep it (the student's window only with
    ``student_window``: not once the pass rate's ``fallback`` has set the student's pass rates aside)."""
    if options.weak_max_solved is not None:
        for model in options.weak_models:
            if model in counts and counts[model][0] >= options.weak_max_solved:
                return "too_easy_for_weak_model"
    if options.strong_pass_rate is not None:
        rate = pooled_rate(counts, options.strong_models)
        lo, hi = options.strong_pass_rate
        if rate is None:
            return "no_strong_attempts"
        if rate < lo:
            return "strong_pass_rate_below_window"
        if rate > hi:
            return "strong_pass_rate_above_window"
    rating = rating_student(options, student) if student_window else None
    if rating is not None and rating.pass_rate.window is not None:
        rate = pooled_rate(counts, rating.generators())
        lo, hi = rating.pass_rate.window
        if rate is None:
            return "no_student_attempts"
        if rate < lo:
            return "student_pass_rate_below_window"
        if rate > hi:
            return "student_pass_rate_above_window"
    return None


def student_score(rate: float, score: str) -> float:
    """The difficulty score of the student's pass rate ``p``: ``paced`` ``4 p (1 - p)`` (1 at p = 0.5, 0 at 0 and 1),
    ``hardness`` ``1 - p``.

    Raises:
        ValueError: An unknown ``score``.
    """
    if score == "paced":
        return round(4.0 * rate * (1.0 - rate), 6)
    if score == "hardness":
        return round(1.0 - rate, 6)
    raise ValueError(f"curate.student.pass_rate.score must be paced or hardness, got {score!r}")


def difficulty_note(
    per_model: dict[str, list[int]], options: DifficultyOptions, student: StudentOptions | None = None
) -> dict[str, object]:
    """A problem's pass-rate note: ``[correct, tries]`` per generator (sorted), the pooled rates, the source."""
    rate = pooled_rate(per_model, options.strong_models) if per_model else None
    note: dict[str, object] = {
        "attempts": {m: list(c) for m, c in sorted(per_model.items())},
        "strong_pass_rate": rate,
        "weak_pass_rate": pooled_rate(per_model, options.weak_models) if per_model else None,
        "source": options.source,
        "score": None if rate is None else round(1.0 - rate, 6),
    }
    rating = rating_student(options, student)
    if rating is not None:  # the student's rate scores instead (a run without a student notes what it always did)
        own = pooled_rate(per_model, rating.generators()) if per_model else None
        note["student_pass_rate"] = own
        note["score"] = None if own is None else student_score(own, rating.pass_rate.score)
        note["score_from"] = f"student_pass_rate ({rating.pass_rate.score})"
    return note


def difficulty_signal(options: DifficultyOptions, student: StudentOptions | None = None) -> dict[str, Any]:
    """What the manifest says about the difficulty signal: pass rates of which models, or which metadata, or the
    student's likelihood (``student``: the run's ``curate.student``)."""
    if not options.enabled:
        return {"signal": None}
    if options.source not in SOURCES:
        known = ", ".join(SOURCES)
        raise ValueError(f"curate.stages.difficulty.source must be one of {known}, got {options.source!r}")
    check_student(options, student)
    if options.source == "metadata":
        return {
            "signal": "metadata",
            "levels": dict(options.levels),
            "scale": list(options.scale) if options.scale else None,
            "min_difficulty": options.min_difficulty,
            "missing": options.missing,
        }
    if options.source == "likelihood":
        student = student or StudentOptions()
        return {
            "signal": "likelihood",
            "model": student.model,
            "system_prompt": student.system_prompt,
            "measure": student.likelihood.measure,
            "chains_per_problem": student.likelihood.chains_per_problem,
            "max_tokens": student.likelihood.max_tokens,
            "missing": options.missing,
        }
    signal: dict[str, Any] = {
        "signal": "pass_rate",
        "source": options.source,
        "strong_models": list(options.strong_models),
    }
    rating = rating_student(options, student)
    if rating is not None:
        own = rating.pass_rate
        signal["student"] = {
            "models": list(rating.generators()),
            "k": own.rollouts.k if own.rollouts is not None else None,
            "pass_rate": list(own.window) if own.window is not None else None,
            "score": own.score,
            "fallback": own.fallback,
            "min_solved": own.min_solved,
            "used": None,  # set by the stage: student_pass_rate, or likelihood when the fallback replaced it
        }
    return signal


def check_student(options: DifficultyOptions, student: StudentOptions | None) -> None:
    """Raises: ValueError: the student's pass rate scores with a source without attempts, or names no generator."""
    rating = rating_student(options, student)
    if rating is None:
        return
    if options.source not in ("pool", "rollouts"):
        raise ValueError(
            "curate.stages.difficulty.pass_rate_of: student: the student's pass rate comes from attempts, so it needs "
            f"source pool or rollouts, got {options.source!r}"
        )
    if not rating.generators():
        raise ValueError(
            "curate.stages.difficulty.pass_rate_of: student names no student attempts; set "
            "curate.student.pass_rate.rollouts (its samples) or curate.student.pass_rate.models (the pool generators "
            "that are the student)"
        )


def metadata_score(value: Any, options: DifficultyOptions) -> float | None:
    """A metadata value as a difficulty in [0, 1]: its ``levels`` entry, else its number scaled; else None."""
    if value is None:
        return None
    key = str(value).strip()
    if key in options.levels:
        return float(options.levels[key])
    number = float(value) if isinstance(value, (int, float)) else _whole_number(key)
    if number is None or options.scale is None:
        return None
    easiest, hardest = options.scale
    if hardest == easiest:
        return None
    return round(min(1.0, max(0.0, (number - easiest) / (hardest - easiest))), 6)


def _whole_number(text: str) -> float | None:
    """``3.5``, ``Level 4`` (MATH's levels) -> the number; ``0.5/1``, ``n/a``, ``high``, ``Level ?`` -> None."""
    found = _WHOLE_NUMBER.fullmatch(text.strip())
    return float(found.group(1)) if found else None


def problem_metadata(problem: Problem) -> Any:
    """The difficulty a pool row declared (``field_map.difficulty``), else the source's own level."""
    return problem.extra.get("difficulty", problem.level)


def metadata_note(
    value: Any, options: DifficultyOptions, problem_id: str = ""
) -> tuple[dict[str, Any], tuple[str, dict[str, Any]] | None]:
    """One problem's metadata difficulty note, and its drop (reason, detail) or None to keep it.

    Raises:
        DataError: No score and ``missing: error`` (naming the problem and its value).
    """
    score = metadata_score(value, options)
    note = {"source": "metadata", "value": value, "score": score}
    if score is None and options.missing == "error":
        raise DataError(
            f"problem {problem_id}: difficulty value {value!r} is neither a level of curate.stages.difficulty.levels "
            "nor a number on its scale (missing: error; unknown keeps such problems at the neutral rank, drop drops "
            "them), field difficulty"
        )
    if score is None and options.missing == "drop":
        return note, ("no_difficulty", {"value": value})
    if score is not None and options.min_difficulty is not None and score < options.min_difficulty:
        return note, ("below_min_difficulty", {"value": value, "score": score})
    return note, None


def check_missing(options: DifficultyOptions) -> None:
    """Raises: ValueError: ``missing`` is not one of `MISSING`."""
    if options.missing not in MISSING:
        raise ValueError(
            f"curate.stages.difficulty.missing must be unknown, drop or error (keep: unknown), got {options.missing!r}"
        )


def metadata_summary(notes: Sequence[dict[str, Any]], options: DifficultyOptions) -> dict[str, Any]:
    """The difficulty stage's funnel notes over every problem's metadata note; warns when some have no score.

    ``empty``: no value; ``unparseable``: a value that is neither a level nor a number (the most common ones
    are shown). Both are unknown difficulties, handled by ``missing``.
    """
    unparseable = Counter(str(n["value"]) for n in notes if n["score"] is None and n["value"] is not None)
    empty = sum(1 for n in notes if n["value"] is None)
    scored = len(notes) - empty - sum(unparseable.values())
    policy = "unknown" if options.missing == "keep" else options.missing
    if empty or unparseable:
        shown = ", ".join(f"{v!r} x{c}" for v, c in unparseable.most_common(3))
        outcome = "dropped" if policy == "drop" else f"kept at the neutral selection term {UNKNOWN_TERM}"
        if not scored and policy != "drop":  # nothing to rank by: say so, selection falls back
            outcome = "no problem has one, so selection ranks by curate.stages.select.fallback_difficulty"
        log.warning(
            "difficulty: %d of %d problems have no usable difficulty (%d empty, %d unparseable%s); missing: %s: %s",
            empty + sum(unparseable.values()), len(notes), empty, sum(unparseable.values()),
            f": {shown}" if shown else "", policy, outcome,
        )  # fmt: skip
    return {
        "source": "metadata",
        "problems_with_difficulty": scored,
        "unknown": empty + sum(unparseable.values()),
        "empty": empty,
        "unparseable": dict(unparseable.most_common(3)),
        "missing": policy,
    }


UNKNOWN_TERM = 0.5  # selection's term for a problem without a score (curation.stages.select.UNKNOWN_DIFFICULTY)


# ------------------------------------------------------------------------------------------------ shard tasks


# ------------------------------------------------------------------------------------------------ the stage


@dataclass
class Difficulties:
    """What the difficulty stage hands on (never texts).

    Attributes:
        source: ``curate.stages.difficulty.source``.
        noted: Per problem: alive when the stage ran (its note is then written back).
        score: Per problem: the note's score, selection's difficulty (NaN: none).
        counts: The pass counts (pool attempts or rollouts); None for ``metadata`` and ``likelihood``.
        strong_rate: Per problem: the strong models' pass rate (NaN: none); None without pass counts.
        student_rate: Per problem: the student's pass rate (NaN: none); None without the student's attempts.
        notes: Per problem, the note of ``metadata`` or ``likelihood`` (or of the pass rates, when the student's
            rates or its fallback scored).
        rollouts: The rollouts' manifest facts, when the stage rolled out.
        student: The student whose pass rate scored (``pass_rate_of: student``), else None.
    """

    source: str
    noted: np.ndarray
    score: np.ndarray
    counts: PassCounts | None = None
    strong_rate: np.ndarray | None = None
    student_rate: np.ndarray | None = None
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    rollouts: dict[str, Any] = field(default_factory=dict)
    student: StudentOptions | None = None


def difficulty(state: RunState, options: StageOptions, context: StageContext) -> Difficulties | None:
    """`curation.stages.difficulty.run_difficulty`: pass rates (pool or rollouts; the strong models', or the student's)
    or a metadata column per problem, or the student's likelihood."""
    settings, student = options.difficulty, context.student
    state.manifest["difficulty"] = difficulty_signal(settings, student)
    count = state.opened("difficulty", settings.enabled)
    if count is None:
        return None
    results = Difficulties(settings.source, state.problem_alive.copy(), np.full(len(state.problem_alive), np.nan))
    results.student = rating_student(settings, student)
    if settings.source == "metadata":
        metadata_difficulty(state, settings, count, results)
        return results
    if settings.source == "likelihood":
        likelihood_difficulty(state, settings, count, context, results)
        return results
    counts = attempt_counts(state, options, context, results)
    results.counts = counts
    results.strong_rate = np.full(len(state.problem_alive), np.nan)
    alive = np.flatnonzero(state.problem_alive).tolist()
    notes = {problem: difficulty_note(counts.of(problem), settings, results.student) for problem in alive}
    for problem, note in notes.items():
        if note["strong_pass_rate"] is not None:
            results.strong_rate[problem] = note["strong_pass_rate"]
        if note["score"] is not None:
            results.score[problem] = note["score"]
    decided = {problem: difficulty_decision(counts.of(problem), settings, student_window=False) for problem in alive}
    kept = [problem for problem in alive if decided[problem] is None]  # what the weak and strong filters keep
    rating = results.student
    fallback = rating is not None and student_fallback(state, settings, rating, count, context, results, notes, kept)
    drops = []
    for problem in alive:
        note = notes[problem]
        reason = decided[problem]
        if reason is None and rating is not None and not fallback:
            reason = difficulty_decision(counts.of(problem), settings, rating)
        if reason:
            shown = ("strong_pass_rate", "weak_pass_rate", "student_pass_rate")
            drops.append((problem, reason, {k: note[k] for k in shown if k in note}))
    with_attempts = sum(bool(n["attempts"]) for n in notes.values())
    count.notes = {"source": settings.source, "problems_with_attempts": with_attempts, **count.notes}
    if fallback:
        drops.extend(likelihood_drops(state, settings, student, results, kept))
    state.apply(count, problems=drops)
    return results


def attempt_counts(state: RunState, options: StageOptions, context: StageContext, results: Difficulties) -> PassCounts:
    """The pass counts difficulty scores with: the pool's attempts or fresh rollouts (``source``), and the student's
    own samples (``curate.student.pass_rate.rollouts``, when its pass rate scores) beside them."""
    settings = options.difficulty
    stage = student_stage(results.student) if results.student is not None else None
    if settings.source != "pool":
        return rollout_counts(state, options, context, results, [*rollout_stages(settings), *filter(None, [stage])])
    counts = pool_counts(state)
    if stage is None:
        return counts
    if stage.options.generator_name in counts.generators:
        raise ValueError(
            f"curate.student.model: {stage.options.generator_name!r}, the student whose samples are drawn, also "
            "names chains of the pool; give the student's samples a name of their own "
            "(curate.student.pass_rate.rollouts.generator.model)"
        )
    return merged_counts(counts, rollout_counts(state, options, context, results, [stage]))


def merged_counts(first: PassCounts, second: PassCounts) -> PassCounts:
    """Two sets of pass counts over different generators as one."""
    codes = second.generator.astype(np.int32) + len(first.generators)
    return PassCounts.of_pairs(
        first.generators + second.generators,
        [
            (first.problem, first.generator, first.correct, first.tries),
            (second.problem, codes, second.correct, second.tries),
        ],
    )


def student_fallback(
    state: RunState,
    settings: DifficultyOptions,
    student: StudentOptions,
    count: Any,
    context: StageContext,
    results: Difficulties,
    notes: dict[int, dict[str, Any]],
    kept: Sequence[int],
) -> bool:
    """Whether the student's pass rates count: its rates are kept per problem (``results.student_rate``), and with
    ``pass_rate.fallback: likelihood`` a student that solved fewer than ``min_solved`` of the problems it tried at
    least once (of ``kept``: those the weak and strong filters keep) has its likelihood of each such problem's
    verified chains score them instead (said in the log, the funnel notes and the manifest; the notes keep both).
    Returns True when the fallback replaced the rates."""
    own = student.pass_rate
    results.student_rate = np.full(len(state.problem_alive), np.nan)
    for problem, note in notes.items():
        if note["student_pass_rate"] is not None:
            results.student_rate[problem] = note["student_pass_rate"]
    rates = {p: notes[p]["student_pass_rate"] for p in kept if notes[p]["student_pass_rate"] is not None}
    results.notes.update(notes)  # the notes hold the student's rate and its score
    solved = sum(rate > 0 for rate in rates.values())
    share = round(solved / len(rates), 6) if rates else 0.0
    replaced = own.fallback == "likelihood" and share < own.min_solved
    used = "likelihood" if replaced else "student_pass_rate"
    count.notes = {"student": {"problems_tried": len(rates), "solved_at_least_once": solved, "solved_share": share,
                               "score": own.score, "used": used}}  # fmt: skip
    state.manifest["difficulty"]["student"]["used"] = used
    if not replaced:
        return False
    log.warning(
        "difficulty: the student solved %d of the %d problems it tried at least once (share %.3f, below "
        "curate.student.pass_rate.min_solved %.3f): its pass rates say nothing here, so its likelihood of each "
        "problem's verified chains scores the problems instead (pass_rate.fallback: likelihood; pass_rate.window not "
        "applied)",
        solved, len(rates), share, own.min_solved,
    )  # fmt: skip
    values, chain_notes, scored = likelihood_values(state, student, context, kept)
    results.score = np.full(len(state.problem_alive), np.nan)
    for problem, score in percentiles(values).items():
        results.score[problem] = chain_notes[problem]["score"] = score
    for problem in kept:
        results.notes[problem] = {**notes[problem], "score": chain_notes[problem]["score"],
                                  "score_from": "likelihood", "likelihood": chain_notes[problem]}  # fmt: skip
    count.notes["student"]["likelihood"] = likelihood_summary(values, len(kept), scored, settings, student)
    return True


def likelihood_drops(
    state: RunState, settings: DifficultyOptions, student: StudentOptions, results: Difficulties, alive: Sequence[int]
) -> list[tuple[int, str, dict[str, Any]]]:
    """``min_difficulty`` and ``missing`` over the likelihood scores (`likelihood_difficulty`, `student_fallback`).

    Raises:
        DataError: A problem with no verified chain to score under ``missing: error``.
    """
    drops: list[tuple[int, str, dict[str, Any]]] = []
    for problem in alive:
        score = results.score[problem]
        if not np.isnan(score):
            if settings.min_difficulty is not None and score < settings.min_difficulty:
                measure = student.likelihood.measure
                nats = results.notes[problem].get(measure)
                if nats is None:  # the fallback keeps the likelihood note under its own key
                    nats = results.notes[problem].get("likelihood", {}).get(measure)
                drops.append((problem, "below_min_difficulty", {"nats": nats, "score": float(score)}))
        elif settings.missing == "error":
            raise DataError(f"problem {state.problem_ids[problem]}: no verified chain to score (source: likelihood, "
                            "missing: error), field difficulty")  # fmt: skip
        elif settings.missing == "drop":
            drops.append((problem, "no_difficulty", {"reason": "no verified chain to score"}))
    return drops


def metadata_difficulty(state: RunState, settings: Any, count: Any, results: Difficulties) -> None:
    """`curation.stages.difficulty.run_metadata_difficulty` over the problems table (one note per alive problem)."""
    check_missing(settings)
    scores = results.score = np.full(len(state.problem_alive), np.nan)
    alive = np.flatnonzero(state.problem_alive).tolist()
    drops = []
    for problem, row in zip(alive, state.problem_rows(alive), strict=True):
        record = Problem.from_dict(row)
        note, drop = metadata_note(problem_metadata(record), settings, record.id)
        results.notes[problem] = note
        if note["score"] is not None:
            scores[problem] = note["score"]
        if drop is not None:
            drops.append((problem, *drop))
    count.notes = metadata_summary([results.notes[p] for p in alive], settings)
    state.apply(count, problems=drops)


def likelihood_difficulty(
    state: RunState, settings: DifficultyOptions, count: Any, context: StageContext, results: Difficulties
) -> None:
    """`source: likelihood`: the student's negative log-likelihood of each alive problem's first
    ``chains_per_problem`` verified chains (`likelihood_values`); the problem's score is its percentile among the
    scored problems (the least likely answers: 1). A problem with no chain to score is unknown (``missing``)."""
    check_missing(settings)
    student = context.student
    values, notes, scored = likelihood_values(state, student, context)
    results.notes.update(notes)
    scores = results.score = np.full(len(state.problem_alive), np.nan)
    for problem, score in percentiles(values).items():
        scores[problem] = results.notes[problem]["score"] = score
    alive = np.flatnonzero(state.problem_alive).tolist()
    drops = likelihood_drops(state, settings, student, results, alive)
    count.notes = {"source": "likelihood", **likelihood_summary(values, len(alive), scored, settings, student)}
    state.apply(count, problems=drops)


def likelihood_summary(
    values: Mapping[int, float], problems: int, scored: int, settings: DifficultyOptions, student: StudentOptions
) -> dict[str, Any]:
    """The funnel notes of a likelihood scoring over ``problems`` problems (logged too)."""
    scoring = student.likelihood
    nll = sorted(values.values())
    notes = {
        "problems_with_difficulty": len(values),
        "unknown": problems - len(values),
        "chains_scored": scored,
        "measure": scoring.measure,
        "nats": {"min": nll[0], "median": nll[len(nll) // 2], "max": nll[-1]} if nll else None,
        "missing": "unknown" if settings.missing == "keep" else settings.missing,
    }
    log.info("difficulty: the student's likelihood of %d chains over %d problems (%s nats: %s)", scored,
             len(values), scoring.measure, notes["nats"])  # fmt: skip
    return notes


def verified_chains(state: RunState) -> np.ndarray:
    """The alive chains the answer check confirmed (every alive chain when it did not run), as a mask."""
    checked = state.output("answer_check", Checked)
    return state.chain_alive if checked is None else state.chain_alive & checked.correct


def likelihood_values(
    state: RunState, student: StudentOptions, context: StageContext, problems: Sequence[int] | None = None
) -> tuple[dict[int, float], dict[int, dict[str, Any]], int]:
    """The student's likelihood of the first ``chains_per_problem`` verified chains of each of ``problems`` (default:
    every alive one), in nats per chain or per token (``measure``), at 3 decimals (CPUs whose float sums differ in
    the last places rank alike).

    Returns:
        The value of each problem that has a chain to score, each problem's note (its score still None), and the
        chains scored.
    """
    scoring = student.likelihood
    alive = np.flatnonzero(state.problem_alive).tolist() if problems is None else list(problems)
    verified = verified_chains(state)
    picked = {p: _first_verified(state, p, verified, scoring.chains_per_problem) for p in alive}
    chains = [c for p in alive for c in picked[p]]
    scored = student_scores(state, chains, student, context)
    values: dict[int, float] = {}
    notes: dict[int, dict[str, Any]] = {}
    for problem in alive:
        items = [scored[c] for c in picked[problem]]
        note: dict[str, Any] = {"source": "likelihood", "chains": len(items), "score": None}
        if items:
            values[problem] = likelihood_value(items, scoring.measure)
            tokens = sum(i.tokens for i in items)
            note.update(
                {scoring.measure: values[problem], "tokens": tokens, "truncated": sum(i.truncated for i in items)}
            )
        notes[problem] = note
    return values, notes, len(chains)


def student_scores(
    state: RunState, chains: Sequence[int], student: StudentOptions, context: StageContext, *, ranks: bool = False
) -> dict[int, Scored]:
    """The student's `eval.run.likelihood.Scored` of each chain (pool index), each after its problem's text, rendered
    as training will render it; cached in ``<work>/likelihood/`` (a killed run resumes), so the difficulty stage and
    selection score a chain once. ``ranks``: with the mean token rank (RSR).

    Raises:
        ValueError: ``curate.student.model`` is not set.
    """
    if not student.model:
        raise ValueError("curate.student.model is not set (the student's likelihood needs it)")
    scoring = student.likelihood
    texts = read_chains(state.store, list(chains))
    problems = sorted({int(state.chain_problem[c]) for c in chains})
    statements = {p: row["problem"] for p, row in zip(problems, state.problem_rows(problems), strict=True)}
    rows = [
        (chain.id, statements[int(state.chain_problem[c])], chain.text) for c, chain in zip(chains, texts, strict=True)
    ]
    template = Path(student.chat_template).read_text(encoding="utf-8") if student.chat_template else None
    scored = score_answers(
        rows,
        student.model,
        cache_folder=context.work_dir / "likelihood",
        chat_template=template,
        system_prompt=student.system_prompt,
        batch_size=scoring.batch_size,
        max_tokens=scoring.max_tokens,
        dtype=scoring.dtype,
        ranks=ranks,
    )
    return {c: scored[chain.id] for c, chain in zip(chains, texts, strict=True)}


def likelihood_value(items: Sequence[Any], measure: str) -> float:
    """A problem's value from its scored chains (`eval.run.likelihood.Scored`), at 3 decimals: their mean nats
    (``total``) or their nats per token (``per_token``).

    Raises:
        ValueError: An unknown ``measure``.
    """
    if measure == "total":
        return round(sum(i.nll * i.tokens for i in items) / len(items), 3)
    if measure == "per_token":
        return round(sum(i.nll * i.tokens for i in items) / sum(i.tokens for i in items), 3)
    raise ValueError(f"curate.student.likelihood.measure must be total or per_token, got {measure!r}")


def _first_verified(state: RunState, problem: int, verified: np.ndarray, limit: int) -> list[int]:
    members = np.sort(state.alive_chains_of(problem))
    return [int(c) for c in members[verified[members]][: max(0, limit)]]


def mid_ranks(values: Sequence[float]) -> list[float]:
    """Each value's count of smaller values, ties counting half of the others equal to it (0-based mid-rank)."""
    ordered = sorted(values)
    smaller = {v: bisect.bisect_left(ordered, v) for v in set(ordered)}
    equal = {v: bisect.bisect_right(ordered, v) - smaller[v] for v in smaller}
    return [smaller[v] + (equal[v] - 1) / 2 for v in values]


def percentiles(values: dict[int, float]) -> dict[int, float]:
    """Each key's mid-rank percentile among ``values`` in [0, 1] (ties share one; a single value: 0.5)."""
    if len(values) < 2:
        return dict.fromkeys(values, 0.5)
    ranks = mid_ranks(list(values.values()))
    return {key: round(rank / (len(values) - 1), 6) for key, rank in zip(values, ranks, strict=True)}


def pool_counts(state: RunState) -> PassCounts:
    """Correct answers and tries per (problem, generator) from the answer check's attempts (a generator at a time:
    a count per problem, kept where it tried)."""
    checked = state.output("answer_check", Checked)
    columns = state.store.columns
    if checked is None:
        return PassCounts.of_pairs(columns.generators, ())
    return PassCounts.of_pairs(columns.generators, _generator_counts(state, checked.attempt, checked.correct))


def _generator_counts(state: RunState, attempt: np.ndarray, correct: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """A chain a model wrote more than once (`PoolColumns.chain_copies`) is that many tries: k samples of which
    five agree word for word are still k attempts."""
    problems = len(state.problem_alive)
    copies = state.store.columns.chain_copies
    for code in np.unique(state.store.columns.chain_generator[attempt]).tolist():  # the generators that tried
        chains = attempt & (state.store.columns.chain_generator == code)
        tries = _tries(state.chain_problem, chains, copies, problems)
        right = _tries(state.chain_problem, chains & correct, copies, problems)
        tried = np.flatnonzero(tries)
        yield tried, np.full(len(tried), code), right[tried], tries[tried]


def _tries(chain_problem: np.ndarray, chains: np.ndarray, copies: np.ndarray | None, problems: int) -> np.ndarray:
    """Per problem, the chains of ``chains``, each counted as many times as it was written."""
    if copies is None:
        return np.bincount(chain_problem[chains], minlength=problems)
    return np.bincount(chain_problem[chains], weights=copies[chains], minlength=problems).astype(np.int64)


def rollout_counts(
    state: RunState,
    options: StageOptions,
    context: StageContext,
    results: Difficulties,
    stages: Sequence[RolloutStage] | None = None,
) -> PassCounts:
    """Fresh rollouts of the alive problems (`curation.rollouts.run_rollout_stages`: ``stages``, default the weak and
    strong ones the options set) as pass counts (their manifest facts in ``results.rollouts``)."""
    alive = np.flatnonzero(state.problem_alive)
    problems = state.problem_rows(alive)
    work = context.work_dir / "rollouts"
    outcome = run_rollout_stages(problems, options, work, context.seed, context.executor, stages)
    results.rollouts = outcome.manifest()
    counts = outcome.counts()
    return PassCounts.of_pairs(
        list(counts),
        ((alive, np.full(len(alive), code), correct, drawn) for code, (correct, drawn) in enumerate(counts.values())),
    )


class Difficulty(Stage):
    """The difficulty stage: each kept problem's note (``difficulty``) and the pass rates' chart."""

    name, options_type = "difficulty", DifficultyOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Difficulties | None:
        return difficulty(state, options, context)

    def problem_notes(self, output: Difficulties, kept: Kept) -> None:
        counts, settings = output.counts, kept.options.difficulty
        for problem_id, index in kept.problems.items():
            if index in output.notes:
                kept.survivors.problem_notes[problem_id]["difficulty"] = output.notes[index]
            elif output.noted[index] and counts is not None:
                note = difficulty_note(counts.of(index), settings, output.student)
                kept.survivors.problem_notes[problem_id]["difficulty"] = note

    def charts(self, output: Difficulties | None, kept: Kept) -> list[Chart]:
        """The strong-model pass rates of the problems scored; left out, saying why, when none has one."""
        rates = []
        if output is not None and output.strong_rate is not None:
            noted = output.strong_rate[output.noted]
            rates = noted[~np.isnan(noted)].tolist()
        enabled = next(c.enabled for c in kept.state.funnel if c.stage == self.name)
        why = (
            "the difficulty signal of this run is not strong-model attempts"
            if enabled
            else "difficulty is off (curate.stages.difficulty.enabled: false)"
        )
        series, label = {"problems scored": rates}, "strong-model pass rate"
        if output is not None and output.student_rate is not None:  # the student's own rates beside the strong ones
            own = output.student_rate[output.noted]
            series["student"], label = own[~np.isnan(own)].tolist(), "pass rate (strong models; student)"
        line = f"Pass rate: not drawn, no problem has a pass rate: {why}."
        return [Chart("pass_rate", "Pass rate", HISTOGRAM, series, label, line, span=(0.0, 1.0))]


def pass_rates(notes: Mapping[str, Any]) -> dict[str, object] | None:
    """A kept problem's pass rates as the stage noted them (`difficulty_note`; None: none), for its curated row."""
    return notes.get(STAGE.name)


def strong_pass_rate(kept: Survivors, problem_id: str) -> float | None:
    """The strong-model pass rate the stage noted on a kept problem (None: it has none)."""
    return cast("float | None", (pass_rates(kept.problem_notes.get(problem_id, {})) or {}).get("strong_pass_rate"))


def own_pass_rate(kept: Survivors, problem_id: str) -> float | None:
    """The student's own pass rate the stage noted on a kept problem (None: no student, or no attempts of its)."""
    return cast("float | None", (pass_rates(kept.problem_notes.get(problem_id, {})) or {}).get("student_pass_rate"))


STAGE = Difficulty()
