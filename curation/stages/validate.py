"""Validate: reject problems and chains that no later stage should see, each with its reason.

Chains from prompt settings outside ``allowed_settings`` are dropped here (reason
``setting_not_allowed``): for CHAMP only the unaided settings (0-Shot, 5-Shot, No C w/o H) may be
training chains or count toward pass rates, so partial-solution and hint settings (including
"Misleading ...") never reach grading. Human chains have no setting and always pass that check.

A problem longer than ``max_problem_chars`` (a scraped page pasted as a question: 2.5 MB passed before) is
dropped with its chains (``problem_too_long``, its length in the detail), before any stage pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from curation.options import StageOptions, ValidateOptions
from curation.pool.store import PoolColumns
from curation.runner import RunState, StageContext, alive_rows, chunked_pairs, options_dict, rows_of, run_parts
from curation.stages.base import StepStage
from eval.options import to_options
from eval.problem import Problem


def problem_detail(reason: str, chars: int) -> dict[str, Any]:
    """A dropped problem's detail: its length when it was too long."""
    return {"chars": chars} if reason == "problem_too_long" else {}


def problem_problem(problem: Problem, options: ValidateOptions) -> str | None:
    """Why ``problem`` is unusable, or None."""
    if len(problem.problem.strip()) < options.min_problem_chars:
        return "problem_too_short"
    if len(problem.problem) > options.max_problem_chars:
        return "problem_too_long"
    if not problem.answer or not problem.answer.strip():
        return "no_gold_answer"
    return None


def chain_reason_codes(columns: PoolColumns, options: ValidateOptions, chains: np.ndarray) -> np.ndarray:
    """Why each of ``chains`` is unusable, from the pool's columns alone: one byte per chain, 0 when it is usable,
    else ``c`` for `CHAIN_REASONS` ``[c - 1]``, so a whole pool is checked without a Python object per chain.

    In order: a prompt setting outside ``allowed_settings`` (human chains have none and pass), an empty text
    (no word: ``str.split`` and ``str.strip`` agree on what is whitespace), a text over ``max_chain_chars``.
    A chain's problem always exists: ingest rejects a chain of an unknown problem.
    """
    reasons = np.zeros(len(chains), dtype=np.int8)
    if options.allowed_settings:
        allowed = np.array([s in options.allowed_settings for s in columns.settings], dtype=bool)
        outside = ~allowed[columns.chain_setting[chains]] & ~columns.chain_human[chains]
        reasons[outside] = 1
    reasons[(reasons == 0) & (columns.chain_words[chains] == 0)] = 2
    reasons[(reasons == 0) & (columns.chain_chars[chains] > options.max_chain_chars)] = 3
    return reasons


CHAIN_REASONS = ("setting_not_allowed", "empty_chain", "chain_too_long")  # codes 1, 2, 3


def setting_detail(columns: PoolColumns, chain: int) -> dict[str, Any]:
    """A dropped chain's detail: its prompt setting, when it has one."""
    setting = columns.settings[columns.chain_setting[chain]]
    return {"prompt_setting": setting} if setting else {}


# ------------------------------------------------------------------------------------------------ shard tasks


def validate_problems(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, reason, characters of its text]`` for every alive problem validation drops."""
    options = to_options(ValidateOptions, item["options"])
    for position, row in alive_rows(item):
        problem = Problem.from_dict(row)
        reason = problem_problem(problem, options)
        if reason:
            yield [position, reason, len(problem.problem)]


# ------------------------------------------------------------------------------------------------ the stage


def problem_limit(state: RunState, options: StageOptions, context: StageContext) -> None:
    limit = options.ingest.problem_limit
    count = state.begin("problem_limit", limit is not None)
    over: list[int] = np.flatnonzero(state.problem_alive)[limit:].tolist() if limit is not None else []
    state.apply(count, problems=[(p, "problem_limit", {"limit": limit}) for p in over])


def validate(state: RunState, options: StageOptions, context: StageContext) -> None:
    count = state.opened("validate", options.validate.enabled)
    if count is None:
        return
    params = {"options": options_dict(options.validate)}
    problems = run_parts(state, context, "validate-problems", validate_problems, params, table="problems")
    columns = state.store.columns
    alive = np.flatnonzero(state.chain_alive)  # before any problem drop
    codes = chain_reason_codes(columns, options.validate, alive)
    unusable, codes = alive[codes != 0], codes[codes != 0]  # arrays: a pool of hinted settings drops most chains
    del alive
    chain_drops = ((c, CHAIN_REASONS[r - 1], setting_detail(columns, c)) for c, r in chunked_pairs(unusable, codes))
    problem_drops = [(p, reason, problem_detail(reason, chars)) for p, reason, chars in rows_of(problems)]
    state.apply(count, chains=chain_drops, problems=problem_drops)


PROBLEM_LIMIT = StepStage("problem_limit", problem_limit)  # its option is curate.stages.ingest.problem_limit
STAGE = StepStage("validate", validate, ValidateOptions)
